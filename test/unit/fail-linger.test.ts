/**
 * A connection the server fails (a broken frame on the extended protocol)
 * sends its goodbye and ends. A peer that does not read must not keep it
 * open: once failed it no longer counts against maxConnections nor the
 * budget, so a socket held half-closed for ever is a descriptor (and its
 * unsent bytes) nobody accounts for.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cbor } from '../../src/core/codec/cbor.js';
import { encodeExtended, encodeRequest } from '../../src/core/frame/encoder.js';
import { ServerCore } from '../../src/core/server/server.js';
import { MemoryTransport } from '../memory-transport.js';
import { waitFor } from '../extended-helpers.js';

describe('a failed connection', () => {
  it('is cut even when its peer never reads what is left to send', async () => {
    const core = new ServerCore({ big: () => new Uint8Array(512 * 1024) });
    const [c, s] = MemoryTransport.pair();
    s.attach(core.accept(s, { transport: 'memory' })!);
    const got: Uint8Array[] = [];
    c.attach({ onData: (b) => got.push(b), onDrain() {}, onClose() {} });
    for (const p of encodeRequest('$ipcbor.hello', cbor.encode({ version: 1, maxFrameBytes: 1 << 24, window: 64 }))) c.writeRaw(p);
    await waitFor(() => got.length > 0, 'the hello answer');
    c.pause(); // from now on the client reads nothing
    // Half a MiB unread: under the high-water mark, so the server reads on.
    for (const p of encodeExtended(cbor.encode([1, 1, 'big']))) c.writeRaw(p);
    await waitFor(() => s.pendingBytes > 256 * 1024, 'the answer to wait unread');
    for (const p of encodeExtended(cbor.encode([99, 1]))) c.writeRaw(p); // an unknown kind
    await waitFor(() => core.size === 0, 'the server to fail the connection');
    await waitFor(() => s.closed, 'the transport to be cut', 5000);
    assert.equal(s.closed, true);
  });
});
