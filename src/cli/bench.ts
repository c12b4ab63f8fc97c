/**
 * `ipcbor bench ADDRESS METHOD [JSON|-]`: load-test a method. N
 * connections, each with M calls in flight, for S seconds; every answer
 * is counted as a success or a failure, and each success's latency
 * (performance.now() around the call) goes into a histogram.
 */
import { performance } from 'node:perf_hooks';
import { cbor } from '../core/codec/cbor.js';
import { EncodedParams } from '../core/client/outgoing.js';
import { DEFAULT_CLI_CALL_TIMEOUT } from '../core/constants.js';
import { IpcborError, messageOf } from '../core/errors.js';
import { isAsyncIterable } from '../core/peer/streams.js';
import { connect, type Client } from '../node/client.js';
import { protocolOption, timeoutOption } from './call.js';
import { EXIT, numberOption, readParams, statusOf, tlsFromOptions, tlsHelp, tlsOptions, UsageError, type Command } from './command.js';
import { escapeControls } from './escape.js';
import { toJson } from './json.js';

/** Histogram buckets per doubling of the latency: each is 2^(1/32), about 2.2%, wide. */
const SUB = 32;
/** Doublings from 1 µs: up to 2^40 µs, 12 days. */
const OCTAVES = 40;

/**
 * Latencies in log-spaced buckets (a fixed 10 KiB however many calls), so
 * a percentile is known to within a bucket's width, 2.2%; min, max and
 * mean are exact. Bucket 0 holds up to 1 µs; bucket i ≥ 1 holds
 * (2^((i-1)/SUB), 2^(i/SUB)] µs.
 */
export class Histogram {
  readonly counts = new Float64Array(OCTAVES * SUB + 1);
  n = 0;
  sum = 0;
  min = Infinity;
  max = 0;

  record(ms: number): void {
    const us = ms * 1000;
    const i = us <= 1 ? 0 : Math.min(this.counts.length - 1, Math.ceil(Math.log2(us) * SUB));
    this.counts[i]!++;
    this.n++;
    this.sum += ms;
    if (ms < this.min) this.min = ms;
    if (ms > this.max) this.max = ms;
  }

  /** The latency (ms) that a share `p` (0..1) of the calls took at most: the top of the bucket it falls in, within [min, max]. */
  percentile(p: number): number {
    if (this.n === 0) return 0;
    const target = Math.max(1, Math.ceil(p * this.n));
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i]!;
      if (seen >= target) return Math.min(this.max, Math.max(this.min, 2 ** (i / SUB) / 1000));
    }
    return this.max;
  }

  /** Counts by doubling (ms ranges), from the one holding min to the one holding max, merged to at most `rows` rows. */
  rows(rows = 14): { fromMs: number; toMs: number; count: number }[] {
    if (this.n === 0) return [];
    const octave = (i: number) => (i === 0 ? 0 : Math.floor((i - 1) / SUB));
    const byOctave = new Float64Array(OCTAVES + 1);
    let first = Infinity;
    let last = 0;
    for (let i = 0; i < this.counts.length; i++) {
      const c = this.counts[i]!;
      if (c === 0) continue;
      const o = octave(i);
      byOctave[o]! += c;
      first = Math.min(first, o);
      last = Math.max(last, o);
    }
    const span = last - first + 1;
    const width = Math.ceil(span / rows);
    const out: { fromMs: number; toMs: number; count: number }[] = [];
    for (let o = first; o <= last; o += width) {
      let count = 0;
      for (let k = o; k < o + width && k <= last; k++) count += byOctave[k]!;
      const from = o === 0 ? 0 : 2 ** o / 1000;
      out.push({ fromMs: from, toMs: 2 ** Math.min(o + width, last + 1) / 1000, count });
    }
    return out;
  }
}

/** A latency in ms, to three significant digits. */
export function ms(x: number): string {
  if (x >= 1000) return String(Math.round(x));
  if (x === 0) return '0';
  return String(Number(x.toPrecision(3)));
}

export interface BenchSummary {
  address: string;
  method: string;
  connections: number;
  inflight: number;
  /** Seconds from the first call to the last answer. */
  seconds: number;
  /** Calls answered (ok + failed). */
  calls: number;
  ok: number;
  failed: number;
  /** Failures by error code. */
  errors: Record<string, number>;
  firstError?: string;
  callsPerSecond: number;
  /** Of the calls that succeeded. */
  latencyMs: { min: number; mean: number; p50: number; p90: number; p99: number; max: number };
  histogram: { fromMs: number; toMs: number; count: number }[];
  /** Stopped early: Ctrl-C, or every connection lost. */
  interrupted: boolean;
}

function summaryText(s: BenchSummary): string {
  const lines = [
    `${s.address} ${s.method}: ${s.connections} connection${s.connections === 1 ? '' : 's'} x ${s.inflight} in flight, ${s.seconds.toFixed(2)} s${s.interrupted ? ' (stopped early)' : ''}`,
    `calls       ${s.calls} (${s.ok} ok, ${s.failed} failed)`,
    `throughput  ${Math.round(s.callsPerSecond)} calls/s`,
  ];
  if (s.failed > 0) {
    const codes = Object.entries(s.errors)
      .map(([code, n]) => `${code} x${n}`)
      .join(', ');
    lines.push(`failures    ${codes}${s.firstError ? `; first: ${escapeControls(s.firstError)}` : ''}`);
  }
  if (s.ok > 0) {
    const l = s.latencyMs;
    lines.push(`latency ms  p50 ${ms(l.p50)}  p90 ${ms(l.p90)}  p99 ${ms(l.p99)}  max ${ms(l.max)}  (min ${ms(l.min)}, mean ${ms(l.mean)})`);
    lines.push('histogram');
    const fromWidth = Math.max(...s.histogram.map((r) => ms(r.fromMs).length));
    const toWidth = Math.max(...s.histogram.map((r) => ms(r.toMs).length));
    const labels = s.histogram.map((r) => `${ms(r.fromMs).padStart(fromWidth)} - ${ms(r.toMs).padStart(toWidth)} ms`);
    const countWidth = Math.max(...s.histogram.map((r) => String(r.count).length));
    const most = Math.max(...s.histogram.map((r) => r.count));
    s.histogram.forEach((r, i) => {
      const bar = '#'.repeat(r.count === 0 ? 0 : Math.max(1, Math.round((r.count / most) * 40)));
      const share = ((r.count / s.ok) * 100).toFixed(1).padStart(5);
      lines.push(`  ${labels[i]!}  ${String(r.count).padStart(countWidth)}  ${share}%  ${bar}`);
    });
  }
  return lines.join('\n');
}

export const benchCommand: Command = {
  name: 'bench',
  summary: 'load-test a method: throughput and a latency histogram',
  usage: 'ipcbor bench ADDRESS METHOD [JSON|-] [--connections N] [--inflight N] [--duration S] [--timeout MS] [--json] [--protocol MODE] [--ca FILE [--cert FILE --key FILE]]',
  help: `Calls METHOD on the service at ADDRESS with the params JSON (default {};
- reads it from stdin) over and over: --connections connections, each
keeping --inflight calls in flight, for --duration seconds. The params are
encoded once; each call's latency is measured from the call to its answer
(a result stream: to its end). While it runs, a line on stderr says how
many calls were answered and how fast; at the end stdout has the count,
the throughput, the latency percentiles of the calls that succeeded and a
histogram of their latencies. Ctrl-C stops it early, with the summary.

Every answer is counted: as a success, or as a failure by its error code.
The exit status is 0 when every call succeeded, else that of the first
failure (1 for an error answer, 3 for a connection lost, 4 for a timeout).

Options:
  --connections N   connections to open (default 1)
  --inflight N      calls in flight on each connection (default 16)
  --duration S      seconds to run (default 10; fractions allowed)
  --timeout MS      a call that takes longer fails (default 30000); also
                    the connect timeout
  --json            print the summary as one JSON object
  --protocol MODE   auto (default), base or extended

${tlsHelp}

Example:
  ipcbor bench timer echo '{"req":{"message":"hi","delayMs":0}}' --connections 4 --duration 5`,
  options: {
    connections: { type: 'string' },
    inflight: { type: 'string' },
    duration: { type: 'string' },
    timeout: { type: 'string' },
    json: { type: 'boolean' },
    protocol: { type: 'string' },
    ...tlsOptions,
  },
  async run(positionals, values, io) {
    const [address, method, json] = positionals;
    if (!address || !method || positionals.length > 3) return io.usage();
    const connections = numberOption(values, 'connections', 1, { what: 'connections', integer: true });
    const inflight = numberOption(values, 'inflight', 16, { what: 'calls per connection', integer: true });
    const duration = numberOption(values, 'duration', 10, { what: 'seconds' });
    const timeout = timeoutOption(values, DEFAULT_CLI_CALL_TIMEOUT);
    const protocol = protocolOption(values);
    const tls = tlsFromOptions(values);
    if (connections > 10_000) throw new UsageError(`--connections must be at most 10000, not ${connections}`);
    if (inflight > 100_000) throw new UsageError(`--inflight must be at most 100000, not ${inflight}`);
    const params = await readParams(json, io);
    // Encoded once: every call sends these same bytes.
    let encoded: EncodedParams;
    try {
      encoded = new EncodedParams(cbor.encode(params));
    } catch (err) {
      throw new UsageError(`the params cannot be sent as CBOR: ${messageOf(err)}`);
    }

    const opened = await Promise.allSettled(Array.from({ length: connections }, () => connect(address, { protocol, connectTimeout: timeout, signal: io.signal, ...tls })));
    const clients = opened.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const refused = opened.find((r) => r.status === 'rejected');
    if (refused) {
      for (const c of clients) c.destroy();
      throw refused.reason;
    }

    const hist = new Histogram();
    const errors: Record<string, number> = {};
    let failed = 0;
    let firstFailure: unknown;
    let stopping = false;
    const callOptions = { timeout };

    const worker = async (client: Client): Promise<void> => {
      while (!stopping) {
        const t0 = performance.now();
        try {
          const result = await client.call(method, encoded, callOptions);
          // A result stream is read to its end, but not past the bench's end (a server may stream for ever).
          if (isAsyncIterable(result)) {
            for await (const _ of result) if (stopping) break;
          }
          hist.record(performance.now() - t0);
        } catch (err) {
          // Calls cut short by Ctrl-C are not failures of the server.
          if (io.signal.aborted) return;
          failed++;
          const code = err instanceof IpcborError ? err.code : 'ERROR';
          errors[code] = (errors[code] ?? 0) + 1;
          firstFailure ??= err;
          // A connection lost: its calls all end here.
          if (client.state === 'closed') return;
        }
      }
    };

    const start = performance.now();
    let lastCount = 0;
    let lastAt = start;
    const progress = setInterval(() => {
      const now = performance.now();
      const done = hist.n + failed;
      const rate = ((done - lastCount) * 1000) / (now - lastAt);
      lastCount = done;
      lastAt = now;
      io.progress(`bench: ${((now - start) / 1000).toFixed(0)} s, ${done} calls, ${Math.round((done * 1000) / (now - start))} calls/s so far (${Math.round(rate)} in the last second)${failed > 0 ? `, ${failed} failed` : ''}`);
    }, 1000);
    const stop = () => {
      stopping = true;
    };
    const timer = setTimeout(stop, duration * 1000);
    const onAbort = () => {
      stop();
      // What is in flight is not waited for.
      for (const c of clients) c.destroy();
    };
    io.signal.addEventListener('abort', onAbort, { once: true });
    try {
      await Promise.all(clients.flatMap((c) => Array.from({ length: inflight }, () => worker(c))));
    } finally {
      clearTimeout(timer);
      clearInterval(progress);
      io.signal.removeEventListener('abort', onAbort);
      io.progress(undefined);
    }
    const seconds = (performance.now() - start) / 1000;
    if (io.signal.aborted) for (const c of clients) c.destroy();
    else await Promise.all(clients.map((c) => c.close()));

    const calls = hist.n + failed;
    const summary: BenchSummary = {
      address,
      method,
      connections,
      inflight,
      seconds,
      calls,
      ok: hist.n,
      failed,
      errors,
      ...(firstFailure === undefined ? {} : { firstError: messageOf(firstFailure) }),
      callsPerSecond: seconds > 0 ? calls / seconds : 0,
      latencyMs: {
        min: hist.n > 0 ? hist.min : 0,
        mean: hist.n > 0 ? hist.sum / hist.n : 0,
        p50: hist.percentile(0.5),
        p90: hist.percentile(0.9),
        p99: hist.percentile(0.99),
        max: hist.max,
      },
      histogram: hist.rows(),
      interrupted: io.signal.aborted || !stopping,
    };
    io.out(values.json ? toJson(summary, false) : summaryText(summary));
    if (io.signal.aborted) return EXIT.interrupted;
    return firstFailure === undefined ? EXIT.ok : statusOf(firstFailure);
  },
};
