/**
 * The streams of one connection, both ways, with their credit.
 *
 * Inbound (this end receives): items wait in a queue charged to the
 * budget; as the reader takes them, credit goes back to the sender in
 * batches of half a window. An item beyond the credit granted breaks the
 * protocol. Outbound (this end sends): the source is asked for an item
 * only with credit from the other end, and with the write turn (flow.ts),
 * so what is made before it is counted is one item at a time.
 */
import { IpcborError, asIpcborError, messageOf } from '../errors.js';
import { Kind, cancelHead, creditHead, endHead } from '../protocol/heads.js';
import type { ConnectionBudget } from './budget.js';
import type { Phase } from './phase.js';
import { AsyncQueue } from './queue.js';
import type { PeerRole } from './role.js';

/** What the stream table needs of its peer (peer.ts). */
export interface StreamsHost {
  readonly phase: Phase;
  readonly role: PeerRole;
  readonly budget: ConnectionBudget;
  /** Items this end accepts per stream before it grants more. */
  readonly window: number;
  /** Items the other end accepts per stream before granting more. */
  readonly peerWindow: number;
  readonly flow: { update(): void; takeWriteTurn(): number | Promise<number>; endWriteTurn(turn: number): void };
  decodeCosted(payload: Uint8Array): { value: unknown; cost: number };
  writeHead(head: readonly unknown[]): void;
  writeValue(kind: typeof Kind.Result | typeof Kind.Item, id: number, value: unknown, method: string): void;
  writeError(id: number, err: IpcborError): void;
}

/** What the opener of an inbound stream hears of it. */
export interface InboundHooks {
  /** END arrived: the stream is complete. */
  ended?(): void;
  /** The reader stopped early (CANCEL was sent). */
  stopped?(): void;
  /** An item could not be decoded: the reader gets `err`, and CANCEL was sent. */
  failed?(err: IpcborError): void;
}

/** A stream this end receives. */
interface Inbound {
  readonly queue: AsyncQueue<unknown>;
  /** Items the sender may still send. */
  allowance: number;
  /** Items read since credit was last granted. */
  consumed: number;
  readonly hooks: InboundHooks | undefined;
}

/** A stream this end sends: it may send `credit` more items. */
interface Outbound {
  credit: number;
  stopped: boolean;
  wake: (() => void) | undefined;
}

/** The empty table every connection starts with, shared and never written to. */
const NONE: Map<number, never> = new Map<number, never>();

export class StreamTable {
  // Made on first use (most connections never stream): an idle
  // connection's memory is mostly what it made up front.
  private inbound: Map<number, Inbound> = NONE;
  private outbound: Map<number, Outbound> = NONE;

  constructor(private readonly peer: StreamsHost) {}

  /** Items this end accepts per stream before it grants more. */
  private get window(): number {
    return this.peer.window;
  }

  // ---- inbound -------------------------------------------------------------------

  /** ITEM or END for stream `id`; one for no stream here (a late frame of one already finished) is dropped. */
  received(kind: typeof Kind.Item | typeof Kind.End, id: number, payload: Uint8Array): void {
    let s = this.inbound.get(id);
    if (!s) {
      // The first frame of a stream the role opens now (a client's result stream).
      if (!this.peer.role.streamArrived?.(id)) return;
      s = this.inbound.get(id);
      if (!s) return;
    }
    if (kind === Kind.End) {
      this.inbound.delete(id);
      s.queue.end();
      s.hooks?.ended?.();
      return;
    }
    if (--s.allowance < 0) throw new IpcborError('IPCBOR_ERR_PROTOCOL', `stream ${id} sent more items than its credit`);
    let item: { value: unknown; cost: number };
    try {
      item = this.peer.decodeCosted(payload);
    } catch (err) {
      this.inbound.delete(id);
      const e = new IpcborError('IPCBOR_ERR_DECODE', `stream item: ${messageOf(err)}`, { cause: err });
      s.queue.fail(e);
      // Tell the sender to stop; the reader sees the error.
      this.peer.writeHead(cancelHead(id));
      s.hooks?.failed?.(e);
      return;
    }
    this.peer.budget.charge(item.cost);
    s.queue.push(item.value, item.cost);
    this.peer.flow.update();
  }

  /** A queue for a stream this end receives on call `id`, with credit granted as the reader takes items. */
  open(id: number, hooks?: InboundHooks): AsyncQueue<unknown> {
    const peer = this.peer;
    if (peer.phase.stage === 'closed') {
      // Nothing will arrive on it: its reader hears so at once.
      const queue = new AsyncQueue<unknown>({});
      queue.fail(new IpcborError('IPCBOR_ERR_CONNECTION_CLOSED', 'the connection closed'));
      return queue;
    }
    const queue: AsyncQueue<unknown> = new AsyncQueue({
      released: (bytes, taken) => {
        peer.budget.release(bytes);
        const s = this.inbound.get(id);
        if (!taken || s === undefined || s.queue !== queue) return;
        // Grant in batches of half a window: fewer CREDIT frames, no stall.
        if (++s.consumed >= Math.max(1, this.window >> 1)) {
          s.allowance += s.consumed;
          peer.writeHead(creditHead(id, s.consumed));
          s.consumed = 0;
        }
      },
      stopped: () => {
        const s = this.inbound.get(id);
        if (s?.queue !== queue) return;
        this.inbound.delete(id);
        peer.writeHead(cancelHead(id));
        s.hooks?.stopped?.();
      },
    });
    if (this.inbound === NONE) this.inbound = new Map();
    this.inbound.set(id, { queue, allowance: this.window, consumed: 0, hooks });
    return queue;
  }

  /**
   * End inbound stream `id` here: the reader gets what is queued, then
   * `err`. With `drop` (the call is over and nobody will read on: a handler
   * that returned without reading its stream, a caller that gave up), what
   * is queued is released now instead of staying charged for the life of
   * the connection.
   */
  closeInbound(id: number, err: IpcborError, drop = false): void {
    const s = this.inbound.get(id);
    if (!s) return;
    this.inbound.delete(id);
    s.queue.fail(err, drop);
  }

  // ---- outbound ------------------------------------------------------------------

  /** CREDIT for stream `id`: it may send `n` more. Credit adds up, and never past what a number holds exactly. */
  credit(id: number, n: number): void {
    const out = this.outbound.get(id);
    if (!out) return;
    out.credit = Math.min(out.credit + n, Number.MAX_SAFE_INTEGER);
    wake(out);
  }

  /**
   * Send `source` as the stream of call `id`, item by item as credit
   * allows, each item asked for only with the write turn. Resolves with
   * how it ended: `done`, `stopped` (the other end cancelled, or the call
   * ended), or the error it failed with (sent as ERROR for the call). The
   * source is closed unless it finished by itself.
   */
  async send(id: number, source: AsyncIterable<unknown>, method: string): Promise<'done' | 'stopped' | IpcborError> {
    const peer = this.peer;
    const flow = peer.flow;
    const out: Outbound = { credit: peer.peerWindow, stopped: false, wake: undefined };
    if (this.outbound === NONE) this.outbound = new Map();
    this.outbound.set(id, out);
    let it: AsyncIterator<unknown> | undefined;
    let sourceDone = false;
    try {
      it = source[Symbol.asyncIterator]();
      for (;;) {
        while (!out.stopped && out.credit <= 0) await new Promise<void>((r) => (out.wake = r));
        if (out.stopped) return 'stopped';
        const taken = flow.takeWriteTurn();
        const turn = typeof taken === 'number' ? taken : await taken;
        try {
          if (out.stopped || peer.phase.stage === 'closed') return 'stopped';
          let r: IteratorResult<unknown>;
          try {
            r = await it.next();
          } catch (err) {
            sourceDone = true;
            throw err;
          }
          if (r.done) {
            sourceDone = true;
            if (out.stopped) return 'stopped';
            peer.writeHead(endHead(id));
            return 'done';
          }
          if (out.stopped) return 'stopped';
          out.credit--;
          peer.writeValue(Kind.Item, id, r.value, method);
        } finally {
          flow.endWriteTurn(turn);
        }
      }
    } catch (err) {
      if (out.stopped) return 'stopped';
      const e = asIpcborError(err, { method, code: 'IPCBOR_ERR_HANDLER' });
      peer.writeError(id, e);
      return e;
    } finally {
      if (this.outbound.get(id) === out) this.outbound.delete(id);
      if (!sourceDone && it) {
        try {
          await it.return?.();
        } catch {
          // the source's own cleanup failed; nobody is left to tell
        }
      }
    }
  }

  /** Stop sending the stream of call `id` (the call ended here, or the other end cancelled it). */
  stopOutbound(id: number): void {
    const out = this.outbound.get(id);
    if (!out) return;
    this.outbound.delete(id);
    stop(out);
  }

  /**
   * Call `id` is over: the stream it sends stops, and the stream it
   * receives, if any, ends with `err` (its queue released with `drop`).
   */
  endCall(id: number, err: IpcborError | undefined, drop: boolean): void {
    this.stopOutbound(id);
    if (err !== undefined) this.closeInbound(id, err, drop);
  }

  /** The connection closed: every reader gets `err`, every sender stops. */
  closeAll(err: IpcborError): void {
    for (const s of this.inbound.values()) s.queue.fail(err);
    this.inbound = NONE;
    for (const o of this.outbound.values()) stop(o);
    this.outbound = NONE;
  }
}

function wake(out: Outbound): void {
  const w = out.wake;
  out.wake = undefined;
  w?.();
}

function stop(out: Outbound): void {
  out.stopped = true;
  wake(out);
}
