/**
 * JSON on the command line, CBOR on the wire. Byte strings, which JSON
 * lacks, are written `{"$bytes": "<hex>"}` both ways; integers beyond 2^53
 * print as exact JSON numbers.
 */
import { escapeControls } from './escape.js';

/** Parse command-line JSON, turning `{"$bytes": "hex"}` into a Uint8Array. */
export function fromJson(text: string): unknown {
  return JSON.parse(text, (_key, value: unknown) => {
    if (value && typeof value === 'object' && !Array.isArray(value)) {
      const keys = Object.keys(value);
      const hexText = (value as { $bytes?: unknown }).$bytes;
      if (keys.length === 1 && typeof hexText === 'string') {
        if (!/^([0-9a-fA-F]{2})*$/.test(hexText)) throw new Error(`$bytes must be hex: ${hexText}`);
        return Uint8Array.from(Buffer.from(hexText, 'hex'));
      }
    }
    return value;
  });
}

/** Print a decoded CBOR value as JSON (indented when `pretty`). */
export function toJson(value: unknown, pretty = true): string {
  const big: string[] = [];
  const text = JSON.stringify(
    value,
    function (this: Record<string, unknown>, key, v: unknown) {
      // `this[key]` is the value before any toJSON (Buffer has one).
      const raw = this[key];
      if (raw instanceof Uint8Array) v = raw;
      if (v instanceof Uint8Array) return { $bytes: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex') };
      if (typeof v === 'bigint') {
        big.push(v.toString());
        return `\u0000big${big.length - 1}\u0000`;
      }
      if (typeof v === 'number' && !Number.isFinite(v)) return String(v);
      return v;
    },
    pretty ? 2 : undefined,
  );
  if (text === undefined) return 'null';
  return escapeControls(big.length === 0 ? text : text.replace(/"\\u0000big(\d+)\\u0000"/g, (_m, i: string) => big[Number(i)]!), 'json');
}
