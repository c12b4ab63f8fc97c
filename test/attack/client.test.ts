/**
 * The client under attack: a malicious server (a raw `net` server here,
 * speaking the extended protocol by hand) pushes large events to an
 * unread subscription, and stream items past the client's unread budget.
 * The client runs in a child process so its memory is its own.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { createServer, type Server, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { cbor } from '../../src/core/codec/cbor.js';
import { FrameDecoder } from '../../src/core/frame/decoder.js';
import { encodeExtended, encodeResponse } from '../../src/core/frame/encoder.js';
import { drainedOrClosed } from '../drain.js';
import { tempSocket } from '../helpers.js';
import { CLIENT_SCRIPT, held, KiB, mb, MiB, rssBoundFor, SLACK, spawnNode, until, type Mem } from './harness.js';

const procs: ChildProcess[] = [];
const servers: Server[] = [];
after(() => {
  for (const p of procs) p.kill('SIGKILL');
  for (const s of servers) s.close();
});

const ITEM = 256 * KiB;
const payload = Buffer.from(cbor.encode(new Uint8Array(ITEM)));

interface Evil {
  address: string;
  /** Frames the server pushed that the kernel took (the client read, or its socket buffer holds). */
  taken(): number;
  /** Start pushing. */
  go(): void;
  done: Promise<void>;
}

/**
 * A server that answers the hello, answers a subscribe, and then pushes
 * `count` EVENT frames (mode events) or ITEM frames for the first call,
 * ignoring credit (mode stream), as fast as the socket takes them.
 */
async function evilServer(mode: 'events' | 'stream', count: number): Promise<Evil> {
  const path = tempSocket();
  let start!: () => void;
  const started = new Promise<void>((r) => (start = r));
  let written = 0;
  let sock: Socket | undefined;
  let finish!: () => void;
  const done = new Promise<void>((r) => (finish = r));
  const push = async (s: Socket, head: unknown[]) => {
    await started;
    const [header] = encodeExtended(cbor.encode(head), payload);
    const frame = [Buffer.from(header), payload];
    for (let i = 0; i < count && !s.destroyed; i++) {
      written += frame[0]!.length + frame[1]!.length;
      const ok = s.write(frame[0]!) && s.write(frame[1]!);
      if (!ok) await drainedOrClosed(s);
    }
    finish();
  };
  const server = createServer((s) => {
    sock = s;
    s.on('error', () => {});
    s.on('close', finish);
    let hello = true;
    const decoder: FrameDecoder = new FrameDecoder('request', {
      request: () => {
        if (!hello) return;
        hello = false;
        decoder.mode = 'extended';
        for (const p of encodeResponse(0, cbor.encode({ version: 1, maxFrameBytes: 16 * MiB, window: 64, server: 'evil' }))) s.write(p);
      },
      extended: (headBytes) => {
        const head = cbor.decode(headBytes) as [number, number, string];
        if (head[0] !== 1) return;
        if (head[2] === '$ipcbor.subscribe') {
          for (const p of encodeExtended(cbor.encode([4, head[1]]), cbor.encode(null))) s.write(p);
          if (mode === 'events') void push(s, [9, 'tick']);
        } else if (head[2] === 'stream' && mode === 'stream') {
          void push(s, [6, head[1]]);
        }
      },
    });
    s.on('data', (d: Buffer) => decoder.push(d));
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(path, r));
  return {
    address: `unix:${path}`,
    taken: () => written - (sock?.writableLength ?? 0),
    go: start,
    done,
  };
}

interface ClientReport {
  ready?: boolean;
  mem: Mem;
  state?: string;
  dropped?: number;
  callError?: string;
}

function startClient(address: string, mode: 'events' | 'stream', options: object) {
  const proc = spawnNode(CLIENT_SCRIPT, [JSON.stringify({ address, mode, options })]);
  procs.push(proc);
  const reports: ClientReport[] = [];
  let buf = '';
  proc.stdout!.on('data', (d: Buffer) => {
    buf += d.toString('utf8');
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      reports.push(JSON.parse(buf.slice(0, i)) as ClientReport);
      buf = buf.slice(i + 1);
    }
  });
  return { proc, reports, alive: () => proc.exitCode === null && proc.signalCode === null };
}

function check(name: string, reports: ClientReport[], budget: number, volume: number, extra: object): void {
  const baseline = reports[0]!.mem;
  const peak = reports.reduce((m, r) => (held(r.mem) > held(m) ? r.mem : m), baseline);
  const peakRss = Math.max(...reports.map((r) => r.mem.rss));
  const bound = held(baseline) + 4 * budget + SLACK;
  const rssBound = rssBoundFor(baseline, budget);
  console.log(
    `# attack ${JSON.stringify({ attack: name, baseline: mb(held(baseline)), peak: mb(held(peak)), bound: mb(bound), baselineRss: mb(baseline.rss), peakRss: mb(peakRss), rssBound: mb(rssBound), unbounded: mb(volume), samples: reports.length, ...extra })}`,
  );
  assert.ok(volume >= 5 * (bound - held(baseline)), `${name}: the attack is large enough`);
  assert.ok(held(peak) <= bound, `${name}: client memory ${mb(held(peak))} stays under ${mb(bound)}`);
  assert.ok(peakRss <= rssBound, `${name}: client rss ${mb(peakRss)} stays under ${mb(rssBound)}`);
}

describe('attack: a malicious server against the client', () => {
  it('1,200 EVENT frames of 256 KiB to an unread subscription: bounded by eventQueueBytes, oldest dropped', async () => {
    const COUNT = 1200;
    const evil = await evilServer('events', COUNT);
    const options = { eventQueueBytes: 1 * MiB, maxConnectionBytes: 1 * MiB };
    const client = startClient(evil.address, 'events', options);
    await until(() => client.reports.length > 0, 'the client subscribed', 5000);
    evil.go();
    await evil.done;
    // Let the client read what is left, then one more report.
    const n = client.reports.length;
    await until(() => client.reports.length >= n + 3, 'more reports', 3000);
    const last = client.reports.at(-1)!;
    check('events to an unread subscription (client)', client.reports, options.eventQueueBytes, COUNT * payload.length, { dropped: last.dropped });
    assert.ok(client.alive(), 'the client is alive');
    assert.equal(last.state, 'open');
    assert.ok((last.dropped ?? 0) >= COUNT - 10, `the oldest events were dropped (${last.dropped})`);
  });

  it('stream items past the unread budget stop the client reading: bounded by maxConnectionBytes', async () => {
    const COUNT = 1200;
    const evil = await evilServer('stream', COUNT);
    const options = { maxConnectionBytes: 1 * MiB };
    const client = startClient(evil.address, 'stream', options);
    await until(() => client.reports.length > 0, 'the client connected', 5000);
    evil.go();
    // The client stops reading: what the kernel takes stops growing.
    let last = -1;
    await until(
      () => {
        const t = evil.taken();
        const still = t === last && client.reports.length > 5;
        last = t;
        return still;
      },
      'the client to stop reading',
      4000,
    );
    const n = client.reports.length;
    await until(() => client.reports.length >= n + 3, 'more reports', 3000);
    const volume = COUNT * payload.length;
    check('unread stream items (client)', client.reports, options.maxConnectionBytes, volume, { taken: mb(evil.taken()), state: client.reports.at(-1)!.state });
    assert.ok(evil.taken() < volume / 10, `the client took ${mb(evil.taken())} of ${mb(volume)}`);
    assert.ok(client.alive(), 'the client is alive');
  });
});
