/**
 * Flow control of one connection: when to read the transport, when to
 * hand complete frames on, and when a stream may make its next item.
 *
 * Reading. Frames are delivered while what the connection holds *besides*
 * the bytes still in the decoder is within its budget (and its share of
 * the server's), while the role does not hold reading (its own bounds),
 * and, where writes are guarded, while what it writes is leaving. So a
 * frame that has arrived can always be delivered once its calls are done:
 * bytes waiting in the decoder never keep themselves waiting. The
 * transport is read while frames are delivered and the connection, those
 * bytes included, is within its share of the server's budget. A frame
 * larger than the connection's own budget (within maxFrameBytes) still
 * arrives whole; a server over its budget stops reading even mid-frame,
 * and the frame timer ends a peer that then never finishes.
 *
 * Charges. The decoder's partial frame (and what the transport itself
 * holds of a message not yet whole), what a paused transport may read
 * ahead, and (guarded writes) what is written and not yet sent are charged
 * to the budget as they change.
 *
 * Turns. A connection runs at most FRAMES_PER_TURN frames in one turn of
 * the event loop before it yields. Streams ask their source for an item
 * one at a time across everything that shares the write turns (turns.ts),
 * and only while this connection's writes have room.
 */
import { FRAMES_PER_TURN } from '../constants.js';
import type { FrameDecoder } from '../frame/decoder.js';
import type { Transport } from '../transport.js';
import type { ConnectionBudget } from './budget.js';
import type { Phase } from './phase.js';
import { clockFor, type TurnClock, type TurnTaker, type WriteTurns } from './turns.js';

/** What flow control needs of its peer (peer.ts). */
export interface FlowHost {
  readonly phase: Phase;
  readonly transport: Transport;
  readonly decoder: FrameDecoder;
  readonly budget: ConnectionBudget;
  readonly config: { readonly guardWrites: boolean; readonly defer: (f: () => void) => void; readonly frameTimeout: number };
  readonly timers: { syncFrame(): void; watchSending(): void };
  /** The role's own reasons not to read. */
  holdsReading(): boolean;
  /** Hand on the frames the decoder held; false when one failed the connection. */
  releaseDecoder(): boolean;
  /** Room was made: the role may send what it held back. */
  roomMade(): void;
}

/** Frames between two looks at the turn clock (a power of two; FRAMES_PER_TURN is a multiple of it). */
const TURN_LOOK = 16;

/** The empty list every connection starts with, shared and never written to. */
const NO_WAITERS: never[] = [];

export class Flow implements TurnTaker {
  /** Complete frames are handed on (the decoder is not held). */
  delivering = true;
  /** The transport is read. */
  private reading = true;
  /** Frames run in turn `burstTurn` of the clock, and whether the connection waits for the next turn. */
  private burst = 0;
  private burstTurn = -1;
  private yielding = false;
  /** The transport's buffer is over its high-water mark: wait for drain. */
  writeBlocked = false;
  /** Streams waiting for their turn to ask their source for an item (made on first use). */
  private writeWaiters: ((turn: number) => void)[] = NO_WAITERS;
  /** Bytes charged for what the transport has not written yet, for the decoder's partial frame, and for a paused transport's read-ahead. */
  private chargedOut = 0;
  private chargedIn = 0;
  private chargedAhead = 0;
  /** Bytes the transport has handed on (did the peer read anything?). */
  sent = 0;
  /** Room was released (here or on the server): read again, and let waiting writers on. */
  readonly recheck = (): void => {
    this.update();
    this.askTurn();
    this.peer.roomMade();
  };

  /** Charge unsent writes, and stop reading while writes are backed up (see PeerOptions). */
  private readonly guardWrites: boolean;
  private readonly clock: TurnClock;
  /** A frame timeout is set: the frame timer follows the decoder. */
  private readonly framesTimed: boolean;

  constructor(
    private readonly peer: FlowHost,
    private readonly turns: WriteTurns,
  ) {
    // Read on every chunk and write: kept here, next to the state they steer.
    this.guardWrites = peer.config.guardWrites;
    this.clock = clockFor(peer.config.defer);
    this.framesTimed = peer.config.frameTimeout > 0;
  }

  /** Bytes written and not yet handed on by the transport (charged where writes are guarded). */
  get unsent(): number {
    return this.chargedOut;
  }

  // ---- reading -----------------------------------------------------------------

  /**
   * One received frame ran. Checked per frame, not per chunk: one chunk
   * can carry thousands of small frames, and the budget (or the turn) must
   * stop them between two.
   *
   * The clock is looked at every TURN_LOOK frames, not per frame or per
   * chunk: a connection that gets a frame or two per turn (most) then
   * costs the process no deferred callback per turn. When a look finds a
   * new turn, the frames since the last look are counted as this turn's,
   * so no turn runs more than FRAMES_PER_TURN (a multiple of TURN_LOOK).
   */
  frameDone(): void {
    if ((++this.burst & (TURN_LOOK - 1)) === 0) {
      const turn = this.clock.now();
      if (turn !== this.burstTurn) {
        this.burstTurn = turn;
        this.burst = TURN_LOOK;
      } else if (this.burst >= FRAMES_PER_TURN && !this.yielding) {
        this.yielding = true;
        this.clock.next(this.endTurn);
        this.update();
        return;
      }
    }
    const budget = this.peer.budget;
    if (!budget.allows(budget.held - this.chargedIn)) this.update();
  }

  /** A new turn: the frame count starts again, and the connection that yielded reads on. */
  private readonly endTurn = (): void => {
    this.burst = 0;
    this.burstTurn = this.clock.turn;
    this.yielding = false;
    this.update();
  };

  /** Charge the partial frame the decoder holds, time it, and decide on reading. */
  syncIn(): void {
    const transport = this.peer.transport;
    const held = transport.buffered === undefined ? this.peer.decoder.heldBytes : this.peer.decoder.heldBytes + transport.buffered;
    if (held !== this.chargedIn) {
      // Recorded before the charge: a release wakes the connection's
      // listener, which may come back here before this call returns.
      const delta = held - this.chargedIn;
      this.chargedIn = held;
      this.peer.budget.charge(delta);
    }
    // update() times the frame, once it has decided on delivering.
    this.update();
  }

  /** Deliver frames, and read the transport, or not (see the top of this file). */
  update(): void {
    const peer = this.peer;
    if (peer.phase.stage === 'closed') return;
    // Writes backed up before the transport ended get no 'drain' now: they wait for nothing more.
    if (this.writeBlocked && peer.transport.writable === false) this.writeBlocked = false;
    const budget = peer.budget;
    // What the pause itself is charged does not keep the connection paused.
    const held = budget.held - this.chargedAhead;
    const budgetOk = budget.allows(held - this.chargedIn);
    const deliver = budgetOk && !this.yielding && !(this.writeBlocked && this.guardWrites) && !peer.holdsReading();
    // A frame half in may always finish when it alone keeps the server over
    // (everyone else is within the bound): finishing it is how its bytes
    // come back. That is one frame at most past the bound.
    const server = budget.server;
    const read = deliver && (server === undefined || server.allows(held) || (!peer.decoder.idle && server.withinWithout(this.chargedIn)));
    if (!budgetOk || (deliver && !read)) {
      // Released bytes, here or anywhere on the server, bring us back.
      budget.listener = this.recheck;
      server?.waitUnder(this.recheck);
      // A frame half in may go on once the server would be within its bound without it.
      if (deliver && server !== undefined && !peer.decoder.idle) server.waitWithin(this.recheck, this.chargedIn);
    } else {
      budget.listener = undefined;
    }
    if (read !== this.reading) {
      this.reading = read;
      const transport = peer.transport;
      if (read) {
        transport.resume();
        const ahead = this.chargedAhead;
        this.chargedAhead = 0;
        budget.release(ahead);
      } else {
        transport.pause();
        this.chargedAhead = transport.readAhead ?? 0;
        budget.charge(this.chargedAhead);
      }
    }
    if (deliver !== this.delivering) {
      this.delivering = deliver;
      if (deliver) {
        if (peer.releaseDecoder()) this.syncIn();
        return;
      }
      peer.decoder.hold();
    }
    if (this.framesTimed) peer.timers.syncFrame();
  }

  // ---- writing -----------------------------------------------------------------

  /** A frame was handed to the transport; `taken` is what its write returned. */
  wrote(taken: boolean): void {
    // An ending transport took nothing, and no 'drain' will come: its close will.
    if (!taken && this.peer.transport.writable !== false) this.writeBlocked = true;
    if (!this.guardWrites) return;
    this.syncOut();
    if (this.writeBlocked) this.update();
  }

  /** The transport handed on what it held: writers go on. Returns whether writes had been blocked. */
  drained(): boolean {
    if (this.guardWrites) this.syncOut();
    const wasBlocked = this.writeBlocked;
    this.writeBlocked = false;
    this.askTurn();
    return wasBlocked;
  }

  /** Charge the bytes the transport holds unwritten, and watch that the peer reads them. */
  private syncOut(): void {
    const pending = this.peer.transport.pendingBytes;
    if (pending !== this.chargedOut) {
      const delta = pending - this.chargedOut;
      this.chargedOut = pending;
      if (delta < 0) this.sent -= delta;
      this.peer.budget.chargeOut(delta);
    }
    if (pending > 0) this.peer.timers.watchSending();
  }

  /**
   * Wait for the turn to ask a stream's source for one item: a number at
   * once when it is free, nobody waits and the writes have room. The
   * holder gives it back with `endWriteTurn(turn)`.
   */
  takeWriteTurn(): number | Promise<number> {
    if (this.peer.phase.stage !== 'closed' && this.writeWaiters.length === 0 && this.mayWrite) {
      const turn = this.turns.tryTake();
      if (turn !== undefined) return turn;
    }
    return new Promise((resolve) => {
      if (this.writeWaiters === NO_WAITERS) this.writeWaiters = [];
      this.writeWaiters.push(resolve);
      this.askTurn();
    });
  }

  /** The stream that had turn `turn` wrote its item, or stopped. */
  endWriteTurn(turn: number): void {
    this.turns.end(turn);
  }

  /** TurnTaker: a stream waits, and its item would be written (the server's unsent bytes are the turns' gate). */
  get mayTakeTurn(): boolean {
    return this.peer.phase.stage !== 'closed' && this.writeWaiters.length > 0 && this.mayWrite;
  }

  /**
   * The transport takes more: it is not backed up ('drain' says when it
   * is again), nor ending (its close follows, and wakes the writers).
   */
  private get mayWrite(): boolean {
    return !this.writeBlocked && this.peer.transport.writable !== false;
  }

  /** TurnTaker: the turn is this connection's; its first waiting stream goes. */
  takeTurn(turn: number): void {
    this.writeWaiters.shift()!(turn);
    // The others wait for a later turn, behind the connections asking now.
    if (this.writeWaiters.length > 0) this.turns.ask(this);
  }

  /** A stream waits: ask for the turn, unless the transport takes nothing now ('drain', or the close, says when). */
  private askTurn(): void {
    if (this.writeWaiters.length === 0) return;
    if (this.peer.phase.stage === 'closed') return this.wakeWriters();
    if (this.mayWrite) this.turns.ask(this);
  }

  /** Be told (the role's roomMade) when the server next goes under a threshold. */
  waitForRoom(): void {
    this.peer.budget.server?.waitUnder(this.recheck);
  }

  /** The connection closed: every stream waiting goes on (and finds it closed). */
  closed(): void {
    this.peer.budget.server?.forget(this.recheck);
    this.wakeWriters();
  }

  private wakeWriters(): void {
    this.turns.forget(this);
    const waiters = this.writeWaiters;
    if (waiters.length === 0) return;
    this.writeWaiters = [];
    for (const w of waiters) w(0);
  }
}
