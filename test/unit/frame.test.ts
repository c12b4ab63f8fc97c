import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { FrameDecoder, MAX_HEAD_BYTES, type DecoderMode } from '../../src/core/frame/decoder.js';
import { ChunkQueue } from '../../src/core/frame/chunks.js';
import { concatParts, encodeErrorResponse, encodeExtended, encodeRequest, encodeResponse } from '../../src/core/frame/encoder.js';
import { IpcborError } from '../../src/core/errors.js';
import { golden, hex, baseRequestHex, toHex } from '../fixtures/golden.js';

type Frame = { method?: string; ret?: number; head?: string; body: string };

function collect(mode: DecoderMode, limits = {}) {
  const frames: Frame[] = [];
  const d = new FrameDecoder(
    mode,
    {
      request: (method, payload) => frames.push({ method, body: toHex(payload) }),
      response: (ret, body) => frames.push({ ret, body: toHex(body) }),
      extended: (head, payload) => frames.push({ head: toHex(head), body: toHex(payload) }),
    },
    limits,
  );
  return { d, frames };
}

const codeOf = (fn: () => unknown): string => {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof IpcborError, `expected IpcborError, got ${String(err)}`);
    return err.code;
  }
  assert.fail('expected a throw');
};

describe('frame encoder', () => {
  it('encodes the golden version and echo requests', () => {
    assert.equal(toHex(concatParts(encodeRequest('version', hex('a0')))), golden.versionRequest.replace(/ /g, ''));
    const echo = hex(golden.echoRequest);
    const body = echo.subarray(12);
    assert.equal(toHex(concatParts(encodeRequest('echo', body))), toHex(echo));
  });

  it('encodes the golden responses', () => {
    const v = hex(golden.versionResponse);
    assert.equal(toHex(concatParts(encodeResponse(0, v.subarray(8)))), toHex(v));
    assert.equal(toHex(concatParts(encodeErrorResponse('forced failure for echo'))), golden.errorResponse.replace(/ /g, ''));
  });

  it('keeps header and body apart: the body is the very same buffer', () => {
    const body = new Uint8Array(1 << 20);
    const [header, out] = encodeRequest('echo', body);
    assert.equal(out, body);
    assert.equal(header.length, 12);
    const [, resp] = encodeResponse(0, body);
    assert.equal(resp, body);
  });

  it('sends an empty error text as "unknown error"', () => {
    assert.equal(Buffer.from(concatParts(encodeErrorResponse('')).subarray(8)).toString(), 'unknown error');
  });

  it('encodes ret as a signed 32-bit integer', () => {
    assert.equal(toHex(concatParts(encodeResponse(-1, new Uint8Array(0)))), 'ffffffff00000000');
  });
});

describe('frame decoder', () => {
  const requests = [golden.versionRequest, golden.echoRequest, baseRequestHex('schedule', golden.scheduleRequestBody)].map((h) => hex(h));
  const responses = [golden.versionResponse, golden.echoResponse, golden.errorResponse].map((h) => hex(h));

  it('decodes each golden request split at every byte position', () => {
    for (const frame of requests) {
      for (let cut = 0; cut <= frame.length; cut++) {
        const { d, frames } = collect('request');
        d.push(frame.subarray(0, cut));
        d.push(frame.subarray(cut));
        assert.equal(frames.length, 1, `cut ${cut}`);
        const methodLen = new DataView(frame.buffer, frame.byteOffset).getUint32(0);
        assert.equal(frames[0]!.body, toHex(frame.subarray(8 + methodLen)));
      }
    }
  });

  it('decodes each golden response split at every pair of positions', () => {
    for (const frame of responses) {
      for (let a = 0; a <= frame.length; a++) {
        for (let b = a; b <= frame.length; b++) {
          const { d, frames } = collect('response');
          d.push(frame.subarray(0, a));
          d.push(frame.subarray(a, b));
          d.push(frame.subarray(b));
          assert.equal(frames.length, 1);
          assert.equal(frames[0]!.body, toHex(frame.subarray(8)));
          assert.equal(frames[0]!.ret, new DataView(frame.buffer, frame.byteOffset).getInt32(0));
        }
      }
    }
  });

  it('decodes many frames from one chunk, and one byte at a time', () => {
    const all = concatParts([...requests, ...requests]);
    const one = collect('request');
    one.d.push(all);
    assert.deepEqual(
      one.frames.map((f) => f.method),
      ['version', 'echo', 'schedule', 'version', 'echo', 'schedule'],
    );
    const bytewise = collect('request');
    for (let i = 0; i < all.length; i++) bytewise.d.push(all.subarray(i, i + 1));
    assert.deepEqual(bytewise.frames, one.frames);
    assert.ok(bytewise.d.idle);
  });

  it('hands out a view, not a copy, when a frame lies in one chunk', () => {
    const chunk = concatParts(encodeRequest('echo', new Uint8Array(4096).fill(7)));
    let payload: Uint8Array | undefined;
    new FrameDecoder('request', { request: (_m, p) => (payload = p) }).push(chunk);
    assert.equal(payload!.buffer, chunk.buffer);
    assert.equal(payload!.byteOffset, 12);
  });

  it('copies a frame that spans chunks into one buffer', () => {
    const frame = hex(golden.echoRequest);
    let payload: Uint8Array | undefined;
    const d = new FrameDecoder('request', { request: (_m, p) => (payload = p) });
    d.push(frame.slice(0, 20));
    d.push(frame.slice(20));
    assert.notEqual(payload!.buffer, frame.buffer);
    assert.equal(toHex(payload!), toHex(frame.subarray(12)));
  });

  it('refuses an oversize method as soon as its length is read', () => {
    const { d } = collect('request', { maxMethodBytes: 8 });
    assert.equal(codeOf(() => d.push(hex('00000009'))), 'IPCBOR_ERR_METHOD_TOO_LONG');
    assert.equal(d.buffered, 4, 'nothing after the length was awaited');
    assert.equal(codeOf(() => d.push(hex('00'))), 'IPCBOR_ERR_METHOD_TOO_LONG', 'a failed decoder stays failed');
  });

  it('refuses a payload length of 2^32-1 before buffering any of it', () => {
    const { d, frames } = collect('request');
    assert.equal(codeOf(() => d.push(hex('0000000465636f68 ffffffff'))), 'IPCBOR_ERR_FRAME_TOO_LARGE');
    assert.equal(frames.length, 0);
    const r = collect('response', { maxFrameBytes: 16 });
    assert.equal(codeOf(() => r.d.push(hex('00000000 00000011'))), 'IPCBOR_ERR_FRAME_TOO_LARGE');
  });

  it('accepts a frame exactly at the limit', () => {
    const { d, frames } = collect('request', { maxFrameBytes: 3, maxMethodBytes: 4 });
    d.push(hex('00000004 65636f68 00000003 616263'));
    assert.equal(frames.length, 1);
  });

  it('refuses a method name that is not UTF-8', () => {
    const { d } = collect('request');
    assert.equal(codeOf(() => d.push(hex('00000002 c328 00000001 a0'))), 'IPCBOR_ERR_BAD_FRAME');
  });

  it('accepts an empty payload (length 0)', () => {
    const { d, frames } = collect('request');
    d.push(hex('00000001 78 00000000'));
    assert.deepEqual(frames, [{ method: 'x', body: '' }]);
  });

  it('switches mode between frames, inside the sink callback', () => {
    const frames: string[] = [];
    const d: FrameDecoder = new FrameDecoder('request', {
      request: (m) => {
        frames.push(m);
        d.mode = 'extended';
      },
      extended: (h, p) => frames.push(`${toHex(h)}/${toHex(p)}`),
    });
    d.push(concatParts([hex(golden.versionRequest), ...encodeExtended(hex('820401'), hex('a0'))]));
    assert.deepEqual(frames, ['version', '820401/a0']);
  });

  it('refuses an extended head over its limit', () => {
    const { d } = collect('extended');
    const len = Buffer.alloc(4);
    len.writeUInt32BE(MAX_HEAD_BYTES + 1);
    assert.equal(codeOf(() => d.push(len)), 'IPCBOR_ERR_BAD_FRAME');
  });

  describe('extended frames straight from the chunk (no queue)', () => {
    const ext = (i: number) => encodeExtended(Uint8Array.of(0x82, 0x04, i), Uint8Array.of(0xa1, 0x61, 0x6e, i & 0x17));
    const heads = (frames: Frame[]) => frames.map((f) => f.head);

    /** A decoder whose sink records each frame's number (its head's third byte), then runs `then` with it. */
    function numbered(then: (n: number) => void): { d: FrameDecoder; seen: number[] } {
      const seen: number[] = [];
      const d = new FrameDecoder('extended', {
        extended: (h) => {
          seen.push(h[2]!);
          then(h[2]!);
        },
      });
      return { d, seen };
    }

    it('delivers the whole frames of a chunk and keeps a partial tail, held as the whole chunk', () => {
      const { d, frames } = collect('extended');
      const third = concatParts(ext(3));
      const chunk = concatParts([...ext(1), ...ext(2), third.subarray(0, 3)]);
      d.push(chunk);
      assert.deepEqual(heads(frames), ['820401', '820402']);
      assert.equal(d.buffered, 3);
      assert.equal(d.heldBytes, chunk.length, 'the chunk is held whole, and charged so');
      assert.equal(d.idle, false);
      d.push(third.subarray(3));
      assert.deepEqual(heads(frames), ['820401', '820402', '820403']);
      assert.equal(d.heldBytes, 0);
      assert.ok(d.idle);
    });

    it('a sink that holds mid-chunk stops delivery; the rest follows on release, in order', () => {
      const { d, seen } = numbered((n) => {
        if (n === 2) d.hold();
      });
      d.push(concatParts([...ext(1), ...ext(2), ...ext(3), ...ext(4)]));
      assert.deepEqual(seen, [1, 2]);
      assert.ok(d.buffered > 0);
      d.release();
      assert.deepEqual(seen, [1, 2, 3, 4]);
      assert.equal(d.heldBytes, 0);
    });

    it('a sink that discards mid-chunk gets nothing more, and nothing stays held', () => {
      const { d, seen } = numbered((n) => {
        if (n === 1) d.discard();
      });
      d.push(concatParts([...ext(1), ...ext(2), ...ext(3)]));
      assert.deepEqual(seen, [1]);
      assert.equal(d.heldBytes, 0);
      assert.equal(d.retainedBytes, 0);
      assert.equal(codeOf(() => d.push(concatParts(ext(4)))), 'IPCBOR_ERR_CONNECTION_CLOSED');
    });

    it('a length over its limit fails the chunk there, after the frames before it', () => {
      const { d, frames } = collect('extended', { maxFrameBytes: 16 });
      const big = encodeExtended(Uint8Array.of(0x82, 0x04, 9), new Uint8Array(17));
      assert.equal(codeOf(() => d.push(concatParts([...ext(1), ...big]))), 'IPCBOR_ERR_FRAME_TOO_LARGE');
      assert.deepEqual(heads(frames), ['820401']);
      const h = collect('extended');
      const len = Buffer.alloc(4);
      len.writeUInt32BE(MAX_HEAD_BYTES + 1);
      assert.equal(codeOf(() => h.d.push(concatParts([...ext(1), len]))), 'IPCBOR_ERR_BAD_FRAME');
      assert.deepEqual(heads(h.frames), ['820401']);
    });

    const whole = (i: number) => concatParts(ext(i));
    const cat = (...parts: Uint8Array[]): Uint8Array => new Uint8Array(Buffer.concat(parts));

    it('a push made from inside the sink (a transport whose resume() hands bytes on at once) keeps frames in order', () => {
      const { d, seen } = numbered((n) => {
        if (n === 1) d.push(cat(whole(4), whole(5)));
      });
      d.push(cat(whole(1), whole(2), whole(3)));
      assert.deepEqual(seen, [1, 2, 3, 4, 5]);
      assert.ok(d.idle);
    });

    it('a push from inside the sink, with partial tails in both chunks: frames in order, none garbled', () => {
      const seen: number[] = [];
      const three = whole(3);
      const six = whole(6);
      const d: FrameDecoder = new FrameDecoder('extended', {
        extended: (h) => {
          seen.push(h[2]!);
          if (h[2] === 1) d.push(cat(three.subarray(5), whole(4), whole(5), six.subarray(0, 5)));
        },
      });
      d.push(cat(whole(1), whole(2), three.subarray(0, 5)));
      d.push(six.subarray(5));
      assert.deepEqual(seen, [1, 2, 3, 4, 5, 6]);
      assert.ok(d.idle);
    });

    it('hold, a push while held, then release, all from inside the sink: every frame, in order', () => {
      const { d, seen } = numbered((n) => {
        if (n === 1) {
          d.hold();
          d.push(cat(whole(4), whole(5)));
          d.release();
        }
      });
      d.push(cat(whole(1), whole(2), whole(3)));
      assert.deepEqual(seen, [1, 2, 3, 4, 5]);
      assert.equal(d.buffered, 0);
    });

    it('a sink that throws (not a framing error): the frames after its own in the chunk are kept, and come next', () => {
      const { d, seen } = numbered((n) => {
        if (n === 1) throw new Error('sink failed');
      });
      assert.throws(() => d.push(cat(whole(1), whole(2), whole(3))), /sink failed/);
      d.push(whole(4));
      assert.deepEqual(seen, [1, 2, 3, 4]);
    });

    it('property: frames cut anywhere, with the sink holding, releasing and pushing the next piece at any frame, arrive once each, in order', () => {
      fc.assert(
        fc.property(
          fc.array(fc.tuple(fc.uint8Array({ minLength: 1, maxLength: 12 }), fc.uint8Array({ maxLength: 40 })), { maxLength: 20 }),
          fc.array(fc.nat(), { maxLength: 20 }),
          fc.array(fc.boolean(), { maxLength: 20 }),
          (list, cuts, holds) => {
            const out: string[] = [];
            let n = 0;
            const bytes = concatParts(list.flatMap(([h, p]) => [...encodeExtended(h, p)]));
            const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
            const pieces: Uint8Array[] = [];
            let from = 0;
            for (const p of [...points, bytes.length]) {
              pieces.push(bytes.subarray(from, p));
              from = p;
            }
            let next = 0;
            const d: FrameDecoder = new FrameDecoder('extended', {
              extended: (h, p) => {
                out.push(`${toHex(h)}/${toHex(p)}`);
                const k = n++;
                if (holds[k % Math.max(1, holds.length)]) d.hold();
                // Now and then the next piece arrives from inside the sink (a transport handing bytes on as it resumes).
                if (k % 4 === 1 && next < pieces.length) d.push(pieces[next++]!);
              },
            });
            while (next < pieces.length) {
              d.push(pieces[next++]!);
              const p = next;
              assert.ok(d.heldBytes >= d.buffered);
              // Released now and then, between pushes: frames held back come first.
              if (p % 3 === 0) d.release();
            }
            for (let i = 0; i <= list.length; i++) d.release();
            assert.deepEqual(
              out,
              list.map(([h, p]) => `${toHex(h)}/${toHex(p)}`),
            );
            assert.ok(d.idle);
          },
        ),
        { numRuns: 300 },
      );
    });
  });

  it('property: any frames, encoded and cut anywhere, decode to the same frames', () => {
    const frameArb = fc.record({
      method: fc.string({ maxLength: 40 }).filter((m) => Buffer.byteLength(m) <= 256),
      payload: fc.uint8Array({ maxLength: 300 }),
    });
    fc.assert(
      fc.property(fc.array(frameArb, { maxLength: 20 }), fc.array(fc.nat(), { maxLength: 30 }), (frames, cuts) => {
        const bytes = concatParts(frames.flatMap((f) => [...encodeRequest(f.method, f.payload)]));
        const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
        const { d, frames: out } = collect('request');
        let at = 0;
        for (const p of [...points, bytes.length]) {
          d.push(bytes.subarray(at, p));
          at = p;
        }
        assert.deepEqual(
          out,
          frames.map((f) => ({ method: f.method, body: toHex(f.payload) })),
        );
        assert.ok(d.idle);
      }),
      { numRuns: 300 },
    );
  });

  it('property: response and extended frames survive arbitrary chunking', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), fc.uint8Array({ maxLength: 200 })), { maxLength: 15 }),
        fc.array(fc.uint8Array({ minLength: 1, maxLength: 20 }), { maxLength: 10 }),
        fc.integer({ min: 1, max: 64 }),
        (resps, heads, step) => {
          const r = collect('response');
          const rb = concatParts(resps.flatMap(([ret, b]) => [...encodeResponse(ret, b)]));
          for (let i = 0; i < rb.length; i += step) r.d.push(rb.subarray(i, i + step));
          assert.deepEqual(
            r.frames,
            resps.map(([ret, b]) => ({ ret, body: toHex(b) })),
          );
          const e = collect('extended');
          const eb = concatParts(heads.flatMap((h) => [...encodeExtended(h, h)]));
          for (let i = 0; i < eb.length; i += step) e.d.push(eb.subarray(i, i + step));
          assert.deepEqual(
            e.frames,
            heads.map((h) => ({ head: toHex(h), body: toHex(h) })),
          );
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('chunk queue', () => {
  it('gathers tiny chunks instead of holding an object per byte', () => {
    const q = new ChunkQueue();
    for (let i = 0; i < 100_000; i++) q.push(Uint8Array.of(i & 0xff));
    assert.equal(q.length, 100_000);
    assert.ok(q.parts <= 8, `held as ${q.parts} parts`);
    const all = q.take(100_000);
    for (let i = 0; i < 100_000; i += 997) assert.equal(all[i], i & 0xff);
  });

  it('keeps bytes handed out intact while more arrive', () => {
    const q = new ChunkQueue();
    q.push(Uint8Array.of(1, 2, 3));
    const first = q.take(2);
    q.push(Uint8Array.of(4, 5));
    assert.deepEqual([...first], [1, 2]);
    assert.deepEqual([...q.take(3)], [3, 4, 5]);
  });

  it('property: any mix of chunk sizes reads back the same bytes', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 2000 }), { maxLength: 40 }), fc.array(fc.nat(3000), { maxLength: 40 }), (chunks, takes) => {
        const q = new ChunkQueue();
        const all = concatParts(chunks);
        const out: number[] = [];
        let ti = 0;
        for (const c of chunks) {
          q.push(c);
          const n = Math.min(takes[ti++ % Math.max(1, takes.length)] ?? 0, q.length);
          out.push(...q.take(n));
        }
        out.push(...q.take(q.length));
        assert.deepEqual(out, [...all]);
      }),
      { numRuns: 200 },
    );
  });
});
