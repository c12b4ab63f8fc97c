/**
 * The life cycle both bench server processes share. The orchestrator forks
 * them with an IPC channel: the child reports "ready" on it, and leaves when
 * told to stop, when the channel drops (the orchestrator died, however it
 * died: no orphan server is ever left behind), or on SIGINT/SIGTERM.
 * Leaving through a normal exit (not a kill) lets `--cpu-prof` write its
 * profile. Asked `{type: 'usage', id}`, it reports its own CPU time and
 * memory (the bench's CPU per call and W6's server memory).
 */
import { rmdirSync } from 'node:fs';
import { dirname } from 'node:path';

/** Messages from a bench server process to the orchestrator. */
export interface ChildReady {
  type: 'ready';
  address: string;
}

/** Asks a server for its usage; with `gc` (and --expose-gc) after two full GCs, so memory is what it holds. */
export interface UsageRequest {
  type: 'usage';
  id: number;
  gc?: boolean;
}

/** A server process's own view of itself, answered to a UsageRequest. */
export interface ServerUsage {
  type: 'usage';
  id: number;
  /** CPU time used so far, user + system, all threads, microseconds (process.cpuUsage()). */
  cpuUs: number;
  /** When cpuUs was read, milliseconds on this process's own clock (performance.now()). */
  at: number;
  /** Resident set and V8 heap used, bytes (read after the GCs when asked). */
  rss: number;
  heapUsed: number;
}

function usage(m: UsageRequest): ServerUsage {
  // CPU first: the GCs asked for must not count in the window that ends here.
  const cpu = process.cpuUsage();
  const at = performance.now();
  const gc = (globalThis as { gc?: () => void }).gc;
  if (m.gc && gc) {
    // Twice: the second GC first finishes sweeping what the first one freed.
    gc();
    gc();
  }
  const mem = process.memoryUsage();
  return { type: 'usage', id: m.id, cpuUs: cpu.user + cpu.system, at, rss: mem.rss, heapUsed: mem.heapUsed };
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
    const type = (m as { type?: unknown } | null)?.type;
    if (type === 'stop') leave(0);
    else if (type === 'usage') process.send!(usage(m as UsageRequest));
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
