/**
 * One relayed connection: the peer that faces the remote client and the
 * peer that faces the service, each with a RelayEnd as its role. Every
 * frame one end receives is written to the other as it came: the payload
 * is never decoded, only each extended frame's small head is read (for its
 * kind and id). The two peers are the core's own (framing, limits, timers,
 * budget); this file adds only what a relay does between them:
 *
 * - the hello: the client's offer and the service's answer pass through,
 *   their `maxFrameBytes` lowered to the relay's own, and both ends switch
 *   to the extended framing when the service accepts;
 * - backpressure: an end whose writes back up stops the other end reading,
 *   so nothing is buffered without bound;
 * - the close: when one end closes, what was already written to the other
 *   is flushed before that one is ended too.
 */
import type { Codec } from '../codec/cbor.js';
import { IpcborError, RemoteError, asIpcborError, guarded, messageOf } from '../errors.js';
import { encodeErrorResponse, encodeExtended, encodeRequest, encodeResponse, type FrameParts } from '../frame/encoder.js';
import { HELLO_METHOD, Kind, errorFrame, type Head } from '../protocol/heads.js';
import { readHelloRequest, readHelloResponse } from '../protocol/hello.js';
import type { ConnectionBudget } from '../peer/budget.js';
import { Peer, type PeerConfig } from '../peer/peer.js';
import type { PeerRole } from '../peer/role.js';
import type { Transport, TransportSink } from '../transport.js';
import type { RelayFrameEvent, RelayObserver, RelayedConnection } from './observe.js';

/** What every link of one relay shares, made once. */
export interface LinkShared {
  readonly codec: Codec;
  /** The peer facing the client: it receives requests and the client's kinds. */
  readonly client: PeerConfig;
  /** The peer facing the service: it receives responses and the service's kinds. */
  readonly service: PeerConfig;
  /** The relay's frame limit: offers and answers in the hello are lowered to it. */
  readonly maxFrameBytes: number;
  /** How long a failing base-framing client may wait for the answers it is owed before it is cut, in ms. */
  readonly failGrace: number;
  /** Told of what a client or the service did wrong that nobody else hears of. */
  report(err: IpcborError, link: RelayLink): void;
  /** Told of every frame moved, and of each end's close (see observe.ts). */
  readonly observe: RelayObserver | undefined;
}

/** The fields of a frame event that depend on the frame. */
type FrameFacts = Pick<RelayFrameEvent, 'method' | 'ret' | 'head' | 'byRelay'>;

/** Largest hello the relay reads (an offer is about 40 bytes). */
const MAX_HELLO_BYTES = 4096;

/**
 * Calls in flight the relay keeps track of on one connection. An ipcbor
 * service refuses calls past its maxInflight (1,024 by default) and answers
 * them, so this is reached only through a service that takes calls and
 * never answers them.
 */
const MAX_TRACKED_CALLS = 65_536;

/** Codes under which a closing end tells the other, in the extended protocol, why it goes too. */
const PASSED_ON = new Set(['IPCBOR_ERR_PROTOCOL', 'IPCBOR_ERR_BAD_FRAME', 'IPCBOR_ERR_FRAME_TOO_LARGE', 'IPCBOR_ERR_DECODE', 'IPCBOR_ERR_FRAME_TIMEOUT', 'IPCBOR_ERR_IDLE_TIMEOUT']);

/**
 * One end of a link: the role of its peer, and the sink of its transport.
 * Both ends are this class; they differ by their peer's config (what it
 * receives, which kinds it takes) and by which end is `other`.
 */
export class RelayEnd implements PeerRole, TransportSink {
  readonly peer: Peer;
  other!: RelayEnd;

  constructor(
    readonly link: RelayLink,
    readonly name: 'client' | 'service',
    transport: Transport,
    config: PeerConfig,
    budget: ConnectionBudget,
  ) {
    this.peer = new Peer(transport, this, config, budget);
  }

  // ---- the role ------------------------------------------------------------------

  /** A base-framing request from the client. */
  request(method: string, payload: Uint8Array): void {
    this.link.clientRequest(method, payload);
  }

  /** A base-framing response from the service. */
  response(ret: number, body: Uint8Array): void {
    this.link.serviceResponse(ret, body);
  }

  /** An extended frame of a kind this end's sender may send: on to the other end, as it came. */
  frame(head: Head, payload: Uint8Array, headBytes: Uint8Array): void {
    this.link.pass(this, head, payload, headBytes);
  }

  get quiet(): boolean {
    return this.link.quiet;
  }

  /** Read nothing while the other end cannot take it: what it refuses, this end must not take in. */
  holdsReading(): boolean {
    return this.link.holds(this);
  }

  /** This end's transport took what it held: the other end may read again. */
  drained(): void {
    this.other.peer.flow.update();
  }

  report(err: IpcborError): void {
    this.link.shared.report(err, this.link);
  }

  brokeBaseFraming(err: IpcborError): boolean {
    return this.link.brokeBaseFraming(this, err);
  }

  connectionClosed(reason: IpcborError): void {
    this.link.endClosed(this, reason);
  }

  // ---- the transport's sink --------------------------------------------------------

  onData(chunk: Uint8Array): void {
    this.peer.onData(chunk);
  }

  onDrain(): void {
    this.peer.onDrain();
    this.link.wrote(this);
  }

  onClose(cause?: unknown): void {
    this.peer.onClose(cause);
  }
}

/**
 * A client's connection bound to its own connection to the service. Made
 * once the service's connection is open; `client` and `service` are the
 * two ends, each to be attached to its transport.
 */
export class RelayLink {
  readonly client: RelayEnd;
  readonly service: RelayEnd;
  /** Resolves once both ends have closed. */
  readonly closed: Promise<void>;
  /** Base-framing requests sent on and not yet answered. */
  private owed = 0;
  /** The client's hello, while its answer is awaited. */
  private hello: { version: number; maxFrameBytes: number; window: number } | undefined;
  private requests = 0;
  /** Extended calls in flight, by id: for the idle timeout and a graceful close. */
  private readonly calls = new Set<number>();
  /** An idle timeout is set: frames either way are activity. */
  private readonly idleWatched: boolean;
  private draining = false;
  /** What the client broke the base framing with: answered once the answers owed before it have left. */
  private broken: IpcborError | undefined;
  /** Bytes written toward the service and not yet sent, charged to the client's budget. */
  private towardService = 0;
  private open = 2;
  private resolveClosed!: () => void;
  /** The observer, if any (shared.observe, kept here for the per-frame test). */
  private readonly observe: RelayObserver | undefined;

  constructor(
    readonly shared: LinkShared,
    clientTransport: Transport,
    serviceTransport: Transport,
    clientBudget: ConnectionBudget,
    serviceBudget: ConnectionBudget,
    /** The client's connection, as its listener saw it (for the observer). */
    readonly connection: RelayedConnection = { id: 0, transport: 'unknown' },
  ) {
    this.observe = shared.observe;
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
    this.client = new RelayEnd(this, 'client', clientTransport, shared.client, clientBudget);
    this.service = new RelayEnd(this, 'service', serviceTransport, shared.service, serviceBudget);
    this.client.other = this.service;
    this.service.other = this.client;
    this.idleWatched = shared.client.idleTimeout > 0;
  }

  /** Nothing in flight either way (for the idle timeout). */
  get quiet(): boolean {
    return this.owed === 0 && this.calls.size === 0;
  }

  /** Stop reading `end` while the other end's writes are backed up, or while a broken client waits for its answers. */
  holds(end: RelayEnd): boolean {
    if (end.other.peer.writeBlocked) return true;
    // A base-framing client is answered in order: while draining, or once it broke the framing, it is read no more.
    return end === this.client && (this.broken !== undefined || (this.draining && end.peer.protocol === 'base'));
  }

  /**
   * Something was written to `end` (or its transport handed bytes on):
   * bytes on their way to the service are charged to the client (they are
   * its requests), and a backed-up end stops the other reading at once.
   */
  wrote(end: RelayEnd): void {
    if (end === this.service) {
      const pending = this.service.peer.transport.pendingBytes;
      if (pending !== this.towardService) {
        this.client.peer.budget.chargeOut(pending - this.towardService);
        this.towardService = pending;
      }
    }
    if (end.peer.writeBlocked) end.other.peer.flow.update();
  }

  // ---- the base framing, and the hello ---------------------------------------------

  clientRequest(method: string, payload: Uint8Array): void {
    const first = this.requests++ === 0;
    let body = payload;
    if (first && method === HELLO_METHOD) {
      // The hello is the one payload the relay reads: it must be able to,
      // and to tell the service only what it can pass on itself.
      let offer: ReturnType<typeof readHelloRequest>;
      try {
        if (payload.length > MAX_HELLO_BYTES) throw new IpcborError('IPCBOR_ERR_PROTOCOL', `a hello of ${payload.length} bytes (at most ${MAX_HELLO_BYTES})`);
        offer = readHelloRequest(this.shared.codec.decode(payload));
      } catch (err) {
        // Answered here, as an ipcbor server answers an offer it cannot read: the client stays in the base framing.
        const answer = encodeErrorResponse(`relay: ${messageOf(err)}`);
        if (this.observe !== undefined) this.told(this.client, answer, 'base', { ret: 1, byRelay: true });
        this.client.peer.write(answer);
        this.wrote(this.client);
        return;
      }
      offer.maxFrameBytes = Math.min(offer.maxFrameBytes, this.shared.maxFrameBytes);
      this.hello = offer;
      body = this.shared.codec.encode({ ...(this.shared.codec.decode(payload) as Record<string, unknown>), version: offer.version, maxFrameBytes: offer.maxFrameBytes });
    }
    this.owed++;
    const frame = encodeRequest(method, body);
    if (this.observe !== undefined) this.told(this.service, frame, 'base', { method });
    this.service.peer.write(frame);
    this.wrote(this.service);
  }

  serviceResponse(ret: number, body: Uint8Array): void {
    if (this.owed === 0) throw new IpcborError('IPCBOR_ERR_PROTOCOL', 'the service answered a request that was not sent');
    this.owed--;
    const hello = this.hello;
    this.hello = undefined;
    if (hello !== undefined && ret === 0) return this.helloAnswered(hello, body);
    const frame = encodeResponse(ret, body);
    if (this.observe !== undefined) this.told(this.client, frame, 'base', { ret });
    this.client.peer.write(frame);
    this.wrote(this.client);
    this.answerBroken();
    this.endIfQuiet();
  }

  /**
   * The service answered the hello: pass the answer on and, when it
   * accepted, switch both ends. A refusal passes on as it is. An answer the
   * relay cannot read is not passed on (the client might read it otherwise
   * and switch alone): the client is told, and both ends close.
   */
  private helloAnswered(offer: { version: number; maxFrameBytes: number; window: number }, body: Uint8Array): void {
    const codec = this.shared.codec;
    const client = this.client.peer;
    if (client.phase.stage !== 'open') {
      // The client is gone, or going: nothing to switch.
      this.service.peer.beginClosing('end');
      return;
    }
    let accepted: ReturnType<typeof readHelloResponse>;
    try {
      accepted = readHelloResponse(codec.decode(body));
    } catch (err) {
      if (err instanceof RemoteError) {
        const refusal = encodeResponse(0, body);
        if (this.observe !== undefined) this.told(this.client, refusal, 'base', { ret: 0 });
        client.write(refusal);
        this.wrote(this.client);
        return;
      }
      const answer = encodeErrorResponse(`relay: the service's answer to the hello could not be read: ${messageOf(err)}`);
      if (this.observe !== undefined) this.told(this.client, answer, 'base', { ret: 1, byRelay: true });
      client.write(answer);
      client.beginClosing('end');
      this.service.peer.fail(asIpcborError(err));
      return;
    }
    const out = accepted.maxFrameBytes > this.shared.maxFrameBytes ? codec.encode({ ...(codec.decode(body) as Record<string, unknown>), maxFrameBytes: this.shared.maxFrameBytes }) : body;
    const answer = encodeResponse(0, out);
    if (this.observe !== undefined) this.told(this.client, answer, 'base', { ret: 0 });
    client.write(answer);
    this.wrote(this.client);
    // Each end now expects extended frames, with the limits its own peer announced.
    this.service.peer.enterExtended(accepted);
    client.enterExtended(offer);
  }

  /**
   * The client broke the base framing (a method name over the limit, say):
   * it gets the answers it is owed, then the error as the next answer, then
   * the connection closes.
   */
  brokeBaseFraming(end: RelayEnd, err: IpcborError): boolean {
    if (end === this.service || this.broken !== undefined) return false;
    this.broken = err;
    end.peer.dropInput();
    end.peer.timers.lingerThenCut(this.shared.failGrace, err);
    this.answerBroken();
    return true;
  }

  private answerBroken(): void {
    const err = this.broken;
    if (err === undefined || this.owed > 0) return;
    const answer = encodeErrorResponse(err.message);
    if (this.observe !== undefined) this.told(this.client, answer, 'base', { ret: 1, byRelay: true });
    this.client.peer.write(answer);
    this.client.peer.beginClosing('end');
  }

  // ---- the extended protocol -------------------------------------------------------

  /** An extended frame from `from`: on to the other end as it came (a new call while draining is refused instead). */
  pass(from: RelayEnd, head: Head, payload: Uint8Array, headBytes: Uint8Array): void {
    const to = from.other.peer;
    if (payload.length > to.peerMaxFrame) {
      // The sender was told (in the hello) the smaller of both limits.
      throw new IpcborError('IPCBOR_ERR_FRAME_TOO_LARGE', `a payload of ${payload.length} bytes is over the limit of ${to.peerMaxFrame} bytes announced in the hello`);
    }
    const frame = encodeExtended(headBytes, payload);
    const calls = this.calls;
    // A frame from the service is activity on the client's connection too (the client's own frames count already).
    if (this.idleWatched && from === this.service) this.client.peer.timers.frameArrived();
    if (from === this.client) {
      if (head.kind === Kind.Call) {
        if (this.draining) {
          const refusal = errorFrame(this.shared.codec, head.id, 'IPCBOR_ERR_SHUTTING_DOWN', 'the relay is shutting down');
          if (this.observe !== undefined) this.told(from, refusal, 'extended', { head: { kind: Kind.Error, id: head.id, code: 'IPCBOR_ERR_SHUTTING_DOWN', message: 'the relay is shutting down' }, byRelay: true });
          from.peer.write(refusal);
          this.wrote(from);
          return;
        }
        if (calls.size >= MAX_TRACKED_CALLS) throw new IpcborError('IPCBOR_ERR_OVERLOADED', `more than ${MAX_TRACKED_CALLS} calls in flight through the relay on one connection`);
        calls.add(head.id);
      } else if (head.kind === Kind.Notify && this.draining) {
        return;
      } else if (head.kind === Kind.Cancel) {
        // The CANCEL goes on first; then a relay draining may be done.
        calls.delete(head.id);
        if (this.observe !== undefined) this.told(from.other, frame, 'extended', { head });
        to.write(frame);
        this.wrote(from.other);
        this.endIfQuiet();
        return;
      }
    } else if ((head.kind === Kind.Result || head.kind === Kind.End || (head.kind === Kind.Error && head.id !== 0)) && calls.delete(head.id) && this.draining) {
      if (this.observe !== undefined) this.told(from.other, frame, 'extended', { head });
      to.write(frame);
      this.wrote(from.other);
      this.endIfQuiet();
      return;
    }
    if (this.observe !== undefined) this.told(from.other, frame, 'extended', { head });
    to.write(frame);
    this.wrote(from.other);
  }

  // ---- the observer ----------------------------------------------------------------------

  /** Tell the observer of `frame`, on its way to `to`. */
  private told(to: RelayEnd, frame: FrameParts, framing: 'base' | 'extended', facts: FrameFacts): void {
    const [header, payload] = frame;
    const event: RelayFrameEvent = {
      type: 'frame',
      connection: this.connection,
      time: performance.now(),
      direction: to === this.service ? 'to-service' : 'to-client',
      framing,
      ...facts,
      ...(framing === 'extended' ? { headBytes: header.subarray(4, header.length - 4) } : {}),
      payload,
      size: header.length + payload.length,
    };
    const observe = this.observe!;
    guarded(() => observe(event));
  }

  // ---- draining ------------------------------------------------------------------------

  /**
   * Take no new calls (a CALL is answered IPCBOR_ERR_SHUTTING_DOWN, a
   * notification dropped; a base-framing client is not read), let those in
   * flight finish, then end both ends. Resolves once both have closed.
   */
  shutdown(): Promise<void> {
    if (!this.draining) {
      this.draining = true;
      this.client.peer.flow.update();
      this.endIfQuiet();
    }
    return this.closed;
  }

  private endIfQuiet(): void {
    if (this.draining && this.quiet) this.end();
  }

  // ---- the close ---------------------------------------------------------------------

  /**
   * One end closed: the other is ended, after what was already written to
   * it (answers the service sent, calls the client sent) is flushed; it is
   * cut if its peer does not close in turn within its linger. Where the end
   * closed for a broken rule, the other end hears why, as an ERROR on id 0.
   */
  endClosed(end: RelayEnd, reason: IpcborError): void {
    const observe = this.observe;
    if (observe !== undefined) {
      const event = { type: 'close', connection: this.connection, time: performance.now(), end: end.name, reason: { code: String(reason.code), message: reason.message } } as const;
      guarded(() => observe(event));
    }
    const other = end.other.peer;
    if (end === this.service && this.towardService !== 0) {
      this.client.peer.budget.chargeOut(-this.towardService);
      this.towardService = 0;
    }
    if (other.phase.stage !== 'closed') {
      if (other.protocol === 'extended' && !(reason instanceof RemoteError) && PASSED_ON.has(String(reason.code))) {
        other.writeError(0, new IpcborError(reason.code, `relay: the ${end.name}'s connection ended: ${messageOf(reason)}`));
      }
      other.beginClosing('end');
      other.flow.update();
    }
    if (--this.open === 0) this.resolveClosed();
  }

  /** Close both ends at once. */
  destroy(cause?: IpcborError): void {
    this.client.peer.destroy(cause);
    this.service.peer.destroy(cause);
  }

  /** Stop: each end is ended after what was written to it is flushed. */
  end(): void {
    this.client.peer.beginClosing('end');
    this.service.peer.beginClosing('end');
  }
}
