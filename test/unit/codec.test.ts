import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { cbor, createCodec } from '../../src/core/codec/cbor.js';
import { encodeTransient, kept as keptBytes } from '../../src/core/codec/encode.js';
import { IpcborError } from '../../src/core/errors.js';
import { golden, hex, toHex, values } from '../fixtures/golden.js';

function decodeCode(h: string | Uint8Array): string {
  try {
    cbor.decode(typeof h === 'string' ? hex(h) : h);
  } catch (err) {
    assert.ok(err instanceof IpcborError);
    return err.code;
  }
  assert.fail(`decoded ${typeof h === 'string' ? h : toHex(h)} without complaint`);
}

function encodeCode(v: unknown): string {
  try {
    cbor.encode(v);
  } catch (err) {
    assert.ok(err instanceof IpcborError, String(err));
    return err.code;
  }
  assert.fail('encoded without complaint');
}

describe('codec: encoding is interop-safe', () => {
  it('encodes the golden payloads byte for byte (insertion order, shortest ints)', () => {
    assert.equal(toHex(cbor.encode(values.echoParams)), toHex(hex(golden.echoRequest).subarray(12)));
    assert.equal(toHex(cbor.encode(values.echoResult)), toHex(hex(golden.echoResponse).subarray(8)));
    assert.equal(toHex(cbor.encode(values.scheduleParams)), golden.scheduleRequestBody);
    assert.equal(toHex(cbor.encode(values.scheduleResult)), golden.scheduleResponseBody);
    assert.equal(toHex(cbor.encode(values.complexParams)), golden.complexRequestBody);
    assert.equal(toHex(cbor.encode(values.complexResult)), golden.complexResponseBody);
    assert.equal(toHex(cbor.encode({})), 'a0');
    assert.equal(toHex(cbor.encode('nim-timer v0.1.0')), '706e696d2d74696d65722076302e312e30');
  });

  it('keeps object keys in insertion order (no canonical sorting)', () => {
    assert.equal(toHex(cbor.encode({ bb: 1, a: 2 })), 'a26262620161610' + '2');
  });

  it('sends Uint8Array and Buffer as byte strings (major type 2)', () => {
    assert.equal(toHex(cbor.encode(new Uint8Array([1, 2]))), '420102');
    assert.equal(toHex(cbor.encode(Buffer.from([1, 2]))), '420102');
  });

  it('omits undefined properties and sends a bare undefined as null', () => {
    assert.equal(toHex(cbor.encode({ a: 1, b: undefined })), 'a1616101');
    assert.equal(toHex(cbor.encode(undefined)), 'f6');
  });

  it('refuses values without a portable form', () => {
    for (const v of [new Date(), new Set([1]), /x/, new Float32Array(1), new Uint16Array(1), () => 1, Symbol('s'), new ArrayBuffer(2)]) {
      assert.equal(encodeCode(v), 'IPCBOR_ERR_ENCODE', String(v));
    }
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    assert.equal(encodeCode(cyclic), 'IPCBOR_ERR_ENCODE');
  });

  it('never emits a tag (major type 6) for supported values', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const bytes = cbor.encode(v);
        assert.notEqual(bytes[0]! >> 5, 6);
      }),
    );
  });
});

describe('codec: decoding is strict on hostile input', () => {
  it('decodes text-keyed maps to plain objects', () => {
    const v = cbor.decode(hex('a1616101')) as object;
    assert.equal(Object.getPrototypeOf(v), Object.prototype);
    assert.deepEqual(v, { a: 1 });
  });

  it('refuses claimed lengths of 2^32 and beyond without allocating them', () => {
    for (const h of ['5affffffff', '7affffffff41', '9affffffff', 'baffffffff', '5b0000000100000000', '9b0000000100000000', '7bffffffff00000000']) {
      assert.equal(decodeCode(h), 'IPCBOR_ERR_DECODE', h);
    }
  });

  it('refuses 100,000-deep nesting without exhausting the stack', () => {
    const deepArrays = new Uint8Array(100_001).fill(0x81);
    deepArrays[100_000] = 0x00;
    assert.equal(decodeCode(deepArrays), 'IPCBOR_ERR_DECODE');
    const deepMaps = Buffer.concat([Buffer.from('a16161'.repeat(100_000), 'hex'), Buffer.from([0])]);
    assert.equal(decodeCode(deepMaps), 'IPCBOR_ERR_DECODE');
  });

  it('accepts nesting up to the limit and is configurable', () => {
    const at = (n: number) => {
      const b = new Uint8Array(n + 1).fill(0x81);
      b[n] = 0;
      return b;
    };
    assert.doesNotThrow(() => cbor.decode(at(64)));
    assert.equal(decodeCode(at(65)), 'IPCBOR_ERR_DECODE');
    assert.doesNotThrow(() => createCodec({ maxDepth: 200 }).decode(at(150)));
  });

  it('refuses invalid UTF-8 in text, short and long, keys and values', () => {
    for (const h of ['62c328', '63eda080', `78${(40).toString(16)}${'61'.repeat(39)}ff`, 'a162c32801']) {
      assert.equal(decodeCode(h), 'IPCBOR_ERR_DECODE', h);
    }
    assert.equal(cbor.decode(hex('63efbfbd')), '\uFFFD', 'a real U+FFFD is fine');
  });

  it('refuses truncated items', () => {
    const full = hex(golden.scheduleRequestBody);
    for (let n = 1; n < full.length; n++) {
      assert.equal(decodeCode(full.subarray(0, n)), 'IPCBOR_ERR_DECODE', `cut at ${n}`);
    }
    assert.equal(decodeCode(new Uint8Array(0)), 'IPCBOR_ERR_DECODE');
  });

  it('refuses every tag: dates, bignums, sets, self-described, unknown', () => {
    for (const h of ['c074323031332d30332d32315432303a30343a30305a', 'c11a514b67b0', 'c249010000000000000000', 'c34100', 'd9010281 01', 'd9d9f7a0', 'd8ff00', 'd81c80']) {
      assert.equal(decodeCode(h.replace(/ /g, '')), 'IPCBOR_ERR_DECODE', h);
    }
  });

  it('refuses duplicate keys, non-text keys, indefinite lengths, undefined, trailing bytes', () => {
    for (const h of ['a2616101616102', 'a1f401', 'a10101', '9f01ff', 'bf616101ff', '5f4101ff', 'f7', '0101']) {
      assert.equal(decodeCode(h), 'IPCBOR_ERR_DECODE', h);
    }
  });

  it('keeps a "__proto__" key as an own property; the prototype is untouched', () => {
    const v = cbor.decode(hex('a1695f5f70726f746f5f5fa1617801')) as Record<string, unknown>;
    assert.equal(Object.getPrototypeOf(v), Object.prototype);
    assert.ok(Object.hasOwn(v, '__proto__'));
    assert.equal(({} as Record<string, unknown>).x, undefined);
  });

  it('returns 64-bit integers beyond 2^53 as bigint', () => {
    assert.equal(cbor.decode(hex('1bffffffffffffffff')), 2n ** 64n - 1n);
    assert.equal(cbor.decode(hex('3bffffffffffffffff')), -(2n ** 64n));
  });

  it('property: whatever it encodes, it decodes to an equal value', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const back = cbor.decode(cbor.encode(v));
        assert.deepEqual(back, JSON.parse(JSON.stringify(v)));
      }),
      { numRuns: 500 },
    );
  });

  it('property: random bytes never crash the decoder with anything but IPCBOR_ERR_DECODE', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        try {
          cbor.decode(bytes);
        } catch (err) {
          assert.ok(err instanceof IpcborError && err.code === 'IPCBOR_ERR_DECODE', String(err));
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('codec: byte strings', () => {
  it('decodes a byte string to a plain Uint8Array copy, even from a Buffer', () => {
    const input = Buffer.from('a16162420102', 'hex');
    const v = cbor.decode(input) as { b: Uint8Array };
    assert.equal(Object.getPrototypeOf(v.b), Uint8Array.prototype);
    assert.notEqual(v.b.buffer, input.buffer, 'not a view into the input');
    input[4] = 9;
    assert.deepEqual([...v.b], [1, 2]);
  });
});

describe('codec: encoder edges (as the cborg-based encoder did them)', () => {
  it('writes integral doubles beyond 2^53, -0, NaN and infinities as cborg did', () => {
    assert.equal(toHex(cbor.encode(-0)), '00');
    assert.equal(toHex(cbor.encode(2 ** 53 - 1)), '1b001fffffffffffff');
    assert.equal(toHex(cbor.encode(-(2 ** 53 - 1))), '3b001ffffffffffffe');
    assert.equal(toHex(cbor.encode(2 ** 53)), 'fa5a000000');
    assert.equal(toHex(cbor.encode(2 ** 60)), 'fa5d800000');
    assert.equal(toHex(cbor.encode(1e300)), 'fb7e37e43c8800759c');
    assert.equal(toHex(cbor.encode(NaN)), 'f97e00');
    assert.equal(toHex(cbor.encode(Infinity)), 'f97c00');
    assert.equal(toHex(cbor.encode(-Infinity)), 'f9fc00');
    assert.equal(toHex(cbor.encode(2 ** -24)), 'f90001', 'a float16 subnormal that is a power of two');
    assert.equal(toHex(cbor.encode(3 * 2 ** -24)), 'fa34400000', 'other float16 subnormals go as float32, as cborg did');
  });

  it('writes bigints within 64 bits as integers and refuses the rest', () => {
    assert.equal(toHex(cbor.encode(5n)), '05');
    assert.equal(toHex(cbor.encode(2n ** 64n - 1n)), '1bffffffffffffffff');
    assert.equal(toHex(cbor.encode(-(2n ** 64n))), '3bffffffffffffffff');
    assert.equal(encodeCode(2n ** 64n), 'IPCBOR_ERR_ENCODE');
    assert.equal(encodeCode(-(2n ** 64n) - 1n), 'IPCBOR_ERR_ENCODE');
  });

  it('replaces lone surrogates with U+FFFD, short and long strings alike', () => {
    assert.equal(toHex(cbor.encode('\ud800')), '63efbfbd');
    assert.equal(toHex(cbor.encode('a\udc00b')), '6561efbfbd62');
    assert.equal(toHex(cbor.encode('x'.repeat(70) + '\ud800')).slice(0, 4), '7849');
  });

  it('writes Maps with text keys as maps and refuses other keys', () => {
    assert.equal(toHex(cbor.encode(new Map([['a', 1], ['b', undefined]]))), 'a26161016162f6');
    assert.equal(encodeCode(new Map([[1, 1]])), 'IPCBOR_ERR_ENCODE');
  });

  it('writes class instances and null-prototype objects as their own enumerable properties', () => {
    class P {
      x = 1;
      get y() {
        return 2;
      }
    }
    assert.equal(toHex(cbor.encode(new P())), 'a1617801');
    assert.equal(toHex(cbor.encode(Object.assign(Object.create(null) as object, { a: 1 }))), 'a1616101');
    for (const v of [new Error('x'), Promise.resolve(), new WeakMap(), new DataView(new ArrayBuffer(1)), new BigInt64Array(1), new Int8Array(1)]) {
      assert.equal(encodeCode(v), 'IPCBOR_ERR_ENCODE', String(v));
    }
  });

  it('sizes heads right when undefined properties are left out of a large object', () => {
    const big: Record<string, unknown> = {};
    for (let i = 0; i < 30; i++) big[`k${i}`] = i < 20 ? undefined : i;
    const bytes = cbor.encode(big);
    assert.equal(bytes[0], 0xaa, 'ten entries, a one-byte head');
    assert.deepEqual(cbor.decode(bytes), Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`k${i + 20}`, i + 20])));
  });

  it('returns a fresh copy each call: results survive later encodes', () => {
    const a = cbor.encode({ a: 'first' });
    const b = cbor.encode({ b: 'x'.repeat(100_000) });
    cbor.encode({ c: 3 });
    assert.deepEqual(cbor.decode(a), { a: 'first' });
    assert.equal((cbor.decode(b) as { b: string }).b.length, 100_000);
    assert.notEqual(a.buffer, b.buffer);
  });

  it('survives an encode started from a getter during another encode', () => {
    const inner = { get v() {
      return toHex(cbor.encode({ nested: [1, 2, 3] }));
    } };
    assert.deepEqual(cbor.decode(cbor.encode({ before: 1, inner, after: 'x'.repeat(40) })), {
      before: 1,
      inner: { v: toHex(cbor.encode({ nested: [1, 2, 3] })) },
      after: 'x'.repeat(40),
    });
  });

  it('refuses deep cycles (a cycle found below the first levels too) and encodes deep non-cyclic values', () => {
    const root: Record<string, unknown> = {};
    let at = root;
    for (let i = 0; i < 100; i++) at = (at.next = {}) as Record<string, unknown>;
    assert.doesNotThrow(() => cbor.encode(root));
    at.back = root;
    assert.equal(encodeCode(root), 'IPCBOR_ERR_ENCODE');
    const arr: unknown[] = [];
    arr.push([arr]);
    assert.equal(encodeCode(arr), 'IPCBOR_ERR_ENCODE');
    assert.deepEqual(cbor.decode(cbor.encode({ ok: true })), { ok: true }, 'the encoder works after a refusal');
  });
});

describe('codec: decoder edges', () => {
  it('decodes ±2^53 as numbers (beyond them, bigints)', () => {
    assert.equal(cbor.decode(hex('1b0020000000000000')), 2 ** 53);
    assert.equal(cbor.decode(hex('3b001fffffffffffff')), -(2 ** 53));
    assert.equal(cbor.decode(hex('1b0020000000000001')), 2n ** 53n + 1n);
  });

  it('decodes float16, float32 and float64, subnormals and -0 included', () => {
    assert.ok(Object.is(cbor.decode(hex('f98000')), -0));
    assert.equal(cbor.decode(hex('f903ff')), 1023 * 2 ** -24);
    assert.equal(cbor.decode(hex('fa00000001')), 2 ** -149);
    assert.equal(cbor.decode(hex('fb0000000000000001')), 5e-324);
  });

  it('decodes repeated short keys right, from its key cache and around it', () => {
    const msg = { id: 1, name: 'a', ['x'.repeat(17)]: 2, é: 3, '': 4 };
    for (let i = 0; i < 3; i++) assert.deepEqual(cbor.decode(cbor.encode(msg)), msg);
    // Same length, same first, middle and last byte: a likely collision in the cache.
    assert.deepEqual(cbor.decode(cbor.encode({ abxd: 1, aXxd: 2, abyd: 3 })), { abxd: 1, aXxd: 2, abyd: 3 });
    assert.equal(decodeCode('a1 62 c328 01'.replace(/ /g, '')), 'IPCBOR_ERR_DECODE');
  });

  it('refuses input that is not a Uint8Array', () => {
    assert.equal(decodeCode('' as unknown as string), 'IPCBOR_ERR_DECODE');
    try {
      cbor.decode([0] as unknown as Uint8Array);
      assert.fail('decoded an array');
    } catch (err) {
      assert.ok(err instanceof IpcborError && err.code === 'IPCBOR_ERR_DECODE');
    }
  });

  it('decodes from a view into a larger buffer without reading outside it', () => {
    const big = hex('ff 83 01 02 03 ff'.replace(/ /g, ''));
    assert.deepEqual(cbor.decode(big.subarray(1, 5)), [1, 2, 3]);
    assert.equal(decodeCode(big.subarray(1, 4)), 'IPCBOR_ERR_DECODE');
  });
});

describe('encode results', () => {
  it('small wire results share a slab but are never overwritten: every one kept still holds its own bytes', () => {
    const kept: [unknown, Uint8Array][] = [];
    // Enough results of every size up to the slab's item limit to fill many slabs.
    for (let i = 0; i < 3000; i++) {
      const value = { i, text: 'x'.repeat(i % 1500), bytes: new Uint8Array(i % 700).fill(i & 0xff) };
      kept.push([value, encodeTransient(value)]);
    }
    for (const [value, bytes] of kept) assert.deepEqual(cbor.decode(bytes), value);
    // Slab views: a result is a view of a larger buffer, starting on an 8-byte boundary.
    const small = encodeTransient({ a: 1 });
    assert.ok(small.buffer.byteLength > small.byteLength && small.byteOffset % 8 === 0);
    // The public codec's results are exact buffers of their own (docs/CODEC.md).
    const own = cbor.encode({ a: 1 });
    assert.ok(own.byteOffset === 0 && own.buffer.byteLength === own.byteLength);
  });

  it('kept() copies a small view of a shared slab, and leaves large or whole results alone', () => {
    const small = encodeTransient('hello');
    const copy = keptBytes(small);
    assert.notEqual(copy.buffer, small.buffer);
    assert.equal(copy.buffer.byteLength, small.byteLength);
    assert.deepEqual(copy, small);
    const big = cbor.encode(new Uint8Array(100_000).fill(7));
    assert.equal(keptBytes(big), big);
    // A large byte string on its own: exactly its head and its bytes, in a buffer of its own.
    assert.equal(big.buffer.byteLength, big.byteLength);
    assert.equal(big.byteLength, 5 + 100_000);
    assert.deepEqual(cbor.decode(big), new Uint8Array(100_000).fill(7));
  });
});
