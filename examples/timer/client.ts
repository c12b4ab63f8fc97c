/**
 * The timer client: calls `version`, then `echo` on one connection, and
 * prints exactly the seed client's three lines. It imports only the
 * service's *type*: none of the server's code is loaded.
 */
import { addressFromArgs, connect } from '../../src/index.js';
import type { TimerService } from './timer.js';

async function main(): Promise<void> {
  const { address, rest } = addressFromArgs(process.argv.slice(2));
  if (rest.length > 0) throw new Error(`unexpected argument: ${rest[0]}`);
  await using client = await connect(address);
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
