/**
 * A connection whose side is already ended (the server closed it for
 * idleness) still answers what arrives with IPCBOR_ERR_SHUTTING_DOWN. The
 * transport takes nothing then (a write into it returns false), which
 * must not make the connection wait for a 'drain' that never comes: it
 * reads on, sees the client's end, and closes cleanly.
 */
import assert from 'node:assert/strict';
import { createConnection } from 'node:net';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { cbor } from '../../src/core/codec/cbor.js';
import { Kind } from '../../src/core/protocol/heads.js';
import { serveWith } from '../../src/node/server.js';
import type { IpcborError } from '../../src/core/errors.js';
import { extendedHeader, rawHello } from '../attack/harness.js';
import { RawExtended } from '../extended-helpers.js';
import { tempSocket } from '../helpers.js';

const call = (id: number) => {
  const payload = Buffer.from(cbor.encode(id));
  return Buffer.concat([extendedHeader([Kind.Call, id, 'echo'], payload.length), payload]);
};

describe('a connection whose side has ended', () => {
  it('reads on after writing into its ended transport: the client’s end closes it cleanly', async () => {
    const path = tempSocket();
    const { server, core } = await serveWith({ echo: (x: unknown) => x }, `unix:${path}`, { idleTimeout: 200 }, undefined);
    const closed = new Promise<IpcborError | undefined>((resolve) => core.onDisconnect((_c, reason) => resolve(reason)));
    const s = createConnection({ path, allowHalfOpen: true });
    try {
      await once(s, 'connect');
      await rawHello(s);
      s.resume();
      // The server ends its side once the connection was idle for 200 ms.
      await once(s, 'end');
      // Two calls into the half-closed connection, one after the other has been read, then our end.
      s.write(call(1));
      await new Promise((r) => setTimeout(r, 50));
      s.write(call(2));
      s.end();
      assert.equal(await closed, undefined, 'the connection closed cleanly, with no error');
    } finally {
      s.destroy();
      await server.close();
    }
  });

  it('whose writes had backed up before it ended reads on: no drain comes after the end, and none is waited for', async () => {
    const path = tempSocket();
    const { server, core } = await serveWith({ big: () => new Uint8Array(3 * 1024 * 1024) }, `unix:${path}`, {}, undefined);
    const closed = new Promise<IpcborError | undefined>((resolve) => core.onDisconnect((_c, reason) => resolve(reason)));
    const c = await RawExtended.open(`unix:${path}`);
    try {
      c.socket.allowHalfOpen = true;
      // A 3 MiB answer the client does not read: the server's writes back up.
      c.pause();
      c.send([Kind.Call, 1, 'big'], null);
      await new Promise((r) => setTimeout(r, 200));
      const closing = server.close();
      const ended = once(c.socket, 'end');
      c.resume();
      // The server ends its side once its answer is out; the client then calls once more, and ends.
      await ended;
      c.send([Kind.Call, 2, 'big'], null);
      c.socket.end();
      assert.equal(await closed, undefined, 'the connection closed cleanly, with no error');
      await closing;
    } finally {
      c.destroy();
      server.destroy();
    }
  });
});
