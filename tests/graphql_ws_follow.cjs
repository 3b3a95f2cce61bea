// A stock graphql-ws client (the dashboard's pinned version) following one job's events, with
// its default retry behaviour. Prints one JSON line per event and per connection change.
// node tests/graphql_ws_follow.cjs <frontend dir> <ws url> <key> <job id>
const { createRequire } = require('node:module');
const [frontend, url, key, jobId] = process.argv.slice(2);
const load = createRequire(`${frontend}/package.json`);
const { createClient } = load('graphql-ws');
const WebSocket = load('ws');

const print = (line) => process.stdout.write(`${JSON.stringify(line)}\n`);
const client = createClient({
  url,
  webSocketImpl: WebSocket,
  connectionParams: { authorization: `Bearer ${key}` },
  on: {
    connected: () => print({ on: 'connected' }),
    closed: (event) => print({ on: 'closed', code: event && event.code }),
  },
});
client.subscribe(
  {
    query: 'subscription($id: ID!) { jobEvents(jobId: $id) { seq type } }',
    variables: { id: jobId },
  },
  {
    next: (value) => print({ on: 'next', ...value.data.jobEvents }),
    error: (error) => { print({ on: 'error', error: String(error && (error.message || error.code || error)) }); process.exit(2); },
    complete: () => { print({ on: 'complete' }); client.dispose(); process.exit(0); },
  },
);
setTimeout(() => { print({ on: 'timeout' }); process.exit(3); }, 60000);
