/**
 * The WebSocket bridge: a relay listener for `ws:` and `wss:` addresses,
 * and the only module that loads the `ws` package. Each WebSocket
 * connection is one Transport (one binary message is one ipcbor frame,
 * bytes exactly as on a socket) handed to the relay core, which links it
 * to its own connection to the service.
 *
 * Secure by default (README, "Reaching a local service"):
 * - Origin allowlist, checked at the upgrade: loopback origins and the
 *   bridge's own address, plus what `origins` adds; a request without an
 *   Origin is refused unless `allowNoOrigin` (non-browser clients);
 * - an optional bearer token, taken from a subprotocol
 *   (`ipcbor.bearer.<token>`, what a browser can send) or an
 *   `Authorization: Bearer` header, never from the URL;
 * - the relay's frame limit as the largest message, text refused, pings
 *   to find dead peers, the relay's byte budgets and timeouts;
 * - pages: only the files of the `pages` folder and the browser client.
 */
// Imported, not read from the globals: Node's `process` and `Buffer` globals are getters, run at every use.
import { Buffer } from 'node:buffer';
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile, realpath, stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { nextTick } from 'node:process';
import type { Duplex } from 'node:stream';
import { extname, join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocketServer, type WebSocket } from 'ws';
import { DEFAULT_MAX_HANDSHAKES, DEFAULT_WRITE_HIGH_WATER, WS_PROTOCOL, WS_TOKEN_CHARS, WS_TOKEN_PREFIX } from '../core/constants.js';
import { IpcborError } from '../core/errors.js';
import type { FrameParts } from '../core/frame/encoder.js';
import type { RelayCore } from '../core/relay/relay.js';
import type { ConnectionInfo, OpenTransport, TransportSink } from '../core/transport.js';
import { isLoopbackHost, type Address } from './address.js';
import { listenAll, type Listening } from './server.js';
import { unwatchPaused, watchPaused } from './socket-transport.js';
import type { TlsServerOptions } from './tls.js';

/** How often the bridge pings each WebSocket, in ms; a peer that has not answered the previous ping by then is cut. */
export const DEFAULT_PING_INTERVAL = 30_000;

/**
 * The WebSocket bridge's options: `websocket` in {@link RelayOptions}, for
 * its `ws:` and `wss:` listeners. Each WebSocket message carries one
 * ipcbor frame. By default the bridge admits browsers on loopback origins
 * and its own address only, asks no token, serves no pages (only the
 * browser client, at `/ipcbor/`), and pings every 30 s.
 */
export interface BridgeOptions {
  /**
   * Origins allowed besides the defaults (loopback origins, and the bridge's
   * own address): exact origins such as `https://app.example.com`. `'*'`
   * allows every origin: any web page the user visits could then use the
   * service through the user's browser. Default: none besides those.
   */
  origins?: readonly string[] | '*';
  /** Accept upgrades that carry no Origin header (programs, not browsers). Default false. */
  allowNoOrigin?: boolean;
  /**
   * A bearer token every client must present (subprotocol
   * `ipcbor.bearer.<token>` or `Authorization: Bearer <token>`); an upgrade
   * without it is refused with HTTP 401. It must be a non-empty run of
   * RFC 7230 token characters (base64url fits), or createRelay rejects with
   * IPCBOR_ERR_INVALID_ADDRESS. Default: none.
   */
  token?: string;
  /** A folder whose files the bridge serves over HTTP (`/` is its index.html); the browser client is served at `/ipcbor/`. Default: none (the browser client is still served). */
  pages?: string;
  /** Ping interval in ms (default 30,000; 0: no pings). */
  pingInterval?: number;
  /**
   * HTTP connections held before they upgrade to a WebSocket (page
   * requests, upgrades under way; default {@link DEFAULT_MAX_HANDSHAKES},
   * 128). Past it, a new one closes
   * the one that has waited longest. They do not count in maxConnections.
   */
  maxWaiting?: number;
}

/** The bridge's own settings, with the listen options it shares with the relay. */
export interface BridgeListenOptions extends BridgeOptions {
  tls?: TlsServerOptions;
  keepAlive?: number;
  permissions?: number;
  backlog?: number;
  /** The relay's frame limit: the largest message is one frame of it (head and lengths included). */
  maxFrameBytes: number;
}

/** Where the browser client's modules are: dist/src (this file is dist/src/node/bridge.js). */
const MODULE_DIR = fileURLToPath(new URL('../', import.meta.url));

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
};

/** How long an HTTP connection may stay without upgrading to a WebSocket (fetching pages, or an upgrade under way), in ms. */
const WAIT_MS = 10_000;

/** Largest extended head plus the two lengths: a message may be this much larger than a frame's payload. */
const FRAME_OVERHEAD = 64 * 1024 + 8;

/**
 * @internal A WebSocket as a Transport. Each message must hold exactly one frame
 * (`u32 a | a bytes | u32 b | b bytes`, the layout of both a request and
 * an extended frame); anything else, and text, closes the connection with
 * a WebSocket close code that says why.
 */
export class WebSocketTransport implements OpenTransport {
  /** A paused socket may still read one chunk, and ws hand on what it had assembled. */
  readonly readAhead = 64 * 1024;
  private sink: TransportSink | undefined;
  private error: Error | undefined;
  /** Raw bytes read from the socket, and that count when the last whole message came out. */
  private rawIn = 0;
  private rawAtMessage = 0;
  /** A message broke the rules: the connection is closing, and nothing more it sends is read. */
  private refused = false;
  /** The socket is corked until the next tick: the messages sent in one tick leave in one write. */
  private corked = false;

  constructor(
    private readonly ws: WebSocket,
    private readonly socket: Socket,
  ) {
    // Nothing is read until the relay attaches a sink (it first opens the service's connection).
    ws.pause();
  }

  /** Bytes of a message not yet whole (ws assembles each message before handing it on). */
  get buffered(): number {
    return this.rawIn - this.rawAtMessage;
  }

  attach(sink: TransportSink): void {
    this.sink = sink;
    const ws = this.ws;
    // Counted before ws reads each chunk, and charged after: a message
    // arriving in many chunks costs the budget as a frame does.
    this.socket.prependListener('data', (chunk: Buffer) => (this.rawIn += chunk.length));
    this.socket.on('data', () => {
      if (this.rawIn !== this.rawAtMessage) sink.onData(EMPTY);
    });
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      this.rawAtMessage = this.rawIn;
      if (this.refused) return;
      if (!isBinary) return this.refuse(1003, 'text messages are not accepted: send each ipcbor frame as one binary message');
      const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      if (!oneFrame(bytes)) return this.refuse(1002, 'each message must hold exactly one ipcbor frame');
      sink.onData(bytes);
    });
    // Control frames (pings, pongs) are no part of a message: not charged as one.
    const control = (data: Buffer) => (this.rawAtMessage = Math.min(this.rawIn, this.rawAtMessage + data.length + CONTROL_HEADER));
    ws.on('ping', control);
    ws.on('pong', control);
    this.socket.on('drain', () => sink.onDrain());
    ws.on('error', (err: Error) => (this.error ??= err));
    ws.on('close', (code: number, reason: Buffer) => {
      unwatchPaused(this.socket);
      const cause = this.error ?? (code === 1000 || code === 1001 || code === 1005 ? undefined : new IpcborError('IPCBOR_ERR_CONNECTION_CLOSED', `the WebSocket closed with code ${code}${reason.length > 0 ? `: ${reason.toString()}` : ''}`));
      sink.onClose(cause);
    });
    ws.resume();
  }

  private refuse(code: number, why: string): void {
    this.refused = true;
    this.error ??= new IpcborError(code === 1003 ? 'IPCBOR_ERR_PROTOCOL' : 'IPCBOR_ERR_BAD_FRAME', why);
    // The peer's answer to the close is still read; its other messages are not.
    this.ws.close(code, why);
  }

  get pendingBytes(): number {
    return this.ws.bufferedAmount;
  }

  get writable(): boolean {
    return this.ws.readyState === this.ws.OPEN;
  }

  write(parts: FrameParts): boolean {
    const ws = this.ws;
    if (ws.readyState !== ws.OPEN) return false;
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      nextTick(uncorkLater, this);
    }
    const [header, body] = parts;
    if (body.length > 16 * 1024) {
      // One message in two fragments: the body is not copied.
      ws.send(header, { binary: true, fin: false });
      ws.send(body, { binary: true, fin: true });
    } else {
      const message = Buffer.allocUnsafe(header.length + body.length);
      message.set(header, 0);
      message.set(body, header.length);
      ws.send(message, { binary: true });
    }
    return ws.bufferedAmount < DEFAULT_WRITE_HIGH_WATER;
  }

  /** Hand this tick's messages to the socket. */
  uncork(): void {
    this.corked = false;
    this.socket.uncork();
  }

  /**
   * Paused, the socket is checked for a client that left, as a server's
   * socket is (watchPaused, every PEER_CHECK_MS): a FIN Node read behind
   * what it holds is let through, what it held reaches ws first, and ws
   * closes the WebSocket at the 'end'. Past Node's read ahead the FIN is
   * not read, and a write of no bytes learns nothing from a TCP peer that
   * sent one (only from one that reset), so the socket is pinged instead:
   * the system of a client that closed its socket answers bytes with a
   * reset, after which the next ping fails (EPIPE) and the socket closes
   * with the error; a client still there answers with a pong, read (and
   * charged as a control frame) when the connection is read again. A ping
   * is a TLS record like any message, so the same holds for wss, where no
   * write of no bytes is made. What remains: a client that only
   * half-closed after sending more than the read ahead still reads, and
   * answers, so it is there as far as the relay can tell (it goes when it
   * closes); a client whose network went away without a word leaves the
   * ping unacknowledged, waiting to be sent, so no further one is made:
   * TCP's own retransmission timeout ends it. A WebSocket already closing
   * is not watched: ws cuts it after its close timeout.
   */
  pause(): void {
    this.ws.pause();
    if (this.ws.readyState === this.ws.OPEN) watchPaused(this.socket, this.ping);
  }

  /** The question asked of a paused socket Node no longer reads (see pause). */
  private readonly ping = (): void => {
    if (this.ws.readyState === this.ws.OPEN) this.ws.ping();
  };

  resume(): void {
    unwatchPaused(this.socket);
    this.ws.resume();
  }

  end(): void {
    if (this.ws.readyState === this.ws.OPEN) this.ws.close(1000);
  }

  destroy(): void {
    unwatchPaused(this.socket);
    this.ws.terminate();
  }
}

const EMPTY = new Uint8Array(0);
/** The header of a masked control frame from a client (2 bytes, and the 4-byte mask). */
const CONTROL_HEADER = 6;

function uncorkLater(t: WebSocketTransport): void {
  t.uncork();
}

/** Does `bytes` hold exactly one frame: `u32 a | a bytes | u32 b | b bytes`? */
function oneFrame(bytes: Uint8Array): boolean {
  if (bytes.length < 8) return false;
  const a = u32(bytes, 0);
  if (a > bytes.length - 8) return false;
  return u32(bytes, 4 + a) === bytes.length - 8 - a;
}

/** Big-endian u32 at `at` (per message: no DataView made). */
function u32(b: Uint8Array, at: number): number {
  return ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
}

/** Compare a presented token with the expected one, in time that does not depend on where they differ. */
function tokenMatches(presented: string | undefined, digest: Buffer | undefined): boolean {
  if (digest === undefined) return true;
  if (presented === undefined) return false;
  return timingSafeEqual(createHash('sha256').update(presented).digest(), digest);
}

/** The token a request presents: its `ipcbor.bearer.` subprotocol, or its Authorization header. */
function presentedToken(req: IncomingMessage): string | undefined {
  const protocols = req.headers['sec-websocket-protocol'];
  if (typeof protocols === 'string') {
    for (const p of protocols.split(',')) {
      const name = p.trim();
      if (name.startsWith(WS_TOKEN_PREFIX)) return name.slice(WS_TOKEN_PREFIX.length);
    }
  }
  const auth = req.headers.authorization;
  if (typeof auth === 'string' && /^Bearer /i.test(auth)) return auth.slice(7).trim();
  return undefined;
}

/** Origins of a loopback page, at any port: http(s)://localhost, 127.x.x.x, [::1]. */
function isLoopbackOrigin(origin: string): boolean {
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return false;
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  return isLoopbackHost(host);
}

/** Answer an upgrade that is refused: a plain HTTP status, and the socket closed. */
function refuseUpgrade(socket: Duplex, status: number, text: string): void {
  socket.on('error', () => {});
  if (socket.writable) socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`);
  socket.destroy();
}

/**
 * Listen for WebSocket clients on `list` (`ws:` as tcp, `wss:` as tls
 * addresses), checking each upgrade, and hand each connection to `relay`.
 */
export async function listenWebSocket(list: readonly Address[], relay: RelayCore, options: BridgeListenOptions, report: (err: IpcborError) => void): Promise<Listening> {
  const token = options.token;
  if (token !== undefined && (token.length === 0 || !WS_TOKEN_CHARS.test(token))) {
    throw new IpcborError('IPCBOR_ERR_INVALID_ADDRESS', 'the bridge token must be a non-empty run of letters, digits and -._~+!#$%&\'*^`| (it travels as a WebSocket subprotocol): base64url fits');
  }
  const digest = token === undefined ? undefined : createHash('sha256').update(token).digest();
  const extra = options.origins === '*' ? '*' : new Set(options.origins ?? []);
  const pages = options.pages === undefined ? undefined : await realpath(options.pages);
  const modules = await realpath(MODULE_DIR);
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: options.maxFrameBytes + FRAME_OVERHEAD,
    perMessageDeflate: false,
    clientTracking: true,
    handleProtocols: (offered) => (offered.has(WS_PROTOCOL) ? WS_PROTOCOL : false),
  });
  const alive = new WeakSet<WebSocket>();
  const pingInterval = options.pingInterval ?? DEFAULT_PING_INTERVAL;
  const pinger =
    pingInterval > 0
      ? setInterval(() => {
          for (const ws of wss.clients) {
            if (!alive.has(ws)) {
              ws.terminate();
              continue;
            }
            // A connection the relay is not reading (backpressure) cannot be heard answering: it is not judged.
            if (ws.isPaused) continue;
            alive.delete(ws);
            ws.ping();
          }
        }, pingInterval)
      : undefined;
  pinger?.unref();

  const maxWaiting = options.maxWaiting ?? DEFAULT_MAX_HANDSHAKES;
  // It never listens itself (listenAll hands it each socket), so Node's own
  // request timeouts do not apply: the bridge bounds the connections it holds.
  const http = createServer();
  http.on('request', (req, res) => void servePage(req, res, pages, modules));
  http.on('clientError', (_err, socket) => socket.destroy());

  /**
   * What each HTTP connection not yet upgraded came in on, oldest first,
   * and its socket as the net (or TLS) socket it is (http hands it back as
   * a Duplex; its WebSocket checks it while paused, see WebSocketTransport).
   */
  const waiting = new Map<Duplex, { socket: Socket; info: Omit<ConnectionInfo, 'id' | 'protocol'>; kind: 'ws' | 'wss'; originAllowed: (origin: string | undefined) => boolean; timer: ReturnType<typeof setTimeout> }>();
  const letGo = (socket: Duplex) => {
    const w = waiting.get(socket);
    if (w === undefined) return;
    clearTimeout(w.timer);
    waiting.delete(socket);
  };
  http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const from = waiting.get(socket);
    if (from === undefined) return refuseUpgrade(socket, 400, 'one upgrade per connection');
    letGo(socket);
    const origin = req.headers.origin;
    if (!from.originAllowed(origin)) {
      report(new IpcborError('IPCBOR_ERR_PROTOCOL', `${origin === undefined ? 'a WebSocket upgrade without an Origin' : `a WebSocket upgrade from the origin ${origin}`} was refused (from ${from.info.remote ?? from.info.transport})`));
      return refuseUpgrade(socket, 403, origin === undefined ? 'an Origin header is required' : 'this origin is not allowed');
    }
    if (!tokenMatches(presentedToken(req), digest)) {
      report(new IpcborError('IPCBOR_ERR_PROTOCOL', `a WebSocket upgrade without the right token was refused (from ${from.info.remote ?? from.info.transport})`));
      return refuseUpgrade(socket, 401, 'a valid bearer token is required');
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      alive.add(ws);
      ws.on('pong', () => alive.add(ws));
      relay.accept(new WebSocketTransport(ws, from.socket), { ...from.info, transport: from.kind });
    });
  });

  const listening = await listenAll(
    list,
    options,
    (a) => {
      const scheme = a.kind === 'tls' ? 'https' : 'http';
      const origin = (host: string) => `${scheme}://${host.includes(':') ? `[${host}]` : host}`;
      const own = a.kind === 'unix' ? undefined : origin(a.host);
      const kind = a.kind === 'tls' ? 'wss' : 'ws';
      return (transport, info) => {
        const socket = transport.socket;
        const port = socket.localPort;
        // The bridge's own pages: its address as listened on, and as this
        // connection reached it (a wildcard listener's real address).
        const local = socket.localAddress?.replace(/^::ffff:(?=\d+\.)/, '');
        const mine = [own, local === undefined || a.kind === 'unix' ? undefined : origin(local)].filter((o): o is string => o !== undefined);
        const defaultPort = scheme === 'https' ? 443 : 80;
        const originAllowed = (from: string | undefined): boolean => {
          if (from === undefined) return options.allowNoOrigin === true;
          if (extra === '*' || extra.has(from) || isLoopbackOrigin(from)) return true;
          return mine.some((o) => from === `${o}:${port}` || (port === defaultPort && from === o));
        };
        // HTTP connections not yet upgraded are bounded in number (past the
        // bound, the oldest goes) and in time (a page is fetched, or the
        // upgrade made, within WAIT_MS of connecting).
        if (waiting.size >= maxWaiting) {
          const [oldest] = waiting.keys();
          letGo(oldest!);
          oldest!.destroy();
        }
        const timer = setTimeout(() => {
          letGo(socket);
          socket.destroy();
        }, WAIT_MS);
        timer.unref();
        waiting.set(socket, { socket, info, kind, originAllowed, timer });
        socket.once('close', () => letGo(socket));
        http.emit('connection', socket);
      };
    },
    'http',
  );
  return {
    addresses: listening.addresses.map((text) => text.replace(/^tcp:/, 'ws:').replace(/^tls:/, 'wss:')),
    stop() {
      listening.stop();
      if (pinger) clearInterval(pinger);
      // Connections that never upgraded go now; WebSockets close with the relay.
      for (const socket of [...waiting.keys()]) {
        letGo(socket);
        socket.destroy();
      }
    },
  };
}

/** GET a page: a file of the pages folder, or a module of the browser client under /ipcbor/. */
async function servePage(req: IncomingMessage, res: ServerResponse, pages: string | undefined, modules: string): Promise<void> {
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('Cache-Control', 'no-store');
  if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'only GET');
  let path: string;
  try {
    path = decodeURIComponent(new URL(req.url ?? '/', 'http://bridge').pathname);
  } catch {
    return send(res, 400, 'bad path');
  }
  let file: string | undefined;
  if (path.startsWith('/ipcbor/')) {
    // Only the browser client and the core it is built from.
    const rel = path.slice('/ipcbor/'.length);
    if (rel.endsWith('.js')) {
      // Checked on the real path: `browser/..%2fnode/x.js` decodes to a path outside browser/.
      const found = await within(modules, rel);
      if (found !== undefined && (found.startsWith(join(modules, 'browser') + sep) || found.startsWith(join(modules, 'core') + sep))) file = found;
    }
  } else if (pages !== undefined && !path.split('/').some((segment) => segment.startsWith('.'))) {
    // No dotfiles (`.env`, `.git/`): they are rarely meant for the web.
    file = await within(pages, path === '/' ? 'index.html' : path.slice(1));
  }
  if (file === undefined) return send(res, 404, 'not found');
  let body: Buffer;
  try {
    body = await readFile(file);
  } catch {
    return send(res, 404, 'not found');
  }
  // The browser client's modules name source maps the bridge does not serve: the reference is dropped.
  if (file.startsWith(modules)) body = Buffer.from(body.toString('utf8').replace(/\n\/\/# sourceMappingURL=\S+\s*$/, '\n'));
  res.writeHead(200, { 'Content-Type': CONTENT_TYPES[extname(file)] ?? 'application/octet-stream', 'Content-Length': body.length });
  res.end(req.method === 'HEAD' ? undefined : body);
}

/** `rel` under `root`, as a real path that stays inside it and is a file; undefined otherwise. */
async function within(root: string, rel: string): Promise<string | undefined> {
  if (rel.includes('\0')) return undefined;
  try {
    const real = await realpath(join(root, rel));
    const base = root.endsWith(sep) ? root : root + sep;
    if (!real.startsWith(base)) return undefined;
    return (await stat(real)).isFile() ? real : undefined;
  } catch {
    return undefined;
  }
}

function send(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

