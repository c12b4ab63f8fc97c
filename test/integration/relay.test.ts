/**
 * The relay over real sockets: a client connects to a TCP relay in front of
 * a service on a unix socket, and everything a direct client can do works
 * the same through it: calls in both framings, typed services, events,
 * streams both ways, cancellation, deadlines. Then what is the relay's
 * own: the hello's limits lowered to the relay's, a frame over them
 * refused at the relay, an unreachable service, the close in either
 * direction delivering what was in flight, and a graceful close().
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { connect, createRelay, defineService, method, RemoteError, s, serve, type CallContext, type Relay, type Server } from '../../src/index.js';
import { cbor } from '../../src/core/codec/cbor.js';
import { encodeExtended, encodeRequest, encodeResponse } from '../../src/core/frame/encoder.js';
import { createServer as createNetServer } from 'node:net';
import { rawConnect, RawReader, tempSocket } from '../helpers.js';
import { deferred, payloadOf, RawExtended, rejectsWith, waitFor, type Deferred } from '../extended-helpers.js';
import { ndjsonAdapter } from '../../examples/relay/ndjson.js';

const unix = () => `unix:${tempSocket()}`;

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of iterable) out.push(x);
  return out;
}

const greeter = defineService({
  name: 'greeter',
  version: '1.0.0',
  methods: {
    greet: method({ params: s.object({ name: s.string() }), result: s.string(), handler: ({ name }) => `hello, ${name}` }),
  },
  events: { greeted: s.object({ name: s.string() }) },
});

describe('relay: a client through a TCP relay to a unix service', () => {
  let server: Server;
  let relay: Relay;
  let service: string;
  /** Set by `hang`: resolves with its signal's reason once the server aborts it. */
  let hung: { started: Deferred<void>; aborted: Deferred<unknown> } = { started: deferred(), aborted: deferred() };
  const received: number[] = [];

  before(async () => {
    service = unix();
    server = await serve(
      {
        echo: (p: unknown) => p,
        hang: (_p: unknown, ctx: CallContext) => {
          const mine = hung;
          mine.started.resolve();
          return new Promise((_resolve, reject) =>
            ctx.signal.addEventListener(
              'abort',
              () => {
                mine.aborted.resolve(ctx.signal.reason);
                reject(ctx.signal.reason as Error);
              },
              { once: true },
            ),
          );
        },
        count: (p: { n: number }) =>
          (async function* () {
            for (let i = 0; i < p.n; i++) yield i;
          })(),
        sum: async (items: AsyncIterable<number>) => {
          let total = 0;
          for await (const x of items) {
            received.push(x);
            total += x;
          }
          return total;
        },
        fire: (p: { name: string; n: number }) => {
          for (let i = 0; i < p.n; i++) server.emit(p.name, { i });
          return p.n;
        },
        fail: () => {
          throw new Error('it failed here');
        },
      },
      service,
    );
    relay = await createRelay({ listen: 'tcp:127.0.0.1:0', to: service });
  });

  after(async () => {
    await relay.close();
    await server.close();
  });

  it('listens where it says, and relays calls in the extended protocol', async () => {
    assert.match(relay.addresses[0]!, /^tcp:127\.0\.0\.1:\d+$/);
    assert.equal(relay.to, service);
    await using client = await connect(relay.addresses[0]!);
    assert.equal(client.protocol, 'extended');
    assert.deepEqual(await client.call('echo', { a: [1, 2, 3], b: new Uint8Array([9, 8]) }), { a: [1, 2, 3], b: new Uint8Array([9, 8]) });
    // Many calls in flight at once, answered each to its own caller.
    const many = await Promise.all(Array.from({ length: 200 }, (_, i) => client.call('echo', i)));
    assert.deepEqual(many, Array.from({ length: 200 }, (_, i) => i));
    const err = await rejectsWith(client.call('fail'), 'IPCBOR_ERR_HANDLER');
    assert.match(err.message, /it failed here/);
  });

  it('relays the base framing, byte for byte what a base-framing client expects', async () => {
    await using client = await connect(relay.addresses[0]!, { protocol: 'base' });
    assert.equal(client.protocol, 'base');
    assert.deepEqual(await client.call('echo', { x: 'y' }), { x: 'y' });
    const answers = await Promise.all([client.call('echo', 1), client.call('echo', 2), client.call('echo', 3)]);
    assert.deepEqual(answers, [1, 2, 3]);
    await rejectsWith(client.call('nope'), 'IPCBOR_ERR_REMOTE');
  });

  it('streams both ways, with credit carried end to end', async () => {
    await using client = await connect(relay.addresses[0]!, { window: 4 });
    const items = await collect(await client.call<AsyncIterable<number>>('count', { n: 500 }));
    assert.equal(items.length, 500);
    assert.equal(items[499], 499);
    received.length = 0;
    const total = await client.call('sum', (async function* () {
      for (let i = 1; i <= 300; i++) yield i;
    })());
    assert.equal(total, (300 * 301) / 2);
    assert.equal(received.length, 300);
  });

  it('carries events to subscribers', async () => {
    await using client = await connect(relay.addresses[0]!);
    const sub = client.subscribe<{ i: number }>('tick');
    await sub.ready;
    assert.equal(await client.call('fire', { name: 'tick', n: 3 }), 3);
    const seen: number[] = [];
    for await (const e of sub) {
      seen.push(e.payload.i);
      if (seen.length === 3) break;
    }
    assert.deepEqual(seen, [0, 1, 2]);
  });

  it('carries a cancel to the service, whose handler stops', async () => {
    hung = { started: deferred(), aborted: deferred() };
    await using client = await connect(relay.addresses[0]!);
    const ac = new AbortController();
    const call = client.call('hang', null, { signal: ac.signal });
    await hung.started.promise;
    ac.abort();
    await rejectsWith(call, 'IPCBOR_ERR_CANCELLED');
    await hung.aborted.promise;
    // The connection goes on.
    assert.equal(await client.call('echo', 'after'), 'after');
  });

  it('carries a deadline to the service', async () => {
    hung = { started: deferred(), aborted: deferred() };
    await using client = await connect(relay.addresses[0]!);
    await rejectsWith(client.call('hang', null, { timeout: 100 }), 'IPCBOR_ERR_TIMEOUT');
    const reason = await hung.aborted.promise;
    assert.ok(reason instanceof Error);
  });

  it('serves a typed service the same as directly', async () => {
    const typedService = unix();
    const typed = await serve(greeter, typedService);
    const r = await createRelay({ listen: 'tcp:127.0.0.1:0', to: typedService });
    try {
      await using client = await connect(r.addresses[0]!);
      const remote = client.service<typeof greeter>();
      assert.equal(await remote.greet({ name: 'relay' }), 'hello, relay');
      const events = client.events<typeof greeter>();
      const sub = events.subscribe('greeted');
      await sub.ready;
      typed.emit('greeted', { name: 'x' });
      for await (const e of sub) {
        assert.deepEqual(e.payload, { name: 'x' });
        break;
      }
    } finally {
      await r.close();
      await typed.close();
    }
  });
});

describe('relay: its own limits, failures and closes', () => {
  it("lowers the hello's frame limits to its own, both ways, and refuses a frame over them", async () => {
    const service = unix();
    const server = await serve({ echo: (p: unknown) => p, size: (p: { n: number }) => new Uint8Array(p.n) }, service);
    const relay = await createRelay({ listen: 'tcp:127.0.0.1:0', to: service, maxFrameBytes: 64 * 1024 });
    try {
      // The client is told the relay's limit, not the service's 16 MiB.
      const raw = await RawExtended.open(relay.addresses[0]!);
      const answer = cbor.decode(raw.helloAnswer!.body) as { maxFrameBytes: number };
      assert.equal(answer.maxFrameBytes, 64 * 1024);
      // An ipcbor client then refuses itself to send more.
      await using client = await connect(relay.addresses[0]!);
      await rejectsWith(client.call('echo', new Uint8Array(100 * 1024)), 'IPCBOR_ERR_FRAME_TOO_LARGE');
      assert.equal((await client.call<Uint8Array>('size', { n: 60 * 1024 })).length, 60 * 1024);
      // The service was told the client's limit lowered to the relay's: a
      // larger result fails at the service, as its own error.
      await rejectsWith(client.call('size', { n: 100 * 1024 }), 'IPCBOR_ERR_FRAME_TOO_LARGE');
      // A peer that ignores the limit is stopped at the relay, with ERROR on id 0.
      raw.send([1, 1, 'echo'], new Uint8Array(100 * 1024));
      const f = await raw.next();
      assert.equal(f.head[0], 5);
      assert.equal(f.head[1], 0);
      assert.equal(f.head[2], 'IPCBOR_ERR_FRAME_TOO_LARGE');
      await raw.closed();
      // Other clients go on.
      assert.equal(await client.call('echo', 'still'), 'still');
    } finally {
      await relay.close();
      await server.close();
    }
  });

  it('refuses a client whose service cannot be reached, saying so in the hello answer', async () => {
    const errors: string[] = [];
    const relay = await createRelay({ listen: 'tcp:127.0.0.1:0', to: unix(), onError: (e) => errors.push(e.code) });
    try {
      const err = await rejectsWith(connect(relay.addresses[0]!), 'IPCBOR_ERR_CONNECT');
      assert.match(err.message, /could not reach the service/);
      assert.ok(err instanceof RemoteError);
      // A base-framing client hears it as the error of its first call.
      const sock = await rawConnect(relay.addresses[0]!);
      const reader = new RawReader(sock);
      for (const part of encodeRequest('echo', cbor.encode(1))) sock.write(part);
      const r = await reader.response();
      assert.equal(r.ret, 1);
      assert.match(Buffer.from(r.body).toString(), /could not reach the service/);
      sock.destroy();
      assert.ok(errors.includes('IPCBOR_ERR_CONNECT'));
    } finally {
      await relay.close();
    }
  });

  it('delivers answers already sent when the service closes, then closes the client', async () => {
    const service = unix();
    const release = deferred();
    const started = deferred();
    const server = await serve({ slow: async () => (started.resolve(), await release.promise, 'done'), echo: (p: unknown) => p }, service);
    const relay = await createRelay({ listen: 'tcp:127.0.0.1:0', to: service });
    try {
      const client = await connect(relay.addresses[0]!);
      const slow = client.call('slow');
      await started.promise;
      // The server drains: the call in flight finishes and its answer
      // leaves, then the service closes the connection; the relay passes
      // the answer on before it closes the client's side.
      const closing = server.close();
      release.resolve();
      assert.equal(await slow, 'done');
      await closing;
      await client.closed;
      await waitFor(() => relay.connections === 0, 'the relay to let the link go');
      await client.close();
    } finally {
      await relay.close();
      await server.close();
    }
  });

  it('ends the service connection when the client goes, and the service aborts its calls', async () => {
    const service = unix();
    const aborted = deferred<unknown>();
    const started = deferred();
    const server = await serve(
      {
        hang: (_p: unknown, ctx: CallContext) => {
          started.resolve();
          return new Promise((_r, reject) => ctx.signal.addEventListener('abort', () => (aborted.resolve(ctx.signal.reason), reject(ctx.signal.reason as Error)), { once: true }));
        },
      },
      service,
    );
    const relay = await createRelay({ listen: 'tcp:127.0.0.1:0', to: service });
    try {
      const client = await connect(relay.addresses[0]!);
      const call = client.call('hang');
      await started.promise;
      client.destroy();
      await rejectsWith(call, 'IPCBOR_ERR_CONNECTION_CLOSED');
      await aborted.promise;
      await waitFor(() => server.connections === 0 && relay.connections === 0, 'both connections to close');
    } finally {
      await relay.close();
      await server.close();
    }
  });

  it('close() lets calls in flight finish, refuses new ones, then closes', async () => {
    const service = unix();
    const release = deferred();
    const started = deferred();
    const server = await serve({ slow: async () => (started.resolve(), await release.promise, 'finished'), echo: (p: unknown) => p }, service);
    const relay = await createRelay({ listen: 'tcp:127.0.0.1:0', to: service });
    try {
      const client = await connect(relay.addresses[0]!);
      const slow = client.call('slow');
      await started.promise;
      const closing = relay.close();
      await rejectsWith(client.call('echo', 1), 'IPCBOR_ERR_SHUTTING_DOWN');
      release.resolve();
      assert.equal(await slow, 'finished');
      await closing;
      await client.closed;
      await client.close();
    } finally {
      relay.destroy();
      await server.close();
    }
  });

  it('refuses plaintext on a network address unless insecure, as serve() does', async () => {
    await assert.rejects(createRelay({ listen: 'tcp:0.0.0.0:0', to: unix() }), (e: Error & { code?: string }) => e.code === 'IPCBOR_ERR_INVALID_ADDRESS');
    await assert.rejects(createRelay({ listen: 'ws:0.0.0.0:0', to: unix() }), (e: Error & { code?: string }) => e.code === 'IPCBOR_ERR_INVALID_ADDRESS');
    await assert.rejects(createRelay({ listen: 'tls:127.0.0.1:0', to: unix() }), (e: Error & { code?: string }) => e.code === 'IPCBOR_ERR_INVALID_ADDRESS');
  });

  it('answers a raw extended peer frame for frame, ids and all', async () => {
    const service = unix();
    const server = await serve({ echo: (p: unknown) => p }, service);
    const relay = await createRelay({ listen: 'tcp:127.0.0.1:0', to: service });
    try {
      const raw = await RawExtended.open(relay.addresses[0]!);
      raw.send([1, 7, 'echo'], 'seven');
      raw.send([1, 3, 'echo'], 'three');
      const a = await raw.next();
      const b = await raw.next();
      const byId = new Map([a, b].map((f) => [f.head[1], payloadOf(f)]));
      assert.equal(byId.get(7), 'seven');
      assert.equal(byId.get(3), 'three');
      // A kind a client may not send is refused by the relay itself.
      raw.send([4, 1], 'a result from a client');
      const e = await raw.next();
      assert.deepEqual(e.head.slice(0, 3), [5, 0, 'IPCBOR_ERR_PROTOCOL']);
      await raw.closed();
    } finally {
      await relay.close();
      await server.close();
    }
  });
});

describe('relay: an adapter for another message format', () => {
  it('turns newline-delimited JSON into calls and answers into lines, in order, errors included', async () => {
    const service = unix();
    const release = deferred();
    const server = await serve({ echo: (p: unknown) => p, slow: async () => (await release.promise, 'late'), bytes: () => new Uint8Array([1, 2, 3]) }, service);
    const relay = await createRelay({ listen: 'tcp:127.0.0.1:0', to: service, adapter: () => ndjsonAdapter(1024) });
    try {
      const sock = await rawConnect(relay.addresses[0]!);
      let received = '';
      sock.setEncoding('utf8');
      sock.on('data', (d: string) => (received += d));
      const lines = () => received.split('\n').filter((l) => l !== '');
      // One line in two pieces, two in one piece, a slow call, then a line that is not a call.
      sock.write('{"method":"echo","par');
      sock.write('ams":{"a":1}}\n{"method":"bytes"}\n{"method":"nope"}\n');
      sock.write('{"method":"slow"}\nnot json\n{"method":"echo","params":"after"}\n');
      await waitFor(() => lines().length >= 3, 'the first three answers');
      assert.deepEqual(lines().map((l) => JSON.parse(l)), [{ result: { a: 1 } }, { result: 'AQID' }, { error: 'unknown method: nope' }]);
      // The error for "not json" waits behind the slow call's answer.
      release.resolve();
      await waitFor(() => lines().length >= 6, 'the rest');
      const rest = lines().slice(3).map((l) => JSON.parse(l) as Record<string, unknown>);
      assert.deepEqual(rest[0], { result: 'late' });
      assert.match(String(rest[1]!.error), /^not JSON/);
      assert.deepEqual(rest[2], { result: 'after' });
      // A line over the adapter's bound closes the connection.
      sock.write('x'.repeat(2048));
      await once(sock, 'close');
    } finally {
      await relay.close();
      await server.close();
    }
  });
});

describe('relay: broken rules on either side', () => {
  it('answers a base-framing client that broke the framing after the answers it is owed', async () => {
    const service = unix();
    const release = deferred();
    const server = await serve({ slow: async () => (await release.promise, 'first'), echo: (p: unknown) => p }, service);
    const relay = await createRelay({ listen: 'tcp:127.0.0.1:0', to: service });
    try {
      const sock = await rawConnect(relay.addresses[0]!);
      const reader = new RawReader(sock);
      for (const part of encodeRequest('slow', cbor.encode(null))) sock.write(part);
      // A method name over the 256-byte limit breaks the framing.
      for (const part of encodeRequest('m'.repeat(300), cbor.encode(null))) sock.write(part);
      release.resolve();
      const first = await reader.response();
      assert.equal(first.ret, 0);
      assert.equal(cbor.decode(first.body), 'first');
      const second = await reader.response();
      assert.equal(second.ret, 1);
      assert.match(second.body.toString(), /method name/);
      await reader.closed();
    } finally {
      await relay.close();
      await server.close();
    }
  });

  it("tells the client, with ERROR on id 0, when the service broke the relay's limit", async () => {
    const path = tempSocket();
    // A service that accepts the hello, then answers any call with a result over the relay's limit.
    const fake = createNetServer((socket) => {
      socket.on('error', () => {});
      let helloDone = false;
      socket.on('data', () => {
        if (!helloDone) {
          helloDone = true;
          for (const part of encodeResponse(0, cbor.encode({ version: 1, maxFrameBytes: 1 << 24, window: 64, server: 'fake' }))) socket.write(part);
          return;
        }
        for (const part of encodeExtended(cbor.encode([4, 1]), new Uint8Array(128 * 1024))) socket.write(part);
      });
    });
    fake.listen(path);
    await once(fake, 'listening');
    const relay = await createRelay({ listen: 'tcp:127.0.0.1:0', to: `unix:${path}`, maxFrameBytes: 64 * 1024 });
    try {
      const raw = await RawExtended.open(relay.addresses[0]!);
      raw.send([1, 1, 'anything'], null);
      const e = await raw.next();
      assert.deepEqual(e.head.slice(0, 3), [5, 0, 'IPCBOR_ERR_FRAME_TOO_LARGE']);
      assert.match(String(e.head[3]), /^relay: the service's connection ended/);
      await raw.closed();
    } finally {
      await relay.close();
      fake.close();
    }
  });
});
