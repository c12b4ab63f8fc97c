/**
 * fast-check arbitraries for the codec's differential tests: values of the
 * profile with their edges (integers near 2^53 and 2^64, -0, NaN,
 * subnormals, float16/float32-exact values, non-ASCII text and lone
 * surrogates, byte strings, Maps, class instances, undefined properties),
 * and byte-level mutations of valid encodings.
 */
import fc from 'fast-check';

const TWO_53 = 2 ** 53;

const intEdges = [0, 1, 23, 24, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, TWO_53 - 1, -1, -24, -25, -256, -257, -65536, -65537, -(2 ** 32), -(2 ** 32) - 1, -(TWO_53 - 1)];
const bigEdges = [0n, 1n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n, -(2n ** 53n), -(2n ** 53n) - 1n, 2n ** 63n, 2n ** 64n - 1n, -(2n ** 64n), -(2n ** 63n), 2n ** 32n];
const doubleEdges = [
  -0, NaN, Infinity, -Infinity, TWO_53, -TWO_53, TWO_53 + 2, 2 ** 60, 2 ** 64, 1e300, -1e300, Number.MAX_VALUE, Number.MIN_VALUE, -Number.MIN_VALUE,
  2 ** -24, 3 * 2 ** -24, 2 ** -14, 2 ** -15, 2 ** -25, 65504, 65504.5, 65520, 1.5, 0.1, 1 / 3, 3.4028234663852886e38, 1.401298464324817e-45, 1.1754942106924411e-38,
];

/** Integers, bigints and doubles, edges heavily weighted. */
export const numberArb: fc.Arbitrary<number | bigint> = fc.oneof(
  fc.constantFrom(...intEdges),
  fc.integer(),
  fc.maxSafeInteger(),
  fc.constantFrom(...bigEdges),
  fc.bigInt({ min: -(2n ** 64n), max: 2n ** 64n - 1n }),
  fc.constantFrom(...doubleEdges),
  fc.double(),
  // float32- and float16-exact values, subnormals included
  fc.float().map((f) => f),
  fc.integer({ min: 0, max: 0xffff }).map(half),
  fc.double({ min: -1e-300, max: 1e-300 }),
);

/** The value of float16 bits (any bit pattern). */
function half(bits: number): number {
  const exp = (bits >> 10) & 0x1f;
  const mant = bits & 0x3ff;
  const v = exp === 0 ? mant * 2 ** -24 : exp === 31 ? (mant === 0 ? Infinity : NaN) : (mant + 1024) * 2 ** (exp - 25);
  return bits & 0x8000 ? -v : v;
}

/** Text: ASCII, any code point, and raw UTF-16 units (lone surrogates). */
export const textArb: fc.Arbitrary<string> = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 10 }),
  fc.string({ unit: 'binary', maxLength: 10 }),
  fc.array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 12 }).map((units) => String.fromCharCode(...units)),
  fc.constantFrom('', '__proto__', 'constructor', 'toString', '0', '1', 'a'.repeat(23), 'b'.repeat(24), 'c'.repeat(255), 'd'.repeat(256), '\uFFFD', '\uFEFFbom'),
);

/** Keys: mostly short ASCII (what real messages have), sometimes anything. */
const keyArb: fc.Arbitrary<string> = fc.oneof(fc.constantFrom('a', 'b', 'id', 'name', 'message', 'delayMs', '__proto__', '0', '10', ''), textArb);

class Point {
  constructor(
    public x: unknown,
    public y: unknown,
  ) {}
}

/** Any value of the profile (and the things the encoder maps into it). */
export const valueArb: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    tie('leaf'),
    tie('leaf'),
    fc.array(tie('value'), { maxLength: 6 }),
    fc.array(fc.tuple(keyArb, tie('value')), { maxLength: 6 }).map(toObject),
    fc.array(fc.tuple(keyArb, tie('value')), { maxLength: 4 }).map((entries) => new Map(entries)),
    fc.tuple(tie('value'), tie('value')).map(([x, y]) => new Point(x, y)),
    fc.array(fc.tuple(keyArb, tie('value')), { maxLength: 4 }).map((entries) => Object.assign(Object.create(null) as object, toObject(entries))),
  ),
  leaf: fc.oneof(
    fc.constantFrom(null, true, false, undefined),
    numberArb,
    textArb,
    fc.uint8Array({ maxLength: 40 }),
  ),
})).value;

/** An object with these properties in this order, `__proto__` as an own property. */
function toObject(entries: [string, unknown][]): Record<string, unknown> {
  const obj: Record<string, unknown> = {};
  for (const [k, v] of entries) Object.defineProperty(obj, k, { value: v, enumerable: true, writable: true, configurable: true });
  return obj;
}

type Mutation = { at: number; kind: 'set' | 'insert' | 'delete' | 'truncate'; byte: number };

const mutationArb: fc.Arbitrary<Mutation> = fc.record({
  at: fc.nat(),
  kind: fc.constantFrom('set', 'set', 'insert', 'delete', 'truncate'),
  // Interesting bytes more often: heads of every major type, break, 24..27 lengths.
  byte: fc.oneof(fc.integer({ min: 0, max: 255 }), fc.constantFrom(0x18, 0x19, 0x1a, 0x1b, 0x1f, 0x5f, 0x7f, 0x9f, 0xbf, 0xff, 0xf7, 0xc0, 0x80, 0xa0, 0x61, 0xef, 0xbb, 0xbf)),
});

export function mutate(bytes: Uint8Array, mutations: Mutation[]): Uint8Array {
  let b = [...bytes];
  for (const m of mutations) {
    if (b.length === 0) break;
    const at = m.at % b.length;
    if (m.kind === 'set') b[at] = m.byte;
    else if (m.kind === 'insert') b.splice(at, 0, m.byte);
    else if (m.kind === 'delete') b.splice(at, 1);
    else b = b.slice(0, at);
  }
  return Uint8Array.from(b);
}

export const mutationsArb: fc.Arbitrary<Mutation[]> = fc.array(mutationArb, { minLength: 1, maxLength: 4 });
