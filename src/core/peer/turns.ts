/**
 * Write turns: who may ask a stream's source for its next item.
 *
 * An item is made before it can be counted: a source asked for one may
 * hand back any size. So sources are asked one at a time across everything
 * that shares the turns (all the connections of a server, or one client
 * connection), and only for a connection whose writes have room: the items
 * made and not yet counted as written are one, however many streams and
 * connections there are. Connections waiting for the turn get it in the
 * order they asked (each asks again after its turn, so they take turns).
 *
 * A source that takes longer than one turn of the event loop to make its
 * item (it waits on a database, or for something to happen) lets the next
 * waiting connection go: a stream that waits must not hold up the others.
 */

const setImmediateFn = (globalThis as { setImmediate?: (f: () => void) => unknown }).setImmediate;

/** Run `f` after pending I/O: setImmediate where the platform has it (Node), else a zero timer. */
export const afterIo = (f: () => void): void => {
  if (setImmediateFn) setImmediateFn(f);
  else globalThis.setTimeout(f, 0);
};

/**
 * Turns of the event loop, counted for every connection that defers the
 * same way: one deferred callback per turn of the loop however many
 * connections read in it (one per connection per chunk would cost more
 * than the frames it counts), and the connections that yielded go on at
 * the next.
 */
export class TurnClock {
  /** Turns that ended since the clock was made. */
  turn = 0;
  private scheduled = false;
  private waiting: (() => void)[] = [];

  constructor(private readonly defer: (f: () => void) => void) {}

  /** The turn running now; the count moves on after pending I/O. */
  now(): number {
    if (!this.scheduled) {
      this.scheduled = true;
      this.defer(this.tick);
    }
    return this.turn;
  }

  /** Run `f` once this turn is over. */
  next(f: () => void): void {
    this.waiting.push(f);
    this.now();
  }

  private readonly tick = (): void => {
    this.scheduled = false;
    this.turn++;
    const waiting = this.waiting;
    if (waiting.length === 0) return;
    this.waiting = [];
    let i = 0;
    try {
      for (; i < waiting.length; i++) waiting[i]!();
    } finally {
      // One that threw does not strand those behind it: they go at the next turn.
      if (i < waiting.length - 1) {
        for (i++; i < waiting.length; i++) this.waiting.push(waiting[i]!);
        this.now();
      }
    }
  };
}

const clocks = new WeakMap<(f: () => void) => void, TurnClock>();

/** The clock of everything that defers with `defer` (by default, the whole process). */
export function clockFor(defer: (f: () => void) => void): TurnClock {
  let clock = clocks.get(defer);
  if (clock === undefined) {
    clock = new TurnClock(defer);
    clocks.set(defer, clock);
  }
  return clock;
}

/** A connection that asks for turns. */
export interface TurnTaker {
  /** Whether it still wants the turn and its writes have room now. */
  readonly mayTakeTurn: boolean;
  /** It has the turn (numbered `turn`): its first waiting stream goes. */
  takeTurn(turn: number): void;
}

export class WriteTurns {
  private held = false;
  private seq = 0;
  /** Those waiting, in the order they asked. */
  private readonly asking = new Set<TurnTaker>();
  /** The turn a fallback is already scheduled for. */
  private fallbackFor = 0;

  constructor(private readonly defer: (f: () => void) => void = afterIo) {}

  /** The turn at once, when it is free and nobody waits for it; else undefined. */
  tryTake(): number | undefined {
    if (this.held || this.asking.size > 0) return undefined;
    this.held = true;
    return ++this.seq;
  }

  /** `taker` has a stream waiting: it gets the turn when the turn is free and it has room. */
  ask(taker: TurnTaker): void {
    this.asking.add(taker);
    if (this.held) this.scheduleFallback();
    else this.pass();
  }

  /** `taker` closed: it waits no more. */
  forget(taker: TurnTaker): void {
    this.asking.delete(taker);
  }

  /** Turn `turn` is over (its item was written, or its stream stopped); a turn passed on already is not ended twice. */
  end(turn: number): void {
    if (!this.held || this.seq !== turn) return;
    this.held = false;
    this.pass();
  }

  private pass(): void {
    if (this.held) return;
    for (const taker of this.asking) {
      this.asking.delete(taker);
      // One without room asks again when it has some.
      if (!taker.mayTakeTurn) continue;
      this.held = true;
      const turn = ++this.seq;
      taker.takeTurn(turn);
      if (this.asking.size > 0) this.scheduleFallback();
      return;
    }
  }

  /** Let the next one go after a turn of the event loop if this turn is still held then. */
  private scheduleFallback(): void {
    const turn = this.seq;
    if (this.fallbackFor === turn) return;
    this.fallbackFor = turn;
    this.defer(() => this.end(turn));
  }
}
