/**
 * ipcbor in the browser: the client of `connect()` over a WebSocket to
 * ipcbor's WebSocket bridge (`createRelay({ listen: 'ws:…', to })`). The
 * same typed client as in Node: calls, `client.service<typeof svc>()`,
 * events, streams both ways, cancellation, reconnection.
 *
 * Plain ES modules that import only each other and the core, relatively:
 * a page loads them from the bridge as they are, no bundler needed,
 *
 *     import { connect } from '/ipcbor/browser/index.js';
 *     const client = await connect('/', { token });
 *
 * @packageDocumentation
 * @module ipcbor/browser
 */
import { createClient, type Client, type ClientOptions } from '../core/client/client.js';
import { IpcborError } from '../core/errors.js';
import { subprotocols, webSocketDialer, type WebSocketConstructor } from './websocket.js';

export * from '../core/defaults.js';
export { IpcborError, RemoteError, type ErrorCode } from '../core/errors.js';
export type { Client, ClientOptions, ClientState, ClientStateChange, ReconnectOptions } from '../core/client/client.js';
export type { CallOptions } from '../core/call-options.js';
export type { Remote, RemoteEvents } from '../core/client/remote.js';
export { Subscription, type EventListener, type EventMessage } from '../core/client/subscription.js';
export { defineService, method, serviceOf } from '../core/service.js';
export type { Service, AnyService, MethodDef, EventsOf, Description, DescribeService, DescribeMethod } from '../core/service.js';
export { s, type Schema, type Infer } from '../core/schema.js';
export type { WebSocketConstructor, WebSocketLike, WebSocketEventLike } from './websocket.js';

/** The options of the browser's `connect()`: those of every client, and how to reach the bridge. */
export interface BrowserConnectOptions extends ClientOptions {
  /**
   * The bridge's bearer token (its `websocket.token`), sent as the
   * subprotocol `ipcbor.bearer.<token>`, never in the URL. Letters, digits
   * and `-._~+!#$%&'*^\`|` only: base64url fits.
   */
  token?: string;
  /**
   * The WebSocket class to dial with. Default: `globalThis.WebSocket` (every
   * browser, Node 22 and later). Under Node 20, pass the `ws` package's
   * `WebSocket`.
   */
  WebSocket?: WebSocketConstructor;
}

/**
 * The WebSocket URL that `url` names. Accepted:
 * - `ws://…` and `wss://…`, as they are;
 * - `http://…` and `https://…`: the same host, port and path over `ws:`
 *   and `wss:` respectively;
 * - the relay's own address form, `ws:HOST:PORT` and `wss:HOST:PORT`
 *   (what `relay.addresses` lists);
 * - in a page, a relative URL (`/`, `ws`, `../bridge`): resolved against
 *   the page's address, then mapped as `http(s)://` is, so a page served by
 *   the bridge connects with `connect('/')`.
 *
 * A fragment (`#…`) is dropped. Anything else rejects with
 * IPCBOR_ERR_INVALID_ADDRESS.
 */
export function webSocketUrl(url: string): string {
  const base = (globalThis as { location?: { href?: unknown } }).location?.href;
  let parsed: URL;
  try {
    parsed = typeof base === 'string' ? new URL(url, base) : new URL(url);
  } catch {
    throw new IpcborError('IPCBOR_ERR_INVALID_ADDRESS', `'${url}' is not a URL${typeof base === 'string' ? '' : ' (a relative URL needs a page to be resolved against)'}`);
  }
  switch (parsed.protocol) {
    case 'ws:':
    case 'wss:':
      break;
    case 'http:':
      parsed.protocol = 'ws:';
      break;
    case 'https:':
      parsed.protocol = 'wss:';
      break;
    default:
      throw new IpcborError('IPCBOR_ERR_INVALID_ADDRESS', `'${url}' is not a ws:, wss:, http: or https: URL`);
  }
  parsed.hash = '';
  return parsed.href;
}

/** `globalThis.WebSocket`, or a clear error where there is none. */
function globalWebSocket(): WebSocketConstructor {
  const WebSocket = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (WebSocket === undefined) throw new IpcborError('IPCBOR_ERR_CONNECT', "this platform has no global WebSocket: pass one as the WebSocket option (under Node 20, the 'ws' package's)");
  return WebSocket;
}

/**
 * Connect to a service through ipcbor's WebSocket bridge at `url` (see
 * `webSocketUrl` for the forms it takes): resolves with the same Client as
 * Node's `connect()` once the WebSocket is open and the hello answered.
 *
 * Rejects with IPCBOR_ERR_CONNECT when the bridge cannot be reached or
 * refuses the connection (a browser does not tell which: a wrong URL, an
 * origin the bridge does not allow, a missing or wrong token), with
 * IPCBOR_ERR_INVALID_ADDRESS for a URL or token it cannot use, and with
 * IPCBOR_ERR_CANCELLED when `signal` aborts it. With `reconnect`, later
 * connections dial the same URL with the same token.
 */
export async function connect(url: string, options: BrowserConnectOptions = {}): Promise<Client> {
  const { token, WebSocket, ...clientOptions } = options;
  const href = webSocketUrl(url);
  const dial = webSocketDialer(WebSocket ?? globalWebSocket(), href, subprotocols(token));
  return createClient(dial, href, clientOptions);
}
