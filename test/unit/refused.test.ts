/**
 * Connections the server refuses (over maxConnections, or while closing)
 * are still read until their first frame has arrived: what they hold must
 * count against the server's budget like any other connection's, or 64 of
 * them at a time could each make the server buffer a whole frame.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ServerCore } from '../../src/core/server/server.js';
import { MemoryTransport } from '../memory-transport.js';
import { waitFor } from '../extended-helpers.js';

describe('refused connections', () => {
  it('a refused connection sending a large frame is held to the server budget', async () => {
    const core = new ServerCore({ ping: () => 'pong' }, { maxConnections: 1, maxServerBytes: 256 * 1024, maxFrameBytes: 16 << 20 });
    const [, s0] = MemoryTransport.pair();
    s0.attach(core.accept(s0, { transport: 'memory' })!);
    const refused: MemoryTransport[] = [];
    const header = Uint8Array.of(0, 0, 0, 4, 0x65, 0x63, 0x68, 0x6f, 0x00, 0x80, 0x00, 0x00); // "echo", 8 MiB of payload announced
    const chunk = new Uint8Array(64 * 1024);
    for (let i = 0; i < 8; i++) {
      const [c, s] = MemoryTransport.pair();
      s.attach(core.accept(s, { transport: 'memory' })!);
      c.writeRaw(header);
      for (let k = 0; k < 32; k++) c.writeRaw(chunk); // 2 MiB of it
      refused.push(s);
    }
    await waitFor(() => refused.every((s) => s.paused || s.inboxBytes === 0), 'the refused connections to be read or paused');
    await new Promise((r) => setTimeout(r, 20));
    const unread = refused.reduce((n, s) => n + s.inboxBytes, 0);
    const taken = 8 * (12 + 32 * chunk.length) - unread;
    // Each connection may always hold its minimum share (64 KiB), plus the chunk that crossed it.
    assert.ok(taken <= 8 * 2 * 64 * 1024 + 256 * 1024, `the server took in ${taken} bytes of refused connections' frames (its budget is 256 KiB)`);
    core.destroy();
    for (const s of refused) s.destroy();
  });
});
