/**
 * The timer client: calls `version`, then `echo` on one connection, and
 * prints exactly the base-framing client's three lines. It imports only the
 * service's *type*: none of the server's code is loaded.
 *
 * Over TLS (`--tls HOST PORT` or `tls:HOST:PORT`): `--ca FILE` is the CA
 * that signed the server's certificate, `--cert FILE --key FILE` this
 * client's own for mutual TLS, `--servername NAME` the name to verify when
 * it is not the host.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { addressFromArgs, connect, type ConnectOptions } from '../../src/index.js';
import type { TimerService } from './timer.js';

async function main(): Promise<void> {
  const { address, rest } = addressFromArgs(process.argv.slice(2));
  const { values } = parseArgs({
    args: rest,
    strict: true,
    options: { ca: { type: 'string' }, cert: { type: 'string' }, key: { type: 'string' }, servername: { type: 'string' } },
  });
  const options: ConnectOptions = {};
  if (Object.keys(values).length > 0) {
    options.tls = {
      ...(values.ca === undefined ? {} : { ca: readFileSync(values.ca) }),
      ...(values.cert === undefined ? {} : { cert: readFileSync(values.cert) }),
      ...(values.key === undefined ? {} : { key: readFileSync(values.key) }),
      ...(values.servername === undefined ? {} : { servername: values.servername }),
    };
  }
  await using client = await connect(address, options);
  const timer = client.service<TimerService>();
  console.log(`[client] version = ${await timer.version()}`);
  const echo = await timer.echo({ req: { message: 'hello over the wire', delayMs: 5 } });
  console.log(`[client] echo.echoed= ${echo.echoed}`);
  console.log(`[client] echo.timer = ${echo.timerName}`);
}

main().catch((err: Error) => {
  console.error(`timer-client: ${err.message}`);
  process.exit(1);
});
