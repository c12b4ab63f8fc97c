/**
 * Streams take turns to make their items (src/core/peer/turns.ts). A
 * source that waits (a watch stream waiting for the next change, an upload
 * whose next item depends on another call) must not hold up the other
 * streams: it lets the next one go after a turn of the event loop. And
 * events held back for want of room leave once room is released.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { connect, serve } from '../../src/index.js';
import { ITEMS_PER_TURN } from '../../src/core/constants.js';
import { afterIo, clockFor } from '../../src/core/peer/turns.js';
import { cbor } from '../../src/core/codec/cbor.js';
import { serveWith } from '../../src/node/server.js';
import { deferred, RawExtended, waitFor } from '../extended-helpers.js';
import { tempSocket } from '../helpers.js';

const MiB = 1024 * 1024;

describe('write turns', () => {
  it('a result stream waiting for something does not hold up another stream on the same connection', async () => {
    const change = deferred<void>();
    const started = deferred<void>();
    const server = await serve(
      {
        watch: async function* () {
          started.resolve();
          await change.promise;
          yield 'changed';
        },
        range: async function* (p: { n: number }) {
          for (let i = 0; i < p.n; i++) yield i;
        },
      },
      `unix:${tempSocket()}`,
    );
    const client = await connect(server.addresses[0]!);
    try {
      const watch = client.call<AsyncIterable<string>>('watch');
      await started.promise;
      // The watch stream has asked its source and waits: range must still finish.
      const got: number[] = [];
      for await (const x of await client.call<AsyncIterable<number>>('range', { n: 3 })) got.push(x);
      assert.deepEqual(got, [0, 1, 2]);
      change.resolve();
      const seen: string[] = [];
      for await (const x of await watch) seen.push(x);
      assert.deepEqual(seen, ['changed']);
    } finally {
      await client.close();
      await server.close();
    }
  });

  it('an upload whose next item waits on another upload call does not deadlock either', async () => {
    const server = await serve(
      {
        sum: async (input: AsyncIterable<number>) => {
          let s = 0;
          for await (const x of input) s += x;
          return s;
        },
      },
      `unix:${tempSocket()}`,
    );
    const client = await connect(server.addresses[0]!);
    try {
      const second = deferred<Promise<number>>();
      const first = client.call<number>(
        'sum',
        (async function* () {
          yield await (await second.promise);
        })(),
      );
      const b = client.call<number>(
        'sum',
        (async function* () {
          yield 1;
          yield 2;
        })(),
      );
      second.resolve(b);
      assert.deepEqual(await Promise.all([first, b]), [3, 3]);
    } finally {
      await client.close();
      await server.close();
    }
  });
});

describe('write turns and the server budget', () => {
  it('a stream that asked for the turn while another filled the server budget gets it once those bytes leave', { timeout: 20_000 }, async () => {
    // `big` takes the turn and waits; `go` lets it go in the same read as
    // `range` asks for the turn: big's item fills more than half the server
    // budget before range's turn comes. Range must then wait for those
    // bytes to leave, not be dropped from the turns for good.
    const gate = deferred<void>();
    const server = await serve(
      {
        big: async function* () {
          await gate.promise;
          yield new Uint8Array(1.5 * MiB);
        },
        go: () => (gate.resolve(), true),
        range: async function* (p: { n: number }) {
          for (let i = 0; i < p.n; i++) yield i;
        },
      },
      `unix:${tempSocket()}`,
      { maxServerBytes: 2 * MiB },
    );
    const a = await connect(server.addresses[0]!);
    const b = await connect(server.addresses[0]!);
    try {
      const big = (async () => {
        let n = 0;
        for await (const x of await a.call<AsyncIterable<Uint8Array>>('big')) n += x.length;
        return n;
      })();
      // big's source waits for `go`: the turn is held.
      await waitFor(() => server.connections === 2, 'two connections');
      const range = (async () => {
        const got: number[] = [];
        for await (const x of await b.call<AsyncIterable<number>>('range', { n: 3 })) got.push(x);
        return got;
      })();
      // Written in the same tick as range's call: the server reads both at once.
      await b.call('go');
      assert.equal(await big, 1.5 * MiB);
      assert.deepEqual(await range, [0, 1, 2]);
    } finally {
      a.destroy();
      b.destroy();
      await server.close();
    }
  });

  it(`streams with credit make at most ITEMS_PER_TURN (${ITEMS_PER_TURN}) items in one turn of the event loop, then let I/O in`, async () => {
    const clock = clockFor(afterIo);
    const perTurn = new Map<number, number>();
    const server = await serve(
      {
        range: async function* (p: { n: number }) {
          for (let i = 0; i < p.n; i++) {
            perTurn.set(clock.turn, (perTurn.get(clock.turn) ?? 0) + 1);
            yield i;
          }
        },
      },
      `unix:${tempSocket()}`,
    );
    const client = await connect(server.addresses[0]!);
    try {
      // 20 streams of 64 small items (each within its first credit): far
      // under any byte bound, so only the per-turn limit stops them.
      const streams = 20;
      const sums = await Promise.all(
        Array.from({ length: streams }, async () => {
          let n = 0;
          for await (const _ of await client.call<AsyncIterable<number>>('range', { n: 64 })) n++;
          return n;
        }),
      );
      assert.deepEqual(sums, Array(streams).fill(64));
      const most = Math.max(...perTurn.values());
      assert.ok(most <= ITEMS_PER_TURN, `${most} items in one turn (turns: ${[...perTurn.values()].join(', ')})`);
    } finally {
      await client.close();
      await server.close();
    }
  });
});

describe('events held back for want of room', () => {
  it('leave once the subscriber is back within its budget, all of them, in order', async () => {
    const bigStarted = deferred<void>();
    const bigGate = deferred<void>();
    let emit!: (n: number) => void;
    const server = await serve(
      {
        // Holds its 1.5 MiB params (over maxConnectionBytes) until let go.
        big: async (p: { pad: Uint8Array }) => {
          bigStarted.resolve();
          await bigGate.promise;
          return p.pad.length;
        },
        fire: (p: { n: number }) => (emit(p.n), true),
      },
      `unix:${tempSocket()}`,
      { maxConnectionBytes: 1 * MiB },
    );
    emit = (n) => {
      for (let i = 0; i < n; i++) server.emit('tick', { i });
    };
    const sub = await connect(server.addresses[0]!);
    const other = await connect(server.addresses[0]!);
    try {
      const got: unknown[] = [];
      await sub.subscribe('tick', (p) => void got.push(p)).ready;
      const big = sub.call('big', { pad: new Uint8Array(1.5 * 1024 * 1024) });
      await bigStarted.promise;
      // While `sub` holds more than its budget in a call, its events still come.
      await other.call('fire', { n: 3 });
      bigGate.resolve();
      assert.equal(await big, 1.5 * 1024 * 1024);
      await waitFor(() => got.length === 3, `three events (got ${JSON.stringify(got)})`);
      assert.deepEqual(got, [{ i: 0 }, { i: 1 }, { i: 2 }]);
    } finally {
      await sub.close();
      await other.close();
      await server.close();
    }
  });

  it('leave once the subscriber reads what was sent to it, though its writes never backed up (the server over half its budget)', async () => {
    const KiB = 1024;
    const path = tempSocket();
    const { server, core } = await serveWith({ hold: () => new Promise(() => {}) }, `unix:${path}`, { maxServerBytes: 2 * MiB }, undefined);
    const address = `unix:${path}`;
    const peers: RawExtended[] = [];
    try {
      // A call holding 1.2 MiB that never ends: the server is over half its bound, and fair shares apply.
      const holder = await RawExtended.open(address);
      peers.push(holder);
      holder.send([1, 1, 'hold'], new Uint8Array(1.2 * MiB));
      for (let i = 0; i < 6; i++) peers.push(await RawExtended.open(address));
      const sub = await RawExtended.open(address);
      peers.push(sub);
      sub.send([1, 1, '$ipcbor.subscribe'], { event: 'e' });
      await sub.next();
      await waitFor(() => core.budget.held > 1 * MiB, 'the held call');
      // The subscriber reads nothing for a while: what is sent to it takes its share, the rest waits.
      sub.pause();
      for (let seq = 0; seq < 40; seq++) {
        server.emit('e', { seq, pad: new Uint8Array(32 * KiB) });
        await new Promise((r) => setImmediate(r));
      }
      sub.resume();
      // It reads what was sent: the last event, held back, follows with no other event to push it.
      const seqs = () => sub.frames.filter((f) => f.head[0] === 9).map((f) => (cbor.decode(f.payload) as { seq: number }).seq);
      await waitFor(() => seqs().at(-1) === 39, `the last event (got ${seqs().slice(-3).join(', ')})`);
    } finally {
      for (const p of peers) p.destroy();
      await server.close();
    }
  });
});
