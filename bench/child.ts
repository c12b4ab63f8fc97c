/**
 * The life cycle both bench server processes share. The orchestrator forks
 * them with an IPC channel: the child reports "ready" on it, and leaves when
 * told to stop, when the channel drops (the orchestrator died, however it
 * died: no orphan server is ever left behind), or on SIGINT/SIGTERM.
 * Leaving through a normal exit (not a kill) lets `--cpu-prof` write its
 * profile.
 */
import { rmdirSync } from 'node:fs';
import { dirname } from 'node:path';

/** Messages from a bench server process to the orchestrator. */
export interface ChildReady {
  type: 'ready';
  address: string;
}

/** Start a server on the unix socket path given as argv[2]; it returns its own stop function. */
export function runChild(start: (socketPath: string) => Promise<{ address: string; stop: () => Promise<void> }>): void {
  const socketPath = process.argv[2];
  if (!socketPath || !process.send) {
    console.error('usage: forked by bench/run.js with a unix socket path');
    process.exit(2);
  }
  let stopping = false;
  let stop: (() => Promise<void>) | undefined;
  const leave = (code: number) => {
    if (stopping) return;
    stopping = true;
    // A stuck close must not keep the process alive.
    setTimeout(() => process.exit(code), 2000).unref();
    void (stop ? stop() : Promise.resolve()).finally(() => {
      // If the orchestrator was killed outright it could not remove its run
      // dir: the last server out removes it (rmdir only takes an empty dir).
      try {
        rmdirSync(dirname(socketPath));
      } catch {
        // not empty yet (the other server is still there), or already gone
      }
      process.exit(code);
    });
  };
  process.on('message', (m: unknown) => {
    if ((m as { type?: unknown } | null)?.type === 'stop') leave(0);
  });
  process.on('disconnect', () => leave(0));
  process.on('SIGINT', () => leave(130));
  process.on('SIGTERM', () => leave(143));
  start(socketPath).then(
    (s) => {
      stop = s.stop;
      if (stopping) void s.stop();
      else process.send!({ type: 'ready', address: s.address } satisfies ChildReady);
    },
    (err: unknown) => {
      console.error('bench server failed to start:', err);
      process.exit(1);
    },
  );
}
