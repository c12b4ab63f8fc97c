/**
 * The deterministic encoder: one growable output buffer, reused by every
 * call (the result is a copy of exactly the bytes written, so callers may
 * keep it), integer heads written by hand, short ASCII strings copied char by
 * char and the rest through TextEncoder.encodeInto.
 *
 * Its output is byte for byte what ipcbor's earlier cborg-based encoder made
 * (cborg 6 with `mapSorter: undefined`), which the differential tests check;
 * where cborg's choices are odd (the float16 rule, what counts as a plain
 * object) the comments say so.
 */
import { IpcborError } from '../errors.js';

/** Kept between calls up to this size; a larger buffer is dropped after use. */
const KEEP_BYTES = 1024 * 1024;
const INITIAL_BYTES = 8192;

let buf = new Uint8Array(INITIAL_BYTES);
let pos = 0;
/** Containers being written, outermost first (to find cycles). */
let stack: (object | undefined)[] = [];
let depth = 0;
let busy = false;

/**
 * Nesting from which each container is checked against its ancestors. A
 * cycle always gets this deep, so every cycle is found; shallower values pay
 * nothing for the check.
 */
const CYCLE_CHECK_DEPTH = 48;

const utf8 = new TextEncoder();
const scratch = new DataView(new ArrayBuffer(8));

function fail(message: string): never {
  throw new IpcborError('IPCBOR_ERR_ENCODE', message);
}

/**
 * Small results are copied into a shared slab and handed out as views of
 * it, as Node's Buffer pool does: a typed array of its own costs an
 * allocation of its own memory (most of an encode's time for a 1 KiB
 * result), a view of the slab does not. Bytes in the slab are never
 * written twice (a full slab is replaced, not reused), so a result stays
 * valid as long as it is kept; what it costs is that a kept result keeps
 * its slab's memory too, at most SLAB_BYTES.
 */
const SLAB_BYTES = 32 * 1024;
const SLAB_ITEM_BYTES = 4 * 1024;
let slab = new ArrayBuffer(0);
let slabUsed = 0;

/** The `n` bytes just written, copied into the slab. */
function fromSlab(n: number): Uint8Array {
  if (slabUsed + n > slab.byteLength) {
    slab = new ArrayBuffer(SLAB_BYTES);
    slabUsed = 0;
  }
  const out = new Uint8Array(slab, slabUsed, n);
  // Small results byte by byte: set() costs more than the copy at that size.
  if (n <= 32) for (let i = 0; i < n; i++) out[i] = buf[i]!;
  else out.set(buf.subarray(0, n));
  // Views start on 8-byte boundaries, as Node's pool keeps them.
  slabUsed += (n + 7) & ~7;
  return out;
}

/**
 * `bytes` to keep past this turn: a small result that is a view into a
 * slab (or any small view into a larger buffer) is copied, so that keeping
 * it does not keep the rest of that memory, which nothing accounts for.
 */
export function kept(bytes: Uint8Array): Uint8Array {
  return bytes.byteLength <= SLAB_ITEM_BYTES && bytes.byteLength < bytes.buffer.byteLength ? bytes.slice() : bytes;
}

/**
 * `n` bytes of memory the caller fills at once. Where the platform can give
 * memory that is not zeroed first (Node's Buffer.allocUnsafeSlow), a large
 * copy does not pay to clear it beforehand; elsewhere a plain Uint8Array.
 * Either way a plain Uint8Array of its own memory is returned.
 */
const allocUnsafeSlow = (globalThis as { Buffer?: { allocUnsafeSlow(n: number): Uint8Array } }).Buffer?.allocUnsafeSlow;
function freshBytes(n: number): Uint8Array {
  if (allocUnsafeSlow === undefined || n < 1024) return new Uint8Array(n);
  const b = allocUnsafeSlow(n);
  return new Uint8Array(b.buffer, b.byteOffset, n);
}

/** A copy of `bytes` in memory of its own. */
export function copyOf(bytes: Uint8Array): Uint8Array {
  const out = freshBytes(bytes.length);
  out.set(bytes);
  return out;
}

/** A typed array's own length (its internal slot: a subclass may override the `length` getter, and set() copies by the slot). */
const lengthOf = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(Uint8Array.prototype) as object, 'length')!.get as (this: Uint8Array) => number;

/** A large byte string on its own: its head and its bytes in one allocation of exactly their size, one copy. */
function wholeBytes(bytes: Uint8Array, n: number): Uint8Array {
  pos = 0;
  writeHead(0x40, n);
  const out = freshBytes(pos + n);
  out.set(buf.subarray(0, pos));
  out.set(bytes, pos);
  return out;
}

/** Encodes `value` into memory of its own (what the public codecs return: it may be kept, transferred, its `.buffer` used whole); every error is an IpcborError IPCBOR_ERR_ENCODE. */
export function encodeValue(value: unknown): Uint8Array {
  return encodeWith(value, false);
}

/**
 * @internal Encodes `value` for the wire: a small result is a view into a
 * shared slab, to be written at once and not kept (see kept()); never
 * handed to the application.
 */
export function encodeTransient(value: unknown): Uint8Array {
  return encodeWith(value, true);
}

function encodeWith(value: unknown, transient: boolean): Uint8Array {
  if (busy) return encodeNested(value, transient);
  busy = true;
  pos = 0;
  depth = 0;
  try {
    if (value instanceof Uint8Array) {
      const n = lengthOf.call(value);
      if (n > SLAB_ITEM_BYTES) return wholeBytes(value, n);
    }
    writeValue(value);
    if (pos <= SLAB_ITEM_BYTES) return transient ? fromSlab(pos) : buf.slice(0, pos);
    if (pos <= KEEP_BYTES) return copyOf(buf.subarray(0, pos));
    // A large result: hand over the buffer itself rather than copy it
    // (a 64 MiB message is copied once, into here), and start afresh.
    const out = buf.subarray(0, pos);
    buf = new Uint8Array(INITIAL_BYTES);
    return out;
  } catch (err) {
    stack = [];
    if (err instanceof IpcborError) throw err;
    // A getter that threw, or a structure too deep for the stack.
    throw new IpcborError('IPCBOR_ERR_ENCODE', err instanceof Error ? err.message : String(err), { cause: err });
  } finally {
    if (buf.length > KEEP_BYTES) buf = new Uint8Array(INITIAL_BYTES);
    busy = false;
  }
}

/** An encode started from a getter while another runs: keep the outer one's state. */
function encodeNested(value: unknown, transient: boolean): Uint8Array {
  const saved = [buf, pos, stack, depth] as const;
  buf = new Uint8Array(INITIAL_BYTES);
  stack = [];
  busy = false;
  try {
    return encodeWith(value, transient);
  } finally {
    [buf, pos, stack, depth] = saved;
    busy = true;
  }
}

function grow(need: number): void {
  let size = buf.length * 2;
  while (size < pos + need) size *= 2;
  // Past the size kept between calls, grow to what is needed plus an
  // eighth, not to the next power of two: a 64 MiB byte string must not
  // take a 128 MiB buffer.
  if (size > KEEP_BYTES) size = Math.max(KEEP_BYTES, pos + need + ((pos + need) >>> 3));
  const next = new Uint8Array(size);
  next.set(buf.subarray(0, pos));
  buf = next;
}

/** A head: `major` is the major type already shifted (0x00, 0x20, ...); 0 <= n < 2^53. */
function writeHead(major: number, n: number): void {
  if (pos + 9 > buf.length) grow(9);
  pos = putHead(pos, major, n);
}

/** Writes a head at `p` (room known to be there); returns the position after it. */
function putHead(p: number, major: number, n: number): number {
  const b = buf;
  if (n < 24) {
    b[p++] = major | n;
  } else if (n < 0x100) {
    b[p++] = major | 24;
    b[p++] = n;
  } else if (n < 0x10000) {
    b[p++] = major | 25;
    b[p++] = n >>> 8;
    b[p++] = n & 0xff;
  } else if (n < 0x100000000) {
    b[p++] = major | 26;
    b[p++] = n >>> 24;
    b[p++] = (n >>> 16) & 0xff;
    b[p++] = (n >>> 8) & 0xff;
    b[p++] = n & 0xff;
  } else {
    const hi = Math.floor(n / 0x100000000);
    const lo = n >>> 0;
    b[p++] = major | 27;
    b[p++] = hi >>> 24;
    b[p++] = (hi >>> 16) & 0xff;
    b[p++] = (hi >>> 8) & 0xff;
    b[p++] = hi & 0xff;
    b[p++] = lo >>> 24;
    b[p++] = (lo >>> 16) & 0xff;
    b[p++] = (lo >>> 8) & 0xff;
    b[p++] = lo & 0xff;
  }
  return p;
}

/** Bytes taken by a head whose argument is n. */
function headSize(n: number): number {
  return n < 24 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : n < 0x100000000 ? 5 : 9;
}

function writeByte(byte: number): void {
  if (pos >= buf.length) grow(1);
  buf[pos++] = byte;
}

function writeValue(v: unknown): void {
  switch (typeof v) {
    case 'string':
      return writeString(v);
    case 'number':
      // cborg: safe integers (-0 included, as 0) are integers; everything
      // else, 2^53 and 1e300 too, is a float.
      if (Number.isSafeInteger(v)) return v >= 0 ? writeHead(0x00, v) : writeHead(0x20, -1 - v);
      return writeFloat(v);
    case 'boolean':
      return writeByte(v ? 0xf5 : 0xf4);
    case 'undefined':
      // Bare, or in an array or Map value: null. (Object properties that are
      // undefined are left out before they get here.)
      return writeByte(0xf6);
    case 'bigint':
      return writeBigInt(v);
    case 'object':
      if (v === null) return writeByte(0xf6);
      return writeObject(v);
    case 'symbol':
      return fail('a symbol has no interop-safe CBOR form; convert it first');
    default:
      return fail('a function has no interop-safe CBOR form; convert it first');
  }
}

const TWO_64 = 1n << 64n;

function writeBigInt(v: bigint): void {
  const negative = v < 0n;
  const n = negative ? -1n - v : v;
  if (n >= TWO_64) fail('a bigint beyond 64 bits has no interop-safe CBOR form (bignum tags are refused)');
  const major = negative ? 0x20 : 0x00;
  if (n <= 0x1fffffffffffffn) return writeHead(major, Number(n));
  if (pos + 9 > buf.length) grow(9);
  const hi = Number(n >> 32n);
  const lo = Number(n & 0xffffffffn);
  const b = buf;
  const p = pos;
  b[p] = major | 27;
  b[p + 1] = hi >>> 24;
  b[p + 2] = (hi >>> 16) & 0xff;
  b[p + 3] = (hi >>> 8) & 0xff;
  b[p + 4] = hi & 0xff;
  b[p + 5] = lo >>> 24;
  b[p + 6] = (lo >>> 16) & 0xff;
  b[p + 7] = (lo >>> 8) & 0xff;
  b[p + 8] = lo & 0xff;
  pos = p + 9;
}

/**
 * The shortest of float16/32/64 that gives the value back, by cborg's rule:
 * NaN is f97e00 whatever its payload; a float16 is used for normal halves
 * and for subnormal halves that are powers of two only (cborg's converter
 * drops the other subnormals' bits, then sees the result differ and moves
 * on to float32). Not a safe integer here, so never 0 or -0.
 */
function writeFloat(v: number): void {
  if (pos + 9 > buf.length) grow(9);
  const b = buf;
  const p = pos;
  if (v !== v) {
    b[p] = 0xf9;
    b[p + 1] = 0x7e;
    b[p + 2] = 0x00;
    pos = p + 3;
    return;
  }
  if (Math.fround(v) === v) {
    scratch.setFloat32(0, v);
    const bits = scratch.getUint32(0);
    const half = toHalf(bits);
    if (half >= 0) {
      b[p] = 0xf9;
      b[p + 1] = half >>> 8;
      b[p + 2] = half & 0xff;
      pos = p + 3;
      return;
    }
    b[p] = 0xfa;
    b[p + 1] = bits >>> 24;
    b[p + 2] = (bits >>> 16) & 0xff;
    b[p + 3] = (bits >>> 8) & 0xff;
    b[p + 4] = bits & 0xff;
    pos = p + 5;
    return;
  }
  scratch.setFloat64(0, v);
  b[p] = 0xfb;
  for (let i = 0; i < 8; i++) b[p + 1 + i] = scratch.getUint8(i);
  pos = p + 9;
}

/** The float16 bits of a float32 (given as bits) under cborg's rule, or -1. */
function toHalf(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  const mantissa = bits & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00; // ±Infinity (NaN was handled before)
  if (exponent === 0) return -1; // zero is an integer; float32 subnormals are far below float16
  const e = exponent - 127;
  if (e < -24 || e > 15) return -1;
  if (e < -14) return mantissa === 0 ? sign | (1 << (24 + e)) : -1;
  return (mantissa & 0x1fff) === 0 ? sign | ((e + 15) << 10) | (mantissa >>> 13) : -1;
}

/** Strings this short are tried as ASCII by hand before encodeInto. */
const SHORT_STRING = 64;

function writeString(s: string): void {
  const len = s.length;
  if (len < SHORT_STRING) {
    // Optimistic ASCII: then the byte length is the length, and so is the head.
    if (pos + 2 + len > buf.length) grow(2 + len);
    const b = buf;
    let p = pos;
    if (len < 24) b[p++] = 0x60 | len;
    else {
      b[p++] = 0x78;
      b[p++] = len;
    }
    let i = 0;
    for (; i < len; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) break;
      b[p++] = c;
    }
    if (i === len) {
      pos = p;
      return;
    }
  }
  // At most 3 bytes per UTF-16 unit (a surrogate pair is 4 bytes for 2
  // units; a lone surrogate becomes U+FFFD, 3 bytes, as in cborg). The head
  // is sized for the most, and moved down if the text came out shorter.
  const most = len * 3;
  const reserved = headSize(most);
  if (pos + reserved + most > buf.length) grow(reserved + most);
  const start = pos + reserved;
  const written = utf8.encodeInto(s, buf.subarray(start, start + most)).written;
  const size = headSize(written);
  if (size < reserved) buf.copyWithin(pos + size, start, start + written);
  pos = putHead(pos, 0x60, written) + written;
}

function writeBytes(bytes: Uint8Array): void {
  const n = lengthOf.call(bytes);
  writeHead(0x40, n);
  if (pos + n > buf.length) grow(n);
  buf.set(bytes, pos);
  pos += n;
}

/**
 * What cborg refuses or ipcbor's old encoder refused, by the object's
 * Object.prototype.toString tag (cborg's own classification).
 */
const REFUSED = new Map<string, string>([
  ['Date', 'a Date'],
  ['RegExp', 'a RegExp'],
  ['Error', 'an Error'],
  ['Set', 'a Set'],
  ['WeakMap', 'a WeakMap'],
  ['WeakSet', 'a WeakSet'],
  ['Promise', 'a Promise'],
  ['URL', 'a URL'],
  ['HTMLElement', 'an HTMLElement'],
  ['ArrayBuffer', 'an ArrayBuffer (wrap it in a Uint8Array)'],
  ['SharedArrayBuffer', 'a SharedArrayBuffer'],
  ['DataView', 'a DataView'],
  ['Int8Array', 'an Int8Array'],
  ['Uint8ClampedArray', 'a Uint8ClampedArray'],
  ['Int16Array', 'an Int16Array'],
  ['Uint16Array', 'a Uint16Array'],
  ['Int32Array', 'an Int32Array'],
  ['Uint32Array', 'a Uint32Array'],
  ['Float32Array', 'a Float32Array'],
  ['Float64Array', 'a Float64Array'],
  ['BigInt64Array', 'a BigInt64Array'],
  ['BigUint64Array', 'a BigUint64Array'],
  // cborg would write its Tagged wrapper as a tag; ipcbor sends no tags.
  ['Tagged', 'a tagged value'],
]);

const toStringTag = (v: object): string => Object.prototype.toString.call(v).slice(8, -1);

function writeObject(v: object): void {
  // cborg's classification, in its order.
  if (Array.isArray(v)) return writeArray(v);
  if (v instanceof Uint8Array) return writeBytes(v);
  if (v.constructor === Object) return writeContainer(v, false);
  const tag = toStringTag(v);
  const refused = REFUSED.get(tag);
  if (refused !== undefined) fail(`${refused} has no interop-safe CBOR form; convert it first`);
  // A Map is a CBOR map with text keys; anything else (class instances,
  // null-prototype objects) goes as its own enumerable string-keyed properties.
  return writeContainer(v, tag === 'Map');
}

function enter(v: object): void {
  if (depth >= CYCLE_CHECK_DEPTH) {
    for (let i = 0; i < depth; i++) if (stack[i] === v) fail('a value that contains itself (a cycle) has no CBOR form');
  }
  stack[depth++] = v;
}

function leave(): void {
  stack[--depth] = undefined;
}

function writeArray(arr: unknown[]): void {
  const n = arr.length;
  writeHead(0x80, n);
  if (n === 0) return;
  enter(arr);
  for (let i = 0; i < n; i++) writeValue(arr[i]);
  leave();
}

function writeContainer(v: object, isMap: boolean): void {
  if (isMap) return writeMap(v as Map<unknown, unknown>);
  const obj = v as Record<string, unknown>;
  const keys = Object.keys(obj);
  const n = keys.length;
  if (n === 0) return writeByte(0xa0);
  // Properties that are undefined are left out, so the count is known only
  // at the end: the head is sized for all keys and moved down if needed.
  const headAt = pos;
  const reserved = headSize(n);
  if (pos + reserved > buf.length) grow(reserved);
  pos += reserved;
  enter(v);
  let count = 0;
  for (let i = 0; i < n; i++) {
    const key = keys[i]!;
    const value = obj[key];
    if (value === undefined) continue;
    writeString(key);
    writeValue(value);
    count++;
  }
  leave();
  const size = headSize(count);
  if (size === 1 && reserved === 1) {
    buf[headAt] = 0xa0 | count;
    return;
  }
  if (size < reserved) buf.copyWithin(headAt + size, headAt + reserved, pos);
  putHead(headAt, 0xa0, count);
  pos += size - reserved;
}

function writeMap(map: Map<unknown, unknown>): void {
  for (const key of map.keys()) {
    if (typeof key !== 'string') fail(`a Map key of type ${typeof key} has no interop-safe CBOR form; use text keys`);
  }
  writeHead(0xa0, map.size);
  if (map.size === 0) return;
  enter(map);
  for (const [key, value] of map) {
    writeString(key as string);
    writeValue(value);
  }
  leave();
}
