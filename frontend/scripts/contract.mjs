// Builds the schema codegen uses: the backend's ../schema.graphql, plus (from
// contract/expected.graphql) any type or field the backend does not export yet.
// The backend's definitions always win where both exist.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Kind, parse, print } from 'graphql';

const here = dirname(fileURLToPath(import.meta.url));
// CONVEYOR_SCHEMA overrides the backend SDL path (e.g. to try a newly exported schema).
export const BACKEND_SDL = process.env.CONVEYOR_SCHEMA ?? join(here, '..', '..', 'schema.graphql');
export const EXPECTED_SDL = join(here, '..', 'contract', 'expected.graphql');

const WITH_FIELDS = new Set([Kind.OBJECT_TYPE_DEFINITION, Kind.INPUT_OBJECT_TYPE_DEFINITION, Kind.INTERFACE_TYPE_DEFINITION]);

export function mergeContract(actualText = readFileSync(BACKEND_SDL, 'utf8'), expectedText = readFileSync(EXPECTED_SDL, 'utf8')) {
  const actual = parse(actualText);
  const expected = parse(expectedText);
  const pending = [];
  const defs = actual.definitions.map((d) => ({ ...d }));
  const byName = new Map(defs.filter((d) => d.name).map((d) => [d.name.value, d]));
  for (const e of expected.definitions) {
    if (!e.name) continue;
    const a = byName.get(e.name.value);
    if (!a) {
      defs.push(e);
      byName.set(e.name.value, e);
      pending.push(e.name.value);
      continue;
    }
    if (WITH_FIELDS.has(e.kind) && a.kind === e.kind) {
      const have = new Set((a.fields ?? []).map((f) => f.name.value));
      const missing = (e.fields ?? []).filter((f) => !have.has(f.name.value));
      if (missing.length) {
        a.fields = [...(a.fields ?? []), ...missing];
        pending.push(...missing.map((f) => `${e.name.value}.${f.name.value}`));
      }
    }
  }
  return { sdl: print({ ...actual, definitions: defs }), pending };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { pending } = mergeContract();
  if (pending.length) {
    console.log('Used by the dashboard but not (yet) in ../schema.graphql:');
    for (const p of pending) console.log(`  ${p}`);
  } else {
    console.log('../schema.graphql provides everything the dashboard uses.');
  }
}
