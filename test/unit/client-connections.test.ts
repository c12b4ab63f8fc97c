/**
 * The client over its connections: what it holds across one connection
 * and the next (subscriptions, calls), and what a server's handlers may
 * keep of a connection.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cbor } from '../../src/core/codec/cbor.js';
import { createClient } from '../../src/core/client/client.js';
import { ClientConnection } from '../../src/core/client/connection.js';
import { FrameDecoder } from '../../src/core/frame/decoder.js';
import { encodeExtended, encodeResponse } from '../../src/core/frame/encoder.js';
import { IpcborError } from '../../src/core/errors.js';
import { ServerCore } from '../../src/core/server/server.js';
import type { ConnectionInfo } from '../../src/core/transport.js';
import type { ServerConnection } from '../../src/core/server/connection.js';
import { MemoryTransport } from '../memory-transport.js';

/** A client of `core` over memory; `heads` is every extended frame head the server received. */
async function watched(core: ServerCore) {
  const heads: unknown[][] = [];
  const [c, s] = MemoryTransport.pair();
  const conn = core.accept(s, { transport: 'memory' }) as ServerConnection;
  const extended = conn.peer.extended.bind(conn.peer);
  conn.peer.extended = (head, payload) => {
    heads.push(cbor.decode(head) as unknown[]);
    extended(head, payload);
  };
  s.attach(conn);
  return { heads, client: await createClient(async () => c, 'memory') };
}

describe('client connections', () => {
  it('a result stream whose item cannot be decoded settles its call: the reader gets IPCBOR_ERR_DECODE, and the client is idle again', async () => {
    // A server by hand: it answers the hello, then call 1 with one broken ITEM.
    const [c, s] = MemoryTransport.pair();
    const decoder: FrameDecoder = new FrameDecoder('request', {
      request: () => {
        s.write(encodeResponse(0, cbor.encode({ version: 1, maxFrameBytes: 1 << 20, window: 64 })));
        decoder.mode = 'extended';
      },
      response: () => undefined,
      // 0x1c: a reserved additional-information value, no CBOR item.
      extended: () => void s.write(encodeExtended(cbor.encode([6, 1]), new Uint8Array([0x1c]))),
    });
    s.attach({ onData: (b) => decoder.push(b), onDrain() {}, onClose() {} });
    const client = await createClient(async () => c, 'memory', { closeTimeout: 60_000 });
    const stream = await client.call<AsyncIterable<unknown>>('items');
    await assert.rejects(
      (async () => {
        for await (const _ of stream) assert.fail('no item is readable');
      })(),
      (err: unknown) => err instanceof IpcborError && err.code === 'IPCBOR_ERR_DECODE',
    );
    assert.equal(client.inflight, 0, 'the call is over');
    // close() does not wait out its closeTimeout (a minute) for a call that will never end.
    await client.close();
  });

  it('a subscription given up while a reconnect registers it again is taken back on the new connection', async () => {
    const core = new ServerCore({ ping: () => 'pong' });
    const transports: MemoryTransport[] = [];
    const dial = async () => {
      const [c, s] = MemoryTransport.pair();
      s.attach(core.accept(s, { transport: 'memory' })!);
      transports.push(c);
      return c;
    };
    const client = await createClient(dial, 'memory', { reconnect: { initialDelay: 1, maxDelay: 1 } });
    const sub = client.subscribe('tick');
    await sub.ready;
    assert.equal(core.emit('tick', 1), 1);
    // The user unsubscribes just as the new connection sends its SUBSCRIBE.
    const register = ClientConnection.prototype.register;
    let connections = 0;
    ClientConnection.prototype.register = function (this: ClientConnection, name: string) {
      const ready = register.call(this, name);
      if (++connections === 1) void sub.unsubscribe();
      return ready;
    };
    try {
      transports[0]!.destroy();
      let dropped = false;
      for await (const st of client.states()) {
        if (st.state === 'reconnecting') dropped = true;
        if (dropped && st.state === 'open') break;
      }
      // SUBSCRIBE, then UNSUBSCRIBE, answered before this call is.
      assert.equal(await client.call('ping'), 'pong');
    } finally {
      ClientConnection.prototype.register = register;
    }
    assert.equal(connections, 1, 'the reconnect registered it once');
    assert.equal(sub.closed, true);
    assert.equal(core.emit('tick', 2), 0, 'no connection is subscribed to tick');
    await client.close();
    await core.close();
  });

  it('the connection facts a handler may keep are a plain object, kept up to date, that holds nothing else', async () => {
    let seen: ConnectionInfo | undefined;
    const core = new ServerCore({ who: (_p: unknown, ctx: { connection: ConnectionInfo }) => void (seen = ctx.connection) });
    const [c, s] = MemoryTransport.pair();
    s.attach(core.accept(s, { transport: 'memory' })!);
    const client = await createClient(async () => c, 'memory');
    await client.call('who');
    assert.ok(seen);
    const protocol = Object.getOwnPropertyDescriptor(seen, 'protocol');
    assert.deepEqual(protocol, { value: 'extended', writable: true, enumerable: true, configurable: true }, 'a data property (an accessor would keep the connection reachable)');
    for (const [key, value] of Object.entries(seen)) assert.ok(value === undefined || typeof value !== 'object' || key === 'peer', `${key} is a fact, not an object of the connection`);
    await client.close();
    await core.close();
  });

  it('a reader that stops its result stream sends one CANCEL, and the call is over', async () => {
    const core = new ServerCore({
      items: async function* () {
        for (let i = 0; ; i++) yield i;
      },
    });
    const { heads, client } = await watched(core);
    const stream = await client.call<AsyncIterable<number>>('items');
    let n = 0;
    for await (const _ of stream) if (++n === 3) break;
    assert.equal(await client.call('$ipcbor.describe').then(() => 'answered'), 'answered', 'a later call is answered: the CANCEL went before it');
    assert.deepEqual(heads.filter((h) => h[0] === 3), [[3, 1]], 'one CANCEL for call 1');
    assert.equal(client.inflight, 0);
    await client.close();
    await core.close();
  });

  it('a call that waited for a free server slot carries what is left of its timeout', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const core = new ServerCore({ hold: async () => gate, look: () => 'ok' }, { maxInflight: 1 });
    const { heads, client } = await watched(core);
    const held = client.call('hold');
    const look = client.call('look', {}, { timeout: 60_000 });
    // Read after the call began to wait: what it waited is at least released - made.
    const made = Date.now();
    await new Promise((r) => setTimeout(r, 50));
    const released = Date.now();
    release();
    assert.equal(await look, 'ok');
    await held;
    const sent = heads.find((h) => h[0] === 1 && h[2] === 'look') as [number, number, string, { timeout: number }];
    assert.ok(sent, 'the call reached the server');
    assert.ok(sent[3].timeout <= 60_000 - (released - made), `deadline sent ${sent[3].timeout} ms; the call waited at least ${released - made} ms of its 60,000`);
    await client.close();
    await core.close();
  });
  it('call ids wrap around after 2^32 - 1 and skip the ids still in flight', async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const core = new ServerCore({ hold: async () => (await held, 'held'), echo: (p: unknown) => p });
    const { heads, client } = await watched(core);
    const hold = client.call('hold'); // id 1, kept in flight
    await client.call('echo', 1); // id 2
    // The id counter just short of the top: the next two calls take 2^32 - 1, then wrap past 1 (in flight) and 2 (free again) ...
    (client as unknown as { conn: { nextId: number } }).conn.nextId = 0xfffffffe;
    assert.equal(await client.call('echo', 'top'), 'top');
    assert.equal(await client.call('echo', 'wrapped'), 'wrapped');
    assert.equal(await client.call('echo', 'next'), 'next');
    release();
    assert.equal(await hold, 'held');
    const ids = heads.filter((h) => h[0] === 1).map((h) => h[1]);
    assert.deepEqual(ids, [1, 2, 0xffffffff, 2, 3]);
    await client.close();
    await core.close();
  });
});
