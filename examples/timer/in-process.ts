/**
 * The same timer, used in-process and remotely, side by side. The calling
 * code is the same function in both cases: only where `timer` comes from
 * differs.
 *
 *   node dist/examples/timer/in-process.js
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, serve, serviceOf } from '../../src/index.js';
import { createTimer, type TimerService } from './timer.js';

/** Works with the service itself or with a remote view of it. */
async function useTimer(label: string, timer: Pick<TimerService, 'version' | 'echo'>): Promise<void> {
  const version = await timer.version();
  const echo = await timer.echo({ req: { message: `hello ${label}`, delayMs: 1 } });
  console.log(`${label.padEnd(10)} version=${version} echoed=${echo.echoed} timer=${echo.timerName}`);
}

const timer = createTimer('ipc-server');
serviceOf(timer).on('on_echo_fired', (e) => console.log(`${'event'.padEnd(10)} ${e.eventType}: ${e.payload.message}`));

// In-process: a direct call of the handler, no serialization.
await useTimer('in-process', timer);

// Remote: the same definition served on a socket, called through a typed client.
const dir = mkdtempSync(join(tmpdir(), 'ipcbor-'));
try {
  await using server = await serve(timer, `unix:${join(dir, 'timer.sock')}`);
  await using client = await connect(server.addresses[0]!);
  await useTimer('remote', client.service<TimerService>());
} finally {
  rmSync(dir, { recursive: true, force: true });
}
