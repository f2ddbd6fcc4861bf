#!/usr/bin/env node
// Runs every compiled test file (dist/**/*.test.js and each workspace
// package's packages/*/dist/**/*.test.js) with Node's own test runner. Unit
// tests sit beside the code (src/**/x.test.ts); end-to-end tests live in test/.
// Pass paths or substrings to run a subset:
//   node scripts/run-tests.mjs engine   # only files whose path contains "engine"
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

function walk(dir, out = []) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

const filters = process.argv.slice(2);
const packages = readdirSync('packages').map((name) => join('packages', name, 'dist'));
const files = ['dist', ...packages]
  .flatMap((dir) => walk(dir))
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .sort();
if (files.length === 0) {
  console.error('no test files found under dist/ or packages/*/dist/ (did the build run?)');
  process.exit(1);
}
// Files that read machine-wide state other files' mounts change (the CPU latency limit every
// mount holds during bursts) run alone, after the rest; the others two at a time.
const ALONE = ['mount-low-latency.test.js'];
const alone = files.filter((f) => ALONE.some((name) => f.endsWith(name)));
const together = files.filter((f) => !alone.includes(f));
let failed = false;
for (const [concurrency, batch] of [
  [2, together],
  [1, alone],
]) {
  if (batch.length === 0) continue;
  const r = spawnSync(process.execPath, ['--test', `--test-concurrency=${concurrency}`, ...batch], {
    stdio: 'inherit',
  });
  if (r.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);
