/**
 * CBOR diagnostic notation (RFC 8949 §8): `{"a": 1, "b": h'0102'}`, `1.5`,
 * `-1`, `simple(16)`, `1(1363896240)`, `[_ 1, 2]`. For showing what is on
 * the wire (`ipcbor monitor`), so it reads the bytes themselves rather than
 * a decoded value: it shows what the strict decoder refuses too (tags,
 * `undefined`, simple values, non-text keys, indefinite lengths) and tells
 * `1.0` from `1`.
 *
 * Bounded whatever the input: a long byte string, text, array or map is
 * cut with a comment saying how much was left out (`h'0102' /+1022 bytes/`,
 * `[1, 2, /+998 items/]`), nesting is followed only so deep, and the whole
 * output stops at `maxOutput` characters (`/...cut/`). Work is bounded by
 * the input's size: what is not shown is only stepped over. Input that is
 * not well-formed CBOR, in the part read, throws IPCBOR_ERR_DECODE.
 *
 * Text is shown between double quotes with `"` and `\` escaped, and every
 * control, bidirectional or line-separator character as `\uXXXX` (or
 * `\n`, `\t`, `\r`), so a printed value cannot drive a terminal.
 */
import { IpcborError } from '../errors.js';

/** How much of a CBOR item `diagnose` writes out: every bound has a default, so any input prints in bounded space. */
export interface DiagnosticOptions {
  /** Most characters of output; past it the output ends with `/...cut/` (default 4,096). */
  maxOutput?: number;
  /** Most bytes of one byte string shown (default 64). */
  maxBytes?: number;
  /** Most characters of one text string shown (default 256). */
  maxText?: number;
  /** Most elements of one array, or pairs of one map, shown (default 64). */
  maxItems?: number;
  /** Deepest nesting of arrays, maps and tags followed (default 32). */
  maxDepth?: number;
  /** Write every non-ASCII character of text as `\uXXXX` (the RFC's examples do). Default false. */
  ascii?: boolean;
}

const DEFAULTS: Required<DiagnosticOptions> = { maxOutput: 4096, maxBytes: 64, maxText: 256, maxItems: 64, maxDepth: 32, ascii: false };

/** Thrown inside to stop at the output limit; never escapes. */
class Cut {
  constructor(readonly why: string) {}
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
/** Characters always escaped in text: C0, DEL, C1, the bidi and line-separator characters (as src/cli/escape.ts). */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"\\]/g;
const UNSAFE_OR_NON_ASCII = /[^\u0020-\u007e]|["\\]/g;
const SHORT: Record<string, string> = { '"': '\\"', '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' };
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function fail(message: string): never {
  throw new IpcborError('IPCBOR_ERR_DECODE', message);
}

/** `bytes` in diagnostic notation, bounded by `options`. Throws IPCBOR_ERR_DECODE where they are not well-formed CBOR. */
export function diagnose(bytes: Uint8Array, options: DiagnosticOptions = {}): string {
  const o = { ...DEFAULTS, ...options };
  const p = new Printer(bytes, o);
  try {
    p.item(0);
    if (p.pos !== bytes.length) fail(`${bytes.length - p.pos} bytes after the item`);
  } catch (err) {
    if (!(err instanceof Cut)) throw err;
    return `${p.text()}${err.why}`;
  }
  return p.text();
}

/** A number as diagnostic notation writes a float: `1.0`, `-0.0`, `1.0e+300`, `NaN`. */
export function diagnosticFloat(x: number): string {
  if (!Number.isFinite(x)) return Number.isNaN(x) ? 'NaN' : x > 0 ? 'Infinity' : '-Infinity';
  if (Object.is(x, -0)) return '-0.0';
  const s = String(x);
  if (s.includes('.')) return s;
  const e = s.indexOf('e');
  return e < 0 ? `${s}.0` : `${s.slice(0, e)}.0${s.slice(e)}`;
}

class Printer {
  pos = 0;
  private readonly parts: string[] = [];
  private length = 0;
  /** Above zero while stepping over what is not shown. */
  private quiet = 0;
  private readonly scratch = new DataView(new ArrayBuffer(8));

  constructor(
    private readonly data: Uint8Array,
    private readonly o: Required<DiagnosticOptions>,
  ) {}

  text(): string {
    return this.parts.join('');
  }

  private put(s: string): void {
    if (this.quiet > 0) return;
    const room = this.o.maxOutput - this.length;
    if (s.length > room) {
      this.parts.push(s.slice(0, Math.max(0, room)));
      this.length = this.o.maxOutput;
      throw new Cut('/...cut/');
    }
    this.parts.push(s);
    this.length += s.length;
  }

  private byte(): number {
    if (this.pos >= this.data.length) fail('not enough bytes for the item');
    return this.data[this.pos++]!;
  }

  /** The argument of a head: minor < 24 itself, 24..27 the bytes that follow (a bigint past 2^53), -1 for 31; 28..30 are not well-formed. */
  private argument(minor: number): number | bigint {
    if (minor < 24) return minor;
    if (minor === 31) return -1;
    if (minor > 27) fail(`reserved minor ${minor}`);
    const n = 1 << (minor - 24);
    if (this.pos + n > this.data.length) fail('not enough bytes for the item');
    let v = 0n;
    for (let i = 0; i < n; i++) v = (v << 8n) | BigInt(this.data[this.pos++]!);
    return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  }

  /** A length or count: definite (a number that fits the input) or -1 for indefinite. */
  private count(minor: number, perItem: number): number {
    const n = this.argument(minor);
    if (n === -1) return -1;
    if (typeof n === 'bigint' || n * perItem > this.data.length - this.pos) fail('not enough bytes for the item');
    return n;
  }

  /** At a break byte (0xff): consume it. */
  private atBreak(): boolean {
    if (this.pos >= this.data.length) fail('an indefinite-length item not closed by a break');
    if (this.data[this.pos] !== 0xff) return false;
    this.pos++;
    return true;
  }

  item(depth: number): void {
    const b = this.byte();
    const major = b >> 5;
    const minor = b & 31;
    switch (major) {
      case 0:
      case 1: {
        if (minor === 31) fail('an integer head with minor 31');
        const n = this.argument(minor);
        if (major === 0) return this.put(String(n));
        return this.put(typeof n === 'bigint' ? String(-1n - n) : String(-1 - n));
      }
      case 2:
      case 3: {
        const n = this.count(minor, 1);
        if (n >= 0) return major === 2 ? this.bytes(n) : this.string(n);
        // Indefinite: definite chunks of the same major type, then a break.
        this.put('(_ ');
        let first = true;
        while (!this.atBreak()) {
          const c = this.byte();
          if (c >> 5 !== major || (c & 31) === 31) fail('a chunk of an indefinite-length string that is not a definite string of its type');
          if (!first) this.put(', ');
          first = false;
          const len = this.count(c & 31, 1);
          if (major === 2) this.bytes(len);
          else this.string(len);
        }
        return this.put(')');
      }
      case 4:
      case 5:
        return this.container(major === 5, this.count(minor, major === 5 ? 2 : 1), depth);
      case 6: {
        if (minor === 31) fail('a tag head with minor 31');
        const tag = this.argument(minor);
        if (depth >= this.o.maxDepth) throw new Cut(`/...deeper than ${this.o.maxDepth} levels/`);
        // A bignum (tags 2 and 3) of a few bytes is shown as the integer it is, as the RFC's examples do.
        if ((tag === 2 || tag === 3) && this.pos < this.data.length && this.data[this.pos]! >> 5 === 2 && (this.data[this.pos]! & 31) < 24 && this.quiet === 0) {
          const n = this.data[this.pos]! & 31;
          if (this.pos + 1 + n <= this.data.length) {
            let v = 0n;
            for (let i = 0; i < n; i++) v = (v << 8n) | BigInt(this.data[this.pos + 1 + i]!);
            this.pos += 1 + n;
            return this.put(String(tag === 2 ? v : -1n - v));
          }
        }
        this.put(`${String(tag)}(`);
        this.item(depth + 1);
        return this.put(')');
      }
      default:
        return this.simple(minor);
    }
  }

  private simple(minor: number): void {
    switch (minor) {
      case 20:
        return this.put('false');
      case 21:
        return this.put('true');
      case 22:
        return this.put('null');
      case 23:
        return this.put('undefined');
      case 24: {
        const n = this.byte();
        if (n < 32) fail(`simple value ${n} in two bytes`);
        return this.put(`simple(${n})`);
      }
      case 25:
      case 26:
      case 27:
        return this.put(diagnosticFloat(this.float(minor)));
      case 31:
        return fail('a break outside an indefinite-length item');
      default:
        if (minor < 20) return this.put(`simple(${minor})`);
        return fail(`reserved minor ${minor} in major type 7`);
    }
  }

  private float(minor: number): number {
    const n = 1 << (minor - 24);
    if (this.pos + n > this.data.length) fail('not enough bytes for the item');
    const d = this.data;
    const p = this.pos;
    this.pos += n;
    if (n === 2) {
      const half = (d[p]! << 8) | d[p + 1]!;
      const exp = (half >> 10) & 0x1f;
      const mant = half & 0x3ff;
      const v = exp === 0 ? mant * 2 ** -24 : exp !== 31 ? (mant + 1024) * 2 ** (exp - 25) : mant === 0 ? Infinity : NaN;
      return half & 0x8000 ? -v : v;
    }
    for (let i = 0; i < n; i++) this.scratch.setUint8(i, d[p + i]!);
    return n === 4 ? this.scratch.getFloat32(0) : this.scratch.getFloat64(0);
  }

  private bytes(n: number): void {
    const start = this.pos;
    this.pos += n;
    if (this.quiet > 0) return;
    const shown = Math.min(n, this.o.maxBytes);
    let hex = "h'";
    for (let i = start; i < start + shown; i++) hex += HEX[this.data[i]!];
    this.put(`${hex}'`);
    if (shown < n) this.put(` /+${n - shown} bytes/`);
  }

  private string(n: number): void {
    const start = this.pos;
    this.pos += n;
    if (this.quiet > 0) return;
    // Decode no more than the characters shown can need (4 bytes each), cut back to a character's start.
    let end = start + Math.min(n, this.o.maxText * 4);
    if (end < start + n) while (end > start && (this.data[end]! & 0xc0) === 0x80) end--;
    let s: string;
    try {
      s = utf8.decode(this.data.subarray(start, end));
    } catch {
      return fail('a text string that is not valid UTF-8');
    }
    let more = start + n - end;
    if (s.length > this.o.maxText) {
      // Whole code points only: a surrogate pair is not split.
      let cut = this.o.maxText;
      const c = s.charCodeAt(cut - 1);
      if (c >= 0xd800 && c <= 0xdbff) cut--;
      more += new TextEncoder().encode(s.slice(cut)).length;
      s = s.slice(0, cut);
    }
    this.put(`"${s.replace(this.o.ascii ? UNSAFE_OR_NON_ASCII : UNSAFE, (ch) => SHORT[ch] ?? `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`)}"`);
    if (more > 0) this.put(` /+${more} bytes/`);
  }

  /** An array, or a map (`map`), of `n` elements or pairs, or indefinite (-1). */
  private container(map: boolean, n: number, depth: number): void {
    const [open, close] = map ? ['{', '}'] : ['[', ']'];
    if (n === 0) return this.put(`${open}${close}`);
    if (depth >= this.o.maxDepth) throw new Cut(`/...deeper than ${this.o.maxDepth} levels/`);
    this.put(n < 0 ? `${open}_ ` : open);
    let i = 0;
    let skipped = 0;
    for (; n < 0 ? !this.atBreak() : i < n; i++) {
      const shown = i < this.o.maxItems;
      if (shown && i > 0) this.put(', ');
      if (!shown) {
        this.quiet++;
        skipped++;
      }
      try {
        this.item(depth + 1);
        if (map) {
          if (n < 0 && this.data[this.pos] === 0xff) fail('a break where a map value was owed');
          this.put(': ');
          this.item(depth + 1);
        }
      } finally {
        if (!shown) this.quiet--;
      }
    }
    if (skipped > 0) this.put(`, /+${skipped} ${map ? 'pairs' : 'items'}/`);
    this.put(close);
  }
}
