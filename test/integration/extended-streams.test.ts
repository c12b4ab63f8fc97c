/**
 * Streams of the extended protocol over real sockets (docs/PROTOCOL.md §11):
 * result streams from a handler's async iterable, streamed params from the
 * client, credit-based flow control, early stops on either side, errors in
 * mid-stream, and what the base framing does with them.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connect, IpcborError, RemoteError, serve, type CallContext, type Server } from '../../src/index.js';
import { tempSocket } from '../helpers.js';
import { codeOf, deferred, rejectsWith, sleep, type Deferred } from '../extended-helpers.js';

const unix = () => `unix:${tempSocket()}`;

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of iterable) out.push(x);
  return out;
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/** What the streaming handlers report to the test, per call. */
interface Probe {
  produced: number;
  consumed: number;
  maxAhead: number;
  finished: Deferred<void>;
  aborted: Deferred<unknown>;
}

function probe(): Probe {
  return { produced: 0, consumed: 0, maxAhead: 0, finished: deferred(), aborted: deferred() };
}

describe('extended protocol: result streams', () => {
  let server: Server;
  let address: string;
  let p: Probe = probe();

  before(async () => {
    server = await serve(
      {
        count: (params: { n: number }) =>
          (async function* () {
            for (let i = 0; i < params.n; i++) yield i;
          })(),
        /** Records how far it has produced ahead of what the test says it consumed. */
        metered: (params: { n: number }) =>
          (async function* () {
            for (let i = 0; i < params.n; i++) {
              p.produced++;
              p.maxAhead = Math.max(p.maxAhead, p.produced - p.consumed);
              yield i;
            }
          })(),
        /** Endless, with a finally and a signal the test can watch. */
        forever: (params: { delayMs?: number }, ctx: CallContext) => {
          const mine = p;
          ctx.signal.addEventListener('abort', () => mine.aborted.resolve(ctx.signal.reason), { once: true });
          return (async function* () {
            try {
              for (let i = 0; ; i++) {
                if (params.delayMs) await sleep(params.delayMs);
                mine.produced++;
                yield i;
              }
            } finally {
              mine.finished.resolve();
            }
          })();
        },
        failing: (params: { at: number; code?: string }) =>
          (async function* () {
            for (let i = 0; i < params.at; i++) yield i;
            if (params.code) throw new IpcborError(params.code, `custom failure at ${params.at}`);
            throw new Error(`broke at ${params.at}`);
          })(),
        big: () => {
          const mine = p;
          return (async function* () {
            try {
              yield 'a'.repeat(10);
              yield 'b'.repeat(2000);
              yield 'c';
            } finally {
              mine.finished.resolve();
            }
          })();
        },
        ping: () => 'pong',
      },
      unix(),
    );
    address = server.addresses[0]!;
  });
  after(() => server.close());

  it('resolves a call to an async iterable that yields all 1,000 items in order', async () => {
    await using client = await connect(address);
    const stream = await client.call<AsyncIterable<number>>('count', { n: 1000 });
    assert.equal(typeof stream[Symbol.asyncIterator], 'function');
    assert.deepEqual(await collect(stream), range(1000));
    assert.deepEqual(await collect(await client.call<AsyncIterable<number>>('count', { n: 0 })), [], 'an empty stream ends at once');
    assert.equal(client.inflight, 0);
  });

  it('keeps the producer within the client\'s window of the consumer (credit flow control)', async () => {
    const window = 4;
    p = probe();
    await using client = await connect(address, { window });
    for await (const _ of await client.call<AsyncIterable<number>>('metered', { n: 40 })) {
      p.consumed++;
      await sleep(1); // a slow consumer
    }
    assert.equal(p.consumed, 40);
    assert.ok(p.maxAhead <= window + 1, `the generator ran ${p.maxAhead} items ahead with a window of ${window}`);
    assert.ok(p.maxAhead >= 2, 'items were pipelined, not sent in lockstep');
  });

  it('stops the server\'s generator when the client breaks early: its finally runs and the handler\'s signal aborts', async () => {
    p = probe();
    const mine = p;
    await using client = await connect(address);
    const got: number[] = [];
    for await (const x of await client.call<AsyncIterable<number>>('forever', {})) {
      got.push(x);
      if (got.length === 10) break;
    }
    assert.deepEqual(got, range(10));
    await mine.finished.promise;
    assert.equal(codeOf(await mine.aborted.promise), 'IPCBOR_ERR_CANCELLED');
    assert.ok(mine.produced <= 10 + 64, `at most a window beyond what was read (${mine.produced})`);
    assert.equal(client.inflight, 0);
    assert.equal(await client.call('ping'), 'pong');
  });

  it('fails the iteration with IPCBOR_ERR_CANCELLED when the call\'s signal aborts mid-stream, and stops the generator', async () => {
    p = probe();
    const mine = p;
    await using client = await connect(address, { window: 8 });
    const ac = new AbortController();
    const stream = await client.call<AsyncIterable<number>>('forever', {}, { signal: ac.signal });
    const got: number[] = [];
    const err = await rejectsWith(
      (async () => {
        for await (const x of stream) {
          got.push(x);
          if (got.length === 5) ac.abort();
        }
      })(),
      'IPCBOR_ERR_CANCELLED',
    );
    assert.equal(err.method, 'forever');
    assert.deepEqual(got, range(got.length));
    assert.ok(got.length >= 5 && got.length <= 5 + 8, `items read after the abort are only those already buffered (${got.length})`);
    await mine.finished.promise;
    assert.equal(codeOf(await mine.aborted.promise), 'IPCBOR_ERR_CANCELLED');
    assert.equal(await client.call('ping'), 'pong');
  });

  it('fails the iteration with IPCBOR_ERR_TIMEOUT when the call\'s timeout passes mid-stream', async () => {
    p = probe();
    const mine = p;
    await using client = await connect(address);
    const stream = await client.call<AsyncIterable<number>>('forever', { delayMs: 5 }, { timeout: 60 });
    const got: number[] = [];
    await rejectsWith(
      (async () => {
        for await (const x of stream) got.push(x);
      })(),
      'IPCBOR_ERR_TIMEOUT',
    );
    assert.ok(got.length >= 1);
    assert.deepEqual(got, range(got.length));
    await mine.finished.promise;
    await mine.aborted.promise;
    assert.equal(client.inflight, 0);
    assert.equal(await client.call('ping'), 'pong');
  });

  it('delivers the items before a generator\'s error, then rejects with its code and message', async () => {
    await using client = await connect(address);
    const got: number[] = [];
    const stream = await client.call<AsyncIterable<number>>('failing', { at: 5 });
    const err = await rejectsWith(
      (async () => {
        for await (const x of stream) got.push(x);
      })(),
      'IPCBOR_ERR_HANDLER',
    );
    assert.deepEqual(got, range(5));
    assert.ok(err instanceof RemoteError);
    assert.equal(err.message, 'broke at 5');
    assert.equal(err.method, 'failing');

    const custom = await rejectsWith(collect(await client.call<AsyncIterable<number>>('failing', { at: 3, code: 'APP_ERR_DISK' })), 'APP_ERR_DISK');
    assert.equal(custom.message, 'custom failure at 3');
    // A generator that fails before its first item fails the call itself.
    await rejectsWith(client.call('failing', { at: 0 }), 'IPCBOR_ERR_HANDLER');
    assert.equal(await client.call('ping'), 'pong');
  });

  it('fails a stream whose item is over the client\'s maxFrameBytes with IPCBOR_ERR_FRAME_TOO_LARGE, closing the generator', async () => {
    p = probe();
    const mine = p;
    await using client = await connect(address, { maxFrameBytes: 1024 });
    const got: string[] = [];
    await rejectsWith(
      (async () => {
        for await (const x of await client.call<AsyncIterable<string>>('big')) got.push(x);
      })(),
      'IPCBOR_ERR_FRAME_TOO_LARGE',
    );
    assert.deepEqual(got, ['a'.repeat(10)]);
    await mine.finished.promise;
    assert.equal(await client.call('ping'), 'pong');
  });

  it('streams over TCP too', async () => {
    await using tcp = await serve({ count: (params: { n: number }) => (async function* () { for (let i = 0; i < params.n; i++) yield { i, text: `item ${i}` }; })() }, 'tcp:127.0.0.1:0');
    await using client = await connect(tcp.addresses[0]!, { window: 8 });
    const items = await collect(await client.call<AsyncIterable<{ i: number; text: string }>>('count', { n: 500 }));
    assert.deepEqual(items, range(500).map((i) => ({ i, text: `item ${i}` })));
  });

  it('keeps streaming beyond the window when the connection is at maxInflight', async () => {
    const local = await serve({ count: (params: { n: number }) => (async function* () { for (let i = 0; i < params.n; i++) yield i; })() }, unix(), { maxInflight: 1 });
    const client = await connect(local.addresses[0]!, { window: 4 });
    try {
      // The timeout turns a stall into a failure: far above the time it takes.
      const stream = await client.call<AsyncIterable<number>>('count', { n: 20 }, { timeout: 20_000 });
      assert.deepEqual(await collect(stream), range(20));
    } finally {
      client.destroy();
      local.destroy();
    }
  });
});

describe('extended protocol: streamed params', () => {
  let server: Server;
  let address: string;
  const seenTypes: string[] = [];

  before(async () => {
    server = await serve(
      {
        sum: async (params: AsyncIterable<number>) => {
          seenTypes.push(typeof params[Symbol.asyncIterator]);
          let sum = 0;
          let n = 0;
          for await (const x of params) {
            sum += x;
            n++;
          }
          return { sum, n };
        },
        sumCatching: async (params: AsyncIterable<number>) => {
          let seen = 0;
          try {
            for await (const _ of params) seen++;
            return { seen };
          } catch (err) {
            return { seen, code: (err as IpcborError).code, message: (err as IpcborError).message };
          }
        },
        firstThree: async (params: AsyncIterable<number>) => {
          const got: number[] = [];
          for await (const x of params) {
            got.push(x);
            if (got.length === 3) break;
          }
          return got;
        },
        ping: () => 'pong',
      },
      unix(),
    );
    address = server.addresses[0]!;
  });
  after(() => server.close());

  it('hands a client\'s async generator to the handler as an async iterable', async () => {
    await using client = await connect(address);
    async function* numbers() {
      for (let i = 0; i < 1000; i++) yield i;
    }
    assert.deepEqual(await client.call('sum', numbers()), { sum: 499500, n: 1000 });
    assert.deepEqual(seenTypes, ['function']);
    // With pauses in the source, so items arrive in many reads and credit is granted many times.
    async function* slowly() {
      for (let i = 1; i <= 100; i++) {
        if (i % 10 === 0) await sleep(1);
        yield i;
      }
    }
    assert.deepEqual(await client.call('sum', slowly()), { sum: 5050, n: 100 });
    assert.equal(client.inflight, 0);
  });

  it('fails the handler\'s iteration with the code and message of a client source that throws', async () => {
    await using client = await connect(address);
    async function* breaks() {
      yield 1;
      yield 2;
      yield 3;
      throw new Error('source broke');
    }
    assert.deepEqual(await client.call('sumCatching', breaks()), { seen: 3, code: 'IPCBOR_ERR_HANDLER', message: 'source broke' });
    async function* breaksWithCode() {
      yield 1;
      throw new IpcborError('APP_ERR_READ', 'disk read failed');
    }
    assert.deepEqual(await client.call('sumCatching', breaksWithCode()), { seen: 1, code: 'APP_ERR_READ', message: 'disk read failed' });
  });

  it('stops the client\'s generator (its finally runs) when the handler stops reading early', async () => {
    await using client = await connect(address);
    const finished = deferred();
    let produced = 0;
    async function* endless() {
      try {
        for (let i = 0; ; i++) {
          produced++;
          yield i;
        }
      } finally {
        finished.resolve();
      }
    }
    assert.deepEqual(await client.call('firstThree', endless()), [0, 1, 2]);
    await finished.promise;
    assert.ok(produced <= 3 + 64 + 1, `the source stopped within a window (${produced} items)`);
    assert.equal(await client.call('ping'), 'pong');
  });

  it('closes the client\'s generator when the call is aborted', async () => {
    await using client = await connect(address);
    const finished = deferred();
    async function* endless() {
      try {
        for (let i = 0; ; i++) {
          await sleep(1);
          yield i;
        }
      } finally {
        finished.resolve();
      }
    }
    const ac = new AbortController();
    const call = client.call('sum', endless(), { signal: ac.signal });
    await sleep(10);
    ac.abort();
    await rejectsWith(call, 'IPCBOR_ERR_CANCELLED');
    await finished.promise;
    assert.equal(await client.call('ping'), 'pong');
  });

  it('accepts streamed params when the connection is at maxInflight', async () => {
    const local = await serve(
      {
        sum: async (params: AsyncIterable<number>) => {
          let s = 0;
          for await (const x of params) s += x;
          return s;
        },
      },
      unix(),
      { maxInflight: 1 },
    );
    const client = await connect(local.addresses[0]!);
    try {
      async function* slowly() {
        for (let i = 0; i < 10; i++) {
          await sleep(1);
          yield i;
        }
      }
      // The timeout only turns a hang (items refused at maxInflight) into a failure: far above the time it takes.
      assert.equal(await client.call('sum', slowly(), { timeout: 20_000 }), 45);
    } finally {
      client.destroy();
      local.destroy();
    }
  });
});

describe('streams over the base framing', () => {
  it('refuses streamed params with IPCBOR_ERR_NOT_SUPPORTED without starting the source', async () => {
    await using server = await serve({ sum: async () => 0, ping: () => 'pong' }, unix());
    await using client = await connect(server.addresses[0]!, { protocol: 'base' });
    let started = false;
    async function* source() {
      started = true;
      yield 1;
    }
    await rejectsWith(client.call('sum', source()), 'IPCBOR_ERR_NOT_SUPPORTED');
    assert.equal(started, false);
    assert.equal(await client.call('ping'), 'pong');
  });

  it('answers a base-framing client whose handler returns a stream with an error, and closes the stream', async () => {
    let generator: AsyncGenerator<number> | undefined;
    await using server = await serve(
      {
        one: () =>
          (generator = (async function* () {
            yield 1;
          })()),
      },
      unix(),
    );
    await using client = await connect(server.addresses[0]!, { protocol: 'base' });
    await rejectsWith(client.call('one'), 'IPCBOR_ERR_REMOTE');
    assert.deepEqual(await generator!.next(), { value: undefined, done: true }, 'the server closed the generator');
  });
});
