/**
 * The attack matrix: every attack on the byte budget, by size and shape.
 *
 * A cell is (server, framing, kind, size, connections):
 * - server: `serve`, `lazy` (serveLazy; its application never polls, except
 *   once when told to for result streams) or `loop` (createLoop; its
 *   application takes every message and leaves it unanswered);
 * - framing and kind: base-framing calls; extended calls, notifications, stream
 *   items the client sends (a streamed call whose items are never read),
 *   result stream items (never read), and events (subscribers that never
 *   read);
 * - size: the encoded payload of each frame, 1 KiB to 16 MiB (the default
 *   maxFrameBytes: the largest frame allowed);
 * - connections: 1 or 1,000, each attacking alike.
 * Calls and notifications go to `hold`, which keeps its params until its
 * connection goes; none of the attackers ever reads.
 *
 * One child server per server kind serves every cell, one cell after the
 * other, with small budgets (LIMITS) so that the volume stays cheap: each
 * attacker writes the same Buffers over and over, and the server is meant
 * to stop reading it mid-frame long before it took them all.
 *
 * The bound each cell asserts, with N connections taking part and F the
 * bytes of one of its frames (payload plus at most 64 bytes of heads):
 *
 *   held  = maxServerBytes + N * (F + READ) + F
 *
 * READ (192 KiB) is what a connection may always hold (64 KiB), one socket
 * read in hand (64 KiB) and the read a paused socket takes ahead (64 KiB).
 * The last F: a frame that arrived in pieces is copied together once, so
 * for that moment it is held twice (the server copies one frame at a
 * time). Both the server budget's peak and the bytes the server's sockets
 * read during the cell (counted at the sockets) must stay within `held`,
 * except the peak of an event cell: one event's payload is shared by every
 * subscriber and charged to each in full, so live memory is what bounds
 * it. The server's live heap and Buffers after a GC must stay within
 *
 *   memory = baseline + held + N * CONN_FIXED + SLACK
 *
 * where CONN_FIXED (32 KiB) is what a connection costs besides what it is
 * charged (socket, peer, decoder), and SLACK (30 MiB, as for every attack
 * test) the code, JIT and GC timing. No budget may go below zero (the child
 * dies with NEGATIVE_EXIT), the child must live, and after each cell, its
 * attackers gone and the application done with what it held (`release`:
 * a server that stopped reading a connection learns that its peer went
 * when it next writes to it, or when the frame it stopped in times out),
 * the server's budget must come back to 0 and a fresh client must be
 * served (by the application, for lazy and loop). Waking the connections
 * that wait for room must have cost at most RECHECKS_PER_CONN re-checks
 * per connection (plus one slice), their leaving included.
 *
 * Calls and notifications offer at most maxInflight (1024) frames per
 * connection: beyond that another limit refuses or drops them, which is
 * not the budget this matrix tests. Each cell offers about three times its
 * bound (at least two frames per connection), so that lifting the budgets
 * (ATTACK_UNBOUNDED=1) breaks it, except where maxInflight or the event
 * queue is what bounds it.
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { connect, type Client } from '../../src/index.js';
import { cbor } from '../../src/core/codec/cbor.js';
import { rawConnect, tempSocket } from '../helpers.js';
import { extendedHeader, held, KiB, MiB, mb, rawHello, baseFrame, settled, sleep, SLACK, startServer, unbounded, until, writeMany, type ChildServer, type Mem } from './harness.js';
import { NEGATIVE_EXIT, padLength, padOf, type Stats } from './matrix-shared.js';
import { WAKE_SLICE } from '../../src/core/peer/budget.js';

export type ServerKind = 'serve' | 'lazy' | 'loop';
export type Kind = 'call' | 'notify' | 'item-up' | 'item-down' | 'event';
export type Framing = 'base' | 'extended';

/** frameTimeout is short: a connection stopped mid-frame whose peer went is cut when its frame times out. */
export const LIMITS = { maxConnectionBytes: 1 * MiB, maxServerBytes: 8 * MiB, frameTimeout: 1000 };
export const SIZES = [1 * KiB, 64 * KiB, 1 * MiB, 4 * MiB, 16 * MiB];
export const CONNECTIONS = [1, 1000];
/** The base framing carries calls only. */
export const SHAPES: readonly (readonly [Framing, Kind])[] = [
  ['base', 'call'],
  ['extended', 'call'],
  ['extended', 'notify'],
  ['extended', 'item-up'],
  ['extended', 'item-down'],
  ['extended', 'event'],
];

const READ = 192 * KiB;
/**
 * Re-checks of waiting connections (ServerBudget's wakes) per connection of
 * a cell, from its start to its server's budget back at 0: a few wakes,
 * each of the connections waiting then. (Before wakes were bounded, 1,000
 * connections leaving cost about 500,000.)
 */
const RECHECKS_PER_CONN = 5;
const CONN_FIXED = 32 * KiB;
const HEADS = 64;
const MAX_INFLIGHT = 1024;
/** Stream window: the server's (items sent to it) and the attacker's hello (items it is sent). */
const WINDOW = 64;
/** The child's address space (MB): a server that tries to hold gigabytes dies instead of the machine. */
const VMEM_MB = 4096;

export const frameBytes = (size: number): number => size + HEADS;
export const heldBound = (conns: number, size: number): number => LIMITS.maxServerBytes + conns * (frameBytes(size) + READ) + frameBytes(size);
export const memBound = (baseline: Mem, conns: number, size: number): number => held(baseline) + heldBound(conns, size) + conns * CONN_FIXED + SLACK;

/** Frames (or events, or streams) to offer per connection: about three times the bound in all. */
function framesPer(conns: number, size: number, kind: Kind): number {
  const n = Math.max(2, Math.ceil((3 * heldBound(conns, size)) / conns / frameBytes(size)));
  return kind === 'call' || kind === 'notify' ? Math.min(n, MAX_INFLIGHT) : n;
}

/** What one attacker writes (the same Buffers for every attacker of a cell). */
function script(framing: Framing, kind: Kind, size: number, frames: number): Buffer[] {
  const payload = Buffer.from(cbor.encode(padOf(size)));
  assert.equal(payload.length, size);
  const parts: Buffer[] = [];
  if (framing === 'base') {
    const frame = baseFrame('hold', payload);
    for (let i = 0; i < frames; i++) parts.push(frame);
  } else if (kind === 'call' || kind === 'notify') {
    const notify = extendedHeader([2, 'hold'], size);
    for (let i = 0; i < frames; i++) parts.push(kind === 'call' ? extendedHeader([1, i + 1, 'hold'], size) : notify, payload);
  } else if (kind === 'item-up') {
    for (let id = 1, sent = 0; sent < frames; id++) {
      parts.push(extendedHeader([1, id, 'sink', { stream: true }], 0));
      for (let k = 0; k < WINDOW && sent < frames; k++, sent++) parts.push(extendedHeader([6, id], size), payload);
    }
  } else if (kind === 'item-down') {
    const params = Buffer.from(cbor.encode({ n: 1e9, size: padLength(size) }));
    const streams = Math.min(MAX_INFLIGHT, Math.ceil(frames / WINDOW));
    for (let id = 1; id <= streams; id++) parts.push(extendedHeader([1, id, 'stream'], params.length), params);
  }
  // Small parts go as one Buffer: fewer writes.
  return size < 64 * KiB ? [Buffer.concat(parts)] : parts;
}

/** Read exactly `n` bytes from a paused socket, then pause it again. */
async function readBytes(s: Socket, n: number): Promise<void> {
  let got = 0;
  await new Promise<void>((resolve, reject) => {
    const onData = (d: Buffer) => {
      got += d.length;
      if (got >= n) done();
    };
    const timer = setTimeout(() => done(new Error(`${got} of ${n} bytes`)), 10_000);
    const done = (err?: Error) => {
      clearTimeout(timer);
      s.off('data', onData);
      s.pause();
      if (err) reject(err);
      else resolve();
    };
    s.on('data', onData);
    s.resume();
  });
}

const subscribeFrame = (): Buffer => {
  const params = Buffer.from(cbor.encode({ event: 'tick' }));
  return Buffer.concat([extendedHeader([1, 1, '$ipcbor.subscribe'], params.length), params]);
};
/** RESULT [4, 1] null: a u32, a 3-byte head, a u32, and 0xf6. */
const SUBSCRIBED_BYTES = 4 + 3 + 4 + 1;

/** Connect, again while the listen backlog is full (EAGAIN: the server is busy accepting). */
async function dial(address: string): Promise<Socket> {
  for (let i = 0; ; i++) {
    try {
      return await rawConnect(address);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN' || i >= 200) throw err;
      await sleep(20);
    }
  }
}

async function attacker(address: string, framing: Framing, subscribe: boolean, into: Socket[]): Promise<void> {
  const s = await dial(address);
  into.push(s);
  s.on('error', () => {});
  if (framing === 'extended') await rawHello(s);
  else s.pause();
  if (subscribe) {
    s.write(subscribeFrame());
    await readBytes(s, SUBSCRIBED_BYTES);
  }
}

/** Open `n` attackers into `into`, fifty at a time (the listen backlog). */
async function attackers(address: string, n: number, framing: Framing, subscribe: boolean, into: Socket[]): Promise<void> {
  for (let i = 0; i < n; i += 50) await Promise.all(Array.from({ length: Math.min(50, n - i) }, () => attacker(address, framing, subscribe, into)));
}

interface Env {
  child: ChildServer;
  ctl: Client;
}

async function start(server: ServerKind): Promise<Env> {
  const address = `unix:${tempSocket()}`;
  const child = await startServer({ address, control: `unix:${tempSocket('ctl.sock')}`, server, options: unbounded(LIMITS), vmemMb: VMEM_MB });
  const ctl = await connect(child.control!);
  return { child, ctl };
}

async function stop(env: Env | undefined): Promise<void> {
  env?.ctl.destroy();
  await env?.child.kill();
}

function deathOf(child: ChildServer): string {
  const { exitCode: code, signalCode: signal } = child.proc;
  if (code === NEGATIVE_EXIT) return 'a byte budget went below zero';
  return `the server died (${code ?? signal})`;
}

/** Race `p` against `ms`, and against the child's death. */
async function within<T>(env: Env, p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms))),
      env.child.exited.then(() => assert.fail(`${what}: ${deathOf(env.child)}`)),
    ]);
  } finally {
    // A timer left behind would keep the test file's process alive that long after its last cell.
    clearTimeout(timer);
  }
}

const stats = (env: Env) => within(env, env.ctl.call<Stats>('stats'), 10_000, 'stats');
const memOf = (env: Env) => within(env, env.ctl.call<Mem>('mem'), 10_000, 'mem');

/** Wait until the server stops taking: its budget, bytes read and waiting calls unchanged for a while. */
function settle(env: Env): Promise<boolean> {
  return settled(async () => {
    const s = await stats(env);
    return `${s.held}/${s.bytesRead}/${s.waiting}`;
  }, 400, 20_000);
}

/** A fresh client is served: `version`, and for lazy and loop a call the application answers. */
async function served(env: Env, server: ServerKind): Promise<void> {
  const client = await within(env, connect(env.child.address), 5000, 'a fresh client connects');
  try {
    const calls = Promise.all([client.call('version'), ...(server === 'serve' ? [] : [client.call('app')])]);
    let done = false;
    void calls.finally(() => (done = true)).catch(() => {});
    // The lazy application runs parked calls when told to.
    const polling = (async () => {
      while (server === 'lazy' && !done && env.child.alive()) {
        await env.ctl.call('poll');
        await sleep(20);
      }
    })();
    assert.deepEqual(await within(env, calls, 5000, 'a fresh client is served'), server === 'serve' ? ['1.0.0'] : ['1.0.0', 'app']);
    await polling;
  } finally {
    client.destroy();
  }
}

interface Cell {
  server: ServerKind;
  framing: Framing;
  kind: Kind;
  size: number;
  conns: number;
}

const sizeName = (n: number) => (n >= MiB ? `${n / MiB} MiB` : `${n / KiB} KiB`);

/**
 * Run one cell; returns what failed (empty: nothing). A cell that leaves
 * its server unusable (dead, or holding what its attackers made it hold)
 * says so in `fresh`: the next cell gets a new server.
 */
async function runCell(env: Env, cell: Cell): Promise<{ failures: string[]; fresh: boolean }> {
  const { server, framing, kind, size, conns } = cell;
  const name = `${server} ${framing} ${kind} ${sizeName(size)} x${conns}`;
  const failures: string[] = [];
  const baseline = await memOf(env);
  await env.ctl.call('reset');
  const sockets: Socket[] = [];
  const frames = framesPer(conns, size, kind);
  let s: Stats | undefined;
  let mem: Mem | undefined;
  let quiet = false;
  try {
    await attackers(env.child.address, conns, framing, kind === 'event', sockets);
    if (kind === 'event') {
      await within(env, env.ctl.call('fire', { n: frames, size }), 60_000, 'fire');
    } else {
      const parts = script(framing, kind, size, frames);
      for (const sock of sockets) writeMany(sock, parts, 1);
    }
    quiet = await settle(env);
    if (server === 'lazy' && kind === 'item-down') {
      // The application gets to the streams: they run, and are never read.
      await env.ctl.call('poll');
      quiet = await settle(env);
    }
    s = await stats(env);
    mem = await memOf(env);
  } catch (err) {
    failures.push(String(err instanceof Error ? err.message : err));
  } finally {
    for (const sock of sockets) sock.destroy();
  }
  // The application gets to what it held: answers are written, and fail on the sockets gone.
  if (env.child.alive()) await within(env, env.ctl.call('release'), 10_000, 'release').catch((err: unknown) => failures.push(String(err instanceof Error ? err.message : err)));

  const bound = heldBound(conns, size);
  const memMax = memBound(baseline, conns, size);
  if (s && mem) {
    const line = {
      cell: name,
      offered: mb(conns * frames * frameBytes(size)),
      peak: mb(s.peak),
      read: mb(s.bytesRead),
      maxSocketRead: mb(s.maxSocketRead),
      bound: mb(bound),
      mem: mb(held(mem) - held(baseline)),
      memBound: mb(memMax - held(baseline)),
      rss: mb(mem.rss),
      waiting: s.waiting,
    };
    console.log(`# matrix ${JSON.stringify(line)}`);
    if (!quiet) failures.push(`the server did not stop taking (its budget and bytes read did not settle)`);
    if (s.peak > bound && kind !== 'event') failures.push(`the server budget peaked at ${mb(s.peak)}, over ${mb(bound)}`);
    if (s.bytesRead > bound) failures.push(`the server read ${mb(s.bytesRead)} from its sockets, over ${mb(bound)}`);
    if (held(mem) > memMax) failures.push(`live memory after GC ${mb(held(mem) - held(baseline))} over the baseline, bound ${mb(memMax - held(baseline))}`);
  }
  if (!env.child.alive()) return { failures: [...failures, deathOf(env.child)], fresh: true };

  // Everything the attackers made the server hold is given back: wait for
  // 0, or for the server to stop changing (it then holds on for ever).
  let last: Stats = await stats(env);
  const deadline = Date.now() + 15_000;
  while ((last.held !== 0 || last.sockets !== 0) && Date.now() < deadline) {
    // Frames still in the decoder are delivered and run (and held) as the server reads on: let those go too.
    if (env.child.alive()) await env.ctl.call('release');
    await sleep(50);
    last = await stats(env);
  }
  // What waking the waiting connections cost, the attackers' leaving included (N² re-checks, once).
  const recheckBound = RECHECKS_PER_CONN * conns + WAKE_SLICE;
  if (last.rechecks > recheckBound) failures.push(`the server re-checked waiting connections ${last.rechecks} times, over ${recheckBound}`);
  if (last.held !== 0 || last.sockets !== 0) failures.push(`once the attackers left, the server still holds ${last.held} bytes for ${last.sockets} of their sockets`);
  try {
    await served(env, server);
  } catch (err) {
    failures.push(String(err instanceof Error ? err.message : err));
  }
  if (!env.child.alive()) failures.push(deathOf(env.child));
  return { failures, fresh: failures.length > 0 };
}

/** The whole matrix against one kind of server, one cell after the other. */
/**
 * Every cell against serve(). Against the lazy server and the event loop,
 * which share all but their executor with it, every shape and size with one
 * connection and the smallest and largest size with 1,000, unless
 * IPCBOR_MATRIX=full (CI sets it) asks for every cell there too.
 */
const everyCell = (server: ServerKind, size: number, conns: number): boolean =>
  server === 'serve' || process.env.IPCBOR_MATRIX === 'full' || conns === 1 || size === SIZES[0] || size === SIZES.at(-1);

/**
 * The cells of `server` with the kinds `kinds` (calls, or streams and
 * events: each half in a file of its own, so that each file stays well
 * within the test runner's time for one file, even on a loaded machine).
 */
export function matrix(server: ServerKind, kinds: 'calls' | 'streams'): void {
  const shapes = SHAPES.filter(([, kind]) => (kind === 'call' || kind === 'notify') === (kinds === 'calls'));
  describe(`attack matrix: ${server}, ${kinds}`, { concurrency: 1 }, () => {
    let env: Env | undefined;
    after(() => stop(env));
    for (const [framing, kind] of shapes) {
      for (const size of SIZES) {
        for (const conns of CONNECTIONS) {
          if (!everyCell(server, size, conns)) continue;
          it(`${framing} ${kind}, ${sizeName(size)}, ${conns} connection${conns > 1 ? 's' : ''}`, async () => {
            env ??= await start(server);
            const { failures, fresh } = await runCell(env, { server, framing, kind, size, conns }).catch((err: unknown) => ({
              failures: [String(err instanceof Error ? err.message : err)],
              fresh: true,
            }));
            // A cell that failed leaves the next a new server.
            if (fresh) {
              await stop(env);
              env = undefined;
            }
            assert.deepEqual(failures, [], failures.join('; '));
          });
        }
      }
    }
  });
}
