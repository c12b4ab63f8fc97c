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
 *
 * A server's turns also have a gate: while its unsent bytes, on all its
 * connections together, are over half its budget, no turn is given, and
 * those asking keep their place until the bytes leave (one callback, not
 * one per connection). And at most ITEMS_PER_TURN turns are given in one
 * turn of the event loop, and (with a gate) only while the bytes written
 * in it are within the gate's turnBytes: fast sources writing into fast
 * sockets then let pending I/O (other peers' calls, their CREDIT, the
 * closes of sockets whose peers left) go first.
 */

import { ITEMS_PER_TURN } from '../constants.js';

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
  /** Whether it still wants the turn and its own writes have room now (one without asks again when it has some). */
  readonly mayTakeTurn: boolean;
  /** It has the turn (numbered `turn`): its first waiting stream goes. */
  takeTurn(turn: number): void;
}

/**
 * What may close the turns for everyone at once: a server's unsent bytes,
 * on all its connections together, over half its budget (ServerBudget).
 */
export interface TurnGate {
  readonly mayMake: boolean;
  /** Call `f` once when `mayMake` is next true again. */
  whenSent(f: () => void): void;
  /** Bytes written, in all (it only grows). */
  readonly written: number;
  /** The most bytes written in one turn of the event loop before the turns wait for the next. */
  readonly turnBytes: number;
}

export class WriteTurns {
  private readonly clock: TurnClock;
  /** Turns given in turn `loopTurn` of the event loop, and the gate's bytes written when it began. */
  private given = 0;
  private writtenBefore = 0;
  private loopTurn = -1;
  /** A pass waits for the next turn of the event loop. */
  private nextAwaited = false;
  private held = false;
  private seq = 0;
  /** Those waiting, in the order they asked. */
  private readonly asking = new Set<TurnTaker>();
  /** The turn a fallback is already scheduled for. */
  private fallbackFor = 0;
  /** The gate was closed at a pass: its reopening is awaited. */
  private gateAwaited = false;

  /**
   * @param gate - closes the turns for all who share them while it says
   *   so (a server's guarded connections): those asking keep their place,
   *   and one callback reopens them, however many wait
   */
  constructor(
    private readonly defer: (f: () => void) => void = afterIo,
    private readonly gate?: TurnGate,
  ) {
    this.clock = clockFor(defer);
  }

  /** The turn at once, when it is free, open and nobody waits for it; else undefined. */
  tryTake(): number | undefined {
    if (this.held || this.asking.size > 0 || (this.gate !== undefined && !this.gate.mayMake) || !this.mayGive()) return undefined;
    this.given++;
    this.held = true;
    return ++this.seq;
  }

  /** Fewer than ITEMS_PER_TURN turns were given in this turn of the event loop, and (gate) fewer than its turnBytes written. */
  private mayGive(): boolean {
    const now = this.clock.now();
    const gate = this.gate;
    if (now !== this.loopTurn) {
      this.loopTurn = now;
      this.given = 0;
      this.writtenBefore = gate?.written ?? 0;
    }
    return this.given < ITEMS_PER_TURN && (gate === undefined || gate.written - this.writtenBefore <= gate.turnBytes);
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
    if (this.held || this.asking.size === 0) return;
    const gate = this.gate;
    if (gate !== undefined && !gate.mayMake) {
      if (!this.gateAwaited) {
        this.gateAwaited = true;
        gate.whenSent(this.reopen);
      }
      return;
    }
    if (!this.mayGive()) return this.passLater();
    for (const taker of this.asking) {
      this.asking.delete(taker);
      // One without room asks again when it has some.
      if (!taker.mayTakeTurn) continue;
      this.given++;
      this.held = true;
      const turn = ++this.seq;
      taker.takeTurn(turn);
      if (this.asking.size > 0) this.scheduleFallback();
      return;
    }
  }

  /**
   * The gate opened. Its callback comes after pending I/O (ServerBudget's
   * wakes do): when many connections close together (their peers left),
   * each close lets unsent bytes go, and a pass at once would have the
   * next connection's source make an item that its own close, a moment
   * later, drops.
   */
  private readonly reopen = (): void => {
    this.gateAwaited = false;
    this.pass();
  };

  /** Pass at the next turn of the event loop. */
  private passLater(): void {
    if (this.nextAwaited) return;
    this.nextAwaited = true;
    this.clock.next(this.resume);
  }

  private readonly resume = (): void => {
    this.nextAwaited = false;
    this.pass();
  };

  /** Let the next one go after a turn of the event loop if this turn is still held then. */
  private scheduleFallback(): void {
    const turn = this.seq;
    if (this.fallbackFor === turn) return;
    this.fallbackFor = turn;
    this.defer(() => this.end(turn));
  }
}
