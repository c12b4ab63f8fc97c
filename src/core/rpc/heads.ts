/**
 * Fast encoders for the two-element heads `[kind, id]` sent with every
 * result and stream item; other heads go through the codec.
 */
export function encodeKindId(kind: number, id: number): Uint8Array {
  if (id < 24) return Uint8Array.of(0x82, kind, id);
  if (id < 0x100) return Uint8Array.of(0x82, kind, 0x18, id);
  if (id < 0x10000) return Uint8Array.of(0x82, kind, 0x19, id >>> 8, id & 0xff);
  return Uint8Array.of(0x82, kind, 0x1a, id >>> 24, (id >>> 16) & 0xff, (id >>> 8) & 0xff, id & 0xff);
}
