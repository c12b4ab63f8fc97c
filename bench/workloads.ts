/**
 * The four workloads and the one driver that runs them all. Every
 * implementation (raw baseline, ipcbor extended, ipcbor seed) is reduced to
 * a `Caller`, so the loops that are timed are the same code for all three.
 */

/** One connection, reduced to "make the bench call". */
export interface Caller {
  call(): Promise<unknown>;
  close(): Promise<void>;
}

export type WorkloadId = 'W1' | 'W2' | 'W3' | 'W4';

export interface Workload {
  readonly id: WorkloadId;
  readonly title: string;
  /** Connections opened for the cell. */
  readonly connections: number;
  /** Calls each connection keeps outstanding at all times (each slot is a sequential loop). */
  readonly inflight: number;
  /** What ipcbor sends to `echo`; the raw baseline sends its CBOR bytes, encoded once. */
  readonly params: unknown;
  readonly unit: 'calls/s' | 'MiB/s';
  /** Units of `unit` per completed call, over calls/s (1 MiB payload per call for W3). */
  readonly perCall: number;
  /** Lowest acceptable ipcbor/raw ratio (the targets). */
  readonly target: number;
}

const MiB = 1024 * 1024;
const small = { message: 'hello', n: 1 };

/** A 1 MiB payload that is not all zeros (nothing on the path may shortcut it). */
function bigPayload(): Uint8Array {
  const bytes = new Uint8Array(MiB);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 2654435761) >>> 24;
  return bytes;
}

export const WORKLOADS: readonly Workload[] = [
  { id: 'W1', title: 'sequential small echo', connections: 1, inflight: 1, params: small, unit: 'calls/s', perCall: 1, target: 0.9 },
  { id: 'W2', title: '64 in flight, 1 conn', connections: 1, inflight: 64, params: small, unit: 'calls/s', perCall: 1, target: 0.8 },
  { id: 'W3', title: '1 MiB echo, sequential', connections: 1, inflight: 1, params: bigPayload(), unit: 'MiB/s', perCall: 1, target: 0.8 },
  { id: 'W4', title: '100 clients, sequential', connections: 100, inflight: 1, params: small, unit: 'calls/s', perCall: 1, target: 0.9 },
];

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Keep `inflight` sequential loops going on every caller; count the calls
 * completed in the measured window only (after the warm-up, so the JIT and
 * socket buffers are settled). Returns calls per second.
 */
export async function measure(callers: readonly Caller[], inflight: number, warmupMs: number, measureMs: number): Promise<number> {
  let stop = false;
  let counting = false;
  let count = 0;
  const loop = async (c: Caller) => {
    try {
      while (!stop) {
        await c.call();
        if (counting) count++;
      }
    } catch (err) {
      stop = true; // one failure ends the cell for every loop
      throw err;
    }
  };
  const loops: Promise<void>[] = [];
  for (const c of callers) for (let i = 0; i < inflight; i++) loops.push(loop(c));
  const all = Promise.all(loops);
  all.catch(() => undefined); // observed below; a failure during the sleeps must not be "unhandled"

  // Racing the sleeps with the loops makes a failed call end the cell at once.
  await Promise.race([sleep(warmupMs), all]);
  count = 0;
  counting = true;
  const t0 = performance.now();
  await Promise.race([sleep(measureMs), all]);
  const done = count;
  const t1 = performance.now();
  counting = false;
  stop = true;
  await all;
  return done / ((t1 - t0) / 1000);
}
