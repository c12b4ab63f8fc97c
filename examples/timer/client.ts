/**
 * The timer client: calls `version`, then `echo` on one connection, and
 * prints exactly the seed client's three lines.
 */
import { addressFromArgs, connect } from '../../src/index.js';
import type { EchoResponse } from './timer.js';

async function main(): Promise<void> {
  const { address, rest } = addressFromArgs(process.argv.slice(2));
  if (rest.length > 0) throw new Error(`unexpected argument: ${rest[0]}`);
  const client = await connect(address);
  try {
    const version = await client.call<string>('version', {});
    console.log(`[client] version = ${version}`);
    const echo = await client.call<EchoResponse>('echo', { req: { message: 'hello over the wire', delayMs: 5 } });
    console.log(`[client] echo.echoed= ${echo.echoed}`);
    console.log(`[client] echo.timer = ${echo.timerName}`);
  } finally {
    await client.close();
  }
}

main().catch((err: Error) => {
  console.error(`timer-client: ${err.message}`);
  process.exit(1);
});
