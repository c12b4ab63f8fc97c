/**
 * The CBOR profile of ipcbor (docs/CODEC.md), implemented here with no
 * dependency: encode.ts writes, decode.ts reads.
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
 * no indefinite lengths, no `undefined`, no simple values but false, true and
 * null, text-keyed maps only (they become plain objects, where a `__proto__`
 * key is an own property as with JSON.parse and never touches the
 * prototype), duplicate keys refused, invalid UTF-8 refused, nesting and the
 * number of items capped, and the item must fill the input exactly. Integers
 * within ±2^53 are numbers; beyond, up to 64 bits, bigints (the bignum tags
 * are refused).
 */
import { DEFAULT_MAX_DEPTH, DEFAULT_MAX_ITEMS } from '../constants.js';
import { IpcborError } from '../errors.js';
import { decodeStrict, lastItemCount, lastObjectCount, type DecodeLimits } from './decode.js';
import { encodeTransient, encodeValue } from './encode.js';

export { DEFAULT_MAX_ITEMS };

/**
 * A CBOR encoder and decoder: {@link cbor}, one made by {@link createCodec},
 * or your own, given as the `codec` option of a server (`ServerCoreOptions`).
 */
export interface Codec {
  /**
   * The CBOR encoding of `value`, in ipcbor's interop-safe profile.
   * @throws {@link IpcborError} `IPCBOR_ERR_ENCODE` for a value with no portable form (a Date, a Set, a cycle, ...).
   */
  encode(value: unknown): Uint8Array;
  /**
   * The one CBOR item that fills `bytes`.
   * @throws {@link IpcborError} `IPCBOR_ERR_DECODE` for anything the strict decoder refuses.
   */
  decode(bytes: Uint8Array): unknown;
  /**
   * Data items in the value most recently decoded successfully: every array
   * element, every map key and value, and the top item (containers count
   * themselves too). A cheap measure of the decoded value's size.
   */
  readonly lastItems?: number;
  /** Byte strings, arrays and maps among them (each an object of its own). */
  readonly lastObjects?: number;
  /**
   * Decode an input whose whole buffer belongs to the caller from now on
   * (a frame the framing copied together): large byte strings in it may be
   * views into it rather than copies. Optional; `decode` is the fallback.
   */
  decodeOwned?(bytes: Uint8Array): unknown;
}

/** The limits of a codec made by {@link createCodec}. */
export interface CodecOptions {
  /** Deepest nesting of arrays and maps accepted when decoding. Default {@link DEFAULT_MAX_DEPTH} (64). */
  maxDepth?: number;
  /** Most data items one decode accepts. Default {@link DEFAULT_MAX_ITEMS} (1,000,000). */
  maxItems?: number;
}

/** A codec made by createCodec: `lastItems` is always there. */
export type StrictCodec = Codec & { readonly lastItems: number; readonly lastObjects: number };

/**
 * A codec of ipcbor's CBOR profile (docs/CODEC.md) with limits of your own.
 * Encoding is interop-safe (definite lengths, shortest forms, no tags) and
 * refuses values with no portable form with `IPCBOR_ERR_ENCODE`; decoding
 * treats every byte as hostile (no tags, no indefinite lengths, text keys
 * only, no duplicate keys, capped depth and item count) and refuses with
 * `IPCBOR_ERR_DECODE`. Integers beyond ±2^53 decode as bigints.
 *
 * @param options - `maxDepth` and `maxItems`
 * @example
 * ```ts
 * const codec = createCodec({ maxDepth: 16 });
 * const bytes = codec.encode({ id: 1, blob: new Uint8Array([1, 2]) });
 * codec.decode(bytes); // { id: 1, blob: Uint8Array [1, 2] }
 * ```
 */
export function createCodec(options: CodecOptions = {}): StrictCodec {
  return makeCodec(options, encodeValue);
}

function makeCodec(options: CodecOptions, encode: (value: unknown) => Uint8Array): StrictCodec {
  const limits: DecodeLimits = { maxDepth: options.maxDepth ?? DEFAULT_MAX_DEPTH, maxItems: options.maxItems ?? DEFAULT_MAX_ITEMS };
  // Closures, not methods: `const { decode } = codec` works too.
  const codec = {
    lastItems: 0,
    lastObjects: 0,
    encode,
    decode(input: Uint8Array): unknown {
      return decodeWith(input, false);
    },
    decodeOwned(input: Uint8Array): unknown {
      return decodeWith(input, true);
    },
  };
  function decodeWith(input: Uint8Array, owned: boolean): unknown {
    if (!(input instanceof Uint8Array)) throw new IpcborError('IPCBOR_ERR_DECODE', 'expected a Uint8Array to decode');
    if (input.length === 0) throw new IpcborError('IPCBOR_ERR_DECODE', 'empty payload: expected one CBOR item');
    // A plain view: byte strings are sliced out of it, and a subclass's
    // slice (Node's Buffer) would be a view into the socket's chunk
    // instead of a copy of its own.
    const bytes = Object.getPrototypeOf(input) === Uint8Array.prototype ? input : new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
    let value: unknown;
    try {
      value = decodeStrict(bytes, limits, owned);
    } catch (err) {
      if (err instanceof IpcborError) throw err;
      // Only a maxDepth set so high that the stack runs out gets here.
      throw new IpcborError('IPCBOR_ERR_DECODE', err instanceof Error ? err.message : String(err), { cause: err });
    }
    codec.lastItems = lastItemCount;
    codec.lastObjects = lastObjectCount;
    return value;
  }
  return codec;
}

/**
 * The codec with the default limits ({@link DEFAULT_MAX_DEPTH},
 * {@link DEFAULT_MAX_ITEMS}): the one servers and clients use unless told
 * otherwise.
 *
 * @example
 * ```ts
 * const bytes = cbor.encode({ hello: 'world' });
 * const value = cbor.decode(bytes) as { hello: string };
 * ```
 */
export const cbor: Codec = createCodec();

/**
 * @internal The default codec of servers, clients and relays: `cbor`'s
 * limits, and small encodings as views of a shared slab (encodeTransient),
 * written at once and never handed to the application.
 */
export const wireCodec: Codec = makeCodec({}, encodeTransient);
