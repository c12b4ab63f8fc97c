/**
 * Every default limit of ipcbor lives here, so that the documentation
 * (README "Limits", docs/PROTOCOL.md) has one place to agree with.
 */

/** Longest method name accepted, in UTF-8 bytes. */
export const DEFAULT_MAX_METHOD_BYTES = 256;

/** Largest payload / body of one frame, in bytes (16 MiB). */
export const DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024;

/** Most data items one decode accepts (every array element, map key and value, and the top item). */
export const DEFAULT_MAX_ITEMS = 1_000_000;

/** Deepest nesting of arrays and maps a decoded CBOR item may have. */
export const DEFAULT_MAX_DEPTH = 64;

/** Calls one connection may have in flight on the server before it stops reading. */
export const DEFAULT_MAX_INFLIGHT = 1024;

/** Event frames queued for one slow subscriber connection before the oldest are dropped. */
export const DEFAULT_EVENT_QUEUE = 1024;

/** Bytes of events queued for one slow subscriber (server) or one unread subscription (client) before the oldest are dropped. */
export const DEFAULT_EVENT_QUEUE_BYTES = 4 * 1024 * 1024;

/**
 * Bytes one connection may make us hold (a frame arriving, payloads of its
 * running calls, answers, items and events queued): past it, that
 * connection is not read until some are released.
 */
export const DEFAULT_MAX_CONNECTION_BYTES = 32 * 1024 * 1024;

/** The same, across all of a server's connections together. */
export const DEFAULT_MAX_SERVER_BYTES = 256 * 1024 * 1024;

/** Connections a server holds at once; more are closed as they arrive. */
export const DEFAULT_MAX_CONNECTIONS = 10_000;

/** TLS connections a listener holds in their handshake; past it, a new one closes the oldest. */
export const DEFAULT_MAX_HANDSHAKES = 128;

/** How long a TLS server lets a peer take over its handshake, in ms (Node's own default is 120,000). */
export const DEFAULT_HANDSHAKE_TIMEOUT = 10_000;

/** Time a peer has to finish a frame once its first byte arrived, in ms. */
export const DEFAULT_FRAME_TIMEOUT = 30_000;

/** TCP keepalive: idle time before the first probe, in ms (0: off). */
export const DEFAULT_KEEPALIVE = 60_000;

/** Event names one connection may subscribe to at once. */
export const DEFAULT_MAX_SUBSCRIPTIONS = 256;

/** Longest event name, in UTF-8 bytes (subscribe and emit). */
export const DEFAULT_MAX_EVENT_NAME_BYTES = 256;

/** Items a stream receiver grants its sender before it must grant more (credit window). */
export const DEFAULT_STREAM_WINDOW = 64;

/** Bytes a connection may buffer for writing before the writer waits for `drain`. */
export const DEFAULT_WRITE_HIGH_WATER = 1024 * 1024;

/** Version of the extended protocol this implementation speaks (docs/PROTOCOL.md). */
export const PROTOCOL_VERSION = 1;

/** Reserved method namespace: base-framing-style names never start with `$`. */
export const RESERVED_PREFIX = '$ipcbor.';

/** The WebSocket subprotocol of the bridge (src/node/bridge.ts): the browser client offers it, the bridge selects it. */
export const WS_PROTOCOL = 'ipcbor';

/** The prefix of the subprotocol that carries a bearer token to the bridge (`ipcbor.bearer.<token>`). */
export const WS_TOKEN_PREFIX = 'ipcbor.bearer.';

/** What a bridge token may hold: it travels as a subprotocol, whose characters are RFC 7230 token characters. */
export const WS_TOKEN_CHARS = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/;

/** Longest delay a timer can wait (2^31-1 ms, about 24.8 days); a longer timeout or deadline means none. */
export const MAX_TIMER_MS = 0x7fffffff;

/** Longest error text sent on the wire; an ERROR head must stay far under the 64 KiB head limit. */
export const MAX_ERROR_TEXT = 4096;

/**
 * Frames one connection may have run in one turn of the event loop before
 * it yields: a chunk can carry thousands of tiny frames, and one peer must
 * not hold up every other for as long as they take.
 */
export const FRAMES_PER_TURN = 256;

/**
 * Stream items a server (or a client connection) asks its sources for in
 * one turn of the event loop, at most: then pending I/O goes first. Items
 * written into a fast socket leave at once, so nothing else would stop
 * many streams from making items for as long as their credit lasts while
 * every other peer waits.
 */
export const ITEMS_PER_TURN = 256;

/** How long an end that closed its side waits for the other to close in turn before it cuts the connection, in ms. */
export const CLOSE_LINGER_MS = 2000;

/** How long a connection that broke the base framing has for the answers it is still owed to leave, in ms. */
export const FAIL_GRACE_MS = 5000;

/** How long a refused connection may take to send its first frame and read the answer, in ms. */
export const REFUSE_GRACE_MS = 2000;

/** How long closing (a server's or a client's) waits for calls in flight to finish before it cuts them, in ms. */
export const DEFAULT_CLOSE_TIMEOUT = 10_000;

/** How long connecting, the hello included, may take, in ms. */
export const DEFAULT_CONNECT_TIMEOUT = 10_000;

/** Calls and notifications a reconnecting client holds while disconnected (`whileDisconnected: 'wait'`). */
export const DEFAULT_MAX_QUEUED = 1024;

/** The backoff between reconnection attempts, by default (README, "Reconnection"). */
export const DEFAULT_RECONNECT = Object.freeze({
  /** The cap of the first attempt's delay, in ms: attempt n waits up to min(maxDelay, initialDelay·factor^(n-1)). */
  initialDelay: 100,
  /** The largest delay between two attempts, in ms. */
  maxDelay: 10_000,
  /** How much the cap grows per attempt. */
  factor: 2,
  /** The share of each delay that is random, 0 to 1 (1: "full jitter", uniform between 0 and the cap). */
  jitter: 1,
  /** Failed attempts in a row before the client gives up and closes (Infinity: never). */
  maxAttempts: Infinity,
});

/** State changes a `states()` reader may fall behind before the oldest are dropped. */
export const STATE_BACKLOG = 64;

/** The command line: how long `ipcbor call` waits for its answer, in ms. */
export const DEFAULT_CLI_CALL_TIMEOUT = 30_000;

/** The command line: how long `ipcbor describe` waits, in ms. */
export const DEFAULT_CLI_DESCRIBE_TIMEOUT = 10_000;

/** The command line: how long `ipcbor ls` waits for each service, in ms. */
export const DEFAULT_CLI_PROBE_TIMEOUT = 1000;
