// Copies the screenshots the top-level README shows from the last browser test run
// (test-results/screenshots/) into ../docs/screenshots/. The README is the list: every
// `docs/screenshots/<name>.png` it references is copied; any other file there is removed.
import { copyFileSync, existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const from = join(root, 'frontend', 'test-results', 'screenshots');
const to = join(root, 'docs', 'screenshots');
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const names = [...new Set([...readme.matchAll(/docs\/screenshots\/([\w.-]+\.png)/g)].map((m) => m[1]))];

const missing = names.filter((n) => !existsSync(join(from, n)));
if (missing.length) {
  console.error(`not in ${from} (run the browser test first): ${missing.join(', ')}`);
  process.exit(1);
}
for (const name of names) {
  copyFileSync(join(from, name), join(to, name));
  console.log(`docs/screenshots/${name} (${Math.round(statSync(join(to, name)).size / 1024)} KiB)`);
}
for (const name of readdirSync(to)) {
  if (!names.includes(name)) {
    rmSync(join(to, name));
    console.log(`removed docs/screenshots/${name} (not in the README)`);
  }
}
