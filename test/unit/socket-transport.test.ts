/**
 * SocketTransport's batching, over a stand-in socket that records its
 * writes: frames of one tick leave together at the tick's end, except that
 * a tick writing many leaves them 16 at a time as soon as there are 16
 * (pipelined answers: the peer starts on the first while the rest are
 * made), and frames written while a chunk is read leave as soon as it is
 * read (a server's answers: no deferred callback per chunk). Order and bytes are kept; the sink hears of room at the tick's
 * flush only, never from inside a write, and the bytes counted as unsent
 * do not fall before then either.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { describe, it } from 'node:test';
import { concatParts, encodeExtended } from '../../src/core/frame/encoder.js';
import { SocketTransport } from '../../src/node/socket-transport.js';

class RecordingSocket extends EventEmitter {
  readonly writes: Uint8Array[] = [];
  destroyed = false;
  writableEnded = false;
  writableLength = 0;
  closed = false;
  write(chunk: Uint8Array): boolean {
    this.writes.push(new Uint8Array(chunk));
    return true;
  }
  cork(): void {}
  uncork(): void {}
}

const frame = (i: number) => encodeExtended(Uint8Array.of(0x82, 0x04, 0x18, i), Uint8Array.of(0x61, 0x61 + (i % 26)));
const tick = () => new Promise<void>((resolve) => process.nextTick(resolve));

function rig(onData: (chunk: Uint8Array, transport: SocketTransport) => void = () => {}) {
  const socket = new RecordingSocket();
  const transport = new SocketTransport(socket as unknown as Socket);
  const drains: number[] = [];
  transport.attach({ onData: (chunk) => onData(chunk, transport), onDrain: () => drains.push(socket.writes.length), onClose: () => {} });
  return { socket, transport, drains };
}

/** The frames numbered `ids`, as the bytes of one write. */
const framesOf = (...ids: number[]) => concatParts(ids.flatMap((i) => [...frame(i)]));

describe('SocketTransport: writes', () => {
  it('frames of one tick leave in one write, at the end of the tick', async () => {
    const { socket, transport, drains } = rig();
    for (let i = 0; i < 5; i++) transport.write(frame(i));
    assert.equal(socket.writes.length, 0, 'nothing is written before the tick ends');
    await tick();
    assert.equal(socket.writes.length, 1);
    assert.deepEqual(socket.writes[0], concatParts([0, 1, 2, 3, 4].flatMap((i) => [...frame(i)])));
    assert.deepEqual(drains, [1], 'the sink hears of room once, after the write');
  });

  it('a tick writing many frames sends them 16 at a time as they are written, the rest at its end, all in order', async () => {
    const { socket, transport, drains } = rig();
    const all: Uint8Array[] = [];
    for (let i = 0; i < 40; i++) {
      transport.write(frame(i));
      all.push(...frame(i));
      if (i === 14) assert.equal(socket.writes.length, 0, '15 frames wait for the tick');
      if (i === 15) assert.equal(socket.writes.length, 1, 'the 16th sends the first 16 at once');
      if (i === 31) assert.equal(socket.writes.length, 2);
    }
    assert.deepEqual(drains, [], 'no word to the sink from inside a write');
    await tick();
    assert.equal(socket.writes.length, 3);
    assert.deepEqual(
      socket.writes.map((w) => w.length),
      [16, 16, 8].map((n) => n * concatParts(frame(0)).length),
    );
    assert.deepEqual(concatParts(socket.writes), concatParts(all));
    assert.deepEqual(drains, [3], 'the tick’s flush tells the sink once');
  });

  it('a tick of exactly 32 frames, all sent from inside writes, still tells the sink at its flush', async () => {
    const { socket, transport, drains } = rig();
    for (let i = 0; i < 32; i++) transport.write(frame(i));
    assert.equal(socket.writes.length, 2);
    await tick();
    assert.equal(socket.writes.length, 2, 'nothing left for the flush to write');
    assert.deepEqual(drains, [2], 'the sink hears of the room once, at the flush');
  });

  it('pendingBytes does not fall inside the tick (bytes leaving release budget, which must not happen inside a write)', async () => {
    const { transport, drains } = rig();
    let last = 0;
    for (let i = 0; i < 40; i++) {
      transport.write(frame(i));
      assert.ok(transport.pendingBytes >= last, `frame ${i}: pendingBytes fell from ${last} to ${transport.pendingBytes}`);
      last = transport.pendingBytes;
    }
    await tick();
    assert.equal(transport.pendingBytes, 0, 'the flush lets it fall');
    assert.equal(drains.length, 1);
  });

  it('a socket gone meanwhile takes nothing, and keeps nothing queued', async () => {
    const { socket, transport } = rig();
    for (let i = 0; i < 10; i++) transport.write(frame(i));
    socket.destroyed = true;
    for (let i = 10; i < 30; i++) transport.write(frame(i));
    await tick();
    assert.equal(socket.writes.length, 0);
    assert.equal(transport.pendingBytes, 0);
  });

  it('a socket ended or gone is not writable, and a write into it returns false: it took nothing, and its writer waits for the close', () => {
    const { socket, transport } = rig();
    assert.equal(transport.writable, true);
    assert.equal(transport.write(frame(0)), true);
    socket.writableEnded = true;
    assert.equal(transport.writable, false);
    assert.equal(transport.write(frame(1)), false);
    socket.writableEnded = false;
    socket.destroyed = true;
    assert.equal(transport.writable, false);
    assert.equal(transport.write(frame(2)), false);
  });
});

describe('SocketTransport: writes made while a chunk is read', () => {
  it('leave as soon as the chunk is read, in one write, and the sink hears of the room then', async () => {
    const { socket, drains } = rig((chunk, t) => {
      for (const i of chunk) t.write(frame(i));
    });
    socket.emit('data', Buffer.from([1, 2, 3]));
    assert.equal(socket.writes.length, 1, 'written before the data event returned');
    assert.deepEqual(socket.writes[0], framesOf(1, 2, 3));
    assert.deepEqual(drains, [1]);
    await tick();
    assert.equal(socket.writes.length, 1, 'nothing is left for the tick');
    assert.deepEqual(drains, [1]);
  });

  it('frames written before the chunk in the same tick keep their place: all leave together at the tick\'s end', async () => {
    const { socket, transport, drains } = rig((chunk, t) => t.write(frame(chunk[0]!)));
    transport.write(frame(0));
    socket.emit('data', Buffer.from([1]));
    assert.equal(socket.writes.length, 0, 'the tick owns the flush');
    await tick();
    assert.deepEqual(socket.writes, [framesOf(0, 1)]);
    assert.deepEqual(drains, [1]);
  });

  it('a chunk read from inside another one\'s reading is flushed with it, once, when the outer one is done', () => {
    let nested = false;
    const { socket } = rig((chunk, t) => {
      t.write(frame(chunk[0]!));
      if (!nested) {
        nested = true;
        socket.emit('data', Buffer.from([2]));
        assert.equal(socket.writes.length, 0, 'the inner read does not flush');
      }
      t.write(frame(chunk[0]! + 10));
    });
    socket.emit('data', Buffer.from([1]));
    assert.deepEqual(socket.writes, [framesOf(1, 2, 12, 11)]);
  });

  it('a sink that throws while reading still has what it wrote sent', () => {
    const { socket } = rig((chunk, t) => {
      t.write(frame(chunk[0]!));
      throw new Error('sink failed');
    });
    assert.throws(() => socket.emit('data', Buffer.from([5])), /sink failed/);
    assert.deepEqual(socket.writes, [framesOf(5)]);
  });

  it('16 frames written while reading leave from inside the writes, the rest when the read ends', () => {
    const { socket, drains } = rig((chunk, t) => {
      for (let i = 0; i < chunk[0]!; i++) t.write(frame(i));
    });
    socket.emit('data', Buffer.from([20]));
    assert.deepEqual(socket.writes, [framesOf(...Array.from({ length: 16 }, (_, i) => i)), framesOf(16, 17, 18, 19)]);
    assert.deepEqual(drains, [2], 'once, at the end of the read');
  });
});
