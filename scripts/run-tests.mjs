// Runs every compiled test file under dist/ with Node's own test runner.
// Usage: node scripts/run-tests.mjs [unit|integration|all] (default all); extra args go to node --test.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const which = process.argv[2] ?? 'all';
const roots = { unit: ['dist/src'], integration: ['dist/test'], all: ['dist/src', 'dist/test'] }[which];
if (!roots) {
  console.error(`run-tests: unknown suite '${which}' (allowed: unit, integration, all)`);
  process.exit(2);
}
const files = [];
const walk = (dir) => {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (name.endsWith('.test.js')) files.push(p);
  }
};
for (const r of roots) {
  try {
    walk(r);
  } catch {
    /* suite folder absent */
  }
}
files.sort();
if (files.length === 0) {
  console.error('run-tests: no test files found under ' + roots.join(', ') + ' (did the build run?)');
  process.exit(1);
}
const extra = process.argv.slice(3);
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', ...extra, ...files], {
  stdio: 'inherit',
});
process.exit(r.status ?? 1);
