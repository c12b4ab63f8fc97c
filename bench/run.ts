/**
 * `npm run bench`: ipcbor against a raw `net` baseline speaking the same
 * seed framing, client (this process) and server (a forked process) apart,
 * on unix sockets in a temp dir.
 *
 *   node dist/bench/run.js [--json]
 *
 * Environment:
 *   BENCH_SECONDS      measured seconds per cell (default 2)
 *   BENCH_WARMUP       warm-up seconds per cell (default 0.5)
 *   BENCH_REPEATS      repeats per cell, the median is reported (default 3)
 *   BENCH_ONLY         workloads to run, e.g. "W1,W3" (default all)
 *   BENCH_IMPLS        implementations to run, e.g. "raw,seed" (default all)
 *   BENCH_PROFILE_DIR  run the servers with --cpu-prof, profiles written there
 *   BENCH_PIN          0: do not pin; by default (with >= 2 CPUs and taskset)
 *                      this process runs on CPU 0 and the servers on CPU 1
 *   BENCH_IDLE         connections of the idle-memory section (default 10,000;
 *                      0 skips it). BENCH_ONLY=idle runs that section alone
 *
 * Progress goes to stderr; the table (or the JSON) to stdout.
 */
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { decode, encode } from 'cborg';
import { cbor, connect, type Client } from '../src/index.js';
import { cleanup, cleanupOnExit, pinSelf, startServer, type ServerProcess } from './processes.js';
import { RawClient } from './raw-client.js';
import { WORKLOADS, measure, type Caller, type Workload } from './workloads.js';
import { idleBench, printIdle, type IdleRow } from './idle.js';

const IMPLS = ['raw', 'rawcbor', 'extended', 'seed'] as const;
type Impl = (typeof IMPLS)[number];

const env = process.env;
const json = process.argv.includes('--json');
const seconds = Number(env.BENCH_SECONDS ?? 2);
const warmup = Number(env.BENCH_WARMUP ?? 0.5);
const repeats = Math.max(1, Math.floor(Number(env.BENCH_REPEATS ?? 3)));
const workloads = WORKLOADS.filter((w) => !env.BENCH_ONLY || env.BENCH_ONLY.split(',').includes(w.id));
const impls = IMPLS.filter((i) => !env.BENCH_IMPLS || env.BENCH_IMPLS.split(',').includes(i));
const serverArgs = env.BENCH_PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${env.BENCH_PROFILE_DIR}`] : [];

const progress = (line: string) => process.stderr.write(`${line}\n`);
const METHOD = Buffer.from('echo');

/** Open the workload's connections for one implementation (not timed). */
type Servers = { raw: ServerProcess; rawcbor: ServerProcess; ipcbor: ServerProcess };

async function open(impl: Impl, w: Workload, servers: Servers): Promise<Caller[]> {
  const one = async (): Promise<Caller> => {
    if (impl === 'rawcbor') {
      // Plain cborg on both ends, nothing else: encode per call, decode each answer.
      const c = await RawClient.connect(servers.rawcbor.socketPath);
      return { call: async () => decode(await c.call(METHOD, encode(w.params, { mapSorter: undefined }))), close: () => c.close() };
    }
    if (impl === 'raw') {
      const c = await RawClient.connect(servers.raw.socketPath);
      // The same bytes ipcbor puts on the wire as params, encoded once.
      const payload = cbor.encode(w.params);
      return { call: () => c.call(METHOD, payload), close: () => c.close() };
    }
    const c: Client = await connect(servers.ipcbor.address, { protocol: impl === 'extended' ? 'auto' : 'seed' });
    if (c.protocol !== impl) throw new Error(`asked for ${impl}, got a ${c.protocol} connection`);
    return { call: () => c.call('echo', w.params), close: () => c.close() };
  };
  return Promise.all(Array.from({ length: w.connections }, one));
}

/** One echo per implementation, checked, so a broken echo cannot pass for a fast one. */
async function check(impl: Impl, callers: Caller[], w: Workload): Promise<void> {
  const answer = await callers[0]!.call();
  const sent = Buffer.from(cbor.encode(w.params)); // a copy: the codec may reuse its output buffer
  const got = impl === 'raw' ? (answer as Uint8Array) : cbor.encode(answer);
  if (Buffer.compare(sent, Buffer.from(got.buffer, got.byteOffset, got.length)) !== 0) {
    throw new Error(`${impl} ${w.id}: the echo did not come back unchanged`);
  }
}

async function cell(impl: Impl, w: Workload, servers: Servers): Promise<number> {
  const callers = await open(impl, w, servers);
  try {
    await check(impl, callers, w);
    return (await measure(callers, w.inflight, warmup * 1000, seconds * 1000)) * w.perCall;
  } finally {
    await Promise.all(callers.map((c) => c.close()));
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

interface Row {
  workload: Workload;
  samples: Record<Impl, number[]>;
}

function fmt(value: number | undefined, unit: Workload['unit']): string {
  if (value === undefined) return '-';
  return unit === 'MiB/s' ? `${value.toFixed(1)} MiB/s` : `${Math.round(value).toLocaleString('en-US')}/s`;
}

function verdict(ratio: number | undefined, target: number): string {
  if (ratio === undefined || !Number.isFinite(ratio)) return '-';
  // Truncated, not rounded: 0.799 must not print as a failing "0.80".
  return `${(Math.floor(ratio * 100) / 100).toFixed(2)} ${ratio >= target ? 'PASS' : 'below'}`;
}

function printTable(rows: Row[]): void {
  const head = ['workload', 'raw', 'ipcbor extended', 'ratio', 'ipcbor seed', 'ratio', 'target', 'raw+cborg', 'ext/raw+cborg'];
  const lines = rows.map(({ workload: w, samples }) => {
    const m = (i: Impl) => (samples[i].length ? median(samples[i]) : undefined);
    const raw = m('raw');
    const ratio = (i: Impl) => (raw && m(i) !== undefined ? m(i)! / raw : undefined);
    const rc = m('rawcbor');
    const vsCbor = rc && m('extended') !== undefined ? (Math.floor((m('extended')! / rc) * 100) / 100).toFixed(2) : '-';
    return [
      `${w.id} ${w.title}`,
      fmt(raw, w.unit),
      fmt(m('extended'), w.unit),
      verdict(ratio('extended'), w.target),
      fmt(m('seed'), w.unit),
      verdict(ratio('seed'), w.target),
      `>= ${w.target}`,
      fmt(rc, w.unit),
      vsCbor,
    ];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const row = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ');
  console.log(row(head));
  console.log(widths.map((n) => '-'.repeat(n)).join('-|-'));
  for (const l of lines) console.log(row(l));
  console.log('');
  console.log('ratio = ipcbor / raw (medians). W3 MiB/s counts the 1 MiB payload once per call (it crosses the socket both ways).');
  console.log('raw+cborg = the raw loop plus plain cborg encode/decode on both ends: the least any CBOR peer pays per call.');
}

async function main(): Promise<void> {
  cleanupOnExit();
  const pinned = env.BENCH_PIN !== '0' && cpus().length >= 2 && pinSelf(0);
  const serverCpu = pinned ? 1 : undefined;
  const meta = { node: process.version, cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, pinned, seconds, warmup, repeats };
  const where = pinned ? 'client on CPU 0, servers on CPU 1' : 'not pinned';
  progress(`ipcbor bench: node ${meta.node}, ${meta.cpu} (${meta.cores} cores, ${where}), ${seconds} s x ${repeats} per cell after ${warmup} s warm-up`);

  const idleCount = Number(env.BENCH_IDLE ?? 10_000);
  const withIdle = idleCount > 0 && (!env.BENCH_ONLY || env.BENCH_ONLY.split(',').includes('idle'));
  const here = (f: string) => fileURLToPath(new URL(f, import.meta.url));
  const [raw, rawcbor, ipcbor] = await Promise.all([
    startServer(here('./raw-server.js'), 'raw', serverArgs, serverCpu),
    startServer(here('./raw-server.js'), 'rawcbor', serverArgs, serverCpu, ['cbor']),
    startServer(here('./server.js'), 'ipcbor', serverArgs, serverCpu),
  ]);
  const servers: Servers = { raw, rawcbor, ipcbor };

  const rows: Row[] = workloads.map((workload) => ({ workload, samples: { raw: [], rawcbor: [], extended: [], seed: [] } }));
  // Repeats are interleaved (every cell once, then again) so that drift in
  // the machine's speed spreads over all cells rather than hitting one.
  for (let r = 1; r <= repeats; r++) {
    for (const row of rows) {
      for (const impl of impls) {
        const v = await cell(impl, row.workload, servers);
        row.samples[impl].push(v);
        progress(`  [${r}/${repeats}] ${row.workload.id} ${impl.padEnd(8)} ${fmt(v, row.workload.unit)}`);
      }
    }
  }
  await Promise.all([raw.stop(), rawcbor.stop(), ipcbor.stop()]);

  // Memory per idle connection: a server of its own, nothing else running.
  let idle: IdleRow[] = [];
  if (withIdle) {
    progress(`  idle connections: ${idleCount} per kind`);
    idle = await idleBench(idleCount);
  }

  if (json) {
    const results = rows.map(({ workload: w, samples }) => {
      const raw = samples.raw.length ? median(samples.raw) : undefined;
      const of = (i: Impl) => {
        const m = samples[i].length ? median(samples[i]) : undefined;
        const ratio = i === 'raw' || m === undefined || !raw ? undefined : m / raw;
        return { median: m, samples: samples[i], ratio, pass: ratio === undefined ? undefined : ratio >= w.target };
      };
      return { workload: w.id, title: w.title, unit: w.unit, target: w.target, raw: of('raw'), rawcbor: of('rawcbor'), extended: of('extended'), seed: of('seed') };
    });
    console.log(JSON.stringify({ ...meta, results, idle }, null, 2));
  } else {
    console.log(`node ${meta.node} | ${meta.cpu} | ${meta.cores} cores, ${where} | ${seconds} s x ${repeats} repeats (median) per cell, ${warmup} s warm-up`);
    console.log('');
    if (rows.length) printTable(rows);
    if (idle.length) {
      console.log('');
      printIdle(idle);
    }
  }
}

main().then(
  () => cleanup(),
  (err: unknown) => {
    console.error('bench failed:', err);
    cleanup();
    process.exitCode = 1;
  },
);
