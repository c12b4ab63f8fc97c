/**
 * The codec ipcbor had before its own: cborg with the options and the
 * strict tokenizer below, kept unchanged as the oracle the differential tests
 * compare the new codec (src/core/codec/cbor.ts) against. Test-only: cborg is
 * a dev dependency.
 *
 * Encoding is interop-safe: definite lengths, shortest integers, shortest
 * lossless floats, no tags, object keys in insertion order, Uint8Array as a
 * byte string, `undefined` properties omitted (and a bare `undefined` sent as
 * null). Values with no portable form (Date, Set, RegExp, typed arrays other
 * than Uint8Array, functions, symbols, cycles) are refused with
 * IPCBOR_ERR_ENCODE rather than sent in a form a peer may misread.
 *
 * Decoding treats every byte as hostile: no tags at all (nothing can
 * construct an object from a tag, so bignums, dates and sets are refused),
 * no indefinite lengths, no `undefined`, text-keyed maps only (they become
 * plain objects, where a `__proto__` key is an own property as with
 * JSON.parse and never touches the prototype), duplicate keys refused,
 * invalid UTF-8 refused, nesting capped, and the item must fill the input
 * exactly. Integers beyond 2^53 come back as bigint (at most 64 bits: the
 * bignum tags are refused).
 */
import { Token, Tokenizer, Type, decode as cborgDecode, encode as cborgEncode } from 'cborg';
import type { DecodeOptions, EncodeOptions } from 'cborg';
import { DEFAULT_MAX_DEPTH } from '../../src/core/constants.js';
import { IpcborError } from '../../src/core/errors.js';
import type { Codec, CodecOptions } from '../../src/core/codec/cbor.js';

const refuse = (what: string) => (): never => {
  throw new IpcborError('IPCBOR_ERR_ENCODE', `${what} has no interop-safe CBOR form; convert it first`);
};

const NULL_TOKENS = [new Token(Type.null, null)];

const encodeOptions: EncodeOptions = {
  // cborg sorts map keys by default; peers that read fields in declaration
  // order (the reference peers) need insertion order.
  mapSorter: undefined,
  ignoreUndefinedProperties: true,
  typeEncoders: {
    undefined: () => NULL_TOKENS,
    Date: refuse('a Date'),
    Int8Array: refuse('an Int8Array'),
    Uint8ClampedArray: refuse('a Uint8ClampedArray'),
    Int16Array: refuse('an Int16Array'),
    Uint16Array: refuse('a Uint16Array'),
    Int32Array: refuse('an Int32Array'),
    Uint32Array: refuse('a Uint32Array'),
    Float32Array: refuse('a Float32Array'),
    Float64Array: refuse('a Float64Array'),
    BigInt64Array: refuse('a BigInt64Array'),
    BigUint64Array: refuse('a BigUint64Array'),
    DataView: refuse('a DataView'),
    ArrayBuffer: refuse('an ArrayBuffer (wrap it in a Uint8Array)'),
    // A Map is a CBOR map: fine with text keys, refused with any other key
    // (peers, and ipcbor's own decoder, accept text keys only).
    Map: (map: Map<unknown, unknown>) => {
      for (const key of map.keys()) {
        if (typeof key !== 'string') throw new IpcborError('IPCBOR_ERR_ENCODE', `a Map key of type ${typeof key} has no interop-safe CBOR form; use text keys`);
      }
      return null;
    },
  },
};

const utf8Fatal = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Bytes of the head of a CBOR item whose first byte is `b` (for strings). */
function headLength(b: number): number {
  const minor = b & 31;
  return minor < 24 ? 1 : minor === 24 ? 2 : minor === 25 ? 3 : minor === 26 ? 5 : 9;
}

/**
 * cborg's tokenizer, plus what cborg has no option for: a depth limit
 * (checked per token, so 100,000 nested arrays fail fast instead of
 * exhausting the stack) and strict UTF-8. A subclass rather than a wrapper:
 * one call per token, as fast as cborg's own.
 */
class StrictTokenizer extends Tokenizer {
  private readonly bytes: Uint8Array;
  private readonly maxDepth: number;
  /** Items still to come in each open container (maps count keys and values). */
  private readonly remaining: number[] = [];

  constructor(data: Uint8Array, options: DecodeOptions, maxDepth: number) {
    super(data, options);
    this.bytes = data;
    this.maxDepth = maxDepth;
  }

  override next(): Token {
    const start = this.pos();
    const token = super.next();
    const r = this.remaining;
    if (r.length > 0) r[r.length - 1]!--;
    const type = token.type;
    if (type === Type.string) {
      if ((token.value as string).includes('\uFFFD')) {
        try {
          utf8Fatal.decode(this.bytes.subarray(start + headLength(this.bytes[start]!), this.pos()));
        } catch {
          throw new IpcborError('IPCBOR_ERR_DECODE', 'text string is not valid UTF-8');
        }
      }
    } else if ((type === Type.array || type === Type.map) && (token.value as number) > 0) {
      if (r.length >= this.maxDepth) throw new IpcborError('IPCBOR_ERR_DECODE', `nesting deeper than ${this.maxDepth} levels`);
      r.push(type === Type.map ? (token.value as number) * 2 : (token.value as number));
      return token;
    }
    while (r.length > 0 && r[r.length - 1] === 0) r.pop();
    return token;
  }
}

export function createReferenceCodec(options: CodecOptions = {}): Codec {
  const maxDepth = options.maxDepth ?? DEFAULT_MAX_DEPTH;
  // One options object, reused: decoding is synchronous, so setting its
  // tokenizer per call cannot race.
  const decodeOptions: DecodeOptions = {
    allowIndefinite: false,
    allowUndefined: false,
    allowBigInt: true,
    useMaps: false,
    rejectDuplicateMapKeys: true,
    tags: [],
    tokenizer: undefined,
  };
  return {
    encode(value: unknown): Uint8Array {
      try {
        return cborgEncode(value, encodeOptions);
      } catch (err) {
        if (err instanceof IpcborError) throw err;
        throw new IpcborError('IPCBOR_ERR_ENCODE', (err as Error).message.replace(/^CBOR encode error: /, ''), { cause: err });
      }
    },
    decode(input: Uint8Array): unknown {
      if (input.length === 0) throw new IpcborError('IPCBOR_ERR_DECODE', 'empty payload: expected one CBOR item');
      // A plain view: cborg slices byte strings out of its input, and a
      // subclass's slice (Node's Buffer) would be a view into the socket's
      // chunk instead of a copy of its own.
      const bytes = Object.getPrototypeOf(input) === Uint8Array.prototype ? input : new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
      try {
        decodeOptions.tokenizer = new StrictTokenizer(bytes, decodeOptions, maxDepth);
        return cborgDecode(bytes, decodeOptions);
      } catch (err) {
        if (err instanceof IpcborError) throw err;
        throw new IpcborError('IPCBOR_ERR_DECODE', (err as Error).message.replace(/^CBOR decode error: /, ''), { cause: err });
      } finally {
        decodeOptions.tokenizer = undefined;
      }
    },
  };
}

/** The old codec with default limits. */
export const referenceCbor: Codec = createReferenceCodec();
