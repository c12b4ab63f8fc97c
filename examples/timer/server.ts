/**
 * The timer server: `--name NAME` (a socket in the runtime directory),
 * `--unix PATH`, `--tcp HOST PORT`, `--tls HOST PORT`, or addresses
 * `unix:PATH` / `tcp:HOST:PORT` / `tls:HOST:PORT` (several may be given).
 * Prints one `listening ADDRESS` line per address, then serves until
 * SIGINT/SIGTERM, when it closes (which removes its socket files) and exits.
 *
 * TLS: `--cert FILE --key FILE` (PEM), and `--ca FILE` to require client
 * certificates signed by that CA (mutual TLS). Plaintext TCP on a network
 * address (anything but loopback) is refused unless `--insecure` (the base
 * C and Nim clients speak no TLS). `--introspection` answers
 * `$ipcbor.describe` on network listeners too.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { addressesFromArgs, serve, type ServeOptions } from '../../src/index.js';
import { createTimer } from './timer.js';

const usage =
  'usage: timer-server (--name NAME | --unix PATH | --tcp HOST PORT | --tls HOST PORT | unix:PATH | tcp:HOST:PORT | tls:HOST:PORT)... ' +
  '[--cert FILE --key FILE [--ca FILE]] [--insecure] [--introspection]';

async function main(): Promise<void> {
  const { addresses, rest } = addressesFromArgs(process.argv.slice(2));
  let values;
  try {
    ({ values } = parseArgs({
      args: rest,
      strict: true,
      options: { cert: { type: 'string' }, key: { type: 'string' }, ca: { type: 'string' }, insecure: { type: 'boolean' }, introspection: { type: 'boolean' } },
    }));
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${usage}`);
  }
  if (addresses.length === 0) throw new Error(usage);
  const options: ServeOptions = {};
  if (values.cert !== undefined || values.key !== undefined || values.ca !== undefined) {
    if (values.cert === undefined || values.key === undefined) throw new Error(`--cert and --key go together\n${usage}`);
    options.tls = { cert: readFileSync(values.cert), key: readFileSync(values.key), ...(values.ca === undefined ? {} : { clientCa: readFileSync(values.ca) }) };
  }
  if (values.insecure) options.insecure = true;
  if (values.introspection) options.introspection = true;
  const timer = createTimer('ipc-server');
  const server = await serve(timer, addresses, options);
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
