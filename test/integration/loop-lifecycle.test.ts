/**
 * The event loop's connection lifecycle: the `connection` event says what
 * the connection speaks (extended client or base framing), a clean close
 * carries no error while an abnormal one keeps it, and close() is one
 * promise that ends `events()`.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import type { Socket } from 'node:net';
import { describe, it } from 'node:test';
import { connect, createLoop, type EventLoop, type LoopEvent } from '../../src/index.js';
import { RawReader, rawConnect, tempSocket } from '../helpers.js';

/** The next event of `type` (a quiet 5 s fails the test); `seen` collects what came before it. */
async function next<T extends LoopEvent['type']>(loop: EventLoop, type: T, seen: LoopEvent[] = []): Promise<Extract<LoopEvent, { type: T }>> {
  for (;;) {
    const ev = await loop.wait(5000);
    if (ev.type === type) return ev as Extract<LoopEvent, { type: T }>;
    if (ev.type === 'timer') assert.fail(`no ${type} event (saw ${seen.map((e) => e.type).join(', ')})`);
    seen.push(ev);
  }
}

/** A request of the base framing: [u32 len][method][u32 len][CBOR]. */
function baseRequest(method: string, cbor: Uint8Array): Buffer {
  const m = Buffer.from(method);
  const head = Buffer.alloc(4);
  head.writeUInt32BE(m.length);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(cbor.length);
  return Buffer.concat([head, m, len, cbor]);
}

const EMPTY_MAP = Uint8Array.of(0xa0);

async function rawClient(address: string): Promise<{ socket: Socket; reader: RawReader }> {
  const socket = await rawConnect(address);
  return { socket, reader: new RawReader(socket) };
}

describe('event loop: what a connection speaks', () => {
  it('an extended client: the connection event already says extended, and write() reaches it', async () => {
    await using loop = createLoop();
    const [address] = await loop.serve(`unix:${tempSocket()}`);
    await using client = await connect(address!);
    assert.equal(client.protocol, 'extended');
    const heard: unknown[] = [];
    const sub = client.subscribe('hi', (p) => heard.push(p));
    await sub.ready;
    const ev = await next(loop, 'connection');
    // A copy taken when the event is handed out: what the application reads then.
    assert.deepEqual({ ...ev.connection.info }.protocol, 'extended');
    ev.connection.write('hi', { to: ev.connection.info.id });
    await new Promise<void>((resolve) => {
      const check = () => (heard.length > 0 ? resolve() : setTimeout(check, 10));
      check();
    });
    assert.deepEqual(heard, [{ to: ev.connection.info.id }]);
  });

  it('a base-framing client: the connection event says base, and comes before its first message', async () => {
    await using loop = createLoop();
    const [address] = await loop.serve(`unix:${tempSocket()}`);
    const { socket, reader } = await rawClient(address!);
    try {
      socket.write(baseRequest('ping', EMPTY_MAP));
      const seen: LoopEvent[] = [];
      const msg = await next(loop, 'message', seen);
      assert.deepEqual(
        seen.map((e) => e.type),
        ['connection'],
      );
      const conn = seen[0] as Extract<LoopEvent, { type: 'connection' }>;
      assert.equal(conn.connection.info.protocol, 'base');
      assert.equal(msg.connection, conn.connection);
      assert.throws(() => conn.connection.write('hi'), { code: 'IPCBOR_ERR_NOT_SUPPORTED' });
      msg.message.reply('pong');
      const r = await reader.response();
      assert.equal(r.ret, 0);
    } finally {
      socket.destroy();
    }
  });

  it('a connection that closes before saying anything gives no event at all', async () => {
    await using loop = createLoop();
    const [address] = await loop.serve(`unix:${tempSocket()}`);
    const { socket, reader } = await rawClient(address!);
    socket.end();
    await reader.closed();
    // Then a base-framing client: its connection is the first event the loop has.
    const other = await rawClient(address!);
    try {
      other.socket.write(baseRequest('ping', EMPTY_MAP));
      const first = await loop.wait(5000);
      assert.equal(first.type, 'connection');
    } finally {
      other.socket.destroy();
    }
  });
});

describe('event loop: a clean disconnection carries no error', () => {
  it('a client that closes, and a peer that ends its socket between frames: reason undefined', async () => {
    await using loop = createLoop();
    const [address] = await loop.serve(`unix:${tempSocket()}`);
    const client = await connect(address!);
    await next(loop, 'connection');
    await client.close();
    assert.equal((await next(loop, 'disconnection')).reason, undefined);

    const { socket, reader } = await rawClient(address!);
    socket.write(baseRequest('ping', EMPTY_MAP));
    const msg = await next(loop, 'message');
    msg.message.reply('pong');
    await reader.response();
    socket.end();
    assert.equal((await next(loop, 'disconnection')).reason, undefined);
  });

  it('the application closing a connection (close()) is clean too', async () => {
    await using loop = createLoop();
    const [address] = await loop.serve(`unix:${tempSocket()}`);
    await using client = await connect(address!);
    const ev = await next(loop, 'connection');
    await ev.connection.close();
    assert.equal((await next(loop, 'disconnection')).reason, undefined);
    assert.equal((await client.closed).code, 'IPCBOR_ERR_CONNECTION_CLOSED');
  });

  it('a frame cut short, a reset or a protocol error keeps its error', async () => {
    await using loop = createLoop();
    const [address] = await loop.serve(`unix:${tempSocket()}`);

    // Half a frame, then the end of the socket.
    const half = await rawClient(address!);
    half.socket.write(baseRequest('ping', EMPTY_MAP));
    (await next(loop, 'message')).message.reply('pong');
    await half.reader.response();
    half.socket.end(baseRequest('ping', EMPTY_MAP).subarray(0, 6));
    const cut = await next(loop, 'disconnection');
    assert.ok(cut.reason, 'a frame cut short is not a clean close');
    assert.equal(cut.reason.code, 'IPCBOR_ERR_CONNECTION_CLOSED');

    // A reset (over TCP: a unix socket cannot be reset).
    const [tcp] = await loop.serve('tcp:127.0.0.1:0');
    const reset = await rawClient(tcp!);
    reset.socket.write(baseRequest('ping', EMPTY_MAP));
    (await next(loop, 'message')).message.reply('pong');
    await reset.reader.response();
    reset.socket.resetAndDestroy();
    assert.ok((await next(loop, 'disconnection')).reason, 'a reset is not a clean close');

    // A method name over the limit: the server answers the error and closes.
    const broken = await rawClient(address!);
    broken.socket.write(baseRequest('ping', EMPTY_MAP));
    (await next(loop, 'message')).message.reply('pong');
    await broken.reader.response();
    const huge = Buffer.alloc(4);
    huge.writeUInt32BE(100_000);
    broken.socket.write(huge);
    const bad = await next(loop, 'disconnection');
    assert.ok(bad.reason, 'a protocol error is not a clean close');
    assert.equal(bad.reason.code, 'IPCBOR_ERR_CONNECTION_CLOSED');
    assert.match(bad.reason.message, /method name/);
    assert.equal((bad.reason.cause as { code?: string }).code, 'IPCBOR_ERR_METHOD_TOO_LONG');
    broken.socket.destroy();
  });
});

describe('event loop: close()', () => {
  it('every call returns the same promise, which resolves with the socket removed; events() then ends', async () => {
    const path = tempSocket();
    const loop = createLoop();
    await loop.serve(`unix:${path}`);
    const seen: string[] = [];
    const iterating = (async () => {
      for await (const ev of loop.events(1000)) seen.push(ev.type);
      return 'ended';
    })();
    const first = loop.close();
    assert.equal(loop.close(), first);
    await first;
    assert.equal(existsSync(path), false);
    assert.equal(await iterating, 'ended');
    assert.equal(await loop[Symbol.asyncDispose]().then(() => 'disposed'), 'disposed');
  });
});
