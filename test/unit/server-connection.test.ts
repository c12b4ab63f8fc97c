/**
 * The server connection and the client over an in-memory transport: every
 * frame kind, every error path, the resource bounds, with no socket
 * involved (test/memory-transport.ts). The Peer alone, driven frame by
 * frame, is in peer.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cbor } from '../../src/core/codec/cbor.js';
import { createClient, type Client, type ClientOptions } from '../../src/core/client/client.js';
import { IpcborError, RemoteError } from '../../src/core/errors.js';
import { FrameDecoder } from '../../src/core/frame/decoder.js';
import { concatParts as concat, encodeExtended, encodeRequest, encodeResponse } from '../../src/core/frame/encoder.js';
import { ServerCore, type Servable, type ServerCoreOptions } from '../../src/core/server/server.js';
import type { ServerConnection } from '../../src/core/server/connection.js';
import type { CallContext } from '../../src/core/dispatcher.js';
import { defineService, method } from '../../src/core/service.js';
import { s } from '../../src/core/schema.js';
import { MemoryTransport } from '../memory-transport.js';
import { deferred, rejectsWith, untilAborted, waitFor } from '../extended-helpers.js';

const handlers = {
  ping: () => 'pong',
  whoami: (_p: unknown, ctx: CallContext) => ({ id: ctx.connection.id }),
  echo: (p: unknown) => p,
  hang: (_p: unknown, ctx: CallContext) => untilAborted(ctx.signal),
  count: async function* (p: { n: number }) {
    for (let i = 0; i < p.n; i++) yield i;
  },
  sum: async (p: AsyncIterable<number>) => {
    let total = 0;
    for await (const x of p) total += x;
    return total;
  },
};

interface Pair {
  core: ServerCore;
  conn: ServerConnection;
  client: Client;
  c: MemoryTransport;
  s: MemoryTransport;
}

async function pair(target: Servable = handlers, serverOptions: ServerCoreOptions = {}, clientOptions: ClientOptions = {}): Promise<Pair> {
  const core = new ServerCore(target, serverOptions);
  const [c, s] = MemoryTransport.pair();
  const conn = core.accept(s, { transport: 'memory' }) as ServerConnection;
  s.attach(conn);
  const client = await createClient(async () => c, 'memory', clientOptions);
  return { core, conn, client, c, s };
}

interface Frame {
  head: unknown[];
  payload: Uint8Array;
}

/** A hand-driven client over memory: sends what a test says, collects what the server sends. */
class Raw {
  readonly frames: Frame[] = [];
  answers: { ret: number; body: Uint8Array }[] = [];
  closed = false;
  readonly core: ServerCore;
  readonly conn: ServerConnection;
  readonly t: MemoryTransport;
  private readonly decoder: FrameDecoder;

  constructor(target: Servable = handlers, options: ServerCoreOptions = {}) {
    this.core = new ServerCore(target, options);
    const [c, s] = MemoryTransport.pair();
    this.t = c;
    this.conn = this.core.accept(s, { transport: 'memory' }) as ServerConnection;
    s.attach(this.conn);
    this.decoder = new FrameDecoder('response', {
      response: (ret, body) => {
        this.answers.push({ ret, body });
        if (ret === 0 && this.answers.length === 1 && this.helloSent) this.decoder.mode = 'extended';
      },
      extended: (head, payload) => this.frames.push({ head: cbor.decode(head) as unknown[], payload }),
    });
    c.attach({ onData: (chunk) => this.decoder.push(chunk), onDrain() {}, onClose: () => (this.closed = true) });
  }

  private helloSent = false;

  async hello(offer: unknown = { version: 1, maxFrameBytes: 1 << 24, window: 4 }): Promise<{ ret: number; body: Uint8Array }> {
    this.helloSent = true;
    this.base('$ipcbor.hello', offer);
    await waitFor(() => this.answers.length > 0, 'the hello answer');
    return this.answers[0]!;
  }

  base(method: string, params: unknown): void {
    this.write(encodeRequest(method, cbor.encode(params)));
  }

  send(head: unknown[], ...payload: [] | [unknown]): void {
    this.write(encodeExtended(cbor.encode(head), payload.length === 0 ? undefined : cbor.encode(payload[0])));
  }

  write(parts: readonly Uint8Array[]): void {
    for (const p of parts) this.t.writeRaw(p);
  }

  async next(): Promise<Frame> {
    await waitFor(() => this.frames.length > 0 || this.closed, 'a frame');
    if (this.frames.length === 0) assert.fail('closed without a frame');
    return this.frames.shift()!;
  }

  async whenClosed(): Promise<void> {
    await waitFor(() => this.closed, 'the server to close the connection');
  }
}

const value = (f: Frame) => (f.payload.length === 0 ? undefined : cbor.decode(f.payload));

describe('server connection and client: calls over memory', () => {
  it('answers extended calls by id and base-framing calls in order', async () => {
    const { client } = await pair();
    assert.equal(client.protocol, 'extended');
    assert.equal(await client.call('ping'), 'pong');
    assert.deepEqual(await client.call('echo', { a: [1, 'x'] }), { a: [1, 'x'] });
    const base = (await pair(handlers, {}, { protocol: 'base' })).client;
    assert.equal(base.protocol, 'base');
    assert.deepEqual(await Promise.all([base.call('echo', 1), base.call('ping'), base.call('echo', 3)]), [1, 'pong', 3]);
  });

  it('runs NOTIFY without answering it', async () => {
    const got = deferred<unknown>();
    const { client, c } = await pair({ log: (p: unknown) => got.resolve(p) });
    const before = c.received.length;
    client.notify('log', { line: 'x' });
    assert.deepEqual(await got.promise, { line: 'x' });
    assert.equal(c.received.length, before, 'nothing came back');
  });

  it('CANCEL aborts the handler with IPCBOR_ERR_CANCELLED and the caller settles at once', async () => {
    const reason = deferred<unknown>();
    const { client } = await pair({ hang: (_p: unknown, ctx: CallContext) => untilAborted(ctx.signal).catch((r) => reason.resolve(r)) });
    const ac = new AbortController();
    const call = client.call('hang', {}, { signal: ac.signal });
    ac.abort();
    await rejectsWith(call, 'IPCBOR_ERR_CANCELLED');
    assert.equal((await reason.promise as IpcborError).code, 'IPCBOR_ERR_CANCELLED');
  });

  it('streams both ways with credit: ITEM, END, CREDIT', async () => {
    const { client } = await pair(handlers, { window: 2 }, { window: 2 });
    const got: number[] = [];
    for await (const x of await client.call<AsyncIterable<number>>('count', { n: 50 })) got.push(x);
    assert.deepEqual(got, [...Array(50).keys()]);
    async function* src() {
      for (let i = 1; i <= 40; i++) yield i;
    }
    assert.equal(await client.call('sum', src()), 820);
  });

  it('a handler that stops reading its input stream sends CANCEL: the client closes its source', async () => {
    const closed = deferred<void>();
    const { client } = await pair({
      first: async (p: AsyncIterable<number>) => {
        for await (const x of p) return x;
      },
    });
    async function* endless() {
      try {
        for (let i = 7; ; i++) yield i;
      } finally {
        closed.resolve();
      }
    }
    assert.equal(await client.call('first', endless()), 7);
    await closed.promise;
  });

  it('a RESULT after stream items fails the call (IPCBOR_ERR_PROTOCOL)', async () => {
    const [c, s] = MemoryTransport.pair();
    const dec = new FrameDecoder('request', {
      request: () => {
        s.writeRaw(concat(encodeResponse(0, cbor.encode({ version: 1, maxFrameBytes: 1 << 20, window: 8, server: 'x' }))));
        dec.mode = 'extended';
      },
      extended: (h) => {
        const id = (cbor.decode(h) as number[])[1]!;
        s.writeRaw(concat(encodeExtended(cbor.encode([6, id]), cbor.encode(1))));
        s.writeRaw(concat(encodeExtended(cbor.encode([4, id]), cbor.encode(2))));
      },
    });
    s.attach({ onData: (d) => dec.push(d), onDrain() {}, onClose() {} });
    const client = await createClient(async () => c, 'memory');
    const stream = await client.call<AsyncIterable<number>>('x');
    const got: number[] = [];
    await rejectsWith(
      (async () => {
        for await (const x of stream) got.push(x);
      })(),
      'IPCBOR_ERR_PROTOCOL',
    );
    assert.deepEqual(got, [1]);
  });

  it('an unread subscription on the client is bounded by bytes, oldest dropped', async () => {
    const { core, client } = await pair(handlers, {}, { eventQueueBytes: 32 * 1024 });
    const sub = client.subscribe('tick');
    await sub.ready;
    const blob = new Uint8Array(8 * 1024);
    for (let i = 0; i < 50; i++) core.emit('tick', { i, blob });
    await client.call('ping');
    assert.ok(sub.dropped >= 40, `dropped ${sub.dropped}`);
    const first = await sub[Symbol.asyncIterator]().next();
    assert.ok(!first.done && (first.value.payload as { i: number }).i >= 40, 'the newest are kept');
  });

  it('ERROR for a call carries code, message and data; the stream before it is delivered', async () => {
    const { client } = await pair({
      bad: () => {
        throw new IpcborError('APP_ERR_X', 'no', { data: { why: 1 } });
      },
    });
    const err = await rejectsWith(client.call('bad'), 'APP_ERR_X');
    assert.ok(err instanceof RemoteError);
    assert.deepEqual(err.data, { why: 1 });
    assert.equal(err.method, 'bad');
  });

  it('a streamed params source that throws a long message: the server gets a clipped ERROR, other calls go on', async () => {
    const { client } = await pair({ ...handlers, slow: () => new Promise((r) => setTimeout(() => r('done'), 20)) });
    const other = client.call('slow');
    async function* broken() {
      yield 1;
      throw new Error('x'.repeat(200_000));
    }
    await rejectsWith(client.call('sum', broken()), 'IPCBOR_ERR_HANDLER');
    assert.equal(await other, 'done', 'an unrelated call in flight is unharmed');
    assert.equal(client.state, 'open');
  });

  it('a stream sent to a method that takes a map is refused without showing the server\'s insides', async () => {
    const svc = defineService({ name: 'svc', version: '1', methods: { greet: method({ params: s.object({ name: s.string() }), handler: ({ name }) => name }) } });
    const { client } = await pair(svc);
    async function* one() {
      yield 1;
    }
    const err = await rejectsWith(client.call('greet', one()), 'IPCBOR_ERR_INVALID_PARAMS');
    assert.doesNotMatch(err.message, /window|hooks|allowance|items|sizes|waiter/);
  });
});

describe('server connection: protocol edges (docs/PROTOCOL.md §8, §11)', () => {
  it('a duplicate id in flight closes the connection with ERROR 0 IPCBOR_ERR_PROTOCOL', async () => {
    const raw = new Raw();
    await raw.hello();
    raw.send([1, 7, 'hang']);
    raw.send([1, 7, 'hang']);
    const f = await raw.next();
    assert.deepEqual(f.head.slice(0, 3), [5, 0, 'IPCBOR_ERR_PROTOCOL']);
    await raw.whenClosed();
  });

  it('id 0, a CREDIT of 0 and a CREDIT over 2^32-1 are bad frames', async () => {
    for (const head of [[1, 0, 'ping'], [8, 1, 0], [8, 1, 2 ** 32]]) {
      const raw = new Raw();
      await raw.hello();
      raw.send(head);
      const f = await raw.next();
      assert.deepEqual(f.head.slice(0, 3), [5, 0, 'IPCBOR_ERR_BAD_FRAME'], JSON.stringify(head));
      await raw.whenClosed();
    }
  });

  it('timeout 0 is a deadline already past: answered IPCBOR_ERR_DEADLINE_EXCEEDED, the handler never runs', async () => {
    let ran = false;
    const raw = new Raw({ work: () => (ran = true) });
    await raw.hello();
    raw.send([1, 1, 'work', { timeout: 0 }], {});
    const f = await raw.next();
    assert.deepEqual(f.head.slice(0, 3), [5, 1, 'IPCBOR_ERR_DEADLINE_EXCEEDED']);
    assert.equal(ran, false);
  });

  it('a timeout of 2^53, or 2^64-1 (decoded as bigint), is no deadline', async () => {
    const raw = new Raw();
    await raw.hello();
    raw.send([1, 1, 'ping', { timeout: 2 ** 53 }], {});
    raw.send([1, 2, 'ping', { timeout: 2n ** 64n - 1n }], {});
    assert.deepEqual((await raw.next()).head, [4, 1]);
    assert.deepEqual((await raw.next()).head, [4, 2]);
    assert.equal(raw.closed, false);
  });

  it('a hello announcing 2^64-1 and 2^53 ("no limit") opens the extended protocol; unknown keys are ignored', async () => {
    const raw = new Raw();
    const a = await raw.hello({ version: 1, maxFrameBytes: 2n ** 64n - 1n, window: 2 ** 53, future: 'ignored' });
    assert.equal(a.ret, 0);
    raw.send([1, 1, 'ping'], {});
    assert.deepEqual((await raw.next()).head, [4, 1]);
  });

  it('unknown keys in subscribe params are ignored', async () => {
    const raw = new Raw();
    await raw.hello();
    raw.send([1, 1, '$ipcbor.subscribe'], { event: 'tick', later: true });
    assert.deepEqual((await raw.next()).head, [4, 1]);
  });

  it('ERROR 0 from the client closes the connection and aborts its calls with that error', async () => {
    const reason = deferred<unknown>();
    const raw = new Raw({ hang: (_p: unknown, ctx: CallContext) => untilAborted(ctx.signal).catch((r) => reason.resolve(r)) });
    await raw.hello();
    raw.send([1, 1, 'hang'], {});
    await waitFor(() => raw.conn.inflight === 1, 'the call to start');
    raw.send([5, 0, 'APP_GONE', 'bye']);
    assert.equal((await reason.promise as IpcborError).code, 'APP_GONE');
    await raw.whenClosed();
  });

  it('items beyond the credit granted are a protocol error', async () => {
    const raw = new Raw(handlers, { window: 2 });
    await raw.hello();
    // A handler that never reads its stream of params: no credit beyond the window.
    raw.send([1, 1, 'hang', { stream: true }]);
    for (let i = 0; i < 3; i++) raw.send([6, 1], i);
    const f = await raw.next();
    assert.deepEqual(f.head.slice(0, 3), [5, 0, 'IPCBOR_ERR_PROTOCOL']);
  });

  it('a frame kind a client may not send closes the connection', async () => {
    const raw = new Raw();
    await raw.hello();
    raw.send([4, 1], 1);
    assert.deepEqual((await raw.next()).head.slice(0, 3), [5, 0, 'IPCBOR_ERR_PROTOCOL']);
  });
});

describe('client connection: the hello, as the client reads it', () => {
  /** A client against a server end that answers the hello with `answer`. */
  async function helloWith(answer: readonly Uint8Array[]): Promise<Client> {
    const [c, s] = MemoryTransport.pair();
    s.attach({
      onData: () => {
        for (const p of answer) s.writeRaw(p);
      },
      onDrain() {},
      onClose() {},
    });
    return createClient(async () => c, 'memory', { connectTimeout: 1000 });
  }
  const head = (ret: number, len: number) => Uint8Array.of(0, 0, 0, ret, len >>> 24, (len >>> 16) & 255, (len >>> 8) & 255, len & 255);

  it('garbage after ret 0 fails connect() with IPCBOR_ERR_DECODE or PROTOCOL, never a silent fall back', async () => {
    const err = await helloWith([head(0, 2), Uint8Array.of(0xff, 0xff)]).then(
      () => assert.fail('connected'),
      (e: IpcborError) => e,
    );
    assert.ok(['IPCBOR_ERR_DECODE', 'IPCBOR_ERR_PROTOCOL'].includes(err.code), err.code);
    await rejectsWith(helloWith([head(0, 1), cbor.encode(1)]), 'IPCBOR_ERR_PROTOCOL');
  });

  it('an answer over maxFrameBytes fails connect() with IPCBOR_ERR_FRAME_TOO_LARGE', async () => {
    await rejectsWith(helloWith([head(1, 0x7fffffff)]), 'IPCBOR_ERR_FRAME_TOO_LARGE');
  });

  it('a base-framing peer\'s refusal (ret 1, short text) falls back to the base framing', async () => {
    const client = await helloWith([head(1, 0)]);
    assert.equal(client.protocol, 'base');
  });

  it('a server at its connection limit refuses with IPCBOR_ERR_OVERLOADED; a base-framing client gets the text', async () => {
    const core = new ServerCore(handlers, { maxConnections: 1 });
    const dial = async () => {
      const [c, s] = MemoryTransport.pair();
      const conn = core.accept(s, { transport: 'memory' });
      if (conn) s.attach(conn);
      return c;
    };
    const first = await createClient(dial, 'memory');
    await rejectsWith(createClient(dial, 'memory'), 'IPCBOR_ERR_OVERLOADED');
    const base = await createClient(dial, 'memory', { protocol: 'base' });
    await rejectsWith(base.call('ping'), 'IPCBOR_ERR_REMOTE');
    first.destroy();
    await first.closed;
    await waitFor(() => core.size === 0, 'the first connection to go');
    const again = await createClient(dial, 'memory');
    assert.equal(await again.call('ping'), 'pong');
  });
});

describe('server connection: state and shutdown', () => {
  it('shutdown() called twice resolves both times, after the call in flight', async () => {
    const release = deferred<string>();
    const { conn, client } = await pair({ wait: () => release.promise });
    const call = client.call('wait');
    await waitFor(() => conn.inflight === 1, 'the call to start');
    const a = conn.shutdown();
    const b = conn.shutdown();
    assert.equal(a, b);
    release.resolve('ok');
    assert.equal(await call, 'ok');
    await Promise.all([a, b]);
    assert.equal(conn.peer.phase.stage, 'closed');
  });

  it('onceClosed returns a disposable; a disposed listener is not called', async () => {
    const { conn, client } = await pair();
    let called = 0;
    conn.peer.onceClosed(() => called++);
    const d = conn.peer.onceClosed(() => (called += 100));
    d.dispose();
    client.destroy();
    await conn.closed;
    await new Promise((r) => setTimeout(r, 0));
    assert.equal(called, 1);
  });
});

describe('server connection and client: resource bounds', () => {
  it('stops reading a connection past maxConnectionBytes, and reads again when calls finish', async () => {
    const gate = deferred<void>();
    let started = 0;
    const { client, s, conn } = await pair({ hold: async (_p: unknown) => { started++; await gate.promise; return 1; } }, { maxConnectionBytes: 64 * 1024 });
    const big = new Uint8Array(16 * 1024);
    const calls = Array.from({ length: 20 }, () => client.call('hold', big));
    await waitFor(() => s.paused, 'the server to stop reading');
    assert.ok(started < 20, `only what fits the budget started (${started})`);
    gate.resolve();
    assert.deepEqual(await Promise.all(calls), Array(20).fill(1));
    assert.equal(s.paused, false);
    assert.equal(conn.inflight, 0);
  });

  it('the server budget: a connection over its fair share waits, a fresh one is read', async () => {
    const gate = deferred<void>();
    const core = new ServerCore({ hold: async (_p: unknown) => { await gate.promise; return 1; }, ping: () => 'pong' }, { maxServerBytes: 128 * 1024, maxConnectionBytes: 1 << 20 });
    const dial = async () => {
      const [c, s] = MemoryTransport.pair();
      s.attach(core.accept(s, { transport: 'memory' })!);
      return { c, s };
    };
    const a = await dial();
    const hog = await createClient(async () => a.c, 'memory');
    const calls = Array.from({ length: 40 }, () => hog.call('hold', new Uint8Array(16 * 1024)));
    await waitFor(() => a.s.paused, 'the hog to be paused');
    assert.ok(core.budget.held <= 128 * 1024 + 64 * 1024 + 20 * 1024, `held ${core.budget.held}`);
    const b = await dial();
    const fresh = await createClient(async () => b.c, 'memory');
    assert.equal(await fresh.call('ping'), 'pong', 'a connection holding little is still served');
    gate.resolve();
    await Promise.all(calls);
  });

  it('a method that takes no params does not decode its payload', async () => {
    const { client } = await pair({ version: () => 'v1' });
    // 200,000 empty maps in an array: decoding would cost far more than the bytes.
    const bomb = new Uint8Array(5 + 200_000);
    bomb.set([0x9a, 0x00, 0x03, 0x0d, 0x40]);
    bomb.fill(0xa0, 5);
    const t0 = performance.now();
    assert.equal(await client.call('version', cbor.decode(Uint8Array.of(0xa0))), 'v1');
    const raw = new Raw({ version: () => 'v1' });
    await raw.hello();
    raw.write(encodeExtended(cbor.encode([1, 1, 'version']), bomb));
    const f = await raw.next();
    assert.deepEqual(f.head, [4, 1]);
    assert.equal(value(f), 'v1');
    assert.ok(performance.now() - t0 < 5000);
  });

  it('a frame not finished within frameTimeout closes the connection with IPCBOR_ERR_FRAME_TIMEOUT', async () => {
    const raw = new Raw(handlers, { frameTimeout: 50 });
    await raw.hello();
    raw.write([Uint8Array.of(0, 0, 0, 3, 0x82, 0x04)]);
    await raw.whenClosed();
    const reason = await raw.conn.closed;
    assert.equal((reason.cause as IpcborError).code, 'IPCBOR_ERR_FRAME_TIMEOUT');
    assert.equal(raw.frames.length, 0, 'no goodbye to a peer stuck mid-frame');
  });

  it('idleTimeout closes a connection with nothing in flight', async () => {
    const raw = new Raw(handlers, { idleTimeout: 30 });
    await raw.hello();
    await raw.whenClosed();
  });

  it('an idle connection holds no read buffer', async () => {
    const raw = new Raw();
    await raw.hello();
    // Trickle a frame in tiny chunks: the pool gathers them...
    const [h, p] = encodeExtended(cbor.encode([1, 1, 'ping']), cbor.encode({}));
    const bytes = new Uint8Array([...h, ...p]);
    for (let i = 0; i < bytes.length; i++) raw.t.writeRaw(bytes.subarray(i, i + 1));
    assert.deepEqual((await raw.next()).head, [4, 1]);
    // ...and lets it go once the frame is done.
    const decoder = raw.conn.peer.decoder;
    assert.equal(decoder.retainedBytes, 0);
  });

  it('subscriptions: a limit per connection, a name length limit, undeclared events refused', async () => {
    const { client } = await pair(handlers, { maxSubscriptions: 3, maxEventNameBytes: 16 });
    for (const n of ['a', 'b', 'c']) await client.subscribe(n).ready;
    await rejectsWith(client.subscribe('d').ready, 'IPCBOR_ERR_OVERLOADED');
    await rejectsWith(client.subscribe('x'.repeat(17)).ready, 'IPCBOR_ERR_INVALID_PARAMS');
    const svc = defineService({ name: 'svc', version: '1', methods: { ping: method({ handler: () => 'pong' }) }, events: { tick: null } });
    const other = (await pair(svc)).client;
    await other.subscribe('tick').ready;
    await other.subscribe('svc.tick').ready;
    await rejectsWith(other.subscribe('tock').ready, 'IPCBOR_ERR_UNKNOWN_EVENT');
  });

  it('events for a connection that does not read are bounded by bytes, oldest dropped', async () => {
    const { core, client, c } = await pair(handlers, { eventQueueBytes: 64 * 1024 });
    const sub = client.subscribe('tick');
    await sub.ready;
    const conn = core.connection((await client.call<{ id: number }>('whoami')).id) as ServerConnection;
    c.pause();
    const blob = new Uint8Array(16 * 1024);
    for (let i = 0; i < 200; i++) core.emit('tick', { i, blob });
    assert.ok(conn.eventsDropped > 100, `dropped ${conn.eventsDropped}`);
    c.resume();
    const first = await sub[Symbol.asyncIterator]().next();
    assert.ok(!first.done);
  });

  it('the client stops reading when unread stream items pass its maxConnectionBytes', async () => {
    const { client, c } = await pair({ blobs: async function* () { for (let i = 0; i < 1000; i++) yield new Uint8Array(8 * 1024); } }, { window: 64 }, { maxConnectionBytes: 64 * 1024, window: 64 });
    const stream = (await client.call<AsyncIterable<Uint8Array>>('blobs'))[Symbol.asyncIterator]();
    await waitFor(() => c.paused, 'the client to stop reading');
    let n = 0;
    for (;;) {
      const r = await stream.next();
      if (r.done) break;
      n++;
    }
    assert.equal(n, 1000);
  });
});
