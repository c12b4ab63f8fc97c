import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { cbor } from '../../src/core/codec/cbor.js';
import { encodeCallHeader, encodeKindIdHeader, parseCommonHead } from '../../src/core/protocol/fast-heads.js';
import { encodeExtended } from '../../src/core/frame/encoder.js';
import { decodeHead, Kind } from '../../src/core/protocol/heads.js';
import { IpcborError } from '../../src/core/errors.js';

const id = fc.integer({ min: 1, max: 0xffffffff });

describe('frame heads', () => {
  it('hand-encoded heads are byte-identical to the codec', () => {
    fc.assert(
      fc.property(fc.constantFrom(3, 4, 6, 7), id, fc.nat({ max: 1000 }), (kind, n, len) => {
        assert.deepEqual(encodeKindIdHeader(kind, n, len), encodeExtended(cbor.encode([kind, n]), new Uint8Array(len))[0]);
      }),
    );
    fc.assert(
      fc.property(id, fc.string({ maxLength: 300 }), fc.nat({ max: 1000 }), (n, method, len) => {
        const expected = encodeExtended(cbor.encode([1, n, method]), new Uint8Array(len))[0];
        assert.deepEqual(encodeCallHeader(n, new TextEncoder().encode(method), len), expected);
      }),
    );
  });

  it('the fast parser agrees with the codec on every head it accepts', () => {
    fc.assert(
      fc.property(fc.oneof(fc.tuple(fc.constantFrom(1, 3, 4, 5, 6, 7, 8, 9), id), fc.tuple(fc.constant(1), id, fc.string()), fc.array(fc.oneof(fc.nat(), fc.string()), { maxLength: 4 })), (head) => {
        const bytes = cbor.encode(head);
        const fast = parseCommonHead(bytes);
        if (fast) {
          const viaCodec = cbor.decode(bytes) as unknown[];
          assert.equal(fast.kind, viaCodec[0]);
          assert.equal(fast.id, viaCodec[1]);
          if (fast.kind === 1) assert.equal(fast.method, viaCodec[2]);
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('leaves malformed or unusual heads to the codec, which refuses them', () => {
    for (const h of ['8205 03', '8204 00', '8204 1b0000000100000000', '830101 62c328', '8204 01 00', '820a01']) {
      const bytes = Uint8Array.from(Buffer.from(h.replace(/ /g, ''), 'hex'));
      assert.equal(parseCommonHead(bytes), undefined, h);
      assert.throws(() => decodeHead(cbor, bytes), (e: IpcborError) => e instanceof IpcborError, h);
    }
    const call = decodeHead(cbor, cbor.encode([Kind.Call, 7, 'echo', { timeout: 5 }]));
    assert.deepEqual(call, { kind: Kind.Call, id: 7, method: 'echo', opts: { timeout: 5 } });
  });
});
