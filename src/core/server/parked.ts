/**
 * Calls parked until the application runs them: the executor of the lazy
 * server (nim-ffi's `IpcServer::handle_new_messages`) and of the event
 * loop. A parked call still holds its place in its connection's budget
 * (so a full queue stops reading that connection), and its deadline and
 * cancellation still reach it: a call that ends while parked is answered
 * at once and skipped when the application gets to it.
 */
import type { Dispatcher } from '../dispatcher.js';
import { dispatch, type Executor, type IncomingCall } from './call.js';

export class ParkedCalls {
  private queue: IncomingCall[] = [];
  private readonly waiters = new Set<() => void>();
  /** Queue length at which ended calls are swept out (the budget bounds live ones, not ended ones). */
  private sweepAt = 64;

  /** The executor that parks every call; `heldBytes`: what a user of the queue adds per call (the event loop's message). */
  readonly executor: Executor;

  constructor(heldBytes = 0) {
    this.executor = Object.assign((call: IncomingCall) => this.park(call), { heldBytes });
  }

  private park(call: IncomingCall): void {
    this.queue.push(call);
    if (this.queue.length >= this.sweepAt) {
      // Calls cancelled or past their deadline while parked gave their
      // budget back: without a sweep, a peer could park any number of them
      // between two polls. Amortized O(1): the next sweep waits until the
      // queue has doubled.
      this.queue = this.queue.filter((c) => !c.done);
      this.sweepAt = Math.max(64, this.queue.length * 2);
    }
    for (const w of [...this.waiters]) w();
  }

  /** Calls waiting (some may have ended meanwhile: they are skipped). */
  get size(): number {
    return this.queue.length;
  }

  /** Take every call waiting now, in arrival order, dropping those already ended. */
  take(): IncomingCall[] {
    const calls = this.queue;
    this.queue = [];
    this.sweepAt = 64;
    return calls.filter((c) => !c.done);
  }

  /** Call `f` when a call is parked; returns the way to stop. */
  onParked(f: () => void): () => void {
    this.waiters.add(f);
    return () => this.waiters.delete(f);
  }

  /**
   * Run every call waiting now against `dispatcher`, with `app` as the
   * handlers' `ctx.app`. Handlers that return a plain value are answered
   * before this returns. Returns how many calls were run.
   */
  run(dispatcher: Dispatcher, app: unknown): number {
    const calls = this.take();
    for (const call of calls) dispatch(call, dispatcher, app);
    return calls.length;
  }

  /** Like run(), then wait until every call run has been answered (or ended otherwise). */
  async runSettled(dispatcher: Dispatcher, app: unknown): Promise<number> {
    const calls = this.take();
    await Promise.all(calls.map((call) => new Promise<void>((resolve) => dispatch(settling(call, resolve), dispatcher, app))));
    return calls.length;
  }
}

/** The same call, telling `settled` once it is answered or ends otherwise (cancel, deadline, close). */
function settling(call: IncomingCall, settled: () => void): IncomingCall {
  const signal = call.ctx.signal;
  if (signal.aborted) settled();
  else signal.addEventListener('abort', settled, { once: true });
  return {
    method: call.method,
    ctx: call.ctx,
    params: () => call.params(),
    get done() {
      return call.done;
    },
    oneWay: call.oneWay === true,
    reply(value) {
      call.reply(value);
      settled();
    },
    fail(err) {
      call.fail(err);
      settled();
    },
  };
}
