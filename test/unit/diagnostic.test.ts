/** The CBOR diagnostic-notation printer (src/core/codec/diagnostic.ts): RFC 8949's examples, and its bounds. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cbor } from '../../src/core/codec/cbor.js';
import { diagnose, diagnosticFloat } from '../../src/core/codec/diagnostic.js';
import { IpcborError } from '../../src/core/errors.js';
import { hex } from '../fixtures/golden.js';
import { OUT, appendixA, appendixF } from '../fixtures/rfc8949.js';

/** The RFC abbreviates two of its examples; the whole text is what a printer writes. */
const written = (diagnostic: string) => diagnostic.replace('2, ..., 25', Array.from({ length: 24 }, (_, i) => i + 2).join(', '));

function refusal(bytes: Uint8Array): unknown {
  try {
    return diagnose(bytes);
  } catch (err) {
    return err;
  }
}

describe('diagnostic notation: RFC 8949 Appendix A', () => {
  for (const [diagnostic, h, expected] of appendixA) {
    it(`${h} is ${diagnostic}${expected === OUT ? ' (outside the strict profile, shown all the same)' : ''}`, () => {
      assert.equal(diagnose(hex(h), { ascii: true }), written(diagnostic));
    });
  }

  it('keeps non-ASCII text as it is unless asked to escape it', () => {
    assert.equal(diagnose(hex('62c3bc')), '"\u00fc"');
    assert.equal(diagnose(hex('64f0908591')), '"\ud800\udd51"');
  });
});

describe('diagnostic notation: RFC 8949 Appendix F (not well-formed)', () => {
  for (const [kind, hexes] of appendixF) {
    it(`refuses ${kind} with IPCBOR_ERR_DECODE`, () => {
      for (const h of hexes) {
        const err = refusal(hex(h));
        assert.ok(err instanceof IpcborError, `${h} printed as ${String(err)}`);
        assert.equal(err.code, 'IPCBOR_ERR_DECODE', h);
      }
    });
  }

  it('refuses bytes after the item, and text that is not UTF-8', () => {
    assert.ok(refusal(hex('0000')) instanceof IpcborError);
    assert.ok(refusal(hex('62c328')) instanceof IpcborError);
  });
});

describe('diagnostic notation: what ipcbor sends', () => {
  it('prints encoded values', () => {
    const value = { method: 'echo', n: -3, big: 2n ** 64n - 1n, ok: true, none: null, bytes: new Uint8Array([0, 1, 0xfe]), list: [1.5, 'two', []], nested: { '': {} } };
    assert.equal(diagnose(cbor.encode(value)), `{"method": "echo", "n": -3, "big": 18446744073709551615, "ok": true, "none": null, "bytes": h'0001fe', "list": [1.5, "two", []], "nested": {"": {}}}`);
  });

  it('escapes quotes, backslashes and every control, bidi and separator character in text', () => {
    assert.equal(diagnose(cbor.encode('a"b\\c\nd\te\x1b[2J\u009b\u202e\u2028')), '"a\\"b\\\\c\\nd\\te\\u001b[2J\\u009b\\u202e\\u2028"');
  });

  it('writes floats as floats', () => {
    assert.deepEqual([1, -0, 1e300, 5.960464477539063e-8, 0.5, -4].map(diagnosticFloat), ['1.0', '-0.0', '1.0e+300', '5.960464477539063e-8', '0.5', '-4.0']);
  });
});

describe('diagnostic notation: bounds', () => {
  it('cuts a long byte string and says how many bytes were left out', () => {
    const bytes = new Uint8Array(1000).fill(0xab);
    assert.equal(diagnose(cbor.encode(bytes), { maxBytes: 4 }), "h'abababab' /+996 bytes/");
    assert.equal(diagnose(cbor.encode(bytes.subarray(0, 4)), { maxBytes: 4 }), "h'abababab'");
  });

  it('cuts a long text at a whole character and counts the bytes left out', () => {
    assert.equal(diagnose(cbor.encode('abcdef'), { maxText: 3 }), '"abc" /+3 bytes/');
    // U+1F600 is two UTF-16 units and four UTF-8 bytes: it is kept whole or left out whole.
    assert.equal(diagnose(cbor.encode('a\u{1f600}b'), { maxText: 2 }), '"a" /+5 bytes/');
    assert.equal(diagnose(cbor.encode('\u00fc'.repeat(100)), { maxText: 10 }), `"${'\u00fc'.repeat(10)}" /+180 bytes/`);
  });

  it('shows the first items of an array or map, and goes on after it', () => {
    const value = { list: Array.from({ length: 100 }, (_, i) => i), map: Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`k${i}`, [i]])), after: 'shown' };
    assert.equal(diagnose(cbor.encode(value), { maxItems: 3 }), '{"list": [0, 1, 2, /+97 items/], "map": {"k0": [0], "k1": [1], "k2": [2], /+7 pairs/}, "after": "shown"}');
  });

  it('stops at maxOutput characters', () => {
    const out = diagnose(cbor.encode(Array.from({ length: 1000 }, () => 'x'.repeat(50))), { maxOutput: 100 });
    assert.equal(out.length, 100 + '/...cut/'.length);
    assert.ok(out.startsWith(`["${'x'.repeat(50)}", "xxx`));
    assert.ok(out.endsWith('/...cut/'));
  });

  it('prints a 16 MiB payload in a few kilobytes', () => {
    const big = cbor.encode({ data: new Uint8Array(16 * 1024 * 1024), items: Array.from({ length: 100_000 }, (_, i) => i) });
    const out = diagnose(big);
    assert.ok(out.length <= 4096, `${out.length} characters`);
    assert.match(out, /^\{"data": h'0{128}' \/\+16777152 bytes\/, "items": \[0, 1, 2, .*, 63, \/\+99936 items\/\]\}$/);
  });

  it('follows nesting only so deep, without running out of stack', () => {
    const deep = new Uint8Array(1_000_000).fill(0x81);
    deep[deep.length - 1] = 0;
    const out = diagnose(deep, { maxDepth: 5 });
    assert.equal(out, '[[[[[/...deeper than 5 levels/');
    assert.equal(diagnose(deep), `${'['.repeat(32)}/...deeper than 32 levels/`);
  });
});
