#!/usr/bin/env node
// `npm run fuzz`: the fuzzers of test/fuzz (already built) with many more
// cases than `npm test` runs. IPCBOR_FUZZ_RUNS (cases per property, default
// 20,000) and IPCBOR_FUZZ_TIME (ms per property at most, default 10 min)
// may be set; IPCBOR_FUZZ_SEED (and IPCBOR_FUZZ_PATH) replay a failure.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

const root = 'dist/test/fuzz';
const files = readdirSync(root)
  .filter((f) => f.endsWith('.test.js'))
  .map((f) => join(root, f))
  .sort();
const env = { ...process.env, IPCBOR_FUZZ_RUNS: process.env.IPCBOR_FUZZ_RUNS ?? '20000', IPCBOR_FUZZ_TIME: process.env.IPCBOR_FUZZ_TIME ?? '600000' };
console.error(`fuzz: ${env.IPCBOR_FUZZ_RUNS} cases per property, at most ${Number(env.IPCBOR_FUZZ_TIME) / 1000} s each`);
// Properties run one after another within a file: the timeout covers them all.
const args = ['--test', '--test-concurrency=2', '--test-timeout=0', ...process.argv.slice(2), ...files];
const r = spawnSync(process.execPath, args, { stdio: 'inherit', env });
process.exit(r.status ?? 1);
