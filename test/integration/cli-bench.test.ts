/**
 * `ipcbor bench` against a real server, in a child process: the summary's
 * shape (text and --json), every answer counted, failures by code. No
 * timing thresholds: the machine's speed is not under test.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { defineService, method, serve, type Server } from '../../src/index.js';
import { Histogram, ms, type BenchSummary as Summary } from '../../src/cli/bench.js';
import { tempSocket } from '../helpers.js';
import { waitFor } from '../extended-helpers.js';

const cli = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

function bench(args: string[], opts: { stdin?: string; during?: (child: ReturnType<typeof spawn>) => Promise<void> } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [cli, 'bench', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  child.stdin.end(opts.stdin ?? '');
  const closed = once(child, 'close');
  return (async () => {
    await opts.during?.(child);
    const [code] = (await closed) as [number | null];
    return { code, stdout, stderr };
  })();
}


describe('ipcbor bench', () => {
  let server: Server;
  let address: string;
  /** Every call the server answered, by method. */
  const answered = { echo: 0, fail: 0, rows: 0 };
  const seen: unknown[] = [];
  before(async () => {
    const svc = defineService({
      name: 'load',
      version: '1',
      methods: {
        echo: method({
          handler: (p: { n: number; pad: string }) => {
            answered.echo++;
            if (seen.length < 3) seen.push(p);
            return p.n;
          },
        }),
        fail: method({
          handler: () => {
            answered.fail++;
            throw new Error('no');
          },
        }),
        rows: method({
          handler: async function* () {
            answered.rows++;
            yield 1;
            yield 2;
          },
        }),
      },
    });
    server = await serve(svc, `unix:${tempSocket()}`);
    address = server.addresses[0]!;
  });
  after(() => server.close());

  it('--json: the summary, with every call answered and counted', async () => {
    const before = answered.echo;
    const r = await bench([address, 'echo', '{"n":7,"pad":"xxxxxxxx"}', '--connections', '2', '--inflight', '4', '--duration', '0.5', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const s = JSON.parse(r.stdout) as Summary;
    assert.deepEqual(Object.keys(s).sort(), ['address', 'calls', 'callsPerSecond', 'connections', 'errors', 'failed', 'histogram', 'inflight', 'interrupted', 'latencyMs', 'method', 'ok', 'seconds'].sort());
    assert.equal(s.address, address);
    assert.equal(s.method, 'echo');
    assert.equal(s.connections, 2);
    assert.equal(s.inflight, 4);
    assert.equal(s.interrupted, false);
    assert.ok(s.calls > 0);
    // Every answer was checked: each is a success here, and each call the server answered is counted.
    assert.equal(s.ok, s.calls);
    assert.equal(s.failed, 0);
    assert.deepEqual(s.errors, {});
    assert.equal(answered.echo - before, s.calls);
    // The params arrived as given (encoded once, sent every time).
    assert.deepEqual(seen[0], { n: 7, pad: 'xxxxxxxx' });
    assert.ok(s.seconds > 0 && s.callsPerSecond > 0);
    const l = s.latencyMs;
    assert.ok(l.min > 0 && l.min <= l.p50 && l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.max, JSON.stringify(l));
    assert.ok(l.mean >= l.min && l.mean <= l.max);
    assert.equal(
      s.histogram.reduce((n, row) => n + row.count, 0),
      s.ok,
      'the histogram holds every success',
    );
    for (const row of s.histogram) assert.ok(row.fromMs < row.toMs);
    assert.match(r.stderr, /^(bench: \d+ s, \d+ calls, \d+ calls\/s so far.*\n)*$/, 'stderr holds progress lines only');
  });

  it('text: throughput, percentiles and a histogram; params from stdin; a stream counts as one call', async () => {
    const r = await bench([address, 'rows', '-', '--duration', '0.3'], { stdin: '{}' });
    assert.equal(r.code, 0, r.stderr);
    const m = /^calls +(\d+) \((\d+) ok, 0 failed\)$/m.exec(r.stdout);
    assert.ok(m, r.stdout);
    assert.ok(Number(m[1]) > 0);
    assert.equal(m[1], m[2]);
    assert.match(r.stdout, /^unix:.* rows: 1 connection x 16 in flight, \d+\.\d\d s$/m);
    assert.match(r.stdout, /^throughput +\d+ calls\/s$/m);
    assert.match(r.stdout, /^latency ms +p50 [\d.]+ +p90 [\d.]+ +p99 [\d.]+ +max [\d.]+ +\(min [\d.]+, mean [\d.]+\)$/m);
    assert.match(r.stdout, /^histogram\n( +[\d.]+ - +[\d.]+ ms +\d+ +[\d.]+% +#*\n?)+$/m);
  });

  it('counts failures by code, and exits with the status of the first', async () => {
    const r = await bench([address, 'fail', '--duration', '0.3', '--json']);
    assert.equal(r.code, 1, r.stderr);
    const s = JSON.parse(r.stdout) as Summary;
    assert.ok(s.calls > 0);
    assert.equal(s.ok, 0);
    assert.equal(s.failed, s.calls);
    assert.deepEqual(Object.keys(s.errors), ['IPCBOR_ERR_HANDLER']);
    assert.equal(s.errors.IPCBOR_ERR_HANDLER, s.calls);
    assert.equal(s.firstError, 'no');
  });

  it('Ctrl-C stops it early, with the summary and status 130', async () => {
    const before = answered.echo;
    const r = await bench([address, 'echo', '{"n":1,"pad":""}', '--duration', '60', '--json'], {
      during: async (child) => {
        await waitFor(() => answered.echo - before > 100, 'calls', 10_000);
        child.kill('SIGINT');
      },
    });
    assert.equal(r.code, 130, r.stderr);
    const s = JSON.parse(r.stdout) as Summary;
    assert.equal(s.interrupted, true);
    assert.ok(s.calls > 0);
    assert.equal(s.failed, 0, 'calls cut short by Ctrl-C are not failures');
  });
});

describe('the bench histogram', () => {
  it('places each latency in a bucket 2.2% wide, and percentiles within it', () => {
    const h = new Histogram();
    for (let i = 1; i <= 1000; i++) h.record(i / 100); // 0.01 .. 10 ms
    assert.equal(h.n, 1000);
    assert.equal(h.min, 0.01);
    assert.equal(h.max, 10);
    for (const [p, want] of [[0.5, 5], [0.9, 9], [0.99, 9.9]] as const) {
      const got = h.percentile(p);
      assert.ok(got >= want && got <= want * 1.022, `p${p * 100}: ${got}, want ${want}`);
    }
    assert.equal(h.percentile(1), 10);
    const rows = h.rows();
    assert.ok(rows.length <= 14);
    assert.equal(rows.reduce((n, r) => n + r.count, 0), 1000);
    assert.equal(new Histogram().percentile(0.5), 0);
    assert.deepEqual(new Histogram().rows(), []);
  });

  it('prints latencies to three significant digits', () => {
    assert.equal(ms(0.041234), '0.0412');
    assert.equal(ms(12.345), '12.3');
    assert.equal(ms(1234.5), '1235');
    assert.equal(ms(0), '0');
  });
});
