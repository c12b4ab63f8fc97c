/**
 * The browser's WebSocket as a Transport, and the Dialer that opens one to
 * ipcbor's WebSocket bridge. The wire mapping is the bridge's
 * (src/node/bridge.ts): each binary message is exactly one ipcbor frame,
 * its bytes as on a socket, both ways.
 *
 * Only what both a browser's WebSocket and the `ws` package's client
 * offer is used (WebSocketLike), so Node programs and tests can pass the
 * latter.
 */
import { DEFAULT_WRITE_HIGH_WATER, WS_PROTOCOL, WS_TOKEN_CHARS, WS_TOKEN_PREFIX } from '../core/constants.js';
import { IpcborError } from '../core/errors.js';
import type { FrameParts } from '../core/frame/encoder.js';
import type { Dialer, OpenTransport, TransportSink } from '../core/transport.js';

/** How often a transport whose writes backed up looks at `bufferedAmount` again, in ms (browsers have no drain event). */
const DRAIN_POLL_MS = 10;

/** `readyState` values (the constants are on the class, not always on instances). */
const OPEN = 1;

/** The close code this client sends when the bridge breaks the wire contract (see fail). */
export const PROTOCOL_ERROR_CLOSE = 4002;

/** Close codes that end a connection normally: closed by either side, the page going away, or no code given. */
const NORMAL_CLOSE = new Set([1000, 1001, 1005]);

/** The events of a WebSocket this module reads. */
export interface WebSocketEventLike {
  /** `open`, `message`, `close` or `error`. */
  readonly type: string;
  /** `message`: the message (an ArrayBuffer for binary messages, `binaryType` being `arraybuffer`). */
  readonly data?: unknown;
  /** `close`: the close code (1000 for a normal close). */
  readonly code?: number;
  /** `close`: the reason text the closing end gave (may be empty). */
  readonly reason?: string;
  /** `error` (the `ws` package, not browsers): what went wrong. */
  readonly message?: string;
}

/** The part of a WebSocket (the browser's, or the `ws` package's client) this module uses. */
export interface WebSocketLike {
  /** How binary messages arrive: set to `'arraybuffer'` right after the socket is made. */
  binaryType: string;
  /** 0 connecting, 1 open, 2 closing, 3 closed (the WebSocket standard's values). */
  readonly readyState: number;
  /** Bytes passed to `send` and not yet sent: past 1 MiB, writers wait until it goes down. */
  readonly bufferedAmount: number;
  /** The subprotocol the server selected: the bridge must select `ipcbor`. */
  readonly protocol: string;
  /** Send one binary message (one ipcbor frame). */
  send(data: Uint8Array<ArrayBuffer>): void;
  /** Close with a close code and reason. */
  close(code?: number, reason?: string): void;
  /** Listen for `open`, `message`, `close` and `error` events. */
  addEventListener(type: 'open' | 'message' | 'close' | 'error', listener: (event: WebSocketEventLike) => void): void;
}

/** A WebSocket constructor: `globalThis.WebSocket` in a browser, or the `ws` package's `WebSocket`. */
export type WebSocketConstructor = new (url: string, protocols: string[]) => WebSocketLike;

/**
 * One WebSocket to the bridge, as a Transport. A browser WebSocket cannot
 * stop reading: `pause()` and `resume()` do nothing, so what arrives while
 * the connection would rather not read is held by the frame decoder and
 * charged to the connection (nothing is read ahead of that: readAhead 0).
 */
export class BrowserWebSocketTransport implements OpenTransport {
  readonly readAhead = 0;
  private sink: TransportSink | undefined;
  /** What arrived before `attach`: messages, then the close, in order. */
  private early: Uint8Array[] = [];
  private earlyClose: { cause: IpcborError | undefined } | undefined;
  private closed = false;
  private pollTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly ws: WebSocketLike) {
    ws.addEventListener('message', (event) => {
      if (this.closed) return;
      const data = event.data;
      // The bridge sends only binary messages; anything else breaks the contract.
      // (By its tag, not instanceof: the ArrayBuffer may come from another realm.)
      if (Object.prototype.toString.call(data) !== '[object ArrayBuffer]') return this.fail('the bridge sent a message that is not binary');
      const bytes = new Uint8Array(data as ArrayBuffer);
      if (this.sink) this.sink.onData(bytes);
      else this.early.push(bytes);
    });
    ws.addEventListener('close', (event) => this.onClose(event));
  }

  attach(sink: TransportSink): void {
    this.sink = sink;
    const early = this.early;
    this.early = [];
    for (const bytes of early) sink.onData(bytes);
    if (this.earlyClose) sink.onClose(this.earlyClose.cause);
  }

  get pendingBytes(): number {
    return this.ws.bufferedAmount;
  }

  get writable(): boolean {
    return !this.closed && this.ws.readyState === OPEN;
  }

  /** One message per frame: its header and body joined. */
  write(parts: FrameParts): boolean {
    const ws = this.ws;
    if (this.closed || ws.readyState !== OPEN) return false;
    const [header, body] = parts;
    const message = new Uint8Array(header.length + body.length);
    message.set(header, 0);
    message.set(body, header.length);
    ws.send(message);
    if (ws.bufferedAmount < DEFAULT_WRITE_HIGH_WATER) return true;
    this.pollDrain();
    return false;
  }

  /** Browsers say nothing when `bufferedAmount` goes down: look again until it is under the mark, then tell the sink. */
  private pollDrain(): void {
    if (this.pollTimer !== undefined) return;
    this.pollTimer = setTimeout(() => {
      this.pollTimer = undefined;
      if (this.closed) return;
      if (this.ws.bufferedAmount >= DEFAULT_WRITE_HIGH_WATER) return this.pollDrain();
      this.sink?.onDrain();
    }, DRAIN_POLL_MS);
  }

  /** Does nothing: a browser WebSocket cannot be told to stop reading. */
  pause(): void {}

  /** Does nothing (see pause). */
  resume(): void {}

  /** Close normally once what was sent is flushed (the WebSocket sends queued messages before its close frame). */
  end(): void {
    if (!this.closed) this.ws.close(1000);
  }

  /** A browser cannot cut a WebSocket without its closing handshake: close it, and report the close now. */
  destroy(): void {
    if (this.closed) return;
    this.ws.close(1000);
    this.onClose({ type: 'close', code: 1000 });
  }

  /**
   * The bridge broke the contract: close, saying why, and report it. A
   * browser may close only with 1000 or 3000-4999 (1002 and 1003 are the
   * server's to send): 4002, in the private range, mirrors 1002.
   */
  private fail(why: string): void {
    this.ws.close(PROTOCOL_ERROR_CLOSE, why);
    this.onClose({ type: 'close', code: PROTOCOL_ERROR_CLOSE, reason: why }, new IpcborError('IPCBOR_ERR_PROTOCOL', why));
  }

  private onClose(event: WebSocketEventLike, error?: IpcborError): void {
    if (this.closed) return;
    this.closed = true;
    if (this.pollTimer !== undefined) clearTimeout(this.pollTimer);
    this.pollTimer = undefined;
    const cause = error ?? closeError(event.code, event.reason);
    if (this.sink) this.sink.onClose(cause);
    else this.earlyClose = { cause };
  }
}

/** Why a WebSocket closed, as the error the connection closes with; undefined for a normal close. */
function closeError(code = 1005, reason = ''): IpcborError | undefined {
  if (NORMAL_CLOSE.has(code)) return undefined;
  return new IpcborError('IPCBOR_ERR_CONNECTION_CLOSED', `the WebSocket closed with code ${code}${reason.length > 0 ? `: ${reason}` : code === 1006 ? ' (the connection was lost)' : ''}`, { data: { code, reason } });
}

/** The subprotocols offered: `ipcbor`, and the token's when there is one (checked: a subprotocol carries only token characters). */
export function subprotocols(token: string | undefined): string[] {
  if (token === undefined) return [WS_PROTOCOL];
  if (!WS_TOKEN_CHARS.test(token)) {
    throw new IpcborError('IPCBOR_ERR_INVALID_ADDRESS', "the token must be a non-empty run of letters, digits and -._~+!#$%&'*^`| (it travels as a WebSocket subprotocol): base64url fits");
  }
  return [WS_PROTOCOL, WS_TOKEN_PREFIX + token];
}

/**
 * Dial `url` with `WebSocket`, offering `protocols`: resolves once open,
 * rejects with IPCBOR_ERR_CONNECT when it cannot open (a browser does not
 * say why: a refused upgrade, an unreachable host and a wrong port look
 * the same) or when the server is no ipcbor bridge. `signal` aborts it.
 */
export function webSocketDialer(WebSocket: WebSocketConstructor, url: string, protocols: string[]): Dialer {
  return (signal) =>
    new Promise<OpenTransport>((resolve, reject) => {
      const failed = (why: string, cause?: unknown) => new IpcborError('IPCBOR_ERR_CONNECT', `could not connect to ${url}: ${why}`, cause === undefined ? {} : { cause });
      let ws: WebSocketLike;
      try {
        ws = new WebSocket(url, protocols);
        ws.binaryType = 'arraybuffer';
      } catch (err) {
        // A URL the browser will not open (its syntax, a blocked port, an insecure ws: from an https: page).
        reject(failed(`the WebSocket could not be made: ${err instanceof Error ? err.message : String(err)}`, err));
        return;
      }
      let settled = false;
      let detail: string | undefined;
      const settle = (err?: IpcborError) => {
        if (settled) return;
        settled = true;
        signal.removeEventListener('abort', onAbort);
        if (err === undefined) return;
        reject(err);
        if (ws.readyState <= OPEN) ws.close(1000);
      };
      const onAbort = () => settle(signal.reason instanceof IpcborError ? signal.reason : failed('cancelled'));
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      // The transport listens from the start: no message is missed between the open and attach.
      const transport = new BrowserWebSocketTransport(ws);
      ws.addEventListener('error', (event) => {
        if (typeof event.message === 'string' && event.message.length > 0) detail ??= event.message;
      });
      ws.addEventListener('close', (event) => {
        const why = "the bridge refused or could not be reached: check the URL, that the page's origin is allowed, and the token";
        settle(failed(detail === undefined ? `${why} (close code ${event.code ?? 1005})` : `${why} (${detail})`));
      });
      ws.addEventListener('open', () => {
        if (settled) return;
        if (ws.protocol !== WS_PROTOCOL) {
          settle(failed(`the server is not an ipcbor bridge: it chose the subprotocol '${ws.protocol}', not '${WS_PROTOCOL}'`));
          return;
        }
        settle();
        resolve(transport);
      });
    });
}
