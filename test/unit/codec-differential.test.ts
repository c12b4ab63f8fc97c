/**
 * Differential tests: ipcbor's codec against the cborg-based codec it
 * replaced (test/unit/codec-reference.ts, the oracle). Encoding must be byte
 * for byte the same, and the decoder must accept exactly what the old one
 * accepted, with the same value, except for the deliberate differences:
 *
 * - ±2^53 written as 64-bit integers decode to numbers (the old decoder
 *   gave bigints; both are exact, and only values beyond 2^53 need a bigint);
 * - a text string that starts with a BOM (EF BB BF) keeps it as U+FEFF (the
 *   old decoder's TextDecoder dropped it, which also made "\uFEFFa" and "a"
 *   duplicate map keys).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { cbor } from '../../src/core/codec/cbor.js';
import { IpcborError } from '../../src/core/errors.js';
import { toHex } from '../fixtures/golden.js';
import { mutate, mutationsArb, valueArb } from './codec-arbitraries.js';
import { referenceCbor } from './codec-reference.js';

type Outcome = { ok: true; value: unknown } | { ok: false; code: string };

function attempt(fn: () => unknown): Outcome {
  try {
    return { ok: true, value: fn() };
  } catch (err) {
    assert.ok(err instanceof IpcborError, `not an IpcborError: ${String(err)}`);
    return { ok: false, code: err.code };
  }
}

const TWO_53 = 2n ** 53n;

/** The old decoder's value with the ±2^53 fix applied. */
function fix53(v: unknown): unknown {
  if (typeof v === 'bigint') return v === TWO_53 || v === -TWO_53 ? Number(v) : v;
  if (Array.isArray(v)) return v.map(fix53);
  if (v !== null && typeof v === 'object' && !(v instanceof Uint8Array)) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) Object.defineProperty(out, k, { value: fix53(x), enumerable: true, writable: true, configurable: true });
    return out;
  }
  return v;
}

const DUPLICATE = Symbol('duplicate after dropping BOMs');

/** The new decoder's value as the old one would have had it: leading BOMs dropped. */
function dropBoms(v: unknown): unknown {
  if (typeof v === 'string') return v.startsWith('\uFEFF') ? v.slice(1) : v;
  if (Array.isArray(v)) {
    const items = v.map(dropBoms);
    return items.includes(DUPLICATE) ? DUPLICATE : items;
  }
  if (v !== null && typeof v === 'object' && !(v instanceof Uint8Array)) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      const key = dropBoms(k) as string;
      const value = dropBoms(x);
      if (value === DUPLICATE || Object.hasOwn(out, key)) return DUPLICATE;
      Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
  return v;
}

const hasBom = (bytes: Uint8Array) => toHex(bytes).match(/efbbbf/) !== null;

/** New and old decoders agree on `bytes`, modulo the documented differences. */
function assertSameDecode(bytes: Uint8Array): Outcome {
  const mine = attempt(() => cbor.decode(bytes));
  const old = attempt(() => referenceCbor.decode(bytes));
  if (!mine.ok) assert.equal(mine.code, 'IPCBOR_ERR_DECODE');
  if (!old.ok) assert.equal(old.code, 'IPCBOR_ERR_DECODE');
  if (hasBom(bytes) && mine.ok) {
    const asOld = dropBoms(mine.value);
    if (asOld === DUPLICATE) assert.equal(old.ok, false, `${toHex(bytes)}: the old decoder saw no duplicate`);
    else {
      assert.ok(old.ok, `${toHex(bytes)}: only the new decoder accepts`);
      assert.deepStrictEqual(asOld, fix53(old.value));
    }
    return mine;
  }
  assert.equal(mine.ok, old.ok, `${toHex(bytes)}: accepted by ${mine.ok ? 'the new' : 'the old'} decoder only`);
  if (mine.ok && old.ok) assert.deepStrictEqual(mine.value, fix53(old.value), toHex(bytes));
  return mine;
}

describe('codec: differential against the old cborg-based codec', () => {
  it('encodes every value byte for byte as the old encoder did, or refuses it as it did', () => {
    fc.assert(
      fc.property(valueArb, (v) => {
        const mine = attempt(() => cbor.encode(v));
        const old = attempt(() => referenceCbor.encode(v));
        assert.equal(mine.ok, old.ok, `${mine.ok ? 'only the new' : 'only the old'} encoder accepts`);
        if (mine.ok && old.ok) assert.equal(toHex(mine.value as Uint8Array), toHex(old.value as Uint8Array));
        else assert.deepEqual([mine, old].map((o) => (o.ok ? '' : o.code)), ['IPCBOR_ERR_ENCODE', 'IPCBOR_ERR_ENCODE']);
      }),
      { numRuns: 4000 },
    );
  });

  it('decodes every encoding to what the old decoder gives (±2^53 fixed)', () => {
    fc.assert(
      fc.property(valueArb, (v) => {
        const bytes = attempt(() => cbor.encode(v));
        if (bytes.ok) assertSameDecode(bytes.value as Uint8Array);
      }),
      { numRuns: 4000 },
    );
  });

  it('accepts exactly the random byte strings the old decoder accepts', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 48 }), (bytes) => void assertSameDecode(bytes)),
      { numRuns: 20000 },
    );
  });

  it('accepts exactly the mutated encodings the old decoder accepts', () => {
    let accepted = 0;
    fc.assert(
      fc.property(valueArb, mutationsArb, (v, mutations) => {
        const bytes = attempt(() => cbor.encode(v));
        if (!bytes.ok) return;
        if (assertSameDecode(mutate(bytes.value as Uint8Array, mutations)).ok) accepted++;
      }),
      { numRuns: 10000 },
    );
    assert.ok(accepted > 500, `only ${accepted} mutated encodings were valid: the test explores too little`);
  });

  it('agrees on hand-picked edges: heads in long forms, every simple and float width', () => {
    const cases = [
      '1800', '1817', '190000', '1a00000000', '1b0000000000000000', '1b001fffffffffffff', '1b0020000000000000', '1b0020000000000001',
      '3b001ffffffffffffe', '3b001fffffffffffff', '3b0020000000000000', '5800', '5b000000000000000141', '7800', '7b000000000000000161',
      '9800', '9b000000000000000100', 'b800', 'bb00000000000000016161f6', 'f97e01', 'f9fe00', 'f97c01', 'fa7fc00001', 'fb7ff8000000000001',
      'f90001', 'f98001', 'fa00000001', 'fb0000000000000001', 'e0', 'f3', 'f820', 'f8ff', '63efbbbf', '66efbbbf616263', 'a263efbbbf016001',
    ];
    for (const h of cases) assertSameDecode(Uint8Array.from(Buffer.from(h, 'hex')));
  });
});

describe('codec: the deliberate differences from the old codec', () => {
  it('decodes ±2^53 as numbers, beyond as bigints', () => {
    const dec = (h: string) => cbor.decode(Uint8Array.from(Buffer.from(h, 'hex')));
    assert.equal(dec('1b0020000000000000'), 2 ** 53);
    assert.equal(dec('3b001fffffffffffff'), -(2 ** 53));
    assert.equal(dec('1b001fffffffffffff'), 2 ** 53 - 1);
    assert.equal(dec('1b0020000000000001'), 2n ** 53n + 1n);
    assert.equal(dec('3b0020000000000000'), -(2n ** 53n) - 1n);
    assert.equal(referenceCbor.decode(Uint8Array.from(Buffer.from('1b0020000000000000', 'hex'))), 2n ** 53n, 'the old decoder gave a bigint');
  });

  it('keeps a leading BOM in text', () => {
    const bytes = Uint8Array.from(Buffer.from('66efbbbf616263', 'hex'));
    assert.equal(cbor.decode(bytes), '\uFEFFabc');
    assert.equal(referenceCbor.decode(bytes), 'abc', 'the old decoder dropped it');
    assert.deepEqual(cbor.decode(cbor.encode({ '\uFEFFa': 1, a: 2 })), { '\uFEFFa': 1, a: 2 });
  });
});
