// The kit's logic without a server (the client suite, tests/clients/, runs it against one):
// retry decisions, resuming by seq across a reconnect and a close graphql-ws gives up on,
// and the recommended codegen config producing types that pass `tsc --strict`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { followJob, isAuthFailure, shouldRetry, ConveyorError } from '../dist/index.js';
import { conveyorCodegen, scalars } from '../dist/codegen.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

test('auth failures and hopeless closes are not retried, drops are', () => {
  for (const code of [4401, 4403]) {
    assert.equal(isAuthFailure({ code }), true);
    assert.equal(shouldRetry({ code }), false);
  }
  assert.equal(shouldRetry({ code: 4406 }), false);
  for (const code of [1006, 1012, 4408, 4429, 4499]) assert.equal(shouldRetry({ code }), true);
  assert.equal(shouldRetry(new Error('network')), true);
});

/** A stand-in for a graphql-ws client: a server-side list of events; each subscribe replays
 * from `variables.after` (a SNAPSHOT first without it), like Conveyor's jobEvents. */
function fakeClient(events, script) {
  const calls = [];
  return {
    calls,
    subscribe(payload, sink) {
      calls.push({ ...payload.variables });
      let stopped = false;
      const run = async () => {
        const after = payload.variables.after;
        const from = after ?? events.at(-1).seq;
        if (after == null) sink.next({ data: { jobEvents: { ...events.at(-1), type: 'SNAPSHOT' } } });
        for (const e of events.filter((e) => e.seq > from)) {
          await new Promise((r) => setImmediate(r));
          if (stopped) return;
          sink.next({ data: { jobEvents: e } });
          const action = script.shift();
          if (action === 'resend') {
            // graphql-ws's own silent resubscribe: the same payload object, sent again.
            return run();
          }
          if (action === 'close4429') return sink.error({ code: 4429, reason: 'subscriber too slow' });
        }
        sink.complete();
      };
      void run();
      return () => (stopped = true);
    },
  };
}

test('followJob sees every event once across reconnects, resuming after the last seq', async () => {
  const events = [1, 2, 3, 4, 5, 6].map((seq) => ({ seq, type: seq === 6 ? 'SUCCEEDED' : 'PROGRESS' }));
  // Live from seq 2; the server re-sends events: the client drops what it saw.
  const client = fakeClient(events, [undefined, 'resend', 'close4429']);
  const seen = [];
  for await (const e of followJob(client, 'job-1', { after: 1 })) seen.push(e.seq);
  assert.deepEqual(seen, [2, 3, 4, 5, 6]);
  // The 4429 close (which graphql-ws will not retry) made followJob subscribe again from 4.
  assert.equal(client.calls.length, 2);
  assert.equal(client.calls[0].after, 1);
  assert.ok(client.calls[1].after >= 3, 'resumed after the last event seen');
});

test('followJob starts from a SNAPSHOT without `after`, and raises GraphQL errors', async () => {
  const client = fakeClient([{ seq: 3, type: 'SUCCEEDED' }], []);
  const seen = [];
  for await (const e of followJob(client, 'job-1')) seen.push(e.type);
  assert.deepEqual(seen, ['SNAPSHOT']);
  const failing = { subscribe: (_p, sink) => (sink.next({ errors: [{ message: 'no such job', extensions: { code: 'NOT_FOUND' } }] }), () => {}) };
  await assert.rejects(async () => { for await (const _ of followJob(failing, 'x')) { /* none */ } }, (e) => e instanceof ConveyorError && e.code === 'NOT_FOUND');
  const invalid = { subscribe: (_p, sink) => (sink.error([{ message: 'Cannot query field', extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } }]), () => {}) };
  await assert.rejects(async () => { for await (const _ of followJob(invalid, 'x')) { /* none */ } }, (e) => e instanceof ConveyorError && e.code === 'GRAPHQL_VALIDATION_FAILED');
  const refused = { subscribe: (_p, sink) => (sink.error({ code: 4403, reason: 'Forbidden' }), () => {}) };
  await assert.rejects(async () => { for await (const _ of followJob(refused, 'x')) { /* none */ } }, (e) => e.code === 4403);
});

test('the recommended codegen config maps the scalars and passes tsc --strict', () => {
  assert.equal(scalars.DateTime, 'string');
  const dir = mkdtempSync(join(root, '.codegen-test-'));
  try {
    writeFileSync(join(dir, 'ops.ts'), "import { graphql } from './gql';\nexport const Job = graphql(`query Job($id: ID!) { job(id: $id) { id payload result createdAt events(first: 5) { seq data at } } }`);\n");
    const config = conveyorCodegen({ schema: join(root, '..', '..', 'schema.graphql'), documents: [join(dir, 'ops.ts')], out: join(dir, 'gql') + '/' });
    writeFileSync(join(dir, 'codegen.json'), JSON.stringify(config));
    execFileSync(join(root, 'node_modules', '.bin', 'graphql-codegen'), ['--config', join(dir, 'codegen.json')], { cwd: root, stdio: 'pipe' });
    const types = readFileSync(join(dir, 'gql', 'graphql.ts'), 'utf8');
    assert.match(types, /payload: JsonValue/);
    assert.match(types, /createdAt: string/);
    assert.doesNotMatch(types.split('export type JobQuery =')[1].split('\n')[0], /\bany\b|unknown/);
    writeFileSync(join(dir, 'use.ts'), "import type { JobQuery } from './gql/graphql';\nexport const kind = (q: JobQuery): string | undefined => { const p = q.job?.payload; return p && typeof p === 'object' && !Array.isArray(p) && typeof p['kind'] === 'string' ? p['kind'] : undefined; };\n");
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { strict: true, noEmit: true, module: 'ESNext', moduleResolution: 'Bundler', target: 'ES2022', skipLibCheck: true }, include: ['*.ts', 'gql/*.ts'] }));
    try {
      execFileSync(join(root, 'node_modules', '.bin', 'tsc'), ['-p', join(dir, 'tsconfig.json')], { cwd: root, encoding: 'utf8' });
    } catch (e) {
      assert.fail(`tsc --strict: ${e.stdout}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
