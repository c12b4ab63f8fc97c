/**
 * The timer server: `--unix PATH`, `--tcp HOST PORT`, or addresses
 * `unix:PATH` / `tcp:HOST:PORT` (several may be given). Prints one
 * `listening ADDRESS` line per address, then serves until SIGINT/SIGTERM.
 */
import { addressFromArgs, serve, type Address } from '../../src/index.js';
import { createTimer } from './timer.js';

function addresses(argv: string[]): Address[] {
  const out: Address[] = [];
  let rest = argv;
  while (rest.length > 0) {
    const { address, rest: left } = addressFromArgs(rest.slice(0, rest[0] === '--tcp' ? 3 : rest[0] === '--unix' ? 2 : 1));
    if (left.length > 0) throw new Error(`unexpected argument: ${left[0]}`);
    out.push(address);
    rest = rest.slice(rest[0] === '--tcp' ? 3 : rest[0] === '--unix' ? 2 : 1);
  }
  if (out.length === 0) throw new Error('usage: timer-server (--unix PATH | --tcp HOST PORT | unix:PATH | tcp:HOST:PORT)...');
  return out;
}

async function main(): Promise<void> {
  const timer = createTimer('ipc-server');
  const server = await serve(timer, addresses(process.argv.slice(2)));
  for (const a of server.addresses) console.log(`listening ${a}`);
  const stop = () => {
    void server.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((err: Error) => {
  console.error(`timer-server: ${err.message}`);
  process.exit(1);
});
