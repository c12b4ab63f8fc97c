/**
 * The CBOR codecs the raw loop can run with (bench/raw-server.ts on the
 * server, systems.ts on the client), and that bench:codec compares: one
 * table, so the raw loop is one piece of code whatever the codec.
 *
 * - codec: ipcbor's own (src/core/codec/cbor.ts).
 * - cborg: plain cborg (a dev dependency), keys in insertion order as ipcbor sends them.
 * - cborx: cbor-x in pure JS, from bench/peers (see loadCborX).
 */
import { decode as cborgDecode, encode as cborgEncode } from 'cborg';
import { readFileSync } from 'node:fs';
import { cbor } from '../src/index.js';
import { peerRequire, peerVersion } from './peers/load.js';

export interface BenchCodec {
  encode(value: unknown): Uint8Array;
  decode(bytes: Uint8Array): unknown;
  /** Where `decode` returns byte strings as views into its input: a decode that copies them (cbor-x's copyBuffers). */
  decodeCopying?(bytes: Uint8Array): unknown;
}

export type CodecId = 'codec' | 'cborg' | 'cborx';

// The same key order ipcbor sends (cborg sorts keys by default).
const INSERTION_ORDER = { mapSorter: undefined };

/** cborg's installed version (the library's dev dependency; its exports do not include package.json, so it is read by path). */
export const CBORG_VERSION = (JSON.parse(readFileSync(new URL('../../node_modules/cborg/package.json', import.meta.url), 'utf8')) as { version: string }).version;

interface CborX {
  Encoder: new (options: object) => { encode(value: unknown): Uint8Array };
  Decoder: new (options: object) => { decode(bytes: Uint8Array): unknown };
  isNativeAccelerationEnabled: boolean;
}

export const CBORX_PACKAGE = 'cbor-x';
/** The options cbor-x is measured with, as the row's note states them. */
export const CBORX_OPTIONS = 'its default encoder and decoder (useRecords: false, so plain CBOR maps) but tagUint8Array: false (bytes as a plain byte string, as ipcbor sends them)';

let cborx: BenchCodec | undefined;

/**
 * cbor-x in pure JS. Its optional native part (cbor-extract, a string
 * extractor for decoding) is not installed (npm run bench:peers omits
 * optional dependencies and runs no install script), and it is switched off
 * besides by the environment variable cbor-x reads when it loads, set here
 * before the first load in every process that uses it (the orchestrator,
 * the cells' clients, the raw server, bench:codec), and checked after: the
 * comparison is JS against JS.
 *
 * Its dependency tree: cbor-x 1.6.9 has no dependency but the optional
 * cbor-extract 2.2.3 (-> node-gyp-build-optional-packages 5.1.1 ->
 * detect-libc 2.1.2, and optional prebuilt @cbor-extract/cbor-extract-<os>-<cpu>
 * 2.2.3 packages). cbor-x has no install script (only `prepare`, which npm
 * does not run for a registry package); cbor-extract's install script
 * (node-gyp-build-optional-packages) never runs: it is not installed, and
 * --ignore-scripts besides.
 */
export function loadCborX(): BenchCodec {
  if (cborx) return cborx;
  process.env.CBOR_NATIVE_ACCELERATION_DISABLED = 'true';
  const x = peerRequire<CborX>(CBORX_PACKAGE);
  if (x.isNativeAccelerationEnabled) throw new Error('cbor-x loaded its native acceleration although CBOR_NATIVE_ACCELERATION_DISABLED=true');
  const encoder = new x.Encoder({ useRecords: false, tagUint8Array: false });
  const decoder = new x.Decoder({ useRecords: false, mapsAsObjects: true });
  // The same decoder copying byte strings out, as ipcbor's decode() does (its default returns views into the input).
  const copying = new x.Decoder({ useRecords: false, mapsAsObjects: true, copyBuffers: true });
  cborx = { encode: (v) => encoder.encode(v), decode: (b) => decoder.decode(b), decodeCopying: (b) => copying.decode(b) };
  return cborx;
}

/** cbor-x's installed version, or undefined when bench/peers is not installed. */
export const cborxVersion = (): string | undefined => peerVersion(CBORX_PACKAGE);

export const CODECS: Record<CodecId, () => BenchCodec> = {
  codec: () => cbor,
  cborg: () => ({ encode: (v) => cborgEncode(v, INSERTION_ORDER), decode: (b) => cborgDecode(b) }),
  cborx: loadCborX,
};
