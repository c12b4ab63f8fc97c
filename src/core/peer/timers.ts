/**
 * A connection's timers, each bounding what a peer can make us wait for:
 *
 * - frame: a frame begun must be finished within `frameTimeout` of its
 *   first byte (timed only while the frame waits on the peer, not while
 *   we hold it back);
 * - send: while the server's unsent bytes are over half its budget, a
 *   peer that read nothing of what was sent to it for `frameTimeout` is
 *   cut (load shedding);
 * - idle: no frame and nothing in flight for `idleTimeout` ends the
 *   connection;
 * - linger: once our side is ended, the transport is cut after `linger`
 *   ms if the peer does not close its side in turn.
 *
 * Every timer is in the background (it does not keep the process alive),
 * and all are cleared when the connection closes.
 */
import { MAX_TIMER_MS } from '../constants.js';
import { IpcborError } from '../errors.js';
import type { FrameDecoder } from '../frame/decoder.js';
import type { ConnectionBudget } from './budget.js';
import type { Phase } from './phase.js';

/** What the timers need of their peer (peer.ts). */
export interface TimersHost {
  readonly phase: Phase;
  readonly decoder: FrameDecoder;
  /** Its `buffered`: bytes of a message the transport itself holds, not yet whole (a WebSocket's). */
  readonly transport: { readonly buffered?: number };
  readonly budget: ConnectionBudget;
  readonly config: { readonly frameTimeout: number; readonly idleTimeout: number };
  readonly flow: { readonly delivering: boolean; readonly sent: number; readonly unsent: number };
  /** Nothing in flight. */
  readonly quiet: boolean;
  report(err: IpcborError): void;
  cut(err: IpcborError): void;
  beginClosing(kind: 'drain' | 'end'): void;
  destroy(cause?: IpcborError): void;
}

const setTimer = globalThis.setTimeout;
const clearTimer = globalThis.clearTimeout;

/** A timer that does not keep the process alive where the platform allows. */
export function backgroundTimer(f: () => void, ms: number): ReturnType<typeof setTimeout> {
  const t = setTimer(f, Math.min(ms, MAX_TIMER_MS));
  (t as { unref?: () => void }).unref?.();
  return t;
}

type Timer = ReturnType<typeof setTimeout> | undefined;

/** Nothing of a frame has arrived: neither in the decoder nor held by the transport (a WebSocket message not yet whole). */
function betweenFrames(peer: TimersHost): boolean {
  return peer.decoder.idle && !((peer.transport.buffered ?? 0) > 0);
}

export class PeerTimers {
  private frame: Timer;
  private frameMark = 0;
  private send: Timer;
  private idle: Timer;
  private linger: Timer;
  private lingerUntil = Infinity;
  private lastFrameAt = 0;

  /** Read on every frame: kept here. */
  private readonly frameTimeout: number;
  private readonly idleTimeout: number;

  constructor(private readonly peer: TimersHost) {
    this.frameTimeout = peer.config.frameTimeout;
    this.idleTimeout = peer.config.idleTimeout;
    if (this.idleTimeout > 0) this.armIdle();
  }

  /** A frame arrived (for the idle timer). */
  frameArrived(): void {
    if (this.idleTimeout > 0) this.lastFrameAt = Date.now();
  }

  /** Time the frame the decoder holds, or stop timing when there is none or we hold it back. */
  syncFrame(): void {
    const limit = this.frameTimeout;
    if (limit <= 0) return;
    const peer = this.peer;
    const decoder = peer.decoder;
    if (betweenFrames(peer) || !peer.flow.delivering || peer.phase.stage === 'closed') {
      if (this.frame !== undefined) clearTimer(this.frame);
      this.frame = undefined;
      return;
    }
    if (this.frame !== undefined) return;
    this.frameMark = decoder.delivered;
    this.frame = backgroundTimer(() => {
      this.frame = undefined;
      // A frame was delivered meanwhile: the one pending now started later.
      if (decoder.delivered !== this.frameMark) return this.syncFrame();
      if (betweenFrames(peer) || !peer.flow.delivering) return;
      // A peer stuck mid-frame may not read either: no goodbye, the
      // connection and all it holds go at once.
      peer.cut(new IpcborError('IPCBOR_ERR_FRAME_TIMEOUT', `a frame was not finished within ${limit} ms of its first byte`));
    }, limit);
  }

  /** Bytes wait to be sent: watch that the peer reads some (see flow.ts). */
  watchSending(): void {
    if (this.send !== undefined || this.frameTimeout <= 0) return;
    const limit = this.frameTimeout;
    const peer = this.peer;
    const mark = peer.flow.sent;
    this.send = backgroundTimer(() => {
      this.send = undefined;
      if (peer.phase.stage === 'closed' || peer.flow.unsent === 0) return;
      if (peer.flow.sent === mark && peer.budget.server?.mayMake === false) {
        peer.cut(new IpcborError('IPCBOR_ERR_FRAME_TIMEOUT', `the peer read nothing of what was sent to it for ${limit} ms while the server's unsent bytes were over half its budget`));
        return;
      }
      this.watchSending();
    }, limit);
  }

  private armIdle(): void {
    const limit = this.idleTimeout;
    const peer = this.peer;
    this.lastFrameAt = Date.now();
    const check = () => {
      this.idle = undefined;
      // Ending or closed: the connection is going by itself.
      if (peer.phase.stage === 'closed' || peer.phase.stage === 'ending') return;
      const idleFor = Date.now() - this.lastFrameAt;
      if (idleFor >= limit && peer.quiet && betweenFrames(peer)) {
        peer.report(new IpcborError('IPCBOR_ERR_IDLE_TIMEOUT', `closed after ${limit} ms idle`));
        peer.beginClosing('end');
        return;
      }
      this.idle = backgroundTimer(check, Math.max(1, limit - Math.min(idleFor, limit) || limit));
    };
    this.idle = backgroundTimer(check, limit);
  }

  /**
   * Cut the transport after `ms` unless it closed by then (with `cause`,
   * if the connection is still open then). The earliest of several such
   * deadlines holds.
   */
  lingerThenCut(ms: number, cause?: IpcborError): void {
    const until = Date.now() + ms;
    if (until >= this.lingerUntil) return;
    if (this.linger !== undefined) clearTimer(this.linger);
    this.lingerUntil = until;
    const peer = this.peer;
    this.linger = backgroundTimer(() => peer.destroy(cause), ms);
  }

  /** The transport closed: no linger is needed, and none holds the connection. */
  transportClosed(): void {
    if (this.linger !== undefined) clearTimer(this.linger);
    this.linger = undefined;
    this.lingerUntil = -Infinity;
  }

  /** The connection closed: no timer but the linger (which cuts a transport still ending). */
  closed(): void {
    if (this.frame !== undefined) clearTimer(this.frame);
    if (this.idle !== undefined) clearTimer(this.idle);
    if (this.send !== undefined) clearTimer(this.send);
    this.frame = this.idle = this.send = undefined;
  }
}
