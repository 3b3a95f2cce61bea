// Runs graphql-http's server audits (the GraphQL-over-HTTP spec's public audit suite) against
// a running Conveyor API. Usage: CONVEYOR_URL=http://127.0.0.1:8000/graphql CONVEYOR_KEY=cvk_...
// node audit.mjs. Prints one JSON line per audit; exits 1 if any MUST or SHOULD audit fails.
import { serverAudits } from 'graphql-http';

const url = process.env.CONVEYOR_URL;
const key = process.env.CONVEYOR_KEY;
if (!url || !key) {
  console.error('set CONVEYOR_URL and CONVEYOR_KEY');
  process.exit(2);
}

// The audits send no credentials: add the API key to every request.
const fetchFn = (input, init = {}) => {
  const headers = new Headers(init.headers || {});
  headers.set('authorization', `Bearer ${key}`);
  return fetch(input, { ...init, headers });
};

let failed = 0;
for (const audit of serverAudits({ url, fetchFn })) {
  const result = await audit.fn();
  const line = { id: result.id, name: result.name, status: result.status };
  if (result.status !== 'ok') {
    line.reason = result.reason;
    if (result.response) {
      line.httpStatus = result.response.status;
    }
    if (/^(MUST|SHOULD)\b/.test(result.name)) {
      failed += 1;
    }
  }
  console.log(JSON.stringify(line));
}
process.exit(failed ? 1 : 0);
