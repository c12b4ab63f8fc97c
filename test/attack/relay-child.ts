/**
 * A relay in a child process, for the attack tests: its memory is its own
 * to measure, and killing it kills only it. Usage:
 * node --expose-gc relay-child.js '<json>' where json is
 * `{ listen: string[], to, options?: RelayOptions (without listen/to), control: address }`.
 * Prints `{"address": first listen address, "addresses": [...], "pid", "control"}`
 * once it listens. The control server (a plain ipcbor server, not relayed)
 * answers `mem` (memory after two GCs), `version`, and `errors` (the codes
 * the relay reported, in order).
 */
import { createRelay, serve, type RelayOptions } from '../../src/index.js';
import { budgetAudit } from '../../src/core/peer/budget.js';
import { NEGATIVE_EXIT } from './matrix-shared.js';

interface Config {
  listen: string[];
  to: string;
  options?: Omit<RelayOptions, 'listen' | 'to'>;
  control: string;
}

const config = JSON.parse(process.argv[2] ?? '{}') as Config;

budgetAudit.negative = (what, held) => {
  process.stderr.write(`relay-child: a ${what} budget went negative (${held} bytes)\n`);
  process.exit(NEGATIVE_EXIT);
};

const gcMem = () => {
  (globalThis as { gc?: () => void }).gc?.();
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage();
};

const errors: string[] = [];
const relay = await createRelay({ ...config.options, listen: config.listen, to: config.to, onError: (err) => errors.push(String(err.code)) });
const control = await serve({ mem: () => gcMem(), version: () => 'relay-child', errors: () => errors }, config.control);
process.stdout.write(`${JSON.stringify({ address: relay.addresses[0], addresses: relay.addresses, pid: process.pid, control: control.addresses[0] })}\n`);

const stop = async () => {
  await relay.close();
  await control.close();
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
