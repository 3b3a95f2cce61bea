// Copies the dashboard's persisted-documents manifest (written by `graphql-codegen` into
// src/gql/) to where the API reads it: ../conveyor/api/dashboard-documents.json. With
// `--check`, fails (exit 1) when that copy differs instead of writing it.
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const source = join(root, 'src', 'gql', 'persisted-documents.json');
const target = join(root, '..', 'conveyor', 'api', 'dashboard-documents.json');
const manifest = readFileSync(source, 'utf8');
if (process.argv.includes('--check')) {
  if (!existsSync(target) || readFileSync(target, 'utf8') !== manifest) {
    console.error('trusted documents drift: conveyor/api/dashboard-documents.json differs from src/gql/persisted-documents.json; run `npm run codegen`');
    process.exit(1);
  }
} else {
  writeFileSync(target, manifest);
}
