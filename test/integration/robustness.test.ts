/**
 * Regression tests for defects found in review: limits that must hold,
 * peers that misbehave, and shutdown paths that must complete.
 */
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import { z } from 'zod';
import { cbor, connect, defineService, IpcborError, method, s as schema, serve } from '../../src/index.js';
import type { CallContext } from '../../src/core/dispatcher.js';
import { hex, baseRequestHex } from '../fixtures/golden.js';
import { RawReader, rawConnect, tempSocket } from '../helpers.js';
import { deferred, RawExtended, rejectsWith, sleep, waitFor } from '../extended-helpers.js';

describe('limits hold', () => {
  it('base framing: answers owed behind a slow call count against maxInflight, so reading stops', async () => {
    const release = deferred();
    let fast = 0;
    await using server = await serve({ slow: () => release.promise.then(() => 'slow'), fast: () => ++fast }, `unix:${tempSocket()}`, { maxInflight: 4 });
    const s = await rawConnect(server.addresses[0]!);
    const r = new RawReader(s);
    const frames = [baseRequestHex('slow', 'a0'), ...Array.from({ length: 500 }, () => baseRequestHex('fast', 'a0'))];
    s.write(hex(frames.join('')));
    await sleep(100);
    assert.ok(fast <= 4, `only a bounded number of calls ran behind the slow one (${fast})`);
    release.resolve();
    for (let i = 0; i < 501; i++) assert.equal((await r.response()).ret, 0);
    assert.equal(fast, 500, 'every call ran once reading resumed');
    s.destroy();
  });

  it('clips a huge error message instead of sending a head the client must refuse', async () => {
    await using server = await serve({ boom: () => { throw new Error('x'.repeat(100_000)); }, ping: () => 'pong' }, `unix:${tempSocket()}`);
    await using client = await connect(server.addresses[0]!);
    const err = await rejectsWith(client.call('boom'), 'IPCBOR_ERR_HANDLER');
    assert.ok(err.message.length <= 4096 && err.message.endsWith('...'));
    assert.equal(await client.call('ping'), 'pong', 'the connection survived');
    // A validation message built from a huge unknown key, too.
    const baseClient = await connect(server.addresses[0]!, { protocol: 'base' });
    const e2 = await rejectsWith(baseClient.call('boom'), 'IPCBOR_ERR_REMOTE');
    assert.ok(e2.message.length <= 4096);
    await baseClient.close();
  });

  it('drops an event larger than the client accepts, and counts it, without closing the connection', async () => {
    await using server = await serve({ ping: () => 'pong' }, `unix:${tempSocket()}`);
    await using client = await connect(server.addresses[0]!, { maxFrameBytes: 1024 });
    const got: unknown[] = [];
    const sub = client.subscribe('e', (p) => got.push(p));
    await sub.ready;
    server.emit('e', 'y'.repeat(5000));
    server.emit('e', 'small');
    await waitFor(() => got.length === 1, 'the small event');
    assert.deepEqual(got, ['small']);
    assert.equal(sub.dropped, 1);
    assert.equal(await client.call('ping'), 'pong');
  });

  it('applies maxTimeout to base-framing calls too', async () => {
    await using server = await serve({ hang: (_p: unknown, ctx: CallContext) => new Promise((_r, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason))) }, `unix:${tempSocket()}`, { maxTimeout: 50 });
    await using client = await connect(server.addresses[0]!, { protocol: 'base' });
    const err = await rejectsWith(client.call('hang'), 'IPCBOR_ERR_REMOTE');
    assert.equal(err.message, 'deadline of 50 ms exceeded');
  });

  it('does not let notifications take the slots of calls', async () => {
    const release = deferred();
    await using server = await serve({ slow: () => release.promise, ping: () => 'pong' }, `unix:${tempSocket()}`, { maxInflight: 2 });
    await using client = await connect(server.addresses[0]!);
    client.notify('slow');
    client.notify('slow');
    assert.equal(await client.call('ping'), 'pong');
    release.resolve();
  });
});

describe('timeouts are checked', () => {
  it('refuses a negative or NaN timeout locally and treats one beyond 2^31-1 ms as none', async () => {
    await using server = await serve({ later: async () => { await sleep(20); return 'done'; } }, `unix:${tempSocket()}`);
    await using client = await connect(server.addresses[0]!);
    await assert.rejects(client.call('later', {}, { timeout: -1 }), RangeError);
    await assert.rejects(client.call('later', {}, { timeout: Number.NaN }), RangeError);
    assert.equal(await client.call('later', {}, { timeout: 30 * 24 * 3600 * 1000 }), 'done');
  });
});

describe('misbehaving peers', () => {
  it('closes an extended connection at once on a malformed frame, ending its calls', async () => {
    const aborted = deferred<unknown>();
    await using server = await serve({ hang: (_p: unknown, ctx: CallContext) => new Promise(() => ctx.signal.addEventListener('abort', () => aborted.resolve(ctx.signal.reason))) }, `unix:${tempSocket()}`);
    const raw = await RawExtended.open(server.addresses[0]!);
    raw.send([1, 1, 'hang']);
    await waitFor(() => server.connections === 1, 'connected');
    await sleep(10);
    raw.send([99, 1]);
    const frame = await raw.next();
    assert.deepEqual((frame.head as unknown[]).slice(0, 3), [5, 0, 'IPCBOR_ERR_BAD_FRAME']);
    await raw.closed(2000);
    assert.equal(((await aborted.promise) as IpcborError).code, 'IPCBOR_ERR_BAD_FRAME');
  });

  /** A server that accepts connections and never says a word. */
  async function withMuteServer(run: (address: string) => Promise<void>): Promise<void> {
    const path = tempSocket();
    const held: Socket[] = [];
    const mute = createServer((s) => held.push(s));
    await new Promise<void>((r) => mute.listen(path, r));
    try {
      await run(`unix:${path}`);
    } finally {
      for (const s of held) s.destroy();
      mute.close();
    }
  }

  it('gives up on a server that never answers the hello, within connectTimeout', () =>
    withMuteServer(async (address) => {
      const t0 = Date.now();
      await rejectsWith(connect(address, { connectTimeout: 200 }), 'IPCBOR_ERR_CONNECT');
      // Not the default connectTimeout (10 s), which cannot fire sooner: no race with the machine's speed.
      assert.ok(Date.now() - t0 < 10_000);
    }));

  it('cancels connecting through a signal', () =>
    withMuteServer(async (address) => {
      const ac = new AbortController();
      setTimeout(() => ac.abort(), 20);
      await rejectsWith(connect(address, { signal: ac.signal }), 'IPCBOR_ERR_CANCELLED');
    }));
});

describe('shutdown paths', () => {
  it('close() lets a long stream finish: credit keeps flowing while the server closes', async () => {
    await using server = await serve(
      {
        rows: async function* () {
          for (let i = 0; i < 300; i++) {
            if (i % 50 === 0) await sleep(1);
            yield i;
          }
        },
      },
      `unix:${tempSocket()}`,
      { closeTimeout: 5000 },
    );
    const client = await connect(server.addresses[0]!, { window: 8 });
    const stream = (await client.call('rows')) as AsyncIterable<number>;
    const closing = server.close();
    const got: number[] = [];
    for await (const n of stream) got.push(n);
    assert.equal(got.length, 300);
    await closing;
  });

  it('closes a stream returned after its call was cancelled', async () => {
    let closedSources = 0;
    await using server = await serve(
      {
        // A cursor: it holds its resource from the moment it exists, so
        // nobody reading it must still close it.
        late: async () => {
          await sleep(60);
          return {
            [Symbol.asyncIterator]: () => ({
              next: async () => ({ value: 1, done: false }),
              return: async () => {
                closedSources++;
                return { value: undefined, done: true };
              },
            }),
          };
        },
      },
      `unix:${tempSocket()}`,
    );
    await using client = await connect(server.addresses[0]!);
    const ac = new AbortController();
    const call = client.call('late', {}, { signal: ac.signal });
    setTimeout(() => ac.abort(), 10);
    await rejectsWith(call, 'IPCBOR_ERR_CANCELLED');
    await waitFor(() => closedSources === 1, 'the late stream closed', 2000);
  });

  it('destroy() after close() leaves a newer server at the same path alone', async () => {
    const path = tempSocket();
    const a = await serve({ ping: () => 'a' }, `unix:${path}`);
    await a.close();
    await using b = await serve({ ping: () => 'b' }, `unix:${path}`);
    a.destroy();
    assert.ok(existsSync(path));
    await using client = await connect(`unix:${path}`);
    assert.equal(await client.call('ping'), 'b');
  });

  it('creates unix sockets owner-only from the start', async () => {
    const path = tempSocket();
    await using server = await serve({ ping: () => 'pong' }, `unix:${path}`);
    const { statSync } = await import('node:fs');
    assert.equal(statSync(path).mode & 0o777, 0o600);
    void server;
  });
});

describe('codec edges', () => {
  it('refuses a Map with non-text keys, accepts one with text keys', () => {
    assert.throws(() => cbor.encode(new Map([[1, 2]])), (e: IpcborError) => e.code === 'IPCBOR_ERR_ENCODE');
    assert.deepEqual(cbor.decode(cbor.encode(new Map([['a', 1]]))), { a: 1 });
  });
});

describe('client and service layer (second review)', () => {
  it('close() lets an open result stream finish', async () => {
    await using server = await serve(
      {
        rows: async function* () {
          for (let i = 0; i < 5; i++) {
            await sleep(15);
            yield i;
          }
        },
      },
      `unix:${tempSocket()}`,
    );
    const client = await connect(server.addresses[0]!);
    const stream = await client.call<AsyncIterable<number>>('rows');
    const closing = client.close();
    const got: number[] = [];
    for await (const n of stream) got.push(n);
    await closing;
    assert.deepEqual(got, [0, 1, 2, 3, 4]);
  });

  it('in-process calls check timeouts like remote ones, and bound streams the same way', async () => {
    let aborted: unknown;
    const svc = defineService({
      name: 'x',
      version: '1',
      methods: {
        later: method({ handler: async () => { await sleep(20); return 'done'; } }),
        rows: method({
          handler: async function* (_p: void, ctx) {
            ctx.signal.addEventListener('abort', () => (aborted = ctx.signal.reason));
            for (let i = 0; ; i++) {
              await sleep(10);
              yield i;
            }
          },
        }),
      },
    });
    await assert.rejects(svc.later(undefined, { timeout: -1 }), RangeError);
    assert.equal(await svc.later(undefined, { timeout: 3e9 }), 'done', 'beyond 2^31-1 ms: no deadline');
    const stream = await svc.rows(undefined, { timeout: 60 });
    const got: number[] = [];
    await assert.rejects(
      (async () => {
        for await (const n of stream) got.push(n);
      })(),
      (e: IpcborError) => e.code === 'IPCBOR_ERR_TIMEOUT',
    );
    assert.ok(got.length > 0 && got.length < 10);
    assert.equal((aborted as IpcborError).code, 'IPCBOR_ERR_TIMEOUT');
  });

  it('validates in-process too, so schema transforms and defaults apply the same way', async () => {
    const svc = defineService({
      name: 'x',
      version: '1',
      methods: {
        rep: method({
          params: z.object({ text: z.string(), times: z.number().default(2), n: z.string().transform(Number) }),
          handler: ({ text, times, n }) => ({ out: text.repeat(times), next: n + 1 }),
        }),
      },
    });
    assert.deepEqual(await svc.rep({ text: 'ab', n: '41' }), { out: 'abab', next: 42 });
    await using server = await serve(svc, `unix:${tempSocket()}`);
    await using client = await connect(server.addresses[0]!);
    assert.deepEqual(await client.service<typeof svc>().rep({ text: 'ab', n: '41' }), { out: 'abab', next: 42 });
  });

  it('refuses names the remote proxy could not call, and colliding routes', async () => {
    for (const name of ['inspect', 'catch', 'asymmetricMatch', 'a.b']) {
      assert.throws(() => defineService({ name: 'x', version: '1', methods: { [name]: method({ handler: () => 1 }) } }), TypeError, name);
    }
    const a = defineService({ name: 'a', version: '1', methods: { m: method({ handler: () => 1 }) } });
    await assert.rejects(serve([{ service: a, prefix: '$ipcbor' }], 'unix:/nonexistent/x.sock'), TypeError);
    await assert.rejects(serve([{ service: a, prefix: 'p.q' }], 'unix:/nonexistent/x.sock'), TypeError);
    const b = defineService({ name: 'b', version: '1', methods: { m: method({ handler: () => 2 }) } });
    await assert.rejects(serve([a, { service: b, prefix: 'a' }], 'unix:/nonexistent/x.sock'), /two services under the prefix "a"/);
  });

  it('does not take inherited properties for absent fields', () => {
    const obj = schema.object({ toString: schema.optional(schema.string()), constructor: schema.optional(schema.unknown()) });
    const r = obj['~standard'].validate({});
    assert.deepEqual(r, { value: {} });
  });

  it('says so when a listener subscription is iterated, and when there are more than ten issues', async () => {
    await using server = await serve({ ping: () => 'pong' }, `unix:${tempSocket()}`);
    await using client = await connect(server.addresses[0]!);
    const sub = client.subscribe('e', () => {});
    assert.throws(() => sub[Symbol.asyncIterator](), (e: IpcborError) => e.code === 'IPCBOR_ERR_PROTOCOL');
    await sub.unsubscribe();
    const many = schema.object({});
    const input = Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`k${i}`, i]));
    const r = many['~standard'].validate(input) as { issues: { message: string }[] };
    const { issuesText } = await import('../../src/core/validate.js');
    assert.match(issuesText(r.issues), /k9: unknown field; and 2 more$/);
  });

  it('refuses a defaultService that is not among the services', async () => {
    const a = defineService({ name: 'a', version: '1', methods: { m: method({ handler: () => 1 }) } });
    const b = defineService({ name: 'b', version: '1', methods: { m: method({ handler: () => 2 }) } });
    await assert.rejects(serve([a], 'unix:/nonexistent/x.sock', { defaultService: b }), /defaultService must be one of the services/);
  });
});

