// Runs one GraphQL client, as a frontend team would set it up, against a running Conveyor:
// submit, follow a job with a forced reconnect, a persisted query, a batch, a bad key.
// Usage: CONVEYOR_URL=http://127.0.0.1:8000 CONVEYOR_KEY=cvk_... node run.mjs apollo|urql|graphql-ws
// Prints one JSON line per check ({client, check, ok, detail}); exits 1 when a check fails.
import { createHash } from 'node:crypto';
import WebSocket from 'ws';
import { createClient } from 'graphql-ws';
import { createConveyorClient, followJob, isAuthFailure } from '@conveyor/client';

const base = process.env.CONVEYOR_URL;
const key = process.env.CONVEYOR_KEY;
const which = process.argv[2];
if (!base || !key || !which) {
  console.error('set CONVEYOR_URL and CONVEYOR_KEY, and name a client: apollo, urql or graphql-ws');
  process.exit(2);
}
const httpUrl = `${base}/graphql`;
const wsUrl = httpUrl.replace(/^http/, 'ws');
const sha256 = (text) => createHash('sha256').update(text).digest('hex');

const SUBMIT = `mutation Submit($input: SubmitJobInput!) {
  submitJob(input: $input) { __typename ... on Job { id status } ... on UserError { code message } }
}`;
const EVENTS = `query Events($id: ID!) { job(id: $id) { status events(first: 1000) { seq type } } }`;
const ME = `query Me { me { name } }`;
const KINDS = `query Kinds { jobKinds { name } }`;
const SLOW_JOB = { kind: 'demo.sleep', payload: { steps: 8, stepSeconds: 0.15 } };

let failures = 0;
async function check(name, fn) {
  try {
    const detail = await fn();
    console.log(JSON.stringify({ client: which, check: name, ok: true, detail }));
  } catch (e) {
    failures += 1;
    console.log(JSON.stringify({ client: which, check: name, ok: false, detail: String(e?.stack ?? e) }));
  }
}

function assert(condition, message) {
  if (!condition) throw new Error(message);
}

/** A fetch that records what went over the wire (to see hashes, queries, batches). */
function recordingFetch(log, authorization = `Bearer ${key}`) {
  return async (input, init = {}) => {
    const headers = new Headers(init.headers);
    headers.set('authorization', authorization);
    const url = typeof input === 'string' ? input : input.url;
    log.push({ method: init.method ?? 'GET', url, body: init.body ? JSON.parse(init.body) : null });
    return fetch(input, { ...init, headers });
  };
}

/** The job's stored events, over plain HTTP: what a follower must have seen. */
async function storedEvents(jobId) {
  const response = await fetch(httpUrl, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ query: EVENTS, variables: { id: jobId } }),
  });
  const { data } = await response.json();
  return data.job.events.map((e) => e.seq);
}

/** Follow a job with the kit over `ws`, dropping the socket after the second event. */
async function followWithReconnect(ws, jobId) {
  let opened = 0;
  ws.on('connected', () => (opened += 1));
  const seen = [];
  for await (const event of followJob(ws, jobId)) {
    seen.push(event);
    if (seen.length === 2) ws.terminate(); // the network drops; graphql-ws reconnects
  }
  const stored = await storedEvents(jobId);
  const seqs = seen.map((e) => e.seq);
  // A SNAPSHOT first (its seq: the latest stored then), then every later event once, in order.
  assert(seen[0].type === 'SNAPSHOT', `first event ${seen[0].type}`);
  const expected = stored.filter((s) => s > seqs[0]);
  assert(JSON.stringify(seqs.slice(1)) === JSON.stringify(expected), `saw ${seqs}, stored ${stored}`);
  assert(seen.at(-1).type === 'SUCCEEDED', `last event ${seen.at(-1).type}`);
  assert(opened >= 2, `the socket was not reconnected (${opened} connections)`);
  return { events: seqs.length, reconnects: opened - 1 };
}

/** A kit client with a wrong key: one attempt, then an auth failure (no ~39 s of retries). */
async function badKeyOverWebSocket() {
  let attempts = 0;
  const ws = createConveyorClient({ url: wsUrl, apiKey: 'cvk_wrong', webSocketImpl: WebSocket, lazy: true });
  ws.on('connecting', () => (attempts += 1));
  const error = await new Promise((resolve) => {
    ws.subscribe({ query: ME }, { next: () => {}, error: resolve, complete: () => resolve(null) });
  });
  await ws.dispose();
  assert(isAuthFailure(error), `expected an auth failure, got ${JSON.stringify(error)}`);
  assert(attempts === 1, `${attempts} connection attempts`);
  return { code: error.code, attempts };
}

async function apollo() {
  const { ApolloClient, InMemoryCache, HttpLink, gql } = await import('@apollo/client');
  const { BatchHttpLink } = await import('@apollo/client/link/batch-http');
  const { PersistedQueryLink } = await import('@apollo/client/link/persisted-queries');
  const { GraphQLWsLink } = await import('@apollo/client/link/subscriptions');
  const { ApolloLink } = await import('@apollo/client/link');
  const { OperationTypeNode } = await import('graphql');

  const wire = [];
  const ws = createConveyorClient({ url: wsUrl, apiKey: key, webSocketImpl: WebSocket });
  const http = new HttpLink({ uri: httpUrl, fetch: recordingFetch(wire) });
  const link = ApolloLink.split(
    ({ operationType }) => operationType === OperationTypeNode.SUBSCRIPTION,
    new GraphQLWsLink(ws),
    http,
  );
  const client = new ApolloClient({ link, cache: new InMemoryCache() });

  let jobId;
  await check('submit', async () => {
    const { data } = await client.mutate({ mutation: gql(SUBMIT), variables: { input: SLOW_JOB } });
    assert(data.submitJob.__typename === 'Job', JSON.stringify(data));
    jobId = data.submitJob.id;
    return { status: data.submitJob.status };
  });
  await check('subscription through GraphQLWsLink', async () => {
    const events = await new Promise((resolve, reject) => {
      const seen = [];
      client
        .subscribe({ query: gql(`subscription($id: ID!) { jobEvents(jobId: $id) { seq type } }`), variables: { id: jobId } })
        .subscribe({ next: ({ data }) => seen.push(data.jobEvents.type), error: reject, complete: () => resolve(seen) });
    });
    assert(events[0] === 'SNAPSHOT', events.join());
    return { events: events.length };
  });
  await check('follow with a forced reconnect', async () => {
    const { data } = await client.mutate({ mutation: gql(SUBMIT), variables: { input: SLOW_JOB } });
    return followWithReconnect(ws, data.submitJob.id);
  });
  await check('persisted query', async () => {
    wire.length = 0;
    const apq = new ApolloClient({
      link: new PersistedQueryLink({ sha256 }).concat(new HttpLink({ uri: httpUrl, fetch: recordingFetch(wire) })),
      cache: new InMemoryCache(),
    });
    const document = gql(`query PersistedKinds { jobKinds { name queue } }`);
    const first = await apq.query({ query: document, fetchPolicy: 'network-only' });
    const second = await apq.query({ query: document, fetchPolicy: 'network-only' });
    assert(first.data.jobKinds.length > 0 && second.data.jobKinds.length > 0, 'no kinds');
    const sent = wire.map((w) => (w.body.query ? 'hash+query' : 'hash'));
    // Unknown hash, then registered with the document, then the hash alone is enough.
    assert(JSON.stringify(sent) === JSON.stringify(['hash', 'hash+query', 'hash']), sent.join());
    return { requests: sent };
  });
  await check('batch', async () => {
    wire.length = 0;
    const batched = new ApolloClient({
      link: new BatchHttpLink({ uri: httpUrl, fetch: recordingFetch(wire), batchMax: 10, batchInterval: 20 }),
      cache: new InMemoryCache(),
    });
    const [me, kinds] = await Promise.all([
      batched.query({ query: gql(ME), fetchPolicy: 'network-only' }),
      batched.query({ query: gql(KINDS), fetchPolicy: 'network-only' }),
    ]);
    assert(me.data.me.name && kinds.data.jobKinds.length > 0, 'wrong answers');
    assert(wire.length === 1 && Array.isArray(wire[0].body) && wire[0].body.length === 2, JSON.stringify(wire));
    return { requests: wire.length, operations: wire[0].body.length };
  });
  await check('bad key', async () => {
    const refused = new ApolloClient({
      link: new HttpLink({ uri: httpUrl, fetch: recordingFetch([], 'Bearer cvk_wrong') }),
      cache: new InMemoryCache(),
    });
    const error = await refused.query({ query: gql(ME) }).then(
      () => null,
      (e) => e,
    );
    // Apollo Client 4 reads a graphql-response+json 401 as the GraphQL errors it carries.
    const code = error?.errors?.[0]?.extensions?.code;
    assert(code === 'UNAUTHENTICATED', `expected UNAUTHENTICATED, got ${error}`);
    return { http: code, websocket: await badKeyOverWebSocket() };
  });
  await ws.dispose();
}

async function urql() {
  const { Client, fetchExchange, subscriptionExchange, gql } = await import('@urql/core');
  const { persistedExchange } = await import('@urql/exchange-persisted');
  const wire = [];
  const ws = createConveyorClient({ url: wsUrl, apiKey: key, webSocketImpl: WebSocket });
  const client = new Client({
    url: httpUrl,
    fetch: recordingFetch(wire),
    preferGetMethod: false,
    exchanges: [
      persistedExchange({ preferGetForPersistedQueries: false }),
      fetchExchange,
      subscriptionExchange({
        forwardSubscription: (request) => ({
          subscribe: (sink) => ({ unsubscribe: ws.subscribe({ ...request, query: request.query ?? '' }, sink) }),
        }),
      }),
    ],
  });

  let jobId;
  await check('submit', async () => {
    const result = await client.mutation(SUBMIT, { input: SLOW_JOB }).toPromise();
    assert(!result.error, String(result.error));
    assert(result.data.submitJob.__typename === 'Job', JSON.stringify(result.data));
    jobId = result.data.submitJob.id;
    return { status: result.data.submitJob.status };
  });
  await check('subscription through subscriptionExchange', async () => {
    const types = await new Promise((resolve, reject) => {
      const seen = [];
      const { unsubscribe } = client
        .subscription(`subscription($id: ID!) { jobEvents(jobId: $id) { seq type } }`, { id: jobId })
        .subscribe((result) => {
          if (result.error) return reject(result.error);
          seen.push(result.data.jobEvents.type);
          if (['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(seen.at(-1))) {
            setTimeout(() => unsubscribe());
            resolve(seen);
          }
        });
    });
    assert(types[0] === 'SNAPSHOT', types.join());
    return { events: types.length };
  });
  await check('follow with a forced reconnect', async () => {
    const result = await client.mutation(SUBMIT, { input: SLOW_JOB }).toPromise();
    return followWithReconnect(ws, result.data.submitJob.id);
  });
  await check('persisted query', async () => {
    wire.length = 0;
    const query = gql`query UrqlPersisted { jobKinds { name } }`;
    const first = await client.query(query, {}, { requestPolicy: 'network-only' }).toPromise();
    const second = await client.query(query, {}, { requestPolicy: 'network-only' }).toPromise();
    assert(!first.error && !second.error, String(first.error ?? second.error));
    const sent = wire.map((w) => (w.body.query ? 'hash+query' : 'hash'));
    assert(JSON.stringify(sent) === JSON.stringify(['hash', 'hash+query', 'hash']), sent.join());
    assert(wire[0].body.extensions.persistedQuery.sha256Hash === sha256(wire[1].body.query), 'hash');
    return { requests: sent };
  });
  await check('bad key', async () => {
    const refused = new Client({ url: httpUrl, fetch: recordingFetch([], 'Bearer cvk_wrong'), exchanges: [fetchExchange] });
    const result = await refused.query(ME, {}).toPromise();
    assert(result.error?.response?.status === 401, `expected a 401, got ${result.error}`);
    assert(result.error.graphQLErrors[0]?.extensions?.code === 'UNAUTHENTICATED', String(result.error));
    return { http: 401, websocket: await badKeyOverWebSocket() };
  });
  await ws.dispose();
}

async function graphqlWs() {
  // graphql-ws on its own, with the kit's retry rule (what createConveyorClient sets).
  const ws = createClient({
    url: wsUrl,
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${key}` },
    retryAttempts: Infinity,
    shouldRetry: (await import('@conveyor/client')).shouldRetry,
  });
  const run = (query, variables) =>
    new Promise((resolve, reject) => {
      let result;
      ws.subscribe({ query, variables }, { next: (r) => (result = r), error: reject, complete: () => resolve(result) });
    });
  await check('submit', async () => {
    const result = await run(SUBMIT, { input: SLOW_JOB });
    assert(result.data.submitJob.__typename === 'Job', JSON.stringify(result));
    return { status: result.data.submitJob.status };
  });
  await check('follow with a forced reconnect', async () => {
    const result = await run(SUBMIT, { input: SLOW_JOB });
    return followWithReconnect(ws, result.data.submitJob.id);
  });
  await check('bad key', async () => ({ websocket: await badKeyOverWebSocket() }));
  await ws.dispose();
}

/** followWorkflowRun against the workflows contract (workflowEvents(runId, after), seq 1, 2,
 * 3...). Until the workflows branch is merged the server has no workflowEvents: the kit must
 * then surface the server's validation error, not hang or retry. */
async function workflows() {
  const { followWorkflowRun, ConveyorError } = await import('@conveyor/client');
  const ws = createConveyorClient({ url: wsUrl, apiKey: key, webSocketImpl: WebSocket });
  const schema = await (await fetch(httpUrl, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ query: '{ __type(name: "Subscription") { fields { name } } }' }),
  })).json();
  const merged = schema.data.__type.fields.some((f) => f.name === 'workflowEvents');
  if (!merged) {
    await check('followWorkflowRun (workflows not merged: a clear error)', async () => {
      const error = await (async () => {
        for await (const _ of followWorkflowRun(ws, 'no-run')) return null;
        return null;
      })().catch((e) => e);
      assert(error instanceof ConveyorError && error.code === 'GRAPHQL_VALIDATION_FAILED', String(error));
      return { code: error.code };
    });
    await ws.dispose();
    return;
  }
  await check('followWorkflowRun with a forced reconnect', async () => {
    const submitted = await fetch(httpUrl, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        query: `mutation($input: SubmitWorkflowInput!) { submitWorkflow(input: $input) { __typename ... on WorkflowRun { id } } }`,
        variables: { input: { workflow: 'demo.pipeline', input: { items: 3, stepSeconds: 0.2 } } },
      }),
    }).then((r) => r.json());
    const runId = submitted.data.submitWorkflow.id;
    let opened = 0;
    ws.on('connected', () => (opened += 1));
    const seqs = [];
    for await (const e of followWorkflowRun(ws, runId)) {
      seqs.push(e.seq);
      if (seqs.length === 2) ws.terminate();
    }
    // Gapless and in order from the first event seen, whatever the reconnect.
    for (let i = 1; i < seqs.length; i++) assert(seqs[i] === seqs[i - 1] + 1, `seqs ${seqs}`);
    assert(opened >= 2, `not reconnected (${opened})`);
    return { events: seqs.length, reconnects: opened - 1 };
  });
  await ws.dispose();
}

const clients = { apollo, urql, 'graphql-ws': graphqlWs, workflows };
if (!clients[which]) {
  console.error(`unknown client ${which}`);
  process.exit(2);
}
await clients[which]();
process.exit(failures ? 1 : 0);
