/**
 * The examples of RFC 8949 against ipcbor's profile: Appendix A (every
 * encoded data item the RFC lists) and Appendix F (its not-well-formed
 * examples; test/fixtures/rfc8949.ts).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cbor } from '../../src/core/codec/cbor.js';
import { IpcborError } from '../../src/core/errors.js';
import { hex, toHex } from '../fixtures/golden.js';
import { IN_PROFILE, OUT, appendixA, appendixF } from '../fixtures/rfc8949.js';

function decodeError(bytes: Uint8Array): unknown {
  try {
    cbor.decode(bytes);
  } catch (err) {
    return err;
  }
  return undefined;
}

describe('codec: RFC 8949 Appendix A examples', () => {
  for (const [diagnostic, h, expected] of appendixA) {
    if (expected === OUT) {
      it(`${diagnostic} (${h}) is refused: outside the profile`, () => {
        const err = decodeError(hex(h));
        assert.ok(err instanceof IpcborError, `decoded ${h}`);
        assert.equal(err.code, 'IPCBOR_ERR_DECODE');
      });
      continue;
    }
    it(`${diagnostic} (${h}) ${IN_PROFILE}${expected.preferred ? ' and encodes back to the same bytes' : ''}`, () => {
      assert.deepStrictEqual(cbor.decode(hex(h)), expected.value);
      if (expected.preferred) assert.equal(toHex(cbor.encode(expected.value)), h);
      else {
        // Numbers all: by value (-0 is sent as the integer 0, as the old encoder did).
        const x = expected.value as number;
        const back = cbor.decode(cbor.encode(x)) as number;
        assert.ok(back === x || (Number.isNaN(x) && Number.isNaN(back)), `${x} came back as ${back}`);
      }
    });
  }

  it('integral floats are sent as the integers they equal (a JS number has no float/int distinction)', () => {
    assert.equal(toHex(cbor.encode(1.0)), '01');
    assert.equal(toHex(cbor.encode(-0.0)), '00');
    assert.equal(toHex(cbor.encode(65504.0)), '19ffe0');
    assert.equal(toHex(cbor.encode(100000.0)), '1a000186a0');
    assert.equal(toHex(cbor.encode(-4.0)), '23');
  });
});

describe('codec: RFC 8949 Appendix F not-well-formed examples', () => {
  for (const [kind, hexes] of appendixF) {
    it(`refuses ${kind} with IPCBOR_ERR_DECODE`, () => {
      for (const h of hexes) {
        const err = decodeError(hex(h));
        assert.ok(err instanceof IpcborError, `${h}: ${String(err)}`);
        assert.equal(err.code, 'IPCBOR_ERR_DECODE', h);
      }
    });
  }
});
