/**
 * A client gives back every socket it opened: after connects that fail
 * (the hello unanswered, garbage before the answer, a server that closes at
 * once, a server that breaks the protocol right after its answer and never
 * closes its side), and while a reconnecting client meets such servers
 * over and over. The client process's open descriptors (/proc/self/fd)
 * return to their baseline once every socket the client dialed has
 * emitted 'close' (seen through Node's `net.client.socket` channel).
 */
import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { cbor } from '../../src/core/codec/cbor.js';
import { encodeExtended, encodeResponse } from '../../src/core/frame/encoder.js';
import { connect, type Client } from '../../src/index.js';
import { nothingEscapes } from '../escapes.js';
import { tempSocket } from '../helpers.js';
import { waitFor } from '../extended-helpers.js';

nothingEscapes();

const openFds = () => readdirSync('/proc/self/fd').length;

/** How a hostile server treats each connection. */
type Mode = 'healthy' | 'silent' | 'garbage' | 'close' | 'break-after-hello';

const helloAnswer = (): readonly Uint8Array[] => encodeResponse(0, cbor.encode({ version: 1, maxFrameBytes: 1 << 24, window: 64, server: 'hostile' }));

/**
 * A server that never closes its side by itself (half-open sockets are
 * kept), so a client that waits for it would wait for ever. Reads what it
 * is sent (a peer that stops reading is another matter).
 */
class Hostile {
  mode: Mode = 'silent';
  accepted = 0;
  readonly sockets = new Set<Socket>();
  readonly address: string;
  private readonly server: Server;

  constructor(readonly path: string) {
    this.address = `unix:${path}`;
    this.server = createServer({ allowHalfOpen: true }, (s) => this.accept(s));
  }

  listen(): Promise<void> {
    return new Promise((r) => this.server.listen(this.path, r));
  }

  private accept(s: Socket): void {
    this.accepted++;
    this.sockets.add(s);
    s.on('close', () => this.sockets.delete(s));
    s.on('error', () => {});
    s.resume();
    const write = (parts: readonly Uint8Array[]) => {
      for (const p of parts) s.write(p);
    };
    switch (this.mode) {
      case 'silent':
        return;
      case 'close':
        s.destroy();
        return;
      case 'garbage':
        // A base-framing answer announcing 4 GiB: over any client's maxFrameBytes.
        s.write(Buffer.from('00000000ffffffff676172626167650a', 'hex'));
        return;
      case 'healthy':
        s.once('data', () => write(helloAnswer()));
        return;
      case 'break-after-hello':
        // A valid answer, then an extended frame of an unknown kind: the
        // client fails the connection and says why, and this server never
        // closes its side.
        s.once('data', () => {
          write(helloAnswer());
          write(encodeExtended(cbor.encode([99, 1])));
        });
        return;
    }
  }

  /** Drop every server-side socket, and wait until they have closed. */
  async dropAll(): Promise<void> {
    const all = [...this.sockets];
    for (const s of all) s.destroy();
    await Promise.all(all.map((s) => (s.closed ? undefined : once(s, 'close'))));
  }

  close(): Promise<void> {
    return new Promise((r) => this.server.close(() => r()));
  }
}

/** Every socket the client side dials from now on, and the promise of its close. */
class Dialed {
  readonly closes: Promise<unknown>[] = [];
  open = 0;
  private readonly onSocket = (message: unknown) => {
    const socket = (message as { socket: Socket }).socket;
    this.open++;
    this.closes.push(
      new Promise((r) =>
        socket.once('close', () => {
          this.open--;
          r(undefined);
        }),
      ),
    );
  };

  constructor() {
    subscribe('net.client.socket', this.onSocket);
  }

  /** Wait for every dialed socket's close; fail if one is still open after `ms` (it never will be). */
  async allClosed(ms = 10_000): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), ms)));
    for (;;) {
      const n = this.closes.length;
      const outcome = await Promise.race([Promise.all(this.closes).then(() => 'closed' as const), late]);
      if (outcome === 'late') {
        clearTimeout(timer);
        assert.fail(`${this.open} of ${this.closes.length} client sockets are still open`);
      }
      // Sockets dialed while waiting are waited for too.
      if (this.closes.length === n) break;
    }
    clearTimeout(timer);
  }

  stop(): void {
    unsubscribe('net.client.socket', this.onSocket);
  }
}

describe('client sockets after failed connects', () => {
  let hostile: Hostile;
  before(async () => {
    hostile = new Hostile(tempSocket());
    await hostile.listen();
  });
  after(async () => {
    await hostile.dropAll();
    await hostile.close();
  });

  /** Run `body` with a baseline of descriptors, then check every client socket closed and the count is back. */
  async function accounted(body: (dialed: Dialed) => Promise<void>): Promise<void> {
    const base = openFds();
    const dialed = new Dialed();
    try {
      await body(dialed);
      await dialed.allClosed();
    } finally {
      dialed.stop();
      // The hostile server's own half of each connection is not the client's.
      await hostile.dropAll();
    }
    // At most the baseline: the runtime may close a descriptor of its own meanwhile (seen on Node 24), never one more.
    const now = openFds();
    assert.ok(now <= base, `open descriptors are back to the baseline (${now}, baseline ${base})`);
  }

  const N = 50;
  const failures: [Mode, string, string][] = [
    ['silent', 'the hello times out', 'IPCBOR_ERR_CONNECT'],
    ['garbage', 'garbage comes before the answer', 'IPCBOR_ERR_FRAME_TOO_LARGE'],
    ['close', 'the server closes at once', 'IPCBOR_ERR_CONNECTION_CLOSED'],
  ];
  for (const [mode, what, code] of failures) {
    it(`${N} connects where ${what} leave no descriptor open`, async () => {
      hostile.mode = mode;
      await accounted(async (dialed) => {
        for (let i = 0; i < N; i++) {
          const err = await connect(hostile.address, { protocol: 'extended', connectTimeout: 50 }).then(
            (c) => {
              c.destroy();
              return undefined;
            },
            (e: { code?: string }) => e.code,
          );
          assert.equal(err, code);
        }
        assert.equal(dialed.closes.length, N);
      });
    });
  }

  it(`${N} connections the server breaks right after its hello answer, never closing its side, leave no descriptor open`, async () => {
    hostile.mode = 'break-after-hello';
    await accounted(async () => {
      for (let i = 0; i < N; i++) {
        const client = await connect(hostile.address);
        const reason = await client.closed;
        assert.match(reason.message, /frame kind|kind 99|bad frame/i);
      }
    });
  });

  for (const mode of ['silent', 'garbage', 'close', 'break-after-hello'] as const) {
    it(`a reconnecting client that meets a server of kind "${mode}" ${N} times gives every socket back`, async () => {
      hostile.mode = 'healthy';
      await accounted(async () => {
        const client: Client = await connect(hostile.address, { reconnect: { initialDelay: 1, maxDelay: 5 }, connectTimeout: 50 });
        const first = hostile.accepted;
        hostile.mode = mode;
        await hostile.dropAll();
        await waitFor(() => hostile.accepted >= first + N, `${N} reconnection attempts`, 30_000);
        client.destroy();
        await client.closed;
      });
    });
  }
});
