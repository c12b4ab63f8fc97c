/**
 * What a connection needs from a byte stream, and what it gives back. The
 * Node socket adapter (src/node/socket-transport.ts) is one Transport; a
 * WebSocket or an in-memory pipe (test/memory-transport.ts) can be others.
 * The peer calls the Transport; the Transport calls the peer's sink.
 */
import type { IpcborError } from './errors.js';
import type { FrameParts } from './frame/encoder.js';

/**
 * A byte stream a connection runs on: what to implement to carry ipcbor
 * over something new (the Node adapter wraps a `net.Socket`; the browser's
 * wraps a WebSocket). The connection writes frames and applies
 * backpressure through it; the transport reports what arrives to its
 * {@link TransportSink}.
 */
export interface Transport {
  /**
   * Queue a frame for writing. Returns false once the bytes not yet handed
   * to the operating system reach the transport's high-water mark: wait for
   * `onDrain` before writing more. A transport that is ending or closed
   * takes nothing and returns false (no `onDrain` follows; `onClose`
   * does): whoever writes into it, a stream's source for one, stops
   * making what would only be dropped.
   *
   * The parts may be views into memory shared with other frames (a small
   * encoding is a view of a 32 KiB slab): send their bytes, never their
   * whole `.buffer`, never transfer that buffer (postMessage with a
   * transfer list) or write into it, and copy a part that is held long
   * (a queue that waits for a slow reader), or it keeps its slab alive.
   */
  write(parts: FrameParts): boolean;
  /** Bytes written and not yet handed to the operating system. */
  readonly pendingBytes: number;
  /**
   * False once the transport is ending or closed (its write side was
   * ended, by us or because the peer's end arrived and the socket ended
   * in turn): nothing written would be sent, so nothing is made to be
   * written (a stream's next item). Default true.
   */
  readonly writable?: boolean;
  /** Stop delivering received bytes (backpressure); `resume` starts again. */
  pause(): void;
  /**
   * Bytes a paused transport may still read ahead and keep (Node's socket
   * reads one more chunk into its own buffer): charged to the connection
   * while it is paused. Default 0.
   */
  readonly readAhead?: number;
  /**
   * Bytes received and held by the transport itself, not yet handed on (a
   * WebSocket message not yet whole): charged to the connection like a
   * partial frame. A transport that holds some calls `onData` with an
   * empty chunk when the count changes. Default 0.
   */
  readonly buffered?: number;
  /** Deliver received bytes again after `pause` (like `socket.resume()`). */
  resume(): void;
  /** Flush what was written, then close. */
  end(): void;
  /** Close at once, dropping what is not yet written. */
  destroy(): void;
}

/** How a Transport reports back to the connection it carries: the connection gives it one with `attach`. */
export interface TransportSink {
  /** Bytes arrived. */
  onData(chunk: Uint8Array): void;
  /** Written bytes were handed on: `pendingBytes` went down (below the high-water mark). */
  onDrain(): void;
  /** The stream closed, for whatever reason; `cause` is the error, if one closed it. Called once. */
  onClose(cause?: unknown): void;
}

/**
 * A transport that is connected, waiting for the sink it will report to:
 * what a {@link Dialer} resolves with, and what a listener hands over.
 */
export interface OpenTransport extends Transport {
  /**
   * Start reporting to `sink`. Nothing may be lost before that: bytes
   * received earlier, and a close that came first, are reported to `sink`
   * once it is attached. Called once, by the connection that takes the
   * transport.
   */
  attach(sink: TransportSink): void;
}

/**
 * Opens one transport to the server; rejects with IPCBOR_ERR_CONNECT.
 * `signal` aborts it.
 *
 * `explainClose`, if the dialer has it, is asked when a first connection
 * closed before it answered the hello, which a client otherwise takes for
 * a base-framing peer: it may find the real reason (a TLS port reached without
 * TLS) and return the error to fail with, or undefined. It should resolve
 * soon once `signal` aborts; it should not reject.
 */
export type Dialer = ((signal: AbortSignal) => Promise<OpenTransport>) & {
  /** Why a first connection closed before answering the hello, if the dialer can tell (see above); undefined if not. */
  explainClose?: (signal: AbortSignal) => Promise<IpcborError | undefined>;
  /** The verified identity of the server it reached last (TLS: its certificate), where it has one: the client's `peer`. */
  identity?: () => PeerIdentity | undefined;
};

/** Facts about the peer, handed to handlers in `ctx.connection`. */
export interface ConnectionInfo {
  /** Unique per server, from 1. */
  readonly id: number;
  /** `unix`, `tcp`, `tls`, `ws`, `memory`, … */
  readonly transport: string;
  /** The peer's address where the transport has one (`127.0.0.1:51234`). */
  readonly remote?: string;
  /** Which framing the connection speaks: the base framing, or the negotiated extended protocol. */
  readonly protocol: 'base' | 'extended';
  /**
   * Who the peer proved to be, when its transport verified that (mutual
   * TLS: the client's certificate, checked against the server's CA). Frozen.
   */
  readonly peer?: PeerIdentity;
  /**
   * False when this connection may not call `$ipcbor.describe` (it then
   * answers IPCBOR_ERR_UNKNOWN_METHOD, like any unknown method). Absent: allowed.
   */
  readonly introspection?: boolean;
}

/**
 * A peer's verified identity: the certificate it presented (TLS), after the
 * transport checked it. Deeply frozen.
 */
export interface PeerIdentity {
  /** The certificate's subject, by attribute (`{ CN: 'alice', O: 'Example' }`); a repeated attribute is an array. */
  readonly subject: Readonly<Record<string, string | readonly string[]>>;
  /** Its issuer, the same way. */
  readonly issuer: Readonly<Record<string, string | readonly string[]>>;
  /** Its subject alternative names as written by OpenSSL: `DNS:localhost`, `IP Address:127.0.0.1`, `URI:spiffe://…`. */
  readonly subjectAltNames: readonly string[];
  /** SHA-256 of the certificate, as colon-separated upper-case hex (`AB:CD:…`): pin this to name one certificate. */
  readonly fingerprint256: string;
  /** Serial number, upper-case hex. */
  readonly serialNumber: string;
  /** Start of validity, as OpenSSL prints it (`Nov 30 08:38:00 2026 GMT`). */
  readonly validFrom: string;
  /** End of validity, the same way. */
  readonly validTo: string;
}

/** Something to undo: what every listener registration returns. `using` disposes it. */
export interface Disposable {
  /** Undo it (remove the listener). Calling it again does nothing. */
  dispose(): void;
  /** The same as `dispose`, for `using`. */
  [Symbol.dispose](): void;
}

export function disposable(dispose: () => void): Disposable {
  let done = false;
  const once = () => {
    if (done) return;
    done = true;
    dispose();
  };
  return { dispose: once, [Symbol.dispose]: once };
}
