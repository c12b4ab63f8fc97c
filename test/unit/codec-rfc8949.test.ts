/**
 * The examples of RFC 8949 against ipcbor's profile: Appendix A (every
 * encoded data item the RFC lists) and Appendix F (its not-well-formed
 * examples), copied here as hex.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cbor } from '../../src/core/codec/cbor.js';
import { IpcborError } from '../../src/core/errors.js';
import { hex, toHex } from '../fixtures/golden.js';

const IN_PROFILE = 'decodes';
const OUT = 'refused';

/**
 * Appendix A, in the RFC's order: [diagnostic, hex, expected].
 * `expected` is the decoded value for the items of the profile, with
 * `preferred: true` where ipcbor's encoder writes the same bytes back (not
 * for floats with an integral value: a JS number cannot tell 1.0 from 1, so
 * they are sent as integers), or OUT for what the profile refuses: tags,
 * undefined, other simple values, non-text map keys, indefinite lengths.
 */
type Vector = [diagnostic: string, hex: string, expected: typeof OUT | { value: unknown; preferred: boolean }];
const v = (value: unknown, preferred = true) => ({ value, preferred });

const appendixA: Vector[] = [
  ['0', '00', v(0)],
  ['1', '01', v(1)],
  ['10', '0a', v(10)],
  ['23', '17', v(23)],
  ['24', '1818', v(24)],
  ['25', '1819', v(25)],
  ['100', '1864', v(100)],
  ['1000', '1903e8', v(1000)],
  ['1000000', '1a000f4240', v(1000000)],
  ['1000000000000', '1b000000e8d4a51000', v(1000000000000)],
  ['18446744073709551615', '1bffffffffffffffff', v(18446744073709551615n)],
  ['18446744073709551616', 'c249010000000000000000', OUT],
  ['-18446744073709551616', '3bffffffffffffffff', v(-18446744073709551616n)],
  ['-18446744073709551617', 'c349010000000000000000', OUT],
  ['-1', '20', v(-1)],
  ['-10', '29', v(-10)],
  ['-100', '3863', v(-100)],
  ['-1000', '3903e7', v(-1000)],
  ['0.0', 'f90000', v(0, false)],
  ['-0.0', 'f98000', v(-0, false)],
  ['1.0', 'f93c00', v(1, false)],
  ['1.1', 'fb3ff199999999999a', v(1.1)],
  ['1.5', 'f93e00', v(1.5)],
  ['65504.0', 'f97bff', v(65504, false)],
  ['100000.0', 'fa47c35000', v(100000, false)],
  ['3.4028234663852886e+38', 'fa7f7fffff', v(3.4028234663852886e38)],
  ['1.0e+300', 'fb7e37e43c8800759c', v(1.0e300)],
  ['5.960464477539063e-8', 'f90001', v(5.960464477539063e-8)],
  ['0.00006103515625', 'f90400', v(0.00006103515625)],
  ['-4.0', 'f9c400', v(-4, false)],
  ['-4.1', 'fbc010666666666666', v(-4.1)],
  ['Infinity', 'f97c00', v(Infinity)],
  ['NaN', 'f97e00', v(NaN)],
  ['-Infinity', 'f9fc00', v(-Infinity)],
  ['Infinity', 'fa7f800000', v(Infinity, false)],
  ['NaN', 'fa7fc00000', v(NaN, false)],
  ['-Infinity', 'faff800000', v(-Infinity, false)],
  ['Infinity', 'fb7ff0000000000000', v(Infinity, false)],
  ['NaN', 'fb7ff8000000000000', v(NaN, false)],
  ['-Infinity', 'fbfff0000000000000', v(-Infinity, false)],
  ['false', 'f4', v(false)],
  ['true', 'f5', v(true)],
  ['null', 'f6', v(null)],
  ['undefined', 'f7', OUT],
  ['simple(16)', 'f0', OUT],
  ['simple(255)', 'f8ff', OUT],
  ['0("2013-03-21T20:04:00Z")', 'c074323031332d30332d32315432303a30343a30305a', OUT],
  ['1(1363896240)', 'c11a514b67b0', OUT],
  ['1(1363896240.5)', 'c1fb41d452d9ec200000', OUT],
  ["23(h'01020304')", 'd74401020304', OUT],
  ["24(h'6449455446')", 'd818456449455446', OUT],
  ['32("http://www.example.com")', 'd82076687474703a2f2f7777772e6578616d706c652e636f6d', OUT],
  ["h''", '40', v(new Uint8Array([]))],
  ["h'01020304'", '4401020304', v(new Uint8Array([1, 2, 3, 4]))],
  ['""', '60', v('')],
  ['"a"', '6161', v('a')],
  ['"IETF"', '6449455446', v('IETF')],
  ['"\\"\\\\"', '62225c', v('"\\')],
  ['"\\u00fc"', '62c3bc', v('\u00fc')],
  ['"\\u6c34"', '63e6b0b4', v('\u6c34')],
  ['"\\ud800\\udd51"', '64f0908591', v('\ud800\udd51')],
  ['[]', '80', v([])],
  ['[1, 2, 3]', '83010203', v([1, 2, 3])],
  ['[1, [2, 3], [4, 5]]', '8301820203820405', v([1, [2, 3], [4, 5]])],
  ['[1, 2, ..., 25]', '98190102030405060708090a0b0c0d0e0f101112131415161718181819', v(Array.from({ length: 25 }, (_, i) => i + 1))],
  ['{}', 'a0', v({})],
  ['{1: 2, 3: 4}', 'a201020304', OUT],
  ['{"a": 1, "b": [2, 3]}', 'a26161016162820203', v({ a: 1, b: [2, 3] })],
  ['["a", {"b": "c"}]', '826161a161626163', v(['a', { b: 'c' }])],
  ['{"a": "A", "b": "B", "c": "C", "d": "D", "e": "E"}', 'a56161614161626142616361436164614461656145', v({ a: 'A', b: 'B', c: 'C', d: 'D', e: 'E' })],
  ["(_ h'0102', h'030405')", '5f42010243030405ff', OUT],
  ['(_ "strea", "ming")', '7f657374726561646d696e67ff', OUT],
  ['[_ ]', '9fff', OUT],
  ['[_ 1, [2, 3], [_ 4, 5]]', '9f018202039f0405ffff', OUT],
  ['[_ 1, [2, 3], [4, 5]]', '9f01820203820405ff', OUT],
  ['[1, [2, 3], [_ 4, 5]]', '83018202039f0405ff', OUT],
  ['[1, [_ 2, 3], [4, 5]]', '83019f0203ff820405', OUT],
  ['[_ 1, 2, ..., 25]', '9f0102030405060708090a0b0c0d0e0f101112131415161718181819ff', OUT],
  ['{_ "a": 1, "b": [_ 2, 3]}', 'bf61610161629f0203ffff', OUT],
  ['["a", {_ "b": "c"}]', '826161bf61626163ff', OUT],
  ['{_ "Fun": true, "Amt": -2}', 'bf6346756ef563416d7421ff', OUT],
];

/** Appendix F.1, every not-well-formed example, by its subkind. */
const appendixF: [kind: string, hexes: string[]][] = [
  ['end of input in a head', ['18', '19', '1a', '1b', '1901', '1a0102', '1b01020304050607', '38', '58', '78', '98', '9a01ff00', 'b8', 'd8', 'f8', 'f900', 'fa0000', 'fb000000']],
  ['definite-length strings with short data', ['41', '61', '5affffffff00', '5bffffffffffffffff010203', '7affffffff00', '7b7fffffffffffffff010203']],
  ['definite-length maps and arrays not closed with enough items', ['81', '818181818181818181', '8200', 'a1', 'a20102', 'a100', 'a2000000']],
  ['tag number not followed by tag content', ['c0']],
  ['indefinite-length strings not closed by a break', ['5f4100', '7f6100']],
  ['indefinite-length maps and arrays not closed by a break', ['9f', '9f0102', 'bf', 'bf01020102', '819f', '9f8000', '9f9f9f9f9fffffffff', '9f819f819f9fffffff']],
  ['reserved additional information values', ['1c', '1d', '1e', '3c', '3d', '3e', '5c', '5d', '5e', '7c', '7d', '7e', '9c', '9d', '9e', 'bc', 'bd', 'be', 'dc', 'dd', 'de', 'fc', 'fd', 'fe']],
  ['reserved two-byte encodings of simple values', ['f800', 'f801', 'f818', 'f81f']],
  ['indefinite-length string chunks not of the correct type', ['5f00ff', '5f21ff', '5f6100ff', '5f80ff', '5fa0ff', '5fc000ff', '5fe0ff', '7f4100ff']],
  ['indefinite-length string chunks not definite length', ['5f5f4100ffff', '7f7f6100ffff']],
  ['break on its own outside an indefinite-length item', ['ff']],
  ['break in a definite-length array or map or a tag', ['81ff', '8200ff', 'a1ff', 'a1ff00', 'a100ff', 'a20000ff', '9f81ff', '9f829f819f9fffffffff']],
  ['break in an indefinite-length map in a value position', ['bf00ff', 'bf000000ff']],
  ['major types 0, 1, 6 with additional information 31', ['1f', '3f', 'df']],
];

function decodeError(bytes: Uint8Array): unknown {
  try {
    cbor.decode(bytes);
  } catch (err) {
    return err;
  }
  return undefined;
}

describe('codec: RFC 8949 Appendix A examples', () => {
  for (const [diagnostic, h, expected] of appendixA) {
    if (expected === OUT) {
      it(`${diagnostic} (${h}) is refused: outside the profile`, () => {
        const err = decodeError(hex(h));
        assert.ok(err instanceof IpcborError, `decoded ${h}`);
        assert.equal(err.code, 'IPCBOR_ERR_DECODE');
      });
      continue;
    }
    it(`${diagnostic} (${h}) ${IN_PROFILE}${expected.preferred ? ' and encodes back to the same bytes' : ''}`, () => {
      assert.deepStrictEqual(cbor.decode(hex(h)), expected.value);
      if (expected.preferred) assert.equal(toHex(cbor.encode(expected.value)), h);
      else {
        // Numbers all: by value (-0 is sent as the integer 0, as the old encoder did).
        const x = expected.value as number;
        const back = cbor.decode(cbor.encode(x)) as number;
        assert.ok(back === x || (Number.isNaN(x) && Number.isNaN(back)), `${x} came back as ${back}`);
      }
    });
  }

  it('integral floats are sent as the integers they equal (a JS number has no float/int distinction)', () => {
    assert.equal(toHex(cbor.encode(1.0)), '01');
    assert.equal(toHex(cbor.encode(-0.0)), '00');
    assert.equal(toHex(cbor.encode(65504.0)), '19ffe0');
    assert.equal(toHex(cbor.encode(100000.0)), '1a000186a0');
    assert.equal(toHex(cbor.encode(-4.0)), '23');
  });
});

describe('codec: RFC 8949 Appendix F not-well-formed examples', () => {
  for (const [kind, hexes] of appendixF) {
    it(`refuses ${kind} with IPCBOR_ERR_DECODE`, () => {
      for (const h of hexes) {
        const err = decodeError(hex(h));
        assert.ok(err instanceof IpcborError, `${h}: ${String(err)}`);
        assert.equal(err.code, 'IPCBOR_ERR_DECODE', h);
      }
    });
  }
});
