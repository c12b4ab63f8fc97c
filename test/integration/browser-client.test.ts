/**
 * The browser client (src/browser) through a real WebSocket bridge
 * (createRelay with a `ws:` listener) to a real service on a unix socket.
 * Node 20 has no global WebSocket: the client dials with the `ws`
 * package's, sending the Origin a page would; where Node has a global
 * WebSocket (22 and later) the same tests run with it too (it sends no
 * Origin, so that bridge allows none).
 *
 * Also here: the transport itself against a plain `ws` server (one
 * message per frame, drain without a drain event, close codes), and the
 * compiled entry run in a context without Node's globals (browser-vm.ts).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer, type Server as NetServer, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { IncomingMessage } from 'node:http';
import { fileURLToPath } from 'node:url';
import { WebSocket, WebSocketServer } from 'ws';
import { connect, defineService, method, serviceOf, type Client, type ClientStateChange, type WebSocketConstructor } from '../../src/browser/index.js';
import { PROTOCOL_ERROR_CLOSE, subprotocols, webSocketDialer } from '../../src/browser/websocket.js';
import { DEFAULT_MAX_FRAME_BYTES, DEFAULT_WRITE_HIGH_WATER } from '../../src/core/constants.js';
import { encodeRequest } from '../../src/core/frame/encoder.js';
import type { OpenTransport, TransportSink } from '../../src/core/transport.js';
import { createRelay, IpcborError, serve, type CallContext, type Relay, type Server } from '../../src/index.js';
import { tempSocket } from '../helpers.js';
import { codeOf, deferred, rejectsWith, type Deferred } from '../extended-helpers.js';

const TOKEN = 'dGVzdC10b2tlbi0xMjM0NTY3ODkw_-';
const PAGE_ORIGIN = 'http://localhost:5173';

/** The `ws` package's WebSocket, sending `origin` as a browser sends its page's. */
function wsFrom(origin: string): WebSocketConstructor {
  return class extends WebSocket {
    constructor(address: string, protocols: string[]) {
      super(address, protocols, { origin });
    }
  };
}

/** What the service's handlers report to the test. */
let hung: Deferred<void> = deferred();
let aborted: Deferred<unknown> = deferred();

const svc = defineService({
  name: 'bt',
  version: '1.0.0',
  methods: {
    echo: method({
      handler: (p: { text: string }) => {
        serviceOf(svc).emit('said', { text: p.text });
        return { echoed: p.text };
      },
    }),
    count: method({
      handler: (p: { n: number }) =>
        (async function* () {
          for (let i = 0; i < p.n; i++) yield i;
        })(),
    }),
    sum: method({
      handler: async (items: AsyncIterable<number>) => {
        let sum = 0;
        let n = 0;
        for await (const x of items) {
          sum += x;
          n++;
        }
        return { sum, n };
      },
    }),
    /** Runs until its signal fires, and reports that. */
    hang: method({
      handler: (_: void, ctx: CallContext) =>
        new Promise<never>((_resolve, reject) => {
          const mine = aborted;
          ctx.signal.addEventListener(
            'abort',
            () => {
              mine.resolve(ctx.signal.reason);
              reject(ctx.signal.reason);
            },
            { once: true },
          );
          hung.resolve();
        }),
    }),
    /** Bytes in: how many, and their sum mod 256 (the content arrived, not only its length). */
    measure: method({ handler: (bytes: Uint8Array) => ({ length: bytes.length, check: bytes.reduce((a, b) => (a + b) & 0xff, 0) }) }),
    /** Bytes out: `n` bytes of the pattern i mod 251. */
    bytes: method({ handler: (p: { n: number }) => Uint8Array.from({ length: p.n }, (_, i) => i % 251) }),
  },
  events: { said: null },
});

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of iterable) out.push(x);
  return out;
}

/** Read `client.states()` until a change matches `pred`. */
async function stateWhere(states: AsyncIterator<ClientStateChange>, pred: (c: ClientStateChange) => boolean): Promise<ClientStateChange> {
  for (;;) {
    const next = await states.next();
    assert.ok(!next.done, 'the states ended first');
    if (pred(next.value)) return next.value;
  }
}

const globalWs = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
const flavours: { name: string; WebSocket: WebSocketConstructor | undefined; allowNoOrigin: boolean; skip: string | false }[] = [
  { name: "the ws package's WebSocket", WebSocket: wsFrom(PAGE_ORIGIN), allowNoOrigin: false, skip: false },
  { name: 'the global WebSocket', WebSocket: undefined, allowNoOrigin: true, skip: globalWs === undefined ? 'this Node has no global WebSocket' : false },
];

let server: Server;
let service: string;
before(async () => {
  service = `unix:${tempSocket()}`;
  server = await serve(svc, service);
});
after(() => server.close());

for (const flavour of flavours) {
  describe(`browser client, over ${flavour.name}`, { skip: flavour.skip }, () => {
    let relay: Relay;
    let url: string;
    /** The flavour's WebSocket, or none: the global one. */
    const withWs = flavour.WebSocket ? { WebSocket: flavour.WebSocket } : {};
    const open = (options: Parameters<typeof connect>[1] = {}) => connect(url, { token: TOKEN, ...withWs, ...options });

    before(async () => {
      relay = await createRelay({ listen: 'ws:127.0.0.1:0', to: service, websocket: { token: TOKEN, allowNoOrigin: flavour.allowNoOrigin } });
      url = relay.addresses[0]!;
    });
    after(() => relay.close());

    it('connects in the extended protocol and calls, plainly and through a typed service view', async () => {
      await using client = await open();
      assert.equal(client.protocol, 'extended');
      assert.equal(client.address, url.replace(/^ws:/, 'ws://') + '/');
      assert.deepEqual(await client.call('echo', { text: 'hi' }), { echoed: 'hi' });
      const bt = client.service<typeof svc>();
      const r = await bt.echo({ text: 'typed' });
      const echoed: string = r.echoed;
      assert.equal(echoed, 'typed');
    });

    it('takes an http:// URL for the same host, and the relay address as it lists it', async () => {
      const port = url.slice(url.lastIndexOf(':') + 1);
      for (const u of [`http://127.0.0.1:${port}/some/path#x`, url]) {
        const client = await connect(u, { token: TOKEN, ...withWs });
        assert.match(client.address, /^ws:\/\/127\.0\.0\.1:\d+\//);
        assert.ok(!client.address.includes('#'), 'the fragment is dropped');
        assert.deepEqual(await client.call('echo', { text: u }), { echoed: u });
        await client.close();
      }
    });

    it('receives the events it subscribed to', async () => {
      await using client = await open();
      const sub = client.events<typeof svc>().subscribe('said');
      await sub.ready;
      await client.call('echo', { text: 'event' });
      const first = await sub[Symbol.asyncIterator]().next();
      assert.deepEqual(first.value, { name: 'said', payload: { text: 'event' } });
    });

    it('reads a result stream and sends an input stream', async () => {
      await using client = await open({ window: 8 });
      assert.deepEqual(await collect(await client.call<AsyncIterable<number>>('count', { n: 300 })), range(300));
      async function* numbers() {
        for (let i = 1; i <= 1000; i++) yield i;
      }
      assert.deepEqual(await client.call('sum', numbers()), { sum: 500500, n: 1000 });
      assert.equal(client.inflight, 0);
    });

    it("cancels a call: its AbortSignal aborts the handler's signal on the server", async () => {
      hung = deferred();
      aborted = deferred();
      await using client = await open();
      const ac = new AbortController();
      const call = client.call('hang', undefined, { signal: ac.signal });
      await hung.promise;
      ac.abort();
      await rejectsWith(call, 'IPCBOR_ERR_CANCELLED');
      assert.equal(codeOf(await aborted.promise), 'IPCBOR_ERR_CANCELLED');
      // The connection goes on.
      assert.deepEqual(await client.call('echo', { text: 'after' }), { echoed: 'after' });
    });

    it('refuses a wrong or a missing token with IPCBOR_ERR_CONNECT, saying what to check', async () => {
      for (const token of ['wrong-token', undefined]) {
        const err = await rejectsWith(connect(url, { ...(token === undefined ? {} : { token }), ...withWs }), 'IPCBOR_ERR_CONNECT');
        assert.match(err.message, /the bridge refused or could not be reached: check the URL, that the page's origin is allowed, and the token/);
      }
    });

    it('carries a message at the frame limit both ways', async () => {
      await using client = await open();
      // A byte string's CBOR head is 5 bytes at this size: the payload is exactly the limit.
      const n = DEFAULT_MAX_FRAME_BYTES - 5;
      const out = Uint8Array.from({ length: n }, (_, i) => (i * 7) & 0xff);
      const check = out.reduce((a, b) => (a + b) & 0xff, 0);
      assert.deepEqual(await client.call('measure', out), { length: n, check });
      const back = await client.call<Uint8Array>('bytes', { n });
      assert.equal(back.length, n);
      assert.ok(
        back.every((b, i) => b === i % 251),
        'every byte came back as sent',
      );
      // One byte more is refused, and the connection goes on.
      await rejectsWith(client.call('measure', new Uint8Array(n + 1)), 'IPCBOR_ERR_FRAME_TOO_LARGE');
      assert.deepEqual(await client.call('echo', { text: 'still' }), { echoed: 'still' });
    });
  });
}

describe('browser client: connecting', () => {
  const WS = wsFrom(PAGE_ORIGIN);

  it('refuses an origin the bridge does not allow with IPCBOR_ERR_CONNECT', async () => {
    await using relay = await createRelay({ listen: 'ws:127.0.0.1:0', to: service });
    await rejectsWith(connect(relay.addresses[0]!, { WebSocket: wsFrom('https://evil.example') }), 'IPCBOR_ERR_CONNECT');
    const client = await connect(relay.addresses[0]!, { WebSocket: WS });
    assert.deepEqual(await client.call('echo', { text: 'no token needed' }), { echoed: 'no token needed' });
    await client.close();
  });

  it('rejects with IPCBOR_ERR_CONNECT when nothing listens', async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as { port: number }).port;
    await new Promise((r) => probe.close(r));
    await rejectsWith(connect(`ws://127.0.0.1:${port}/`, { WebSocket: WS }), 'IPCBOR_ERR_CONNECT');
  });

  it('rejects a URL it cannot use, and a token a subprotocol cannot carry, with IPCBOR_ERR_INVALID_ADDRESS', async () => {
    await rejectsWith(connect('/relative', { WebSocket: WS }), 'IPCBOR_ERR_INVALID_ADDRESS'); // no page to resolve it against
    await rejectsWith(connect('ftp://127.0.0.1/', { WebSocket: WS }), 'IPCBOR_ERR_INVALID_ADDRESS');
    await rejectsWith(connect('ws://127.0.0.1:1/', { WebSocket: WS, token: 'has space' }), 'IPCBOR_ERR_INVALID_ADDRESS');
    await rejectsWith(connect('ws://127.0.0.1:1/', { WebSocket: WS, token: '' }), 'IPCBOR_ERR_INVALID_ADDRESS');
  });

  describe('against a server that takes the connection and never answers the upgrade', () => {
    let silent: NetServer;
    let port: number;
    const held: Socket[] = [];
    let arrived: Deferred<Socket>;
    before(async () => {
      silent = createServer((s) => {
        // Read (and drop) the upgrade request: a paused socket would not see the client leave.
        s.resume();
        held.push(s);
        arrived.resolve(s);
      });
      await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
      port = (silent.address() as { port: number }).port;
    });
    after(async () => {
      for (const s of held) s.destroy();
      await new Promise((r) => silent.close(r));
    });

    it('gives up at connectTimeout with IPCBOR_ERR_CONNECT, and drops the connection', async () => {
      arrived = deferred();
      const connecting = connect(`ws://127.0.0.1:${port}/`, { WebSocket: WS, connectTimeout: 200 });
      const socket = await arrived.promise;
      const gone = new Promise((r) => socket.once('close', r));
      await rejectsWith(connecting, 'IPCBOR_ERR_CONNECT');
      await gone;
    });

    it('stops when its signal aborts, with IPCBOR_ERR_CANCELLED, and drops the connection', async () => {
      arrived = deferred();
      const ac = new AbortController();
      const connecting = connect(`ws://127.0.0.1:${port}/`, { WebSocket: WS, signal: ac.signal });
      const socket = await arrived.promise;
      const gone = new Promise((r) => socket.once('close', r));
      ac.abort();
      await rejectsWith(connecting, 'IPCBOR_ERR_CANCELLED');
      await gone;
    });
  });

  it('reconnects after the bridge restarts, and its subscription receives events again', async () => {
    const first = await createRelay({ listen: 'ws:127.0.0.1:0', to: service });
    const address = first.addresses[0]!;
    const client: Client = await connect(address, { WebSocket: WS, reconnect: { initialDelay: 10, maxDelay: 100 } });
    try {
      const states = client.states();
      const sub = client.events<typeof svc>().subscribe('said');
      await sub.ready;
      const events = sub[Symbol.asyncIterator]();
      await first.close();
      await stateWhere(states, (c) => c.state === 'reconnecting');
      // The same address again: a restarted bridge.
      const second = await createRelay({ listen: address, to: service });
      try {
        await stateWhere(states, (c) => c.state === 'open');
        assert.deepEqual(await client.call('echo', { text: 'again' }), { echoed: 'again' });
        assert.deepEqual((await events.next()).value, { name: 'said', payload: { text: 'again' } });
        await client.close();
      } finally {
        await second.close();
      }
    } finally {
      client.destroy();
    }
  });

  it('closes with the WebSocket close code when the bridge cuts the connection', async () => {
    const relay = await createRelay({ listen: 'ws:127.0.0.1:0', to: service });
    const client = await connect(relay.addresses[0]!, { WebSocket: WS });
    await client.call('echo', { text: 'x' });
    relay.destroy();
    const reason = await client.closed;
    assert.equal(reason.code, 'IPCBOR_ERR_CONNECTION_CLOSED');
    assert.deepEqual(reason.data, { code: 1006, reason: '' });
    assert.match(reason.message, /closed with code 1006/);
  });
});

/** A plain `ws` server (no bridge) for the transport alone: `onSocket` gets each server-side WebSocket and its upgrade request. */
async function wsServer(onSocket: (ws: WebSocket, req: IncomingMessage) => void, protocol: string | false = 'ipcbor'): Promise<{ url: string; close(): Promise<void> }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, handleProtocols: () => protocol });
  await new Promise<void>((r) => wss.once('listening', r));
  wss.on('connection', onSocket);
  return {
    url: `ws://127.0.0.1:${(wss.address() as { port: number }).port}/`,
    close: () =>
      new Promise<void>((r) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => r());
      }),
  };
}

/** A sink that records what the transport reports. */
function recorder(): TransportSink & { data: Uint8Array[]; drains: number; closed: Deferred<unknown>; drained: Deferred<void> } {
  const r = {
    data: [] as Uint8Array[],
    drains: 0,
    closed: deferred<unknown>(),
    drained: deferred(),
    onData: (chunk: Uint8Array) => void r.data.push(chunk),
    onDrain: () => {
      r.drains++;
      r.drained.resolve();
    },
    onClose: (cause?: unknown) => r.closed.resolve(cause),
  };
  return r;
}

for (const flavour of flavours) {
  describe(`browser WebSocket transport, over ${flavour.name}`, { skip: flavour.skip }, () => {
    const dial = (url: string) => webSocketDialer(flavour.WebSocket ?? globalWs!, url, subprotocols(TOKEN))(new AbortController().signal);

    it('offers ipcbor and the token as subprotocols, and writes one binary message per frame', async () => {
      const got: { protocols: string | undefined; messages: { data: Buffer; binary: boolean }[] } = { protocols: undefined, messages: [] };
      const two = deferred();
      const srv = await wsServer((ws, req) => {
        got.protocols = req.headers['sec-websocket-protocol'];
        ws.on('message', (data: Buffer, binary: boolean) => {
          got.messages.push({ data, binary });
          if (got.messages.length === 2) two.resolve();
        });
      });
      try {
        const t = await dial(srv.url);
        t.attach(recorder());
        const a = encodeRequest('m', Uint8Array.of(1, 2, 3));
        const b = encodeRequest('', new Uint8Array(0));
        t.write(a);
        t.write(b);
        await two.promise;
        assert.deepEqual(got.protocols?.split(/\s*,\s*/), ['ipcbor', `ipcbor.bearer.${TOKEN}`]);
        assert.deepEqual(
          got.messages.map((m) => m.binary),
          [true, true],
        );
        assert.deepEqual(new Uint8Array(got.messages[0]!.data), Uint8Array.of(...a[0], ...a[1]));
        assert.deepEqual(new Uint8Array(got.messages[1]!.data), Uint8Array.of(...b[0]));
        t.destroy();
      } finally {
        await srv.close();
      }
    });

    it('reports a server that chose no ipcbor subprotocol as IPCBOR_ERR_CONNECT', async () => {
      for (const protocol of [false, `ipcbor.bearer.${TOKEN}`] as const) {
        const srv = await wsServer(() => {}, protocol);
        try {
          await rejectsWith(dial(srv.url), 'IPCBOR_ERR_CONNECT');
        } finally {
          await srv.close();
        }
      }
    });

    it('says when writes backed up past the high-water mark, and calls onDrain once they are under it (no drain event to wait for)', async () => {
      let serverSide!: WebSocket;
      const srv = await wsServer((ws) => {
        serverSide = ws;
        // Not read until the test says: the client's bytes back up.
        ws.pause();
      });
      try {
        const t: OpenTransport = await dial(srv.url);
        const sink = recorder();
        t.attach(sink);
        const chunk = encodeRequest('fill', new Uint8Array(256 * 1024));
        let writes = 0;
        while (t.write(chunk)) {
          writes++;
          assert.ok(writes < 1000, 'write never said the transport was full');
        }
        assert.ok(t.pendingBytes >= DEFAULT_WRITE_HIGH_WATER, `pendingBytes ${t.pendingBytes} is at the mark`);
        assert.equal(sink.drains, 0);
        serverSide.resume();
        await sink.drained.promise;
        assert.ok(t.pendingBytes < DEFAULT_WRITE_HIGH_WATER, `pendingBytes ${t.pendingBytes} went under the mark`);
        t.destroy();
      } finally {
        await srv.close();
      }
    });

    it(`closes on a text message with IPCBOR_ERR_PROTOCOL, telling the server why with code ${PROTOCOL_ERROR_CLOSE}`, async () => {
      const serverClose = deferred<number>();
      const srv = await wsServer((ws) => {
        ws.on('close', (code) => serverClose.resolve(code));
        ws.send('not a frame');
      });
      try {
        const t = await dial(srv.url);
        const sink = recorder();
        t.attach(sink);
        const cause = await sink.closed.promise;
        assert.ok(cause instanceof IpcborError && cause.code === 'IPCBOR_ERR_PROTOCOL', String(cause));
        assert.equal(await serverClose.promise, PROTOCOL_ERROR_CLOSE);
      } finally {
        await srv.close();
      }
    });

    it('closes without an error on a normal close, and with the code and reason on another', async () => {
      for (const [code, reason] of [
        [1000, ''],
        [4001, 'going down for maintenance'],
      ] as const) {
        const srv = await wsServer((ws) => ws.close(code, reason));
        try {
          const t = await dial(srv.url);
          const sink = recorder();
          t.attach(sink);
          const cause = await sink.closed.promise;
          if (code === 1000) {
            assert.equal(cause, undefined);
          } else {
            assert.ok(cause instanceof IpcborError && cause.code === 'IPCBOR_ERR_CONNECTION_CLOSED', String(cause));
            assert.deepEqual(cause.data, { code, reason });
            assert.match(cause.message, new RegExp(`${code}: ${reason}`));
          }
        } finally {
          await srv.close();
        }
      }
    });
  });
}

describe('the compiled browser entry', () => {
  it('loads only dist/src/browser and dist/src/core, runs where Node\'s globals are not, and talks to the bridge', async () => {
    await using relay = await createRelay({ listen: 'ws:127.0.0.1:0', to: service, websocket: { token: TOKEN } });
    const script = fileURLToPath(new URL('./browser-vm.js', import.meta.url));
    // Asynchronous: this process serves the relay and the service meanwhile.
    const out = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, ['--experimental-vm-modules', '--no-warnings', script, relay.addresses[0]!, TOKEN, PAGE_ORIGIN], { timeout: 60_000 }, (err, stdout, stderr) =>
        err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout),
      );
    });
    const report = JSON.parse(out.trim().split('\n').pop()!) as { error?: string; loaded: string[]; result: unknown };
    assert.equal(report.error, undefined, report.error);
    assert.deepEqual(report.result, { protocol: 'extended', echoed: { echoed: 'from a page' }, event: { text: 'from a page' }, items: [0, 1, 2, 3, 4], state: 'closed' });
    assert.ok(report.loaded.includes('browser/index.js') && report.loaded.includes('browser/websocket.js') && report.loaded.includes('core/client/client.js'), report.loaded.join(', '));
    assert.ok(
      report.loaded.every((f) => /^(browser|core)\//.test(f)),
      report.loaded.join(', '),
    );
  });
});
