/**
 * One cell's client, in a fresh process of its own: run.ts forks one per
 * cell (pinned to CPU 0 when the run is pinned), so no system's client
 * shares a V8 heap, JIT type feedback (Node's stream internals, the
 * measure loop, a codec two systems use) or leftovers of an earlier cell
 * (1,000 connections, another library loaded) with another's.
 *
 * It is sent a CellJob, opens the workload's connections to the server,
 * checks one echo, measures (its own CPU read here, by measure), closes,
 * reports the result or the error, and exits. The servers' usage at the
 * window's edges is asked of run.ts, which holds the server processes.
 */
import type { ServerUsage } from './child.js';
import { SYSTEMS, type ServerAddress, type SystemId } from './systems.js';
import { WORKLOADS, measure, openMany, sleep, type Caller, type Measured, type MeasureOptions, type WorkloadId } from './workloads.js';

/** run.ts -> client: the cell to run. */
export interface CellJob {
  type: 'job';
  system: SystemId;
  workload: WorkloadId;
  server: ServerAddress;
  /** measure's options but the probe, which the client asks of run.ts (CellProbe). */
  options: Omit<MeasureOptions, 'probe'>;
  /**
   * A paired cell: after the warm-up (options.warmupMs) the client reports
   * ready (CellReady) and then measures a window each time it is sent a
   * CellWindow, until it is sent a CellClose (see run.ts, the paired
   * rounds). options.measureMs is unused.
   */
  paired?: boolean;
}

/** run.ts -> client (paired): measure one window of `measureMs` after `rampMs` of calls not counted. */
export interface CellWindow {
  type: 'window';
  id: number;
  rampMs: number;
  measureMs: number;
}

/** run.ts -> client (paired): close the connections, report, exit. */
export interface CellClose {
  type: 'close';
}

/** client -> run.ts (paired): warmed up, waiting for windows. */
export interface CellReady {
  type: 'ready';
}

/** client -> run.ts (paired): one window's figures, or why it failed. */
export interface CellWindowDone {
  type: 'window-done';
  id: number;
  m?: Measured;
  error?: string;
}

/** run.ts -> client: the servers' usage asked by a CellProbe, or why it could not be read. */
export interface CellProbed {
  type: 'probed';
  id: number;
  usage?: ServerUsage[];
  error?: string;
}

/** client -> run.ts: read the servers' usage (measure's probe, at the window's start or `end`). */
export interface CellProbe {
  type: 'probe';
  id: number;
  end: boolean;
}

/** client -> run.ts, then it exits: the cell's result, or why it failed. */
export type CellDone = { type: 'result'; m: Measured } | { type: 'error'; message: string };

let nextProbe = 1;
const probing = new Map<number, { resolve: (u: ServerUsage[]) => void; reject: (err: Error) => void }>();

function probe(end: boolean): Promise<ServerUsage[]> {
  const id = nextProbe++;
  return new Promise((resolve, reject) => {
    probing.set(id, { resolve, reject });
    process.send!({ type: 'probe', id, end } satisfies CellProbe);
  });
}

/** Windows and the close asked by run.ts (paired cells), in order. */
const orders: (CellWindow | CellClose)[] = [];
let wake: (() => void) | undefined;

async function nextOrder(): Promise<CellWindow | CellClose> {
  while (orders.length === 0) await new Promise<void>((resolve) => (wake = resolve));
  wake = undefined;
  return orders.shift()!;
}

/**
 * A paired cell: warm up once, say so, then measure each window asked,
 * with the calls stopped in between (so the other clients of the round
 * have CPU 0 to themselves). Resolves with the last window's figures at
 * the close (run.ts has them all already).
 */
async function windows(callers: readonly Caller[], job: CellJob): Promise<Measured> {
  const o = job.options;
  let last = await measure(callers, { ...o, measureMs: 0 });
  process.send!({ type: 'ready' } satisfies CellReady);
  for (;;) {
    const order = await nextOrder();
    if (order.type === 'close') return last;
    try {
      last = await measure(callers, { ...o, warmupMs: order.rampMs, measureMs: order.measureMs, probe });
      process.send!({ type: 'window-done', id: order.id, m: last } satisfies CellWindowDone);
    } catch (err) {
      process.send!({ type: 'window-done', id: order.id, error: (err as Error).message ?? String(err) } satisfies CellWindowDone);
      throw err;
    }
  }
}

/** What run.ts's cell() did in its own process before: open, check, measure, close (at most 10 s). */
async function run(job: CellJob): Promise<Measured> {
  const system = SYSTEMS[job.system];
  const w = WORKLOADS.find((x) => x.id === job.workload)!;
  const callers: Caller[] = await openMany(w.connections, () => system.open(job.server, w), w.openBatch);
  try {
    const answer = await callers[0]!.call();
    if (!system.check(answer, w)) throw new Error(`${system.id} ${w.id}: the echo did not come back unchanged`);
    if (job.paired) return await windows(callers, job);
    return await measure(callers, { ...job.options, probe });
  } finally {
    await Promise.race([Promise.all(callers.map((c) => c.close().catch(() => undefined))), sleep(10_000)]);
  }
}

if (!process.send) {
  console.error('usage: forked by bench/run.js, which sends the cell to run');
  process.exit(2);
}
process.on('message', (m: CellJob | CellProbed | CellWindow | CellClose) => {
  if (m.type === 'probed') {
    const p = probing.get(m.id);
    probing.delete(m.id);
    if (m.usage) p?.resolve(m.usage);
    else p?.reject(new Error(m.error));
    return;
  }
  if (m.type === 'window' || m.type === 'close') {
    orders.push(m);
    wake?.();
    return;
  }
  run(m)
    .then(
      (result): CellDone => ({ type: 'result', m: result }),
      (err: unknown): CellDone => ({ type: 'error', message: (err as Error).message ?? String(err) }),
    )
    // Exit once it is sent: a peer's library may keep handles (zeromq's context).
    .then((done) => process.send!(done, () => process.exit(0)));
});
// run.ts is gone (it died, or gave up on this cell): nobody is left to report to.
process.on('disconnect', () => process.exit(1));
