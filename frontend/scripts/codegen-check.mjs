// Fails (exit 1) when src/gql/ differs from what `graphql-codegen` produces from ../schema.graphql,
// or when codegen cannot run (e.g. an operation asks for a field the schema lacks).
// Generates into a temporary directory so the working tree is never touched.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const committed = join(root, 'src', 'gql');
const tmp = mkdtempSync(join(tmpdir(), 'conveyor-codegen-'));
const out = join(tmp, 'gql') + '/';
let failed = false;
try {
  execFileSync(join(root, 'node_modules', '.bin', 'graphql-codegen'), ['--config', 'codegen.ts'], {
    cwd: root,
    env: { ...process.env, CODEGEN_OUT: out },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const names = new Set([...readdirSync(committed), ...readdirSync(out)]);
  for (const name of [...names].sort()) {
    const a = join(committed, name);
    const b = join(out, name);
    if (!existsSync(a)) { console.error(`codegen drift: src/gql/${name} is missing`); failed = true; continue; }
    if (!existsSync(b)) { console.error(`codegen drift: src/gql/${name} is stale (not generated)`); failed = true; continue; }
    if (readFileSync(a, 'utf8') !== readFileSync(b, 'utf8')) {
      console.error(`codegen drift: src/gql/${name} differs from generated output`);
      failed = true;
    }
  }
} catch {
  console.error('codegen failed (above), e.g. an operation in src/ asks for something ../schema.graphql lacks.');
  failed = true;
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
if (failed) {
  console.error('Fix the operation or run `npm run codegen`, and commit src/gql/.');
  process.exit(1);
}
console.log('codegen: src/gql/ is up to date with ../schema.graphql');
