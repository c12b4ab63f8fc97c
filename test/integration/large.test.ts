/** Large messages: a 64 MiB byte string through echo, both framings, copied once on each side. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cbor, connect, serve } from '../../src/index.js';
import { tempSocket } from '../helpers.js';

const MiB = 1024 * 1024;

describe('large messages', () => {
  it('echoes a 64 MiB byte string with the limit raised, intact, over both framings', async () => {
    const limits = { maxFrameBytes: 80 * MiB, maxConnectionBytes: 160 * MiB, maxServerBytes: 320 * MiB };
    await using server = await serve({ echo: (p: { data: Uint8Array }) => ({ n: p.data.length, data: p.data }) }, `unix:${tempSocket()}`, limits);
    const data = new Uint8Array(64 * MiB);
    for (let i = 0; i < data.length; i += 4096) data[i] = (i >>> 12) & 255;
    for (const protocol of ['extended', 'base'] as const) {
      await using client = await connect(server.addresses[0]!, { protocol, maxFrameBytes: 80 * MiB });
      const got = await client.call<{ n: number; data: Uint8Array }>('echo', { data });
      assert.equal(got.n, data.length);
      assert.equal(got.data.length, data.length);
      for (let i = 0; i < data.length; i += 4096) assert.equal(got.data[i], data[i], `byte ${i}`);
    }
  });

  it('the codec hands a large byte string of an owned input back as a view, a small one as a copy', () => {
    const big = cbor.encode({ data: new Uint8Array(256 * 1024).fill(7) });
    const owned = new Uint8Array(big); // a buffer of its own
    const shared = cbor.decodeOwned!(owned) as { data: Uint8Array };
    assert.equal(shared.data.buffer, owned.buffer, 'a view: not copied again');
    const copied = cbor.decode(owned) as { data: Uint8Array };
    assert.notEqual(copied.data.buffer, owned.buffer, 'decode() always copies');
    const small = new Uint8Array(cbor.encode({ a: new Uint8Array(100), pad: 'x'.repeat(70_000) }));
    assert.notEqual((cbor.decodeOwned!(small) as { a: Uint8Array }).a.buffer, small.buffer, 'a small byte string never pins a large input');
  });
});
