/**
 * The strict decoder: a recursive reader over module-level state (no token
 * objects, no per-call closures). Decoding is synchronous and never runs
 * user code in the middle (except a setter planted on Object.prototype, see
 * `decodeItem`), so one set of variables serves every call; a nested call is
 * still handled by saving and restoring them.
 *
 * Every byte is hostile. Nothing is allocated from a claimed length before it
 * is known to fit: each item still owed by an open container needs at least
 * one more byte, so "owed items <= bytes left" is checked whenever a
 * container claims a count, and a string's length is checked against the
 * bytes left before it is read. Arrays are therefore preallocated only up to
 * the input's size, and nested claims cannot add up beyond it either.
 */
import { IpcborError } from '../errors.js';
import { copyOf } from './encode.js';

export interface DecodeLimits {
  maxDepth: number;
  maxItems: number;
}

const EMPTY = new Uint8Array(0);

// The reader's state, valid during one decode.
let data: Uint8Array = EMPTY;
let pos = 0;
let end = 0;
/** Items known so far: the top item plus every count claimed by a container. */
let items = 0;
/** Items whose head has been read; `items - started` are still owed. */
let started = 0;
/** Byte strings, arrays and maps made: each costs an object, far more than a number. */
let objects = 0;
let maxItems = 0;
let maxDepth = 0;
let busy = false;
/**
 * Byte strings at least this long, and at least half the input, are views
 * into the input instead of copies, when the caller says the input's whole
 * buffer is its own (see `share` in decodeStrict): a large message is then
 * copied once on its way in, not twice, and a small byte string never
 * keeps a large buffer alive.
 */
const SHARE_BYTES = 64 * 1024;
let share = false;

/** Items in the value most recently decoded (set only on success). */
export let lastItemCount = 0;
/** Byte strings, arrays and maps in it. */
export let lastObjectCount = 0;

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const scratch = new DataView(new ArrayBuffer(8));

function fail(message: string): never {
  throw new IpcborError('IPCBOR_ERR_DECODE', message);
}

const notEnough = () => fail('not enough bytes for the item');

/**
 * Decodes exactly one item filling `bytes`. Returns the value; the number of
 * data items in it is left in `lastItemCount`.
 */
export function decodeStrict(bytes: Uint8Array, limits: DecodeLimits, shareLarge = false): unknown {
  if (busy) return decodeNested(bytes, limits, shareLarge);
  busy = true;
  share = shareLarge;
  data = bytes;
  pos = 0;
  end = bytes.length;
  items = 1;
  started = 0;
  objects = 0;
  maxItems = limits.maxItems;
  maxDepth = limits.maxDepth;
  try {
    const value = decodeItem(0);
    if (pos !== end) fail(`${end - pos} bytes after the item`);
    lastItemCount = items;
    lastObjectCount = objects;
    return value;
  } finally {
    // The input is usually a socket chunk: do not keep it alive.
    data = EMPTY;
    busy = false;
  }
}

/** A decode started while another is running: keep the outer one's state. */
function decodeNested(bytes: Uint8Array, limits: DecodeLimits, shareLarge: boolean): unknown {
  const saved = [data, pos, end, items, started, objects, maxItems, maxDepth, share] as const;
  busy = false;
  try {
    return decodeStrict(bytes, limits, shareLarge);
  } finally {
    [data, pos, end, items, started, objects, maxItems, maxDepth, share] = saved;
    busy = true;
  }
}

/**
 * The argument of a head with minor 24..27 (the value, a length or a count)
 * as a number, or -1 for the reserved minors 28..30 and indefinite 31.
 * 64-bit arguments are returned as a (possibly rounded) number: callers that
 * need all 64 bits (integers) read them themselves; for lengths anything at
 * or beyond 2^32 is more than any input can hold anyway.
 */
function readArgument(minor: number): number {
  const p = pos;
  switch (minor) {
    case 24:
      if (p + 1 > end) notEnough();
      pos = p + 1;
      return data[p]!;
    case 25:
      if (p + 2 > end) notEnough();
      pos = p + 2;
      return (data[p]! << 8) | data[p + 1]!;
    case 26:
      if (p + 4 > end) notEnough();
      pos = p + 4;
      return data[p]! * 0x1000000 + ((data[p + 1]! << 16) | (data[p + 2]! << 8) | data[p + 3]!);
    case 27: {
      if (p + 8 > end) notEnough();
      pos = p + 8;
      const hi = data[p]! * 0x1000000 + ((data[p + 1]! << 16) | (data[p + 2]! << 8) | data[p + 3]!);
      const lo = data[p + 4]! * 0x1000000 + ((data[p + 5]! << 16) | (data[p + 6]! << 8) | data[p + 7]!);
      return hi * 0x100000000 + lo;
    }
    default:
      return -1;
  }
}

/** A length or count: minor 0..27; indefinite (31) and reserved minors refused. */
function readLength(minor: number, what: string): number {
  if (minor < 24) return minor;
  const n = readArgument(minor);
  if (n < 0) fail(minor === 31 ? `indefinite-length ${what} not accepted` : `reserved minor ${minor} in a ${what} head`);
  return n;
}

/**
 * Accounts for `n` more items claimed by a container before any of them is
 * read: the items budget, and one byte at least for each item still owed.
 */
function claim(n: number): void {
  items += n;
  if (items > maxItems) fail(`more than ${maxItems} items`);
  if (items - started > end - pos) notEnough();
}

function decodeItem(depth: number): unknown {
  const d = data;
  const p = pos;
  if (p >= end) notEnough();
  started++;
  const b = d[p]!;
  pos = p + 1;
  const minor = b & 31;
  switch (b >> 5) {
    case 0:
      if (minor < 24) return minor;
      // One- and two-byte integers inline: the commonest after the tiny ones.
      if (minor === 24 && p + 2 <= end) {
        pos = p + 2;
        return d[p + 1]!;
      }
      if (minor === 25 && p + 3 <= end) {
        pos = p + 3;
        return (d[p + 1]! << 8) | d[p + 2]!;
      }
      return minor === 27 ? readUint64(false) : readInt(minor);
    case 1:
      if (minor < 24) return -1 - minor;
      if (minor === 24 && p + 2 <= end) {
        pos = p + 2;
        return -1 - d[p + 1]!;
      }
      if (minor === 25 && p + 3 <= end) {
        pos = p + 3;
        return -1 - ((d[p + 1]! << 8) | d[p + 2]!);
      }
      return minor === 27 ? readUint64(true) : -1 - readInt(minor);
    case 2: {
      const n = readLength(minor, 'byte string');
      if (n > end - pos) notEnough();
      objects++;
      // A copy: the input's memory belongs to a socket chunk (unless the
      // caller handed over the whole buffer: then a large one is a view).
      const out = share && n >= SHARE_BYTES && n * 2 >= end ? data.subarray(pos, pos + n) : copyOf(data.subarray(pos, pos + n));
      pos += n;
      return out;
    }
    case 3:
      return readText(readLength(minor, 'text string'));
    case 4: {
      const n = readLength(minor, 'array');
      objects++;
      if (n === 0) return [];
      if (depth >= maxDepth) fail(`nesting deeper than ${maxDepth} levels`);
      claim(n);
      // n is now known to fit in the input (one byte per item at least).
      const arr = new Array<unknown>(n);
      for (let i = 0; i < n; i++) {
        // Unsigned integers up to two bytes, the commonest array items, without a call each.
        const at = pos;
        const b = data[at]!;
        const size = b < 24 ? 1 : b === 24 ? 2 : b === 25 ? 3 : 0;
        if (size === 0 || at + size > end) {
          arr[i] = decodeItem(depth + 1);
          continue;
        }
        started++;
        pos = at + size;
        arr[i] = size === 1 ? b : size === 2 ? data[at + 1]! : (data[at + 1]! << 8) | data[at + 2]!;
      }
      return arr;
    }
    case 5: {
      const n = readLength(minor, 'map');
      objects++;
      if (n === 0) return {};
      if (depth >= maxDepth) fail(`nesting deeper than ${maxDepth} levels`);
      claim(2 * n);
      const obj: Record<string, unknown> = {};
      for (let i = 0; i < n; i++) {
        const key = readKey();
        if (Object.hasOwn(obj, key)) fail('duplicate map key');
        const value = decodeItem(depth + 1);
        if (key === '__proto__') {
          // An own property, as JSON.parse makes it; assignment would set the prototype.
          Object.defineProperty(obj, key, { value, configurable: true, enumerable: true, writable: true });
        } else {
          obj[key] = value;
        }
      }
      return obj;
    }
    case 6:
      return fail('tags are not accepted');
    default:
      switch (minor) {
        case 20:
          return false;
        case 21:
          return true;
        case 22:
          return null;
        case 23:
          fail('undefined is not accepted');
        case 25:
          return readFloat16();
        case 26:
          return readFloat32();
        case 27:
          return readFloat64();
        case 31:
          fail('unexpected break');
        default:
          return fail(minor < 25 ? 'simple values are not accepted' : `reserved minor ${minor} in major type 7`);
      }
  }
}

/** An integer argument of minor 24..26 (minor 27 goes to readUint64). */
function readInt(minor: number): number {
  const n = readArgument(minor);
  if (n < 0) fail(`reserved minor ${minor} in an integer head`);
  return n;
}

/**
 * A 64-bit integer argument: a number while it stays within ±2^53 (exactly
 * representable), a bigint beyond.
 */
function readUint64(negative: boolean): number | bigint {
  if (pos + 8 > end) notEnough();
  const p = pos;
  pos = p + 8;
  const hi = data[p]! * 0x1000000 + ((data[p + 1]! << 16) | (data[p + 2]! << 8) | data[p + 3]!);
  const lo = data[p + 4]! * 0x1000000 + ((data[p + 5]! << 16) | (data[p + 6]! << 8) | data[p + 7]!);
  if (negative) {
    // -1 - n >= -2^53  <=>  n < 2^53
    if (hi < 0x200000) return -1 - (hi * 0x100000000 + lo);
    return -1n - ((BigInt(hi) << 32n) | BigInt(lo));
  }
  if (hi < 0x200000 || (hi === 0x200000 && lo === 0)) return hi * 0x100000000 + lo;
  return (BigInt(hi) << 32n) | BigInt(lo);
}

function readFloat16(): number {
  if (pos + 2 > end) notEnough();
  const half = (data[pos]! << 8) | data[pos + 1]!;
  pos += 2;
  const exp = (half >> 10) & 0x1f;
  const mant = half & 0x3ff;
  let value: number;
  if (exp === 0) value = mant * 2 ** -24;
  else if (exp !== 31) value = (mant + 1024) * 2 ** (exp - 25);
  else value = mant === 0 ? Infinity : NaN;
  return half & 0x8000 ? -value : value;
}

function readFloat32(): number {
  if (pos + 4 > end) notEnough();
  const p = pos;
  pos = p + 4;
  scratch.setUint32(0, data[p]! * 0x1000000 + ((data[p + 1]! << 16) | (data[p + 2]! << 8) | data[p + 3]!));
  return scratch.getFloat32(0);
}

function readFloat64(): number {
  if (pos + 8 > end) notEnough();
  const p = pos;
  pos = p + 8;
  scratch.setUint32(0, data[p]! * 0x1000000 + ((data[p + 1]! << 16) | (data[p + 2]! << 8) | data[p + 3]!));
  scratch.setUint32(4, data[p + 4]! * 0x1000000 + ((data[p + 5]! << 16) | (data[p + 6]! << 8) | data[p + 7]!));
  return scratch.getFloat64(0);
}

/** Up to this many bytes, ASCII text is built by hand (beats a TextDecoder call). */
const SHORT_TEXT = 32;

/** A text string of `n` bytes at `pos`: strict UTF-8, a BOM kept as U+FEFF. */
function readText(n: number): string {
  if (n > end - pos) notEnough();
  const start = pos;
  pos = start + n;
  if (n <= SHORT_TEXT) {
    const s = n <= 16 ? ascii16(start, n) : ascii32(start, n);
    if (s !== undefined) return s;
  }
  try {
    return utf8.decode(data.subarray(start, start + n));
  } catch {
    return fail('text string is not valid UTF-8');
  }
}

/** 17..32 ASCII bytes as a string, or undefined if one is not ASCII. */
function ascii32(p: number, n: number): string | undefined {
  const head = ascii16(p, 16);
  if (head === undefined) return undefined;
  const tail = ascii16(p + 16, n - 16);
  return tail === undefined ? undefined : head + tail;
}

/**
 * Up to 16 ASCII bytes as a string, or undefined if one is not ASCII: one
 * String.fromCharCode call with the bytes as arguments is several times
 * faster than building the string char by char or a TextDecoder call.
 */
function ascii16(p: number, n: number): string | undefined {
  const d = data;
  let or = 0;
  for (let i = p; i < p + n; i++) or |= d[i]!;
  if (or >= 0x80) return undefined;
  const f = String.fromCharCode;
  switch (n) {
    case 0:
      return '';
    case 1:
      return f(d[p]!);
    case 2:
      return f(d[p]!, d[p + 1]!);
    case 3:
      return f(d[p]!, d[p + 1]!, d[p + 2]!);
    case 4:
      return f(d[p]!, d[p + 1]!, d[p + 2]!, d[p + 3]!);
    case 5:
      return f(d[p]!, d[p + 1]!, d[p + 2]!, d[p + 3]!, d[p + 4]!);
    case 6:
      return f(d[p]!, d[p + 1]!, d[p + 2]!, d[p + 3]!, d[p + 4]!, d[p + 5]!);
    case 7:
      return f(d[p]!, d[p + 1]!, d[p + 2]!, d[p + 3]!, d[p + 4]!, d[p + 5]!, d[p + 6]!);
    case 8:
      return f(d[p]!, d[p + 1]!, d[p + 2]!, d[p + 3]!, d[p + 4]!, d[p + 5]!, d[p + 6]!, d[p + 7]!);
    case 9:
      return f(d[p]!, d[p + 1]!, d[p + 2]!, d[p + 3]!, d[p + 4]!, d[p + 5]!, d[p + 6]!, d[p + 7]!, d[p + 8]!);
    case 10:
      return f(d[p]!, d[p + 1]!, d[p + 2]!, d[p + 3]!, d[p + 4]!, d[p + 5]!, d[p + 6]!, d[p + 7]!, d[p + 8]!, d[p + 9]!);
    case 11:
      return f(d[p]!, d[p + 1]!, d[p + 2]!, d[p + 3]!, d[p + 4]!, d[p + 5]!, d[p + 6]!, d[p + 7]!, d[p + 8]!, d[p + 9]!, d[p + 10]!);
    case 12:
      return f(d[p]!, d[p + 1]!, d[p + 2]!, d[p + 3]!, d[p + 4]!, d[p + 5]!, d[p + 6]!, d[p + 7]!, d[p + 8]!, d[p + 9]!, d[p + 10]!, d[p + 11]!);
    case 13:
      return f(d[p]!, d[p + 1]!, d[p + 2]!, d[p + 3]!, d[p + 4]!, d[p + 5]!, d[p + 6]!, d[p + 7]!, d[p + 8]!, d[p + 9]!, d[p + 10]!, d[p + 11]!, d[p + 12]!);
    case 14:
      return f(d[p]!, d[p + 1]!, d[p + 2]!, d[p + 3]!, d[p + 4]!, d[p + 5]!, d[p + 6]!, d[p + 7]!, d[p + 8]!, d[p + 9]!, d[p + 10]!, d[p + 11]!, d[p + 12]!, d[p + 13]!);
    case 15:
      return f(d[p]!, d[p + 1]!, d[p + 2]!, d[p + 3]!, d[p + 4]!, d[p + 5]!, d[p + 6]!, d[p + 7]!, d[p + 8]!, d[p + 9]!, d[p + 10]!, d[p + 11]!, d[p + 12]!, d[p + 13]!, d[p + 14]!);
    default:
      return f(d[p]!, d[p + 1]!, d[p + 2]!, d[p + 3]!, d[p + 4]!, d[p + 5]!, d[p + 6]!, d[p + 7]!, d[p + 8]!, d[p + 9]!, d[p + 10]!, d[p + 11]!, d[p + 12]!, d[p + 13]!, d[p + 14]!, d[p + 15]!);
  }
}

/**
 * Recently seen short map keys, by a cheap hash of their bytes: a hit skips
 * building the string, and hands back one the engine has already
 * internalized, which makes the property store itself faster too. A miss
 * (or a collision) just replaces the slot. The cache holds only keys that
 * decoded as valid UTF-8, and compares every byte, so a hit is always right.
 */
const KEY_SLOTS = 4096;
const KEY_MAX = 16;
const keyStrings: (string | undefined)[] = new Array<string | undefined>(KEY_SLOTS).fill(undefined);
const keyBytes = new Uint8Array(KEY_SLOTS * KEY_MAX);
const keyLengths = new Uint8Array(KEY_SLOTS);

/** A map key: a definite-length text string, nothing else. */
function readKey(): string {
  if (pos >= end) notEnough();
  started++;
  const b = data[pos++]!;
  if (b >> 5 !== 3) fail('map keys must be text strings');
  const minor = b & 31;
  const n = minor < 24 ? minor : readLength(minor, 'text string');
  if (n === 0 || n > KEY_MAX) return readText(n);
  if (n > end - pos) notEnough();
  const d = data;
  const p = pos;
  const slot = (n * 0x9e5 + d[p]! * 0x3b + d[p + n - 1]! * 0x11 + d[p + (n >> 1)]!) & (KEY_SLOTS - 1);
  const cached = keyStrings[slot];
  if (cached !== undefined && keyLengths[slot] === n) {
    const base = slot * KEY_MAX;
    let i = 0;
    while (i < n && keyBytes[base + i] === d[p + i]) i++;
    if (i === n) {
      pos = p + n;
      return cached;
    }
  }
  const key = readText(n);
  keyStrings[slot] = key;
  keyLengths[slot] = n;
  keyBytes.set(d.subarray(p, p + n), slot * KEY_MAX);
  return key;
}
