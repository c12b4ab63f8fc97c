#!/usr/bin/env node
// Runs every compiled *.test.js under dist/test with node:test. (Node 20
// takes no globs and treats every file below a folder named "test" as a
// test, helpers included; listing the files ourselves works on 20 and 24.)
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

const root = 'dist/test';
const files = readdirSync(root, { recursive: true })
  .map(String)
  .filter((f) => f.endsWith('.test.js'))
  .map((f) => join(root, f))
  .sort();
if (files.length === 0) {
  console.error('no test files found under dist/test: did the build run?');
  process.exit(1);
}
// A hung test fails after two minutes instead of holding CI for its whole budget.
const args = ['--test', '--test-concurrency=2', '--test-timeout=120000', ...process.argv.slice(2), ...files];
const r = spawnSync(process.execPath, args, { stdio: 'inherit' });
process.exit(r.status ?? 1);
