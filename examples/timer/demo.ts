/**
 * `npm run demo`: start the timer server in its own process on a temporary
 * unix socket and on TCP loopback, run the client against both, and leave
 * nothing behind (also on Ctrl-C).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

const here = fileURLToPath(new URL('.', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'ipcbor-demo-'));
const socketPath = join(dir, 'timer.sock');
let server: ChildProcess | undefined;
let client: ChildProcess | undefined;

function cleanup(): void {
  for (const child of [client, server]) if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
}

/**
 * On Ctrl-C: the server may still be removing its socket from the temp dir
 * (it got the signal too, from the terminal), and a directory emptied
 * while something writes to it may not go. So the children are stopped
 * and waited for (at most 5 s) before the directory is removed.
 */
async function stopThenCleanup(): Promise<void> {
  const running = [client, server].filter((c): c is ChildProcess => c !== undefined && c.exitCode === null && c.signalCode === null);
  const exited = running.map((c) => new Promise((r) => c.once('exit', r)));
  for (const c of running) c.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([Promise.all(exited), new Promise((r) => (timer = setTimeout(r, 5000)))]);
  clearTimeout(timer);
  cleanup();
}

function run(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(here, 'client.js'), ...args], { stdio: 'inherit' });
    client = child;
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`client exited with ${code}`))));
  });
}

async function main(): Promise<void> {
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      void stopThenCleanup().finally(() => process.exit(130));
    });
  }
  server = spawn(process.execPath, [join(here, 'server.js'), `unix:${socketPath}`, 'tcp:127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: server.stdout! });
  const addresses: string[] = [];
  await new Promise<void>((resolve, reject) => {
    server!.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
    lines.on('line', (line) => {
      if (line.startsWith('listening ')) addresses.push(line.slice('listening '.length));
      if (addresses.length === 2) resolve();
    });
  });
  for (const address of addresses) {
    console.log(`\n== timer client over ${address}`);
    await run([address]);
  }
  server.removeAllListeners('exit');
  const exited = new Promise((r) => server!.once('exit', r));
  server.kill('SIGTERM');
  await exited;
  cleanup();
  console.log('\nserver stopped; socket and temp dir removed');
}

main().catch((err: Error) => {
  console.error(`demo: ${err.message}`);
  cleanup();
  process.exit(1);
});
