/**
 * The timer server: `--name NAME` (a socket in the runtime directory),
 * `--unix PATH`, `--tcp HOST PORT`, or addresses `unix:PATH` /
 * `tcp:HOST:PORT` (several may be given). Prints one `listening ADDRESS`
 * line per address, then serves until SIGINT/SIGTERM, when it closes (which
 * removes its socket files) and exits.
 */
import { addressesFromArgs, serve } from '../../src/index.js';
import { createTimer } from './timer.js';

async function main(): Promise<void> {
  const { addresses, rest } = addressesFromArgs(process.argv.slice(2));
  if (addresses.length === 0 || rest.length > 0) {
    throw new Error(`usage: timer-server (--name NAME | --unix PATH | --tcp HOST PORT | unix:PATH | tcp:HOST:PORT)...${rest.length ? ` (unexpected: ${rest[0]})` : ''}`);
  }
  const timer = createTimer('ipc-server');
  const server = await serve(timer, addresses);
  // Ready for a signal before saying so: a supervisor may send one at once.
  const stop = () => {
    void server.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  for (const a of server.addresses) console.log(`listening ${a}`);
}

main().catch((err: Error) => {
  console.error(`timer-server: ${err.message}`);
  process.exit(1);
});
