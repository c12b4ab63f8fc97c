/**
 * `npm run bench:quick`: the no-regression check (run by .ci/run), in well
 * under a minute. ipcbor extended against the raw `net` loop with ipcbor's
 * own codec (`rawcodec`: the Node limit plus the CBOR work ipcbor cannot
 * avoid) on two workloads: W2 (64 calls in flight on one connection) and W5
 * (1,000 connections, one call each at a time). Per workload, both systems'
 * connections are opened once, then measured in short interleaved rounds
 * (rawcodec, ipcbor, ipcbor, rawcodec, ...); each round pair gives a ratio,
 * and the median of a workload's ratios is compared with the floor. A ratio
 * measured in the same seconds, not an absolute figure, so a machine that
 * is slow or busy as a whole does not fail it. It needs nothing from
 * bench/peers.
 *
 *   node dist/bench/quick.js
 *
 * Environment:
 *   IPCBOR_BENCH_MIN_RATIO     lowest acceptable ipcbor/rawcodec ratio on W2 (default 0.85)
 *   IPCBOR_BENCH_MIN_RATIO_W5  the same on W5 (default: IPCBOR_BENCH_MIN_RATIO)
 *   BENCH_QUICK_ROUNDS      round pairs per workload (default 10)
 *   BENCH_QUICK_MS          milliseconds per system and round (default 300)
 *   BENCH_PIN               0: do not pin (as in run.ts)
 *
 * Exit status: 0 when every workload's ratio is at or above the floor, 1
 * when one is below, 2 if the check could not run.
 */
import { cpus, loadavg } from 'node:os';
import { cleanup, cleanupOnExit, pinSelf, startServer, type ServerProcess } from './processes.js';
import { median } from './report.js';
import { SYSTEMS, type System } from './systems.js';
import { WORKLOADS, measure, openMany, type Caller, type Workload } from './workloads.js';

const env = process.env;
/**
 * What a run takes from the environment (see above). The floors are both
 * 0.85 by default. W5's ratio moves more from round to round than W2's
 * (1,000 connections, each round a few hundred ms: single rounds from
 * 0.72 to 1.17 on the 2-core machine it was tuned on, a standard
 * deviation near 0.08), so its median needs many rounds to hold still:
 * 10 by default, 32 in CI, where the medians of 16 were 0.90 to 0.97
 * from run to run (0.90 to 0.99 on a quiet machine, 0.90 to 0.98 beside
 * two busy loops). A return of the per-connection costs this check guards
 * (W5 was about 0.65 with them) fails it by far.
 */
interface Settings {
  floorOf(w: Workload): number;
  rounds: number;
  ms: number;
}

/**
 * A positive number from the environment, `fallback` when unset or empty.
 * Anything else is a mistake in the setting, said as one (exit 2), not
 * taken as a floor no ratio reaches or one every ratio passes.
 */
function positive(name: string, fallback: number): number {
  const v = env[name];
  if (v === undefined || v === '') return fallback;
  const x = Number(v);
  if (!Number.isFinite(x) || x <= 0) throw new Error(`${name}=${JSON.stringify(v)} is not a positive number`);
  return x;
}

function settings(): Settings {
  const minRatio = positive('IPCBOR_BENCH_MIN_RATIO', 0.85);
  const minRatioW5 = positive('IPCBOR_BENCH_MIN_RATIO_W5', minRatio);
  return {
    floorOf: (w) => (w.id === 'W5' ? minRatioW5 : minRatio),
    rounds: Math.max(1, Math.floor(positive('BENCH_QUICK_ROUNDS', 10))),
    ms: positive('BENCH_QUICK_MS', 300),
  };
}

const CHECKED = WORKLOADS.filter((w) => w.id === 'W2' || w.id === 'W5');
const n = (x: number) => Math.round(x).toLocaleString('en-US');

/** One workload: both systems' connections open, warmed up, then the interleaved rounds. True when its median ratio is at or above the floor. */
async function check(w: Workload, systems: readonly System[], servers: readonly ServerProcess[], pinned: boolean, { floorOf, rounds, ms }: Settings): Promise<boolean> {
  const callers: Caller[][] = [];
  try {
    for (const [i, s] of systems.entries()) {
      callers.push(await openMany(w.connections, () => s.open(servers[i]!, w)));
      if (!s.check(await callers[i]![0]!.call(), w)) throw new Error(`${s.id}: the echo did not come back unchanged`);
    }
    const run = (i: number, warmupMs: number, measureMs: number) => measure(callers[i]!, { inflight: w.inflight, warmupMs, measureMs });
    // Warm both up (JIT, socket buffers) before anything counts.
    for (const i of [0, 1]) await run(i, 0, 400);
    const ratios: number[] = [];
    const rates: [number[], number[]] = [[], []];
    for (let r = 0; r < rounds; r++) {
      // Alternate which goes first, so a trend in the machine's speed does not favour one.
      const got: number[] = [];
      for (const i of r % 2 === 0 ? [0, 1] : [1, 0]) got[i] = (await run(i, 50, ms)).rate;
      rates[0].push(got[0]!);
      rates[1].push(got[1]!);
      ratios.push(got[1]! / got[0]!);
    }
    const ratio = median(ratios)!;
    const ok = ratio >= floorOf(w);
    console.log(
      `bench:quick ${w.id} (${w.title}${pinned ? ', pinned' : ''}, load ${loadavg()[0]!.toFixed(1)}): rawcodec ${n(median(rates[0])!)}/s, ipcbor extended ${n(median(rates[1])!)}/s, ` +
        `ratio ${ratio.toFixed(3)} (rounds ${ratios.map((x) => x.toFixed(2)).join(' ')}; minimum ${floorOf(w)}): ${ok ? 'ok' : 'BELOW THE MINIMUM'}`,
    );
    return ok;
  } finally {
    await Promise.all(callers.flat().map((c) => c.close().catch(() => undefined)));
  }
}

async function main(): Promise<number> {
  // Read first: a setting that is wrong stops the check before anything starts.
  const config = settings();
  cleanupOnExit();
  const pinned = env.BENCH_PIN !== '0' && cpus().length >= 2 && pinSelf(0);
  const systems = [SYSTEMS.rawcodec, SYSTEMS.extended];
  const servers: ServerProcess[] = await Promise.all(systems.map((s) => startServer(s.server.script, s.server.key, [], pinned ? 1 : undefined, s.server.args)));
  try {
    let ok = true;
    for (const w of CHECKED) ok = (await check(w, systems, servers, pinned, config)) && ok;
    return ok ? 0 : 1;
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
  }
}

main().then(
  (code) => {
    cleanup();
    process.exit(code);
  },
  (err: unknown) => {
    console.error('bench:quick could not run:', err);
    cleanup();
    process.exit(2);
  },
);
