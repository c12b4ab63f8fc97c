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
import { deferred, waitFor } from '../extended-helpers.js';
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
});
