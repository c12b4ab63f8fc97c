/**
 * Two edges of the wire contract, as docs/PROTOCOL.md states them:
 *
 * - §5, integers at the edge of a JavaScript number: what the decoder makes
 *   of ±(2^53−1), ±2^53, ±(2^53+1), 2^64−1 and −2^64, what the encoder
 *   sends, and what `s.int()` accepts, alone and as a server's schema;
 * - §7/§8, the 64 KiB head of an extended frame: a head of exactly 65,536
 *   bytes is read, one byte more is `IPCBOR_ERR_BAD_FRAME` (and a payload
 *   over `maxFrameBytes` is `IPCBOR_ERR_FRAME_TOO_LARGE`), over the
 *   in-memory transport.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cbor } from '../../src/core/codec/cbor.js';
import { createClient } from '../../src/core/client/client.js';
import { IpcborError } from '../../src/core/errors.js';
import { FrameDecoder, MAX_HEAD_BYTES } from '../../src/core/frame/decoder.js';
import { encodeExtended, encodeRequest, encodeResponse } from '../../src/core/frame/encoder.js';
import { s } from '../../src/core/schema.js';
import { ServerCore, type Servable, type ServerCoreOptions } from '../../src/core/server/server.js';
import { defineService, method } from '../../src/core/service.js';
import { MemoryTransport } from '../memory-transport.js';
import { rejectsWith, waitFor } from '../extended-helpers.js';
import { hex, toHex } from '../fixtures/golden.js';

const TWO_53 = 2 ** 53;

/** Each boundary: its CBOR, the value the decoder gives, whether s.int() takes it. */
const INTEGER_EDGES: { name: string; cbor: string; value: number | bigint; int: boolean }[] = [
  { name: '2^53-1', cbor: '1b001fffffffffffff', value: TWO_53 - 1, int: true },
  { name: '-(2^53-1)', cbor: '3b001ffffffffffffe', value: -(TWO_53 - 1), int: true },
  { name: '2^53', cbor: '1b0020000000000000', value: TWO_53, int: false },
  { name: '-2^53', cbor: '3b001fffffffffffff', value: -TWO_53, int: false },
  { name: '2^53+1', cbor: '1b0020000000000001', value: 2n ** 53n + 1n, int: false },
  { name: '-(2^53+1)', cbor: '3b0020000000000000', value: -(2n ** 53n) - 1n, int: false },
  { name: '2^64-1', cbor: '1bffffffffffffffff', value: 2n ** 64n - 1n, int: false },
  { name: '-2^64', cbor: '3bffffffffffffffff', value: -(2n ** 64n), int: false },
];

const intIssues = (v: unknown) => {
  const r = s.int()['~standard'].validate(v) as { value?: unknown; issues?: { message: string }[] };
  return r.issues?.map((i) => i.message);
};

describe('integers at ±2^53 (PROTOCOL.md §5)', () => {
  for (const e of INTEGER_EDGES) {
    it(`${e.name}: decodes to a ${typeof e.value}, which s.int() ${e.int ? 'accepts' : 'refuses'}`, () => {
      const decoded = cbor.decode(hex(e.cbor));
      assert.equal(typeof decoded, typeof e.value);
      assert.equal(decoded, e.value);
      assert.deepEqual(intIssues(decoded), e.int ? undefined : [`expected integer within ±(2^53-1), got ${String(e.value)}`]);
    });
  }

  it('the encoder sends safe integers and bigints as integers, numbers of 2^53 and beyond as floats', () => {
    for (const e of INTEGER_EDGES) {
      // As a bigint, every one of them goes out as the integer it decodes from.
      assert.equal(toHex(cbor.encode(BigInt(e.value))), e.cbor, `${e.name} as a bigint`);
      // As a number, only a safe integer does.
      if (typeof e.value === 'number' && e.int) assert.equal(toHex(cbor.encode(e.value)), e.cbor, `${e.name} as a number`);
    }
    assert.equal(toHex(cbor.encode(TWO_53)), 'fa5a000000', '2^53 as a number: a float');
    assert.equal(toHex(cbor.encode(-TWO_53)), 'fada000000', '-2^53 as a number: a float');
    assert.equal(cbor.decode(hex('fa5a000000')), TWO_53, 'which decodes to the same number');
    assert.throws(() => cbor.encode(2n ** 64n), (err: unknown) => err instanceof IpcborError && err.code === 'IPCBOR_ERR_ENCODE');
    assert.throws(() => cbor.encode(-(2n ** 64n) - 1n), (err: unknown) => err instanceof IpcborError && err.code === 'IPCBOR_ERR_ENCODE');
  });

  it('s.int() refuses what is not an integer as before, and says the range in its JSON Schema', () => {
    assert.deepEqual(intIssues(1.5), ['expected integer, got number']);
    assert.deepEqual(intIssues(Number.POSITIVE_INFINITY), ['expected integer, got number']);
    assert.deepEqual(intIssues('1'), ['expected integer, got string']);
    assert.deepEqual(intIssues(2n ** 70n), ['expected integer, got bigint']);
    assert.deepEqual(intIssues(-0), undefined);
    assert.deepEqual(s.int().json(), { type: 'integer', minimum: -(TWO_53 - 1), maximum: TWO_53 - 1 });
  });

  it('a server with s.int() params answers the safe ones and refuses the others by name, in both framings', async () => {
    const svc = defineService({ name: 'n', version: '1', methods: { take: method({ params: s.object({ n: s.int() }), handler: ({ n }) => n }) } });
    const core = new ServerCore([svc]);
    const [c, t] = MemoryTransport.pair();
    t.attach(core.accept(t, { transport: 'memory' })!);
    const answers: { ret: number; body: Uint8Array }[] = [];
    const decoder = new FrameDecoder('response', { response: (ret, body) => answers.push({ ret, body }) });
    c.attach({ onData: (chunk) => decoder.push(chunk), onDrain() {}, onClose() {} });
    // Base framing, the payload written by hand: {"n": <the edge>}.
    for (const e of INTEGER_EDGES) for (const part of encodeRequest('n.take', hex(`a1616e${e.cbor}`))) c.writeRaw(part);
    await waitFor(() => answers.length === INTEGER_EDGES.length, 'every answer');
    INTEGER_EDGES.forEach((e, i) => {
      const a = answers[i]!;
      if (e.int) {
        assert.equal(a.ret, 0, e.name);
        assert.equal(toHex(a.body), e.cbor, `${e.name} comes back as the same integer`);
      } else {
        assert.equal(a.ret, 1, e.name);
        assert.equal(new TextDecoder().decode(a.body), `n: expected integer within ±(2^53-1), got ${String(e.value)}`);
      }
    });
    c.destroy();
    core.destroy();

    // The extended protocol, through ipcbor's own client (bigints travel as integers).
    const core2 = new ServerCore([svc]);
    const [c2, t2] = MemoryTransport.pair();
    t2.attach(core2.accept(t2, { transport: 'memory' })!);
    const client = await createClient(async () => c2, 'memory');
    assert.equal(client.protocol, 'extended');
    for (const e of INTEGER_EDGES) {
      if (e.int) assert.equal(await client.call('n.take', { n: e.value }), e.value);
      else await rejectsWith(client.call('n.take', { n: BigInt(e.value) }), 'IPCBOR_ERR_INVALID_PARAMS');
    }
    client.destroy();
    core2.destroy();
  });
});

interface Frame {
  head: unknown[];
  payload: Uint8Array;
}

/** A hand-driven extended client over memory: writes raw bytes, collects the frames the server sends. */
class Raw {
  readonly frames: Frame[] = [];
  closed = false;
  readonly core: ServerCore;
  readonly t: MemoryTransport;
  private answered = false;

  constructor(target: Servable, options: ServerCoreOptions = {}) {
    this.core = new ServerCore(target, options);
    const [c, t] = MemoryTransport.pair();
    this.t = c;
    t.attach(this.core.accept(t, { transport: 'memory' })!);
    const decoder = new FrameDecoder('response', {
      response: (ret) => {
        assert.equal(ret, 0, 'the hello is accepted');
        this.answered = true;
        decoder.mode = 'extended';
      },
      extended: (head, payload) => this.frames.push({ head: cbor.decode(head) as unknown[], payload }),
    });
    c.attach({ onData: (chunk) => decoder.push(chunk), onDrain() {}, onClose: () => (this.closed = true) });
  }

  async hello(): Promise<void> {
    this.raw(...encodeRequest('$ipcbor.hello', cbor.encode({ version: 1, maxFrameBytes: 1 << 24, window: 4 })));
    await waitFor(() => this.answered, 'the hello answer');
  }

  raw(...parts: Uint8Array[]): void {
    for (const p of parts) this.t.writeRaw(p);
  }

  async next(): Promise<Frame> {
    await waitFor(() => this.frames.length > 0 || this.closed, 'a frame');
    if (this.frames.length === 0) assert.fail('closed without a frame');
    return this.frames.shift()!;
  }
}

/** A u32, big-endian. */
const u32 = (n: number) => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
};

/** An ERROR head for an id not in flight (ignored by the receiver), padded to exactly `size` bytes. */
function errorHeadOf(size: number): Uint8Array {
  // [5, 99, "X", message]: 1 (array) + 1 (5) + 2 (99) + 2 ("X") + 3 (a text head for 256..65535 bytes) + message.
  const head = cbor.encode([5, 99, 'X', 'm'.repeat(size - 9)]);
  assert.equal(head.length, size);
  return head;
}

describe('the 64 KiB head of an extended frame (PROTOCOL.md §7, §8)', () => {
  const handlers = { ping: () => 'pong' };

  it('is 65,536 bytes', () => {
    assert.equal(MAX_HEAD_BYTES, 65_536);
  });

  it('a head of exactly 65,536 bytes is read (here: an ERROR for no call, ignored), and the connection goes on', async () => {
    const r = new Raw(handlers);
    await r.hello();
    r.raw(...encodeExtended(errorHeadOf(MAX_HEAD_BYTES)));
    r.raw(...encodeExtended(cbor.encode([1, 1, 'ping']), cbor.encode({})));
    const f = await r.next();
    assert.deepEqual(f.head, [4, 1]);
    assert.equal(cbor.decode(f.payload), 'pong');
    assert.equal(r.closed, false);
    r.core.destroy();
  });

  it('a head_len of 65,537 is IPCBOR_ERR_BAD_FRAME (not FRAME_TOO_LARGE), answered from the 4 length bytes alone, then the close', async () => {
    const r = new Raw(handlers);
    await r.hello();
    r.raw(u32(MAX_HEAD_BYTES + 1));
    const f = await r.next();
    assert.deepEqual(f.head, [5, 0, 'IPCBOR_ERR_BAD_FRAME', 'frame head of 65537 bytes is over the limit of 65536 bytes']);
    await waitFor(() => r.closed, 'the close');
    assert.equal(r.frames.length, 0);
  });

  it('a payload_len over maxFrameBytes is IPCBOR_ERR_FRAME_TOO_LARGE, answered from its 4 length bytes alone, then the close', async () => {
    const r = new Raw(handlers, { maxFrameBytes: 1024 });
    await r.hello();
    const head = cbor.encode([1, 1, 'ping']);
    r.raw(u32(head.length), head, u32(1025));
    const f = await r.next();
    assert.deepEqual(f.head, [5, 0, 'IPCBOR_ERR_FRAME_TOO_LARGE', 'frame of 1025 bytes is over the limit of 1024 bytes']);
    await waitFor(() => r.closed, 'the close');
  });

  it('a head that is not valid CBOR is IPCBOR_ERR_DECODE; one of the wrong shape is IPCBOR_ERR_BAD_FRAME', async () => {
    for (const [head, code] of [
      [hex('ff'), 'IPCBOR_ERR_DECODE'],
      [cbor.encode({ kind: 1 }), 'IPCBOR_ERR_BAD_FRAME'],
    ] as const) {
      const r = new Raw(handlers);
      await r.hello();
      r.raw(...encodeExtended(head));
      const f = await r.next();
      assert.deepEqual(f.head.slice(0, 3), [5, 0, code]);
      await waitFor(() => r.closed, 'the close');
    }
  });

  /** An ipcbor client over memory, against a fake server that answers the hello and then does what the test says. */
  async function fakeServer(): Promise<{ client: Awaited<ReturnType<typeof createClient>>; t: MemoryTransport; fromClient: Frame[]; closed: () => boolean }> {
    const [c, t] = MemoryTransport.pair();
    const fromClient: Frame[] = [];
    const decoder = new FrameDecoder('request', {
      request: () => {
        // The hello: answer it, then read extended frames.
        t.write(encodeResponse(0, cbor.encode({ version: 1, maxFrameBytes: 1 << 24, window: 4, server: 'fake' })));
        decoder.mode = 'extended';
      },
      extended: (head, payload) => fromClient.push({ head: cbor.decode(head) as unknown[], payload }),
    });
    let closed = false;
    t.attach({ onData: (chunk) => decoder.push(chunk), onDrain() {}, onClose: () => (closed = true) });
    const client = await createClient(async () => c, 'memory');
    assert.equal(client.protocol, 'extended');
    return { client, t, fromClient, closed: () => closed };
  }

  it('the client applies the same limit to what a server sends: IPCBOR_ERR_BAD_FRAME, said to the server, the cause of its calls\' IPCBOR_ERR_CONNECTION_CLOSED', async () => {
    const { client, t, fromClient, closed } = await fakeServer();
    const call = client.call('ping');
    await waitFor(() => fromClient.length === 1, 'the CALL');
    t.writeRaw(u32(MAX_HEAD_BYTES + 1));
    const err = await rejectsWith(call, 'IPCBOR_ERR_CONNECTION_CLOSED');
    assert.ok(err.cause instanceof IpcborError);
    assert.equal(err.cause.code, 'IPCBOR_ERR_BAD_FRAME');
    assert.equal(err.message, 'the connection closed: frame head of 65537 bytes is over the limit of 65536 bytes');
    await waitFor(closed, 'the client to close');
    assert.deepEqual(fromClient.at(-1)?.head.slice(0, 3), [5, 0, 'IPCBOR_ERR_BAD_FRAME'], 'the client said why before closing');
  });

  it('an ERROR with id 0 from the server ends the client\'s calls the same way: IPCBOR_ERR_CONNECTION_CLOSED, that error its cause', async () => {
    const { client, t, fromClient, closed } = await fakeServer();
    const call = client.call('ping');
    await waitFor(() => fromClient.length === 1, 'the CALL');
    t.write(encodeExtended(cbor.encode([5, 0, 'IPCBOR_ERR_PROTOCOL', 'bye'])));
    const err = await rejectsWith(call, 'IPCBOR_ERR_CONNECTION_CLOSED');
    assert.equal((err.cause as IpcborError).code, 'IPCBOR_ERR_PROTOCOL');
    await waitFor(closed, 'the client to close');
  });
});
