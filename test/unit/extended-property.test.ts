/**
 * Property test of the extended protocol over ONE real connection (a unix
 * socket, despite this folder's name): random interleavings of calls with
 * small delays, calls aborted at random times, calls with short timeouts,
 * result streams read fully or broken early, and events emitted by the
 * server. Every call settles exactly once with the expected outcome, every
 * stream read fully yields exactly its items, every event arrives in order,
 * nothing is left running on either side, and the connection still answers.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { connect, IpcborError, serve, type CallContext, type Server } from '../../src/index.js';
import { tempSocket } from '../helpers.js';
import { sleep, untilAborted, waitFor } from '../extended-helpers.js';

type Op =
  | { kind: 'call'; at: number; ms: number; value: number }
  | { kind: 'abort'; at: number; after: number }
  | { kind: 'timeout'; at: number; timeout: number }
  | { kind: 'stream'; at: number; n: number; stopAt: number | null; pace: boolean }
  | { kind: 'emit'; at: number; count: number };

const at = fc.integer({ min: 0, max: 15 });
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('call' as const), at, ms: fc.integer({ min: 0, max: 15 }), value: fc.integer() }),
  fc.record({ kind: fc.constant('abort' as const), at, after: fc.integer({ min: 0, max: 10 }) }),
  fc.record({ kind: fc.constant('timeout' as const), at, timeout: fc.integer({ min: 1, max: 20 }) }),
  fc.record({
    kind: fc.constant('stream' as const),
    at,
    n: fc.integer({ min: 0, max: 40 }),
    stopAt: fc.option(fc.integer({ min: 0, max: 40 }), { nil: null }),
    pace: fc.boolean(),
  }),
  fc.record({ kind: fc.constant('emit' as const), at, count: fc.integer({ min: 1, max: 5 }) }),
);

/** Sleep that ends early (rejecting) when the signal fires. */
function sleepUnless(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

type Outcome = { ok: unknown } | { code: string };

describe('extended protocol: random interleavings on one connection (property)', () => {
  let server: Server;
  let address: string;
  /** Handlers and generators running on the server now. */
  const live = { hangs: 0, generators: 0 };

  before(async () => {
    server = await serve(
      {
        value: async (p: { ms: number; value: number }, ctx: CallContext) => {
          if (p.ms > 0) await sleepUnless(p.ms, ctx.signal);
          return p.value;
        },
        hang: async (_p: unknown, ctx: CallContext) => {
          live.hangs++;
          try {
            return await untilAborted(ctx.signal);
          } finally {
            live.hangs--;
          }
        },
        items: (p: { n: number; pace: boolean }) =>
          (async function* () {
            live.generators++;
            try {
              for (let i = 0; i < p.n; i++) {
                if (p.pace && i % 4 === 3) await sleep(1);
                yield i;
              }
            } finally {
              live.generators--;
            }
          })(),
        ping: () => 'pong',
      },
      `unix:${tempSocket()}`,
    );
    address = server.addresses[0]!;
  });
  after(() => server.close());

  it('settles every call once with its expected outcome, streams exactly, events in order, nothing left over', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 16 }), async (ops) => {
        const client = await connect(address, { window: 4 });
        try {
          const received: number[] = [];
          const sub = client.subscribe<number>('ev', (seq) => received.push(seq));
          await sub.ready;
          let emitted = 0;
          const settlements = new Array<number>(ops.length).fill(0);

          const settle = async (i: number, p: Promise<unknown>): Promise<Outcome> => {
            try {
              const value = await p;
              settlements[i]!++;
              return { ok: value };
            } catch (err) {
              settlements[i]!++;
              assert.ok(err instanceof IpcborError, String(err));
              return { code: err.code };
            }
          };

          const run = async (o: Op, i: number): Promise<{ got: Outcome; want: Outcome } | undefined> => {
            await sleep(o.at);
            switch (o.kind) {
              case 'call':
                return { got: await settle(i, client.call('value', { ms: o.ms, value: o.value })), want: { ok: o.value } };
              case 'abort': {
                const ac = new AbortController();
                const p = client.call('hang', {}, { signal: ac.signal });
                if (o.after === 0) ac.abort();
                else setTimeout(() => ac.abort(), o.after);
                return { got: await settle(i, p), want: { code: 'IPCBOR_ERR_CANCELLED' } };
              }
              case 'timeout':
                return { got: await settle(i, client.call('hang', {}, { timeout: o.timeout })), want: { code: 'IPCBOR_ERR_TIMEOUT' } };
              case 'stream': {
                const read = async () => {
                  const stream = await client.call<AsyncIterable<number>>('items', { n: o.n, pace: o.pace });
                  const got: number[] = [];
                  if (o.stopAt === 0) {
                    await stream[Symbol.asyncIterator]().return?.();
                    return got;
                  }
                  for await (const x of stream) {
                    got.push(x);
                    if (got.length === o.stopAt) break;
                  }
                  return got;
                };
                const take = o.stopAt === null ? o.n : Math.min(o.n, o.stopAt);
                return { got: await settle(i, read()), want: { ok: Array.from({ length: take }, (_, k) => k) } };
              }
              case 'emit':
                for (let k = 0; k < o.count; k++) assert.equal(server.emit('ev', emitted++), 1);
                settlements[i]!++;
                return undefined;
            }
          };

          const results = await Promise.all(ops.map(run));
          results.forEach((r, i) => {
            if (r) assert.deepEqual(r.got, r.want, `op ${i}: ${JSON.stringify(ops[i])}`);
          });
          await sleep(0);
          assert.deepEqual(settlements, new Array<number>(ops.length).fill(1), 'each settled exactly once');

          await waitFor(() => received.length >= emitted, `${emitted} events`, 2000);
          assert.deepEqual(received, Array.from({ length: emitted }, (_, k) => k), 'every event, in order');
          assert.equal(client.inflight, 0);
          assert.equal(await client.call('ping'), 'pong');
          // Every abort, timeout and early break reached the server.
          await waitFor(() => live.hangs === 0 && live.generators === 0, `the server to stop (hangs ${live.hangs}, generators ${live.generators})`, 2000);
          await sub.unsubscribe();
        } finally {
          client.destroy();
        }
      }),
      { numRuns: 30 },
    );
  });
});
