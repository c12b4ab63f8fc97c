/**
 * The server processes of a bench run and their cleanup. Everything the run
 * creates (a temp dir holding the unix sockets, forked servers) is
 * registered here and removed on any way out: normal end, thrown error,
 * Ctrl-C, SIGTERM. Servers also leave by themselves if this process dies
 * (their IPC channel drops; see child.ts).
 */
import { execFileSync, fork, type ChildProcess, type StdioOptions } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildReady, ServerUsage, UsageRequest } from './child.js';

const children = new Set<ChildProcess>();
let tempDir: string | undefined;

/** A fresh temp dir for this run's sockets (short: unix socket paths are limited to ~100 bytes). */
export function runDir(): string {
  // The last server out removes the dir (child.ts): a server started after that needs a new one.
  if (tempDir === undefined || !existsSync(tempDir)) tempDir = mkdtempSync(join(tmpdir(), 'ipcbor-bench-'));
  return tempDir;
}

/**
 * Pin this process (all its threads) to `cpu`; false if that is not
 * possible here (no taskset, not Linux, fewer CPUs).
 *
 * Why pin: on a small VM a sequential round trip between two processes is
 * bimodal (about 4x apart) depending on whether the scheduler happens to
 * put them on one CPU or two, since waking a vCPU that went idle costs tens
 * of microseconds. Client on one CPU and servers on the other gives every
 * cell the same, stable setting: one core each.
 */
export function pinSelf(cpu: number): boolean {
  try {
    execFileSync('taskset', ['-a', '-p', '-c', String(cpu), String(process.pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export interface ServerProcess {
  readonly address: string;
  readonly socketPath: string;
  /** The forked process (its IPC channel carries a bench's own requests, e.g. bench/idle.ts). */
  readonly child: ChildProcess;
  /** The server's CPU time and memory, read in its own process (with `gc`: memory after GCs, if it runs with --expose-gc). */
  usage(gc?: boolean): Promise<ServerUsage>;
  stop(): Promise<void>;
}

/**
 * Fork a bench script with an IPC channel, pinned to `cpu` if given; it is
 * killed by `cleanup` if still there. `nodeArgs` go to the child's node:
 * the orchestrator's own flags are not inherited.
 */
export function forkBench(script: string, args: readonly string[], nodeArgs: readonly string[] = [], cpu?: number): { child: ChildProcess; exited: Promise<void> } {
  const stdio: StdioOptions = ['ignore', 'inherit', 'inherit', 'ipc'];
  // Pinned: node runs under `taskset -c cpu` (taskset execs node, so the pid and the IPC channel are node's).
  const child =
    cpu === undefined
      ? fork(script, [...args], { execArgv: [...nodeArgs], stdio })
      : fork(script, [...args], { execPath: 'taskset', execArgv: ['-c', String(cpu), process.execPath, ...nodeArgs], stdio });
  children.add(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  exited.then(() => children.delete(child));
  return { child, exited };
}

let nextUsage = 1;

/** Ask a bench server for its usage (child.ts answers); rejects if it leaves first. */
function askUsage(child: ChildProcess, gc: boolean): Promise<ServerUsage> {
  const id = nextUsage++;
  return new Promise((resolve, reject) => {
    const on = (m: Partial<ServerUsage>) => {
      if (m.type !== 'usage' || m.id !== id) return;
      done();
      resolve(m as ServerUsage);
    };
    const gone = () => {
      done();
      reject(new Error('the server left before it reported its usage'));
    };
    const done = () => {
      child.off('message', on);
      child.off('exit', gone);
    };
    child.on('message', on);
    child.once('exit', gone);
    child.send({ type: 'usage', id, gc } satisfies UsageRequest);
  });
}

/**
 * Fork `script` (a compiled bench server) on a socket in the run dir and
 * wait for it to report ready. `nodeArgs` go to the child's node (e.g.
 * --cpu-prof).
 */
export function startServer(script: string, name: string, nodeArgs: readonly string[] = [], cpu?: number, args: readonly string[] = []): Promise<ServerProcess> {
  const socketPath = join(runDir(), `${name}.sock`);
  const { child, exited } = forkBench(script, [socketPath, ...args], nodeArgs, cpu);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`${name} server did not start within 10 s`)), 10_000);
    const fail = (err: Error) => {
      clearTimeout(timer);
      child.kill();
      reject(err);
    };
    const early = (code: number | null, signal: NodeJS.Signals | null) => fail(new Error(`${name} server exited before it was ready (${signal ?? code})`));
    child.once('exit', early);
    child.once('message', (m: ChildReady) => {
      clearTimeout(timer);
      child.off('exit', early);
      resolve({
        address: m.address,
        socketPath,
        child,
        usage: (gc = false) => askUsage(child, gc),
        stop: async () => {
          if (child.exitCode !== null || child.signalCode !== null) return;
          child.send({ type: 'stop' });
          // A server that does not leave in time is killed.
          const kill = setTimeout(() => child.kill('SIGKILL'), 5000);
          await exited;
          clearTimeout(kill);
        },
      });
    });
  });
}

/** What `startServers` needs of a server: see ServerSpec in systems.ts. */
export interface StartSpec {
  key: string;
  script: string;
  args: readonly string[];
  fronts?: StartSpec;
}

/** The servers of a run, by key: each one's start (settled), and a stop for all. */
export interface Servers {
  readonly started: ReadonlyMap<string, Promise<ServerProcess>>;
  /** Stop those that started, a server in front of another (a relay) before that one. */
  stop(): Promise<void>;
}

/**
 * Start each server of `specs` once per key, together; a server that stands
 * in front of another (a relay) starts once that one is ready, with its
 * address as the last argument. `cpu` says where each is pinned.
 */
export async function startServers(specs: Iterable<StartSpec>, nodeArgs: readonly string[] = [], cpu: (spec: StartSpec) => number | undefined = () => undefined): Promise<Servers> {
  const started = new Map<string, Promise<ServerProcess>>();
  const front: Promise<ServerProcess>[] = [];
  const back: Promise<ServerProcess>[] = [];
  const start = (spec: StartSpec): Promise<ServerProcess> => {
    let p = started.get(spec.key);
    if (p === undefined) {
      p = (async () => {
        const args = spec.fronts === undefined ? spec.args : [...spec.args, (await start(spec.fronts)).address];
        return startServer(spec.script, spec.key, nodeArgs, cpu(spec), args);
      })();
      started.set(spec.key, p);
      (spec.fronts === undefined ? back : front).push(p);
    }
    return p;
  };
  await Promise.allSettled([...specs].map(start));
  const stopAll = async (list: Promise<ServerProcess>[]) => {
    await Promise.all((await Promise.allSettled(list)).map((r) => (r.status === 'fulfilled' ? r.value.stop() : undefined)));
  };
  return {
    started,
    async stop() {
      await stopAll(front);
      await stopAll(back);
    },
  };
}

/** Kill whatever is left and remove the run dir. Synchronous, so it can run in an 'exit' handler. */
export function cleanup(): void {
  for (const c of children) c.kill('SIGKILL');
  children.clear();
  if (tempDir) rmSync(tempDir, { recursive: true, force: true });
  tempDir = undefined;
}

/** Clean up on every way out of the process. */
export function cleanupOnExit(): void {
  process.once('exit', cleanup);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      console.error(`\n${sig}: stopping the bench servers`);
      cleanup();
      process.exit(128 + (sig === 'SIGINT' ? 2 : sig === 'SIGTERM' ? 15 : 1));
    });
  }
}
