/**
 * The decoder's budgets on hostile input: claimed counts and lengths are
 * never allocated before they are known to fit the input, the items budget
 * (maxItems) and the depth limit fail fast, and `lastItems` counts what a
 * successful decode produced.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cbor, createCodec, DEFAULT_MAX_ITEMS, type Codec } from '../../src/core/codec/cbor.js';
import { IpcborError } from '../../src/core/errors.js';
import { hex } from '../fixtures/golden.js';

function decodeCode(codec: Codec, bytes: Uint8Array): string {
  try {
    codec.decode(bytes);
  } catch (err) {
    assert.ok(err instanceof IpcborError, String(err));
    return err.code;
  }
  assert.fail('decoded without complaint');
}

/** Memory in use (heap and array buffers), after a GC when one can be asked for. */
function memory(): number {
  (globalThis as { gc?: () => void }).gc?.();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

/** Runs `fn`, returning how long it took (ms) and how much memory grew while it ran. */
function measure(fn: () => void): { ms: number; grew: number } {
  const before = memory();
  let peak = before;
  const t0 = performance.now();
  fn();
  const ms = performance.now() - t0;
  peak = Math.max(peak, memory());
  return { ms, grew: peak - before };
}

const MB = 1024 * 1024;

/** An array head claiming `n` items (32-bit count). */
const arrayHead = (n: number) => [0x9a, n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];

describe('codec: items budget (maxItems) and lastItems', () => {
  it('defaults to a million items per decode', () => {
    assert.equal(DEFAULT_MAX_ITEMS, 1_000_000);
  });

  it('counts every item: the top, array elements, map keys and values, nested containers', () => {
    const codec = createCodec();
    codec.decode(hex('00'));
    assert.equal(codec.lastItems, 1);
    codec.decode(hex('83010203'));
    assert.equal(codec.lastItems, 4);
    codec.decode(hex('a26161016162820203')); // {a: 1, b: [2, 3]}: map, 2 keys, 1, array, 2, 3
    assert.equal(codec.lastItems, 7);
    codec.decode(hex('80'));
    assert.equal(codec.lastItems, 1);
    // A failed decode leaves the last successful count alone.
    assert.equal(decodeCode(codec, hex('8301')), 'IPCBOR_ERR_DECODE');
    assert.equal(codec.lastItems, 1);
    cbor.decode(hex('820102'));
    assert.equal(cbor.lastItems, 3, 'the default codec counts too');
  });

  it('accepts exactly maxItems items and refuses one more', () => {
    const codec = createCodec({ maxItems: 1000 });
    const ints = (n: number) => Uint8Array.from([0x99, n >> 8, n & 0xff, ...new Array<number>(n).fill(0)]);
    assert.deepEqual(codec.decode(ints(999)), new Array(999).fill(0));
    assert.equal(codec.lastItems, 1000);
    assert.equal(decodeCode(codec, ints(1000)), 'IPCBOR_ERR_DECODE');
  });

  it('counts across containers: many small arrays add up', () => {
    const codec = createCodec({ maxItems: 1000 });
    // 400 × [0, 0]: 1 + 400 × 3 = 1201 items, each array well under the budget.
    const bytes = Uint8Array.from([0x99, 0x01, 0x90, ...new Array<number[]>(400).fill([0x82, 0, 0]).flat()]);
    assert.equal(decodeCode(codec, bytes), 'IPCBOR_ERR_DECODE');
    assert.equal(createCodec({ maxItems: 1201 }).decode(bytes) instanceof Array, true);
  });

  it('refuses 16 MB of empty maps in an array claiming 16M items, fast and without allocating them', () => {
    const n = 16 * MB;
    const bytes = new Uint8Array(5 + n).fill(0xa0);
    bytes.set(arrayHead(n));
    for (const codec of [cbor, createCodec({ maxItems: 1000 })]) {
      const { ms, grew } = measure(() => assert.equal(decodeCode(codec, bytes), 'IPCBOR_ERR_DECODE'));
      assert.ok(ms < 500, `took ${ms} ms`);
      assert.ok(grew < 100 * MB, `memory grew by ${grew} bytes`);
    }
  });
});

describe('codec: claimed lengths are checked before anything is allocated', () => {
  it('refuses an array claiming 2^32 - 1 items in 10 bytes', () => {
    const bytes = Uint8Array.from([...arrayHead(0xffffffff), 0, 0, 0, 0, 0]);
    const { grew } = measure(() => assert.equal(decodeCode(createCodec({ maxItems: 2 ** 40 }), bytes), 'IPCBOR_ERR_DECODE'));
    assert.ok(grew < 10 * MB, `memory grew by ${grew} bytes`);
  });

  it('refuses nested arrays each claiming 2^20 items inside a 1 MiB input', () => {
    const bytes = new Uint8Array(MB);
    for (let at = 0; at + 5 <= 64 * 5; at += 5) bytes.set(arrayHead(2 ** 20), at);
    const roomy = createCodec({ maxItems: 2 ** 40 });
    const { grew } = measure(() => assert.equal(decodeCode(roomy, bytes), 'IPCBOR_ERR_DECODE'));
    assert.ok(grew < 20 * MB, `memory grew by ${grew} bytes`);
  });

  it('refuses nested claims that each fit the bytes left but not together', () => {
    // Every level claims as many items as there are bytes after its head:
    // each claim alone would fit, the sum of claims still owed does not.
    const size = MB;
    const bytes = new Uint8Array(size);
    for (let level = 0, at = 0; level < 60; level++, at += 5) bytes.set(arrayHead(size - at - 5), at);
    const roomy = createCodec({ maxItems: 2 ** 40 });
    const { ms, grew } = measure(() => assert.equal(decodeCode(roomy, bytes), 'IPCBOR_ERR_DECODE'));
    assert.ok(ms < 500, `took ${ms} ms`);
    assert.ok(grew < 20 * MB, `memory grew by ${grew} bytes (60 levels × 1M slots would be ~500 MB)`);
  });

  it('refuses strings claiming 4 GiB in 5 bytes, and 64-bit lengths', () => {
    for (const h of ['7affffffff', '5affffffff', '7bffffffffffffffff', '5b0000000100000000', 'a17affffffff', '817affffffff', 'bbffffffffffffffff', '9b0000000100000000']) {
      assert.equal(decodeCode(createCodec({ maxItems: 2 ** 40 }), hex(h)), 'IPCBOR_ERR_DECODE', h);
    }
  });
});

describe('codec: depth', () => {
  it('refuses 100,000-deep arrays and maps fast, at the default and at a huge maxDepth', () => {
    const deepArrays = new Uint8Array(100_001).fill(0x81);
    deepArrays[100_000] = 0;
    const deepMaps = new Uint8Array(300_001);
    for (let i = 0; i < 100_000; i++) deepMaps.set([0xa1, 0x61, 0x61], i * 3);
    for (const codec of [cbor, createCodec({ maxDepth: 10_000_000 })]) {
      for (const bytes of [deepArrays, deepMaps]) {
        const { ms } = measure(() => assert.equal(decodeCode(codec, bytes), 'IPCBOR_ERR_DECODE'));
        assert.ok(ms < 2000, `took ${ms} ms`);
      }
    }
  });

  it('counts only non-empty containers: an empty one may sit at the limit', () => {
    const at = (n: number, last: number) => {
      const b = new Uint8Array(n + 1).fill(0x81);
      b[n] = last;
      return b;
    };
    assert.doesNotThrow(() => cbor.decode(at(64, 0x80)));
    assert.doesNotThrow(() => cbor.decode(at(64, 0xa0)));
    assert.equal(decodeCode(cbor, at(65, 0x80)), 'IPCBOR_ERR_DECODE');
    assert.equal(decodeCode(createCodec({ maxDepth: 0 }), hex('8100')), 'IPCBOR_ERR_DECODE');
    assert.deepEqual(createCodec({ maxDepth: 0 }).decode(hex('80')), []);
  });
});
