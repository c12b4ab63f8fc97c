/**
 * Differential test against an independent CBOR implementation: Python's
 * cbor2 (test/peers/cbor2_diff.py). Every input ipcbor accepts (encodings
 * of generated values, and mutations of them that still decode) must decode
 * in cbor2 to the same value; and cbor2's own encoding of each value must
 * decode in ipcbor to that value again. Values are compared in a normal form
 * both sides compute (see the script).
 *
 * Needs /usr/bin/python3 (or python3) with cbor2 (Debian: python3-cbor2);
 * skipped without it, except where IPCBOR_REQUIRE_PYTHON=1 (as in .ci/run)
 * makes that a failure.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { cbor } from '../../src/core/codec/cbor.js';
import { toHex } from '../fixtures/golden.js';
import { mutate, mutationsArb, valueArb } from './codec-arbitraries.js';
import { python, skipWithoutPython } from '../python.js';

const script = fileURLToPath(new URL('../../../test/peers/cbor2_diff.py', import.meta.url));

const skip = skipWithoutPython;

type Norm = null | boolean | { num: string } | { str: string } | { bytes: string } | { map: [Norm, Norm][] } | { other: string } | Norm[];

const bits = new DataView(new ArrayBuffer(8));

/** ipcbor's decoded value in the script's normal form. */
function norm(v: unknown): Norm {
  if (v === null || typeof v === 'boolean') return v;
  if (typeof v === 'bigint') return { num: v.toString() };
  if (typeof v === 'number') {
    if (Number.isNaN(v)) return { num: 'NaN' };
    if (v === Infinity || v === -Infinity) return { num: v > 0 ? 'Infinity' : '-Infinity' };
    if (Object.is(v, -0)) return { num: '-0' };
    if (Number.isInteger(v)) return { num: BigInt(v).toString() };
    bits.setFloat64(0, v);
    return { num: `f:${bits.getBigUint64(0).toString(16).padStart(16, '0')}` };
  }
  if (typeof v === 'string') return { str: v };
  if (v instanceof Uint8Array) return { bytes: toHex(v) };
  if (Array.isArray(v)) return v.map(norm);
  if (typeof v === 'object') return { map: Object.entries(v).map(([k, x]): [Norm, Norm] => [{ str: k }, norm(x)]) };
  return { other: String(v) };
}

/**
 * Map entries sorted by key: a JS object lists integer-like keys first
 * whatever the order on the wire, and cbor2's canonical encoding sorts keys.
 */
function sorted(n: Norm): Norm {
  if (Array.isArray(n)) return n.map(sorted);
  if (n !== null && typeof n === 'object' && 'map' in n) {
    const key = (e: [Norm, Norm]) => JSON.stringify(e[0]);
    return { map: n.map.map(([k, x]): [Norm, Norm] => [sorted(k), sorted(x)]).sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0)) };
  }
  return n;
}

type Answer = { ok: true; value: Norm; reencoded: string } | { ok: false; error: string };

function runPeer(inputs: Uint8Array[]): Answer[] {
  assert.ok(python, 'python3 with cbor2 is required here (IPCBOR_REQUIRE_PYTHON=1) but was not found');
  const dir = mkdtempSync(join(tmpdir(), 'ipcbor-cbor2-'));
  try {
    const file = join(dir, 'inputs.hex');
    writeFileSync(file, inputs.map(toHex).join('\n') + '\n');
    const r = spawnSync(python, [script, file], { encoding: 'utf8', timeout: 60_000, maxBuffer: 256 * 1024 * 1024 });
    assert.equal(r.status, 0, `cbor2_diff.py failed: ${r.stderr || r.error}`);
    const answers = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Answer);
    assert.equal(answers.length, inputs.length, 'one answer per input');
    return answers;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** What ipcbor accepts of `bytes`, as its normal form, or undefined. */
function ours(bytes: Uint8Array): Norm | undefined {
  try {
    return norm(cbor.decode(bytes));
  } catch {
    return undefined;
  }
}

describe('codec: differential against Python cbor2', { skip }, () => {
  it('agrees with cbor2 both ways on generated values and mutated encodings', () => {
    const seed = Number(process.env.IPCBOR_CODEC_SEED ?? 8949);
    const encoded = fc.sample(valueArb, { numRuns: 3000, seed }).flatMap((v) => {
      try {
        return [cbor.encode(v)];
      } catch {
        return []; // only values with a CBOR form (a Map with a duplicate-after-UTF-8 key, say, has none)
      }
    });
    const mutated = fc
      .sample(fc.tuple(fc.nat(encoded.length - 1), mutationsArb), { numRuns: 6000, seed: seed + 1 })
      .map(([i, m]) => mutate(encoded[i]!, m))
      .filter((b) => ours(b) !== undefined);
    const inputs = [...encoded, ...mutated].filter((b) => ours(b) !== undefined);
    assert.ok(inputs.length > 3000, `only ${inputs.length} inputs`);

    const answers = runPeer(inputs);
    const reencoded: Uint8Array[] = [];
    for (const [i, bytes] of inputs.entries()) {
      const answer = answers[i]!;
      assert.ok(answer.ok, `${toHex(bytes)}: ipcbor accepts it, cbor2 refuses it (${answer.ok ? '' : answer.error})`);
      assert.deepStrictEqual(sorted(answer.value), sorted(ours(bytes)!), `${toHex(bytes)}: cbor2 reads another value`);
      const theirs = Uint8Array.from(Buffer.from(answer.reencoded, 'hex'));
      const back = ours(theirs);
      assert.ok(back !== undefined, `${answer.reencoded} (cbor2's encoding of ${toHex(bytes)}): ipcbor refuses it`);
      assert.deepStrictEqual(sorted(back), sorted(answer.value), `${answer.reencoded}: ipcbor reads cbor2's encoding as another value`);
      reencoded.push(theirs);
    }
    // cbor2's encodings are canonical, ours are in insertion order: some must differ for the second direction to mean something.
    assert.ok(reencoded.some((b, i) => toHex(b) !== toHex(inputs[i]!)));
  });
});
