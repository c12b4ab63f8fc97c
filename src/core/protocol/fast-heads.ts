/**
 * Hand-written encoders and a decoder for the heads sent with every call,
 * result and stream item (`[kind, id]`, `[1, id, method]`): they are
 * per-frame work, and cheaper by hand than through a general CBOR codec.
 * Anything else goes through the codec. The bytes are the same either way.
 */
/** Bytes of a CBOR uint head for n (n < 2^32). */
function uintSize(n: number): number {
  return n < 24 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : 5;
}

/** Write a CBOR head of major type `major` (0x00 uint, 0x60 text) for n at `at`; returns the next position. */
function putUint(out: Uint8Array, at: number, major: number, n: number): number {
  if (n < 24) {
    out[at] = major | n;
    return at + 1;
  }
  if (n < 0x100) {
    out[at] = major | 24;
    out[at + 1] = n;
    return at + 2;
  }
  if (n < 0x10000) {
    out[at] = major | 25;
    out[at + 1] = n >>> 8;
    out[at + 2] = n;
    return at + 3;
  }
  out[at] = major | 26;
  out[at + 1] = n >>> 24;
  out[at + 2] = n >>> 16;
  out[at + 3] = n >>> 8;
  out[at + 4] = n;
  return at + 5;
}

function putU32(out: Uint8Array, at: number, n: number): void {
  out[at] = n >>> 24;
  out[at + 1] = n >>> 16;
  out[at + 2] = n >>> 8;
  out[at + 3] = n;
}

/**
 * The whole header of an extended frame whose head is `[kind, id]`
 * (`u32 head_len`, head, `u32 payload_len`) in one allocation: the
 * per-result, per-item path.
 */
export function encodeKindIdHeader(kind: number, id: number, payloadLength: number): Uint8Array {
  const headLength = 2 + uintSize(id);
  const out = new Uint8Array(8 + headLength);
  putU32(out, 0, headLength);
  out[4] = 0x82;
  out[5] = kind;
  putUint(out, 6, 0, id);
  putU32(out, 4 + headLength, payloadLength);
  return out;
}

/** The whole header of a CALL frame `[1, id, method]` in one allocation: the per-call path. */
export function encodeCallHeader(id: number, method: Uint8Array, payloadLength: number): Uint8Array {
  const headLength = 2 + uintSize(id) + uintSize(method.length) + method.length;
  const out = new Uint8Array(8 + headLength);
  putU32(out, 0, headLength);
  out[4] = 0x83;
  out[5] = 0x01;
  const at = putUint(out, putUint(out, 6, 0, id), 0x60, method.length);
  // Byte by byte: for a name this short, set() costs more than the copy.
  if (method.length <= 32) for (let i = 0; i < method.length; i++) out[at + i] = method[i]!;
  else out.set(method, at);
  putU32(out, 4 + headLength, payloadLength);
  return out;
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** The heads parsed here, already in the shape decodeHead returns. */
export type CommonHead = { kind: 1; id: number; method: string; opts: Readonly<Record<string, never>> } | { kind: 3 | 4 | 6 | 7; id: number };
const NO_OPTS = Object.freeze({});

/** Where the last readUint stopped (module state: no array per read on the per-frame path). */
let next = 0;

/** Read a CBOR uint of major type `major` at `at` (position after it in `next`), or -1 if it is not one. */
function readUint(b: Uint8Array, at: number, major: number): number {
  const first = b[at];
  if (first === undefined || first >> 5 !== major >> 5) return -1;
  const minor = first & 31;
  if (minor < 24) {
    next = at + 1;
    return minor;
  }
  if (minor === 24 && at + 1 < b.length) {
    next = at + 2;
    return b[at + 1]!;
  }
  if (minor === 25 && at + 2 < b.length) {
    next = at + 3;
    return (b[at + 1]! << 8) | b[at + 2]!;
  }
  if (minor === 26 && at + 4 < b.length) {
    next = at + 5;
    return ((b[at + 1]! << 24) | (b[at + 2]! << 16) | (b[at + 3]! << 8) | b[at + 4]!) >>> 0;
  }
  return -1;
}

/** The last method names seen, by their bytes: calls mostly repeat a few names. */
const SEEN = 8;
const seenBytes: Uint8Array[] = [];
const seenText: string[] = [];
let seenNext = 0;

function sameBytes(a: Uint8Array, b: Uint8Array, from: number): boolean {
  if (a.length !== b.length - from) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[from + i]) return false;
  return true;
}

/** A method name: one seen lately, or short ASCII by hand (most names), anything else through the strict UTF-8 decoder. */
function methodText(b: Uint8Array, from: number): string {
  for (let i = 0; i < seenBytes.length; i++) if (sameBytes(seenBytes[i]!, b, from)) return seenText[i]!;
  const text = decodeMethod(b, from);
  if (b.length - from <= 64) {
    seenBytes[seenNext] = b.slice(from);
    seenText[seenNext] = text;
    seenNext = (seenNext + 1) % SEEN;
  }
  return text;
}

function decodeMethod(b: Uint8Array, from: number): string {
  const n = b.length - from;
  if (n <= 64) {
    let ascii = true;
    for (let i = from; i < b.length; i++) {
      if (b[i]! >= 0x80) {
        ascii = false;
        break;
      }
    }
    if (ascii) return String.fromCharCode.apply(null, b.subarray(from) as unknown as number[]);
  }
  return utf8.decode(b.subarray(from));
}

/**
 * Parse the common heads by hand: `[k, id]` and `[1, id, method]`.
 * Returns undefined for anything else (the caller then uses the codec),
 * including every malformed input, so the codec's checks still apply.
 */
export function parseCommonHead(b: Uint8Array): CommonHead | undefined {
  if (b[0] === 0x82) {
    const kind = b[1]!;
    // CANCEL, RESULT, ITEM, END: the kinds whose head is exactly [kind, id].
    if (kind !== 3 && kind !== 4 && kind !== 6 && kind !== 7) return undefined;
    const id = readUint(b, 2, 0);
    if (id <= 0 || next !== b.length) return undefined;
    return { kind: kind as 3 | 4 | 6 | 7, id };
  }
  if (b[0] === 0x83 && b[1] === 0x01) {
    const id = readUint(b, 2, 0);
    if (id <= 0) return undefined;
    const len = readUint(b, next, 0x60);
    if (len < 0 || next + len !== b.length) return undefined;
    try {
      return { kind: 1, id, method: methodText(b, next), opts: NO_OPTS };
    } catch {
      return undefined;
    }
  }
  return undefined;
}
