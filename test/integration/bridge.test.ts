/**
 * The WebSocket bridge from the outside, with the `ws` package as a client
 * (what a non-browser program would use): who may connect (Origin, token),
 * what a WebSocket may send (one binary frame per message, within the
 * limits), pings and the idle timeout, and the pages it serves.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { createRelay, serve, type Relay, type Server } from '../../src/index.js';
import { cbor } from '../../src/core/codec/cbor.js';
import { concatParts, encodeExtended, encodeRequest } from '../../src/core/frame/encoder.js';
import { FrameDecoder } from '../../src/core/frame/decoder.js';
import { tempSocket } from '../helpers.js';
import { deferred } from '../extended-helpers.js';

const HELLO = { version: 1, maxFrameBytes: 1024 * 1024, window: 64 };

/** `ws:127.0.0.1:PORT` → `ws://127.0.0.1:PORT/`. */
const url = (address: string) => `ws://${address.slice(3)}/`;
const httpUrl = (address: string, path: string) => `http://${address.slice(3)}${path}`;

/** Open a WebSocket; resolves with it once open, or rejects with the HTTP status of a refused upgrade. */
function open(address: string, opts: { origin?: string; protocols?: string[]; headers?: Record<string, string>; maxPayload?: number } = {}): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url(address), opts.protocols ?? ['ipcbor'], {
      ...(opts.origin === undefined ? {} : { origin: opts.origin }),
      ...(opts.headers ? { headers: opts.headers } : {}),
      ...(opts.maxPayload ? { maxPayload: opts.maxPayload } : {}),
    });
    ws.binaryType = 'nodebuffer';
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => {
      ws.terminate();
      reject(Object.assign(new Error(`refused with HTTP ${res.statusCode}`), { status: res.statusCode }));
    });
    ws.once('error', reject);
  });
}

async function refusedWith(p: Promise<WebSocket>, status: number): Promise<void> {
  await assert.rejects(p, (e: Error & { status?: number }) => e.status === status);
}

/** Frames received on a WebSocket (each message is one frame), decoded: the hello's answer, then extended frames. */
class WsPeer {
  readonly frames: { head: unknown[]; payload: Uint8Array }[] = [];
  hello: { ret: number; body: Uint8Array } | undefined;
  readonly closed = deferred<{ code: number; reason: string }>();
  private readonly decoder: FrameDecoder;
  private wake: (() => void) | undefined;

  constructor(readonly ws: WebSocket) {
    this.decoder = new FrameDecoder('response', {
      response: (ret, body) => {
        this.hello = { ret, body };
        if (ret === 0) this.decoder.mode = 'extended';
      },
      extended: (head, payload) => this.frames.push({ head: cbor.decode(head) as unknown[], payload }),
    });
    ws.on('message', (data: Buffer) => {
      this.decoder.push(new Uint8Array(data));
      this.wake?.();
    });
    ws.on('close', (code, reason) => {
      this.closed.resolve({ code, reason: reason.toString() });
      this.wake?.();
    });
  }

  send(parts: readonly Uint8Array[]): void {
    this.ws.send(concatParts(parts));
  }

  async sayHello(): Promise<void> {
    this.send(encodeRequest('$ipcbor.hello', cbor.encode(HELLO)));
    await this.until(() => this.hello !== undefined);
    assert.equal(this.hello!.ret, 0);
  }

  async next(): Promise<{ head: unknown[]; payload: Uint8Array }> {
    await this.until(() => this.frames.length > 0);
    return this.frames.shift()!;
  }

  private async until(cond: () => boolean): Promise<void> {
    while (!cond()) {
      if (this.ws.readyState === WebSocket.CLOSED) assert.fail('the WebSocket closed');
      await new Promise<void>((r) => (this.wake = r));
    }
  }
}

function get(address: string, path: string): Promise<{ status: number; type: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    request(httpUrl(address, path), (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, type: res.headers['content-type'], body }));
    })
      .on('error', reject)
      .end();
  });
}

describe('the WebSocket bridge', () => {
  let server: Server;
  let bridge: Relay;
  let secured: Relay;
  const refusals: string[] = [];
  let pages: string;

  before(async () => {
    server = await serve({ echo: (p: unknown) => p }, `unix:${tempSocket()}`);
    pages = mkdtempSync(join(tmpdir(), 'ipcbor-pages-'));
    writeFileSync(join(pages, 'index.html'), '<!doctype html><title>demo</title>');
    mkdirSync(join(pages, 'js'));
    writeFileSync(join(pages, 'js', 'app.js'), 'export {};');
    bridge = await createRelay({
      listen: 'ws:127.0.0.1:0',
      to: server.addresses[0]!,
      maxFrameBytes: 64 * 1024,
      websocket: { pages, origins: ['https://app.example'] },
      onError: (e) => refusals.push(e.message),
    });
    secured = await createRelay({ listen: 'ws:127.0.0.1:0', to: server.addresses[0]!, websocket: { token: 's3cret-Token_1', allowNoOrigin: true } });
  });

  after(async () => {
    await bridge.close();
    await secured.close();
    await server.close();
  });

  it('relays calls, one frame per binary message, and selects the ipcbor subprotocol', async () => {
    const ws = await open(bridge.addresses[0]!, { origin: 'http://localhost:5173' });
    assert.equal(ws.protocol, 'ipcbor');
    const peer = new WsPeer(ws);
    await peer.sayHello();
    const answer = cbor.decode(peer.hello!.body) as { maxFrameBytes: number };
    assert.equal(answer.maxFrameBytes, 64 * 1024, "the bridge's limit, not the service's");
    peer.send(encodeExtended(cbor.encode([1, 1, 'echo']), cbor.encode({ hi: 'there' })));
    const r = await peer.next();
    assert.deepEqual(r.head, [4, 1]);
    assert.deepEqual(cbor.decode(r.payload), { hi: 'there' });
    ws.close();
  });

  it('allows loopback origins, its own address and the origins it is given; refuses others and a missing Origin', async () => {
    const own = `http://${bridge.addresses[0]!.slice(3)}`;
    for (const origin of ['http://localhost:3000', 'http://127.0.0.1:8080', 'https://[::1]:4443', own, 'https://app.example']) {
      const ws = await open(bridge.addresses[0]!, { origin });
      ws.close();
    }
    for (const origin of ['http://evil.example', 'https://app.example:8443', 'http://localhost.evil.example', 'null', 'file://']) {
      await refusedWith(open(bridge.addresses[0]!, { origin }), 403);
    }
    await refusedWith(open(bridge.addresses[0]!), 403);
    assert.ok(refusals.some((m) => m.includes('http://evil.example')));
    assert.ok(refusals.some((m) => m.includes('without an Origin')));
  });

  it('requires the token, from the subprotocol or the Authorization header, never echoing it', async () => {
    const a = secured.addresses[0]!;
    await refusedWith(open(a), 401);
    await refusedWith(open(a, { protocols: ['ipcbor', 'ipcbor.bearer.wrong'] }), 401);
    await refusedWith(open(a, { headers: { Authorization: 'Bearer s3cret-Token_' } }), 401);
    const viaProtocol = await open(a, { protocols: ['ipcbor', 'ipcbor.bearer.s3cret-Token_1'] });
    assert.equal(viaProtocol.protocol, 'ipcbor', 'the token is not echoed back');
    const peer = new WsPeer(viaProtocol);
    await peer.sayHello();
    viaProtocol.close();
    const viaHeader = await open(a, { headers: { Authorization: 'Bearer s3cret-Token_1' } });
    viaHeader.close();
    // A token in the URL is not a token.
    await refusedWith(
      new Promise<WebSocket>((resolve, reject) => {
        const ws = new WebSocket(`${url(a)}?token=s3cret-Token_1`, ['ipcbor']);
        ws.once('open', () => resolve(ws));
        ws.once('unexpected-response', (_q, res) => (ws.terminate(), reject(Object.assign(new Error('refused'), { status: res.statusCode }))));
        ws.once('error', reject);
      }),
      401,
    );
  });

  it('refuses a text message, closing with 1003', async () => {
    const peer = new WsPeer(await open(bridge.addresses[0]!, { origin: 'http://localhost' }));
    peer.ws.send('{"method":"echo"}');
    const { code, reason } = await peer.closed.promise;
    assert.equal(code, 1003);
    assert.match(reason, /binary/);
  });

  for (const [what, message] of [
    ['two frames in one message', Buffer.concat([concatParts(encodeRequest('echo', cbor.encode(1))), concatParts(encodeRequest('echo', cbor.encode(2)))])],
    ['half a frame', concatParts(encodeRequest('echo', cbor.encode('a longer payload'))).subarray(0, 12)],
    ['fewer than 8 bytes', Buffer.from([0, 0, 0])],
    ['lengths that overflow the message', Buffer.from([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0])],
  ] as const) {
    it(`refuses a message holding ${what}, closing with 1002`, async () => {
      const peer = new WsPeer(await open(bridge.addresses[0]!, { origin: 'http://localhost' }));
      peer.ws.send(message);
      const { code, reason } = await peer.closed.promise;
      assert.equal(code, 1002);
      assert.match(reason, /exactly one ipcbor frame/);
    });
  }

  it('refuses a message over the frame limit before reading it (1009), and a frame over the hello limit with ERROR on id 0', async () => {
    const big = new WsPeer(await open(bridge.addresses[0]!, { origin: 'http://localhost' }));
    big.ws.send(Buffer.alloc(64 * 1024 + 64 * 1024 + 100));
    assert.equal((await big.closed.promise).code, 1009);
    const peer = new WsPeer(await open(bridge.addresses[0]!, { origin: 'http://localhost' }));
    await peer.sayHello();
    peer.send(encodeExtended(cbor.encode([1, 1, 'echo']), new Uint8Array(64 * 1024 + 1)));
    const e = await peer.next();
    assert.deepEqual(e.head.slice(0, 3), [5, 0, 'IPCBOR_ERR_FRAME_TOO_LARGE']);
    await peer.closed.promise;
  });

  it('answers broken frames after the hello with ERROR on id 0, and serves others meanwhile', async () => {
    const peer = new WsPeer(await open(bridge.addresses[0]!, { origin: 'http://localhost' }));
    await peer.sayHello();
    peer.send(encodeExtended(cbor.encode([99, 1]), new Uint8Array(0)));
    const e = await peer.next();
    assert.equal(e.head[0], 5);
    assert.equal(e.head[1], 0);
    await peer.closed.promise;
    const other = new WsPeer(await open(bridge.addresses[0]!, { origin: 'http://localhost' }));
    await other.sayHello();
    other.send(encodeExtended(cbor.encode([1, 5, 'echo']), cbor.encode('ok')));
    assert.deepEqual((await other.next()).head, [4, 5]);
    other.ws.close();
  });

  it('serves its pages and the browser modules, and nothing else', async () => {
    const a = bridge.addresses[0]!;
    const index = await get(a, '/');
    assert.equal(index.status, 200);
    assert.match(index.type!, /text\/html/);
    assert.match(index.body, /<title>demo<\/title>/);
    assert.equal((await get(a, '/js/app.js')).status, 200);
    assert.match((await get(a, '/js/app.js')).type!, /javascript/);
    const core = await get(a, '/ipcbor/core/index.js');
    assert.equal(core.status, 200);
    assert.match(core.type!, /javascript/);
    assert.doesNotMatch(core.body, /sourceMappingURL/, 'no reference to a source map that is not served');
    assert.match((await get(a, '/ipcbor/browser/index.js')).body, /export async function connect/);
    for (const path of ['/../package.json', '/%2e%2e/package.json', '/ipcbor/node/relay.js', '/ipcbor/core/index.d.ts', '/ipcbor/../node/bridge.js', '/missing.html', '/js']) {
      assert.equal((await get(a, path)).status, 404, path);
    }
  });

  it('cuts a peer that stops answering pings, and closes a quiet connection after the idle timeout', async () => {
    const relay = await createRelay({ listen: 'ws:127.0.0.1:0', to: server.addresses[0]!, idleTimeout: 300, websocket: { pingInterval: 100, allowNoOrigin: true } });
    try {
      // A WebSocket that answers nothing: the upgrade by hand, then silence.
      const [host, port] = [relay.addresses[0]!.slice(3, relay.addresses[0]!.lastIndexOf(':')), Number(relay.addresses[0]!.slice(relay.addresses[0]!.lastIndexOf(':') + 1))];
      const raw = createConnection({ host, port });
      await once(raw, 'connect');
      raw.write(`GET / HTTP/1.1\r\nHost: ${host}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: ipcbor\r\n\r\n`);
      const [first] = (await once(raw, 'data')) as [Buffer];
      assert.match(first.toString('latin1'), /^HTTP\/1\.1 101/);
      raw.resume();
      await once(raw, 'close');
      // A well-behaved but quiet client: closed by the idle timeout, with a normal close.
      const peer = new WsPeer(await open(relay.addresses[0]!));
      await peer.sayHello();
      const { code } = await peer.closed.promise;
      assert.equal(code, 1000);
    } finally {
      await relay.close();
    }
  });

  it('holds only so many connections that have not upgraded: past the bound, the oldest goes', async () => {
    const relay = await createRelay({ listen: 'ws:127.0.0.1:0', to: server.addresses[0]!, websocket: { maxWaiting: 2, allowNoOrigin: true } });
    try {
      const a = relay.addresses[0]!;
      const [host, port] = [a.slice(3, a.lastIndexOf(':')), Number(a.slice(a.lastIndexOf(':') + 1))];
      const idle = [];
      for (let i = 0; i < 3; i++) {
        const s = createConnection({ host, port });
        s.on('error', () => {});
        await once(s, 'connect');
        idle.push(s);
      }
      // The first, idle longest, is closed by the third; the WebSocket clients after them are served.
      await once(idle[0]!, 'close');
      const peer = new WsPeer(await open(a));
      await peer.sayHello();
      peer.ws.close();
      for (const s of idle) s.destroy();
    } finally {
      await relay.close();
    }
  });
});
