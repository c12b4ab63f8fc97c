/**
 * A client in a child process, for the malicious-server attacks: its
 * memory is measured on its own. Usage: node --expose-gc attack-client.js
 * '<json>' with `{ address, mode: 'events' | 'stream', options? }`.
 * `events`: subscribes to `tick` and never reads the subscription.
 * `stream`: calls `stream` and never reads the result stream.
 * Prints `{"ready": true, "mem": …}` once set up (the baseline), then a
 * line `{"mem": …, "state": …, "dropped": …}` every 100 ms.
 */
import { connect, type ConnectOptions } from '../../src/index.js';

const config = JSON.parse(process.argv[2] ?? '{}') as { address: string; mode: 'events' | 'stream'; options?: ConnectOptions };
const gc = (globalThis as { gc?: () => void }).gc;
const mem = () => {
  // Twice: the second GC first finishes sweeping the ArrayBuffers the first one freed.
  gc?.();
  gc?.();
  return process.memoryUsage();
};

const client = await connect(config.address, config.options ?? {});
let dropped = 0;
let callError: string | undefined;
if (config.mode === 'events') {
  const sub = client.subscribe('tick');
  await sub.ready;
  sub.onDrop = (n) => (dropped += n);
} else {
  // Resolves with the stream on the first item; never read.
  client.call('stream', {}).then(
    () => {},
    (err: { code?: string }) => (callError = err.code),
  );
}
process.stdout.write(`${JSON.stringify({ ready: true, mem: mem() })}\n`);
const timer = setInterval(() => {
  process.stdout.write(`${JSON.stringify({ mem: mem(), state: client.state, dropped, callError })}\n`);
}, 100);
process.stdin.on('close', () => {
  clearInterval(timer);
  process.exit(0);
});
process.stdin.resume();
