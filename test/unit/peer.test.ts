/**
 * The Peer on its own (src/core/peer/peer.ts): constructed directly with a
 * role that records every hook it is given, over one end of an in-memory
 * transport pair, and driven frame by frame from the other end with bytes
 * built by hand. Each test checks the hooks called and the bytes written,
 * exactly. The server connection and the client, which are roles of the
 * Peer, are tested in server-connection.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cbor } from '../../src/core/codec/cbor.js';
import { FRAMES_PER_TURN } from '../../src/core/constants.js';
import { IpcborError, RemoteError } from '../../src/core/errors.js';
import { concatParts, encodeErrorResponse, encodeExtended, encodeRequest, encodeResponse } from '../../src/core/frame/encoder.js';
import { ConnectionBudget, DECODED_ITEM_BYTES } from '../../src/core/peer/budget.js';
import { Peer, type PeerOptions, peerConfig } from '../../src/core/peer/peer.js';
import type { AsyncQueue } from '../../src/core/peer/queue.js';
import type { PeerRole } from '../../src/core/peer/role.js';
import { encodeCallHeader, encodeKindIdHeader } from '../../src/core/protocol/fast-heads.js';
import { Kind, errorFrame, type Head } from '../../src/core/protocol/heads.js';
import { MemoryTransport } from '../memory-transport.js';

// ---- bytes on the wire -------------------------------------------------------------

const utf8 = new TextEncoder();
const NONE = new Uint8Array(0);

/** An extended frame: `head` encoded by the codec, `payload` as it is. */
const frame = (head: readonly unknown[], payload: Uint8Array = NONE): Uint8Array => concatParts(encodeExtended(cbor.encode(head), payload));
/** ITEM `[6, id]` carrying `value`. */
const item = (id: number, value: unknown): Uint8Array => {
  const payload = cbor.encode(value);
  return concatParts([encodeKindIdHeader(Kind.Item, id, payload.length), payload]);
};
/** CALL `[1, id, method]` with `payload`. */
const call = (id: number, method: string, payload: Uint8Array = NONE): Uint8Array => {
  const name = utf8.encode(method);
  return concatParts([encodeCallHeader(id, name, payload.length), payload]);
};
/** ERROR `[5, id, code, message]`, with `data` as its payload when given. */
const error = (id: number, code: string, message: string, data?: unknown): Uint8Array =>
  concatParts(errorFrame(cbor, id, code, message, data === undefined ? undefined : cbor.encode(data)));

/** Let both ends of the memory transport deliver (they do on microtasks). */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

// ---- a role that records ---------------------------------------------------------

type Hook = 'request' | 'response' | 'frame' | 'cancelled' | 'callFailed' | 'streamArrived' | 'drained' | 'roomMade' | 'report' | 'brokeBaseFraming' | 'connectionClosed';
const HOOKS: readonly Hook[] = ['request', 'response', 'frame', 'cancelled', 'callFailed', 'streamArrived', 'drained', 'roomMade', 'report', 'brokeBaseFraming', 'connectionClosed'];

interface Recorder extends PeerRole {
  quiet: boolean;
  /** Every hook call, in order: `[hook, ...args]`, an error shown as `Name CODE: message`. */
  readonly log: unknown[][];
  /** The errors hooks were given, in order (the objects themselves). */
  readonly errors: IpcborError[];
  /** The head bytes of each frame handed to `frame`, as they arrived. */
  readonly heads: Uint8Array[];
}

/** What a hook does besides being recorded; its return value is the hook's (streamArrived, brokeBaseFraming: false when none). */
type Behaviour = { [K in Hook]?: (...args: never[]) => unknown } & { holdsReading?: () => boolean };

const show = (err: IpcborError) => `${err.name} ${err.code}: ${err.message}`;

/** A log entry as `[hook]`, or `[hook, id]` for a frame. */
const hookAndId = ([hook, head]: unknown[]) => (hook === 'frame' ? [hook, (head as { id: number }).id] : [hook]);
/** The ids of the frames in a log of frames only. */
const frameIds = (log: unknown[][]) => log.map(([, head]) => (head as { id: number }).id);

/**
 * A PeerRole that logs each hook call. `without` leaves hooks out. The
 * role's queries (`quiet`, `holdsReading`) are answered, not logged.
 */
function recordingRole(behaviour: Behaviour = {}, without: readonly Hook[] = []): Recorder {
  const log: unknown[][] = [];
  const errors: IpcborError[] = [];
  const role: Record<string, unknown> = { quiet: true, log, errors, heads: [] };
  for (const hook of HOOKS) {
    if (without.includes(hook)) continue;
    role[hook] = (...args: unknown[]) => {
      // A frame's head as it arrived is kept apart: most tests read the decoded head.
      if (hook === 'frame') (role.heads as unknown[]).push(args[2]);
      log.push([
        hook,
        ...(hook === 'frame' ? args.slice(0, 2) : args).map((a) => {
          if (!(a instanceof IpcborError)) return a;
          errors.push(a);
          return show(a);
        }),
      ]);
      const answer = (behaviour[hook] as ((...a: unknown[]) => unknown) | undefined)?.(...args);
      return hook === 'streamArrived' || hook === 'brokeBaseFraming' ? answer === true : answer;
    };
  }
  if (behaviour.holdsReading) role.holdsReading = behaviour.holdsReading;
  return role as unknown as Recorder;
}

// ---- the rig: a Peer on one end, the test on the other ---------------------------

interface Rig {
  peer: Peer;
  role: Recorder;
  /** The Peer's end. */
  near: MemoryTransport;
  /** The test's end: `far.received` is every frame the Peer wrote, one chunk each. */
  far: MemoryTransport;
  /** Calls the Peer made on its transport: pause, resume, end, destroy. */
  ops: string[];
  /** Resolves when the test's end closed. */
  farClosed: Promise<void>;
  /** Bytes from the test's end, each argument one chunk. */
  send(...chunks: Uint8Array[]): void;
}

interface RigOptions extends Partial<PeerOptions> {
  role?: Recorder;
  /** The connection's budget (default 1 MiB). */
  budget?: ConnectionBudget;
  /** The transports' high-water mark (a write reaching it is refused). */
  highWater?: number;
  /** Enter the extended protocol at once, with these limits from the other end. */
  extended?: { maxFrameBytes: number; window: number };
}

/** A server-side Peer by default: it receives requests, takes CALL and NOTIFY, does not guard writes, window 4. */
function rig(options: RigOptions = {}): Rig {
  const { role = recordingRole(), highWater, extended, budget = new ConnectionBudget(1 << 20), ...given } = options;
  const [near, far] = MemoryTransport.pair(highWater);
  const ops: string[] = [];
  for (const op of ['pause', 'resume', 'end', 'destroy'] as const) {
    const original = near[op].bind(near);
    near[op] = () => {
      ops.push(op);
      original();
    };
  }
  const config = peerConfig({
    codec: cbor,
    maxFrameBytes: 1 << 20,
    receives: 'request',
    takes: [Kind.Call, Kind.Notify],
    other: 'client',
    window: 4,
    guardWrites: false,
    frameTimeout: 0,
    idleTimeout: 0,
    linger: 1000,
    ...given,
  });
  const peer = new Peer(near, role, config, budget);
  near.attach(peer);
  let resolveFarClosed!: () => void;
  const farClosed = new Promise<void>((resolve) => (resolveFarClosed = resolve));
  far.attach({ onData() {}, onDrain() {}, onClose: () => resolveFarClosed() });
  if (extended) peer.enterExtended(extended);
  return {
    peer,
    role,
    near,
    far,
    ops,
    farClosed,
    send: (...chunks) => {
      for (const c of chunks) far.writeRaw(c);
    },
  };
}

const LIMITS = { maxFrameBytes: 1 << 20, window: 2 };
const OPEN_EXTENDED = { framing: 'extended', stage: 'open' };

/**
 * Wait for `p`, which a timer of the peer settles. The peer's timers do not
 * keep the process alive (they are unref'd): this keeps it alive meanwhile,
 * for 5 s at most (a bound on a wait for what must happen, not a timing).
 */
async function whileAlive<T>(p: Promise<T>, what: string): Promise<T> {
  let alive: ReturnType<typeof setTimeout> | undefined;
  const bound = new Promise<never>((_, reject) => (alive = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), 5000)));
  try {
    return await Promise.race([p, bound]);
  } finally {
    clearTimeout(alive);
  }
}

/** `p` rejects with exactly this error object. */
async function rejectsWithError(p: Promise<unknown>, expected: unknown): Promise<void> {
  await assert.rejects(p, (e) => {
    assert.equal(e, expected);
    return true;
  });
}

// ---- the tests ---------------------------------------------------------------------

describe('Peer: the base framing', () => {
  it('a request reaches role.request with its method and payload; nothing is written', async () => {
    const { peer, role, far, send } = rig();
    const payload = cbor.encode({ a: 1 });
    send(concatParts(encodeRequest('add', payload)));
    await settle();
    assert.deepEqual(role.log, [['request', 'add', payload]]);
    assert.deepEqual(far.received, []);
    assert.deepEqual(peer.phase, { framing: 'base', stage: 'open' });
  });

  it('a response (ret 0 with CBOR, ret 1 with text) reaches role.response', async () => {
    const { role, far, send } = rig({ receives: 'response' });
    const body = cbor.encode('ok');
    send(concatParts(encodeResponse(0, body)), concatParts(encodeErrorResponse('nope')));
    await settle();
    assert.deepEqual(role.log, [
      ['response', 0, body],
      ['response', 1, utf8.encode('nope')],
    ]);
    assert.deepEqual(far.received, []);
  });

  it('a request to a role without request(): brokeBaseFraming, report, then destroyed with nothing written', async () => {
    const role = recordingRole({}, ['request']);
    const { peer, ops, far, farClosed, send } = rig({ role });
    send(concatParts(encodeRequest('add', cbor.encode(1))));
    const closed = await peer.closed;
    const why = 'IpcborError IPCBOR_ERR_PROTOCOL: unexpected request';
    assert.deepEqual(role.log, [
      ['brokeBaseFraming', why],
      ['report', why],
      ['connectionClosed', why],
    ]);
    const [err] = role.errors;
    assert.ok(role.errors.every((e) => e === err), 'one error throughout');
    assert.equal(closed.code, 'IPCBOR_ERR_CONNECTION_CLOSED');
    assert.equal(closed.message, 'the connection closed: unexpected request');
    assert.equal(closed.cause, err);
    assert.deepEqual(ops, ['destroy']);
    await farClosed;
    assert.deepEqual(far.received, []);
    assert.deepEqual(peer.phase, { framing: 'base', stage: 'closed' });
    assert.equal(role.log.length, 3, 'the transport closing after it calls nothing more');
  });

  it('a response to a role without response(): the connection fails the same way', async () => {
    const role = recordingRole({}, ['response']);
    const { peer, ops, send } = rig({ role, receives: 'response' });
    send(concatParts(encodeResponse(0, cbor.encode(1))));
    const closed = await peer.closed;
    assert.equal(closed.message, 'the connection closed: unexpected response');
    assert.deepEqual(
      role.log.map(([hook]) => hook),
      ['brokeBaseFraming', 'report', 'connectionClosed'],
    );
    assert.deepEqual(ops, ['destroy']);
  });

  it('a role whose brokeBaseFraming returns true closes the connection itself: the peer neither reports nor closes', async () => {
    const role = recordingRole({ brokeBaseFraming: () => true }, ['request']);
    const { peer, ops, far, send } = rig({ role });
    send(concatParts(encodeRequest('add', cbor.encode(1))));
    await settle();
    assert.deepEqual(role.log, [['brokeBaseFraming', 'IpcborError IPCBOR_ERR_PROTOCOL: unexpected request']]);
    assert.deepEqual(ops, []);
    assert.deepEqual(far.received, []);
    assert.deepEqual(peer.phase, { framing: 'base', stage: 'open' });
  });
});

describe('Peer: the extended protocol', () => {
  it('enterExtended switches the decoder: a kind in `takes` reaches role.frame with its decoded head', async () => {
    const { peer, role, far, send } = rig();
    send(concatParts(encodeRequest('$ipcbor.hello', cbor.encode({ version: 1 }))));
    await settle();
    peer.enterExtended({ maxFrameBytes: 1000, window: 3 });
    assert.equal(peer.decoder.mode, 'extended');
    assert.deepEqual(peer.phase, OPEN_EXTENDED);
    assert.equal(peer.protocol, 'extended');
    assert.equal(peer.peerMaxFrame, 1000);
    assert.equal(peer.peerWindow, 3);
    const params = cbor.encode([1, 2]);
    send(call(7, 'add', params), frame([Kind.Notify, 'log'], cbor.encode('x')), frame([Kind.Call, 8, 'slow', { timeout: 50, stream: true }]));
    await settle();
    assert.deepEqual(role.log, [
      ['request', '$ipcbor.hello', cbor.encode({ version: 1 })],
      ['frame', { kind: Kind.Call, id: 7, method: 'add', opts: {} }, params],
      ['frame', { kind: Kind.Notify, method: 'log' }, cbor.encode('x')],
      ['frame', { kind: Kind.Call, id: 8, method: 'slow', opts: { timeout: 50, stream: true } }, NONE],
    ]);
    assert.deepEqual(far.received, []);
  });

  it('a kind not in `takes`: ERROR on id 0 with IPCBOR_ERR_PROTOCOL, our side ended, closed with that error as cause', async () => {
    const { peer, role, far, ops, farClosed, send } = rig({ extended: LIMITS });
    send(frame([Kind.Result, 1], cbor.encode('x')));
    const closed = await peer.closed;
    const why = 'IpcborError IPCBOR_ERR_PROTOCOL: a client may not send frame kind 4';
    assert.deepEqual(role.log, [
      ['report', why],
      ['connectionClosed', why],
    ]);
    assert.equal(role.errors[0], role.errors[1]);
    assert.equal(closed.code, 'IPCBOR_ERR_CONNECTION_CLOSED');
    assert.equal(closed.message, 'the connection closed: a client may not send frame kind 4');
    assert.equal(closed.cause, role.errors[0]);
    await farClosed;
    assert.deepEqual(far.received, [error(0, 'IPCBOR_ERR_PROTOCOL', 'a client may not send frame kind 4')]);
    assert.deepEqual(ops, ['end'], 'ended, not cut: the ERROR was delivered');
    assert.equal(role.log.length, 2, 'connectionClosed once, the transport closing after it included');
  });

  it('the other end named in the error is the `other` option', async () => {
    const { peer, far, farClosed, send } = rig({ receives: 'response', takes: [Kind.Result, Kind.Event], other: 'server', extended: LIMITS });
    send(call(1, 'x'));
    assert.equal((await peer.closed).message, 'the connection closed: a server may not send frame kind 1');
    await farClosed;
    assert.deepEqual(far.received, [error(0, 'IPCBOR_ERR_PROTOCOL', 'a server may not send frame kind 1')]);
  });

  it('a head that is not an array: ERROR on id 0 with IPCBOR_ERR_BAD_FRAME', async () => {
    const { peer, role, far, farClosed, send } = rig({ extended: LIMITS });
    send(frame({ kind: 1 } as unknown as unknown[]));
    await peer.closed;
    await farClosed;
    assert.deepEqual(far.received, [error(0, 'IPCBOR_ERR_BAD_FRAME', 'bad frame head: expected a non-empty array')]);
    assert.deepEqual(role.log[0], ['report', 'IpcborError IPCBOR_ERR_BAD_FRAME: bad frame head: expected a non-empty array']);
  });

  it('a role hook that throws fails the connection: ERROR on id 0 with IPCBOR_ERR_PROTOCOL and its text', async () => {
    const role = recordingRole({
      frame: () => {
        throw new Error('no such thing');
      },
    });
    const { peer, far, ops, farClosed, send } = rig({ role, extended: LIMITS });
    send(call(1, 'm'));
    assert.equal((await peer.closed).message, 'the connection closed: no such thing');
    assert.deepEqual(role.log.map(([hook]) => hook), ['frame', 'report', 'connectionClosed']);
    assert.deepEqual(role.log[1], ['report', 'IpcborError IPCBOR_ERR_PROTOCOL: no such thing']);
    await farClosed;
    assert.deepEqual(far.received, [error(0, 'IPCBOR_ERR_PROTOCOL', 'no such thing')]);
    assert.deepEqual(ops, ['end']);
  });

  it('a RemoteError thrown by a role hook closes the connection at once, with no ERROR sent back', async () => {
    const gone = new RemoteError('APP_GONE', 'the other end said so');
    const role = recordingRole({
      frame: () => {
        throw gone;
      },
    });
    const { peer, far, ops, farClosed, send } = rig({ role, extended: LIMITS });
    send(call(1, 'm'));
    assert.equal((await peer.closed).cause, gone);
    assert.deepEqual(role.log.map(([hook]) => hook), ['frame', 'report', 'connectionClosed']);
    assert.deepEqual(ops, ['destroy']);
    await farClosed;
    assert.deepEqual(far.received, []);
  });

  it('enterExtended a second time throws and changes nothing', () => {
    const { peer } = rig({ extended: LIMITS });
    assert.throws(() => peer.enterExtended({ maxFrameBytes: 5, window: 9 }), {
      code: 'IPCBOR_ERR_PROTOCOL',
      message: 'the extended protocol can only be entered once, on an open connection',
    });
    assert.equal(peer.peerMaxFrame, LIMITS.maxFrameBytes);
    assert.equal(peer.peerWindow, LIMITS.window);
    assert.deepEqual(peer.phase, OPEN_EXTENDED);
  });
});

describe('Peer: control frames', () => {
  it('CANCEL stops the outbound stream of its id and calls role.cancelled(id)', async () => {
    const { peer, role, far, send } = rig({ extended: LIMITS });
    let finished = false;
    async function* numbers() {
      try {
        for (let i = 0; i < 100; i++) yield i;
      } finally {
        finished = true;
      }
    }
    const sending = peer.streams.send(5, numbers(), 'm');
    await settle();
    assert.deepEqual(far.received, [item(5, 0), item(5, 1)], 'the window of 2, then it waits');
    send(frame([Kind.Cancel, 5]));
    assert.equal(await sending, 'stopped');
    assert.equal(finished, true);
    assert.deepEqual(role.log, [['cancelled', 5]]);
    await settle();
    assert.equal(far.received.length, 2, 'no END after a CANCEL');
  });

  it('CANCEL for an id with no stream still reaches role.cancelled', async () => {
    const { peer, role, far, send } = rig({ extended: LIMITS });
    send(frame([Kind.Cancel, 9]));
    await settle();
    assert.deepEqual(role.log, [['cancelled', 9]]);
    assert.deepEqual(far.received, []);
    assert.deepEqual(peer.phase, OPEN_EXTENDED);
  });

  it('ERROR for a call: role.callFailed(id, RemoteError with code, message, data), then its inbound stream fails with it', async () => {
    let queue!: AsyncQueue<unknown>;
    const streamDoneAtCallFailed: boolean[] = [];
    const role = recordingRole({ callFailed: () => streamDoneAtCallFailed.push(queue.done) });
    const { peer, far, send } = rig({ role, extended: LIMITS });
    queue = peer.streams.open(4);
    send(item(4, 'a'), error(4, 'APP_X', 'boom', { why: 1 }));
    await settle();
    assert.deepEqual(role.log, [['callFailed', 4, 'RemoteError APP_X: boom']]);
    const err = role.errors[0]!;
    assert.ok(err instanceof RemoteError);
    assert.deepEqual(err.data, { why: 1 });
    assert.deepEqual(streamDoneAtCallFailed, [false], 'the stream was still open when callFailed ran');
    assert.deepEqual(await queue.next(), { value: 'a', done: false });
    await rejectsWithError(queue.next(), err);
    assert.deepEqual(peer.phase, OPEN_EXTENDED);
    assert.deepEqual(far.received, []);
  });

  it('ERROR for a call whose data cannot be decoded reaches callFailed without data', async () => {
    const { role, send } = rig({ extended: LIMITS });
    send(concatParts(errorFrame(cbor, 3, 'APP_X', 'boom', Uint8Array.of(0xff))));
    await settle();
    assert.deepEqual(role.log, [['callFailed', 3, 'RemoteError APP_X: boom']]);
    assert.equal(role.errors[0]!.data, undefined);
  });

  it('ERROR on id 0: reported, the transport destroyed, streams and `closed` fail with it as cause', async () => {
    const { peer, role, far, ops, farClosed, send } = rig({ extended: LIMITS });
    const queue = peer.streams.open(2);
    send(error(0, 'APP_GONE', 'bye'));
    const closed = await peer.closed;
    const why = 'RemoteError APP_GONE: bye';
    assert.deepEqual(role.log, [
      ['report', why],
      ['connectionClosed', why],
    ]);
    const err = role.errors[0]!;
    assert.ok(err instanceof RemoteError);
    assert.equal(closed.code, 'IPCBOR_ERR_CONNECTION_CLOSED');
    assert.equal(closed.message, 'the connection closed: bye');
    assert.equal(closed.cause, err);
    assert.deepEqual(ops, ['destroy']);
    await assert.rejects(queue.next(), (e: IpcborError) => {
      assert.equal(e.code, 'IPCBOR_ERR_CONNECTION_CLOSED');
      assert.equal(e.cause, err);
      return true;
    });
    await farClosed;
    assert.deepEqual(far.received, []);
  });
});

describe('Peer: inbound streams', () => {
  it('ITEMs reach the queue; credit goes back in batches of half the window, as CREDIT frames', async () => {
    const { peer, far, send } = rig({ window: 4, extended: LIMITS });
    const queue = peer.streams.open(3);
    send(item(3, 'a'), item(3, 'b'), item(3, 'c'), item(3, 'd'));
    await settle();
    assert.deepEqual(far.received, [], 'nothing read: no credit');
    assert.equal(peer.budget.held, 4 * (cbor.encode('a').length + DECODED_ITEM_BYTES), 'each item charged: its bytes and one decoded item');
    assert.deepEqual(await queue.next(), { value: 'a', done: false });
    await settle();
    assert.deepEqual(far.received, [], 'one read: less than half the window');
    assert.deepEqual(await queue.next(), { value: 'b', done: false });
    await settle();
    // CREDIT [8, 3, 2]: head length 4, the head 0x83 0x08 0x03 0x02, no payload.
    const credit = Uint8Array.of(0, 0, 0, 4, 0x83, 0x08, 0x03, 0x02, 0, 0, 0, 0);
    assert.deepEqual(far.received, [credit]);
    assert.deepEqual(await queue.next(), { value: 'c', done: false });
    assert.deepEqual(await queue.next(), { value: 'd', done: false });
    await settle();
    assert.deepEqual(far.received, [credit, credit]);
    assert.equal(peer.budget.held, 0);
    // The credit granted is what the sender may send now: four more are within it.
    send(item(3, 'e'), item(3, 'f'), item(3, 'g'), item(3, 'h'));
    await settle();
    assert.equal(queue.length, 4);
    assert.deepEqual(peer.phase, OPEN_EXTENDED);
  });

  it('more ITEMs than the credit granted break the protocol', async () => {
    const { peer, role, far, ops, farClosed, send } = rig({ window: 2, extended: LIMITS });
    const queue = peer.streams.open(3);
    send(item(3, 'a'), item(3, 'b'), item(3, 'c'));
    await peer.closed;
    const why = 'IpcborError IPCBOR_ERR_PROTOCOL: stream 3 sent more items than its credit';
    assert.deepEqual(role.log, [
      ['report', why],
      ['connectionClosed', why],
    ]);
    await farClosed;
    assert.deepEqual(far.received, [error(0, 'IPCBOR_ERR_PROTOCOL', 'stream 3 sent more items than its credit')]);
    assert.deepEqual(ops, ['end']);
    // The reader gets the items within the credit, then the close.
    assert.deepEqual(await queue.next(), { value: 'a', done: false });
    assert.deepEqual(await queue.next(), { value: 'b', done: false });
    await assert.rejects(queue.next(), { code: 'IPCBOR_ERR_CONNECTION_CLOSED' });
  });

  it('END ends the queue after its items and calls hooks.ended', async () => {
    const { peer, role, far, send } = rig({ extended: LIMITS });
    const heard: string[] = [];
    const queue = peer.streams.open(3, { ended: () => heard.push('ended'), stopped: () => heard.push('stopped') });
    send(item(3, 'a'), frame([Kind.End, 3]));
    await settle();
    assert.deepEqual(heard, ['ended']);
    assert.deepEqual(await queue.next(), { value: 'a', done: false });
    assert.deepEqual(await queue.next(), { value: undefined, done: true });
    assert.deepEqual(role.log, []);
    assert.deepEqual(far.received, []);
  });

  it('a reader that returns early: CANCEL is written, hooks.stopped called, what was queued released', async () => {
    const { peer, role, far, send } = rig({ extended: LIMITS });
    const heard: string[] = [];
    const queue = peer.streams.open(3, { ended: () => heard.push('ended'), stopped: () => heard.push('stopped') });
    send(item(3, 'a'), item(3, 'b'));
    await settle();
    assert.deepEqual(await queue.next(), { value: 'a', done: false });
    await queue.return();
    assert.deepEqual(heard, ['stopped']);
    assert.equal(peer.budget.held, 0);
    await settle();
    assert.deepEqual(far.received, [frame([Kind.Cancel, 3])]);
    // A late ITEM for it finds no stream: the role is asked, and it is dropped.
    send(item(3, 'c'));
    await settle();
    assert.deepEqual(role.log, [['streamArrived', 3]]);
    assert.equal(peer.budget.held, 0);
    assert.deepEqual(peer.phase, OPEN_EXTENDED);
  });

  it('ITEM or END for an unknown id asks role.streamArrived(id): dropped on false, queued where the role opens a stream', async () => {
    let opened: AsyncQueue<unknown> | undefined;
    let peer!: Peer;
    const role = recordingRole({
      streamArrived: (id: number) => {
        if (id !== 9) return false;
        opened = peer.streams.open(9);
        return true;
      },
    });
    const r = rig({ role, extended: LIMITS });
    peer = r.peer;
    r.send(item(8, 'x'), frame([Kind.End, 8]), item(9, 'y'));
    await settle();
    assert.deepEqual(role.log, [
      ['streamArrived', 8],
      ['streamArrived', 8],
      ['streamArrived', 9],
    ]);
    assert.ok(opened);
    assert.deepEqual(await opened.next(), { value: 'y', done: false });
    assert.deepEqual(r.far.received, []);
    assert.deepEqual(peer.phase, OPEN_EXTENDED);
  });

  it('an ITEM that cannot be decoded: the reader gets IPCBOR_ERR_DECODE and CANCEL is written; the connection stays open', async () => {
    const { peer, role, far, send } = rig({ extended: LIMITS });
    const queue = peer.streams.open(3);
    send(concatParts([encodeKindIdHeader(Kind.Item, 3, 1), Uint8Array.of(0xff)]));
    await settle();
    await assert.rejects(queue.next(), (e: IpcborError) => {
      assert.equal(e.code, 'IPCBOR_ERR_DECODE');
      assert.match(e.message, /^stream item: /);
      return true;
    });
    assert.deepEqual(far.received, [frame([Kind.Cancel, 3])]);
    assert.deepEqual(role.log, []);
    assert.equal(peer.budget.held, 0);
    assert.deepEqual(peer.phase, OPEN_EXTENDED);
  });
});

describe('Peer: outbound streams', () => {
  it('sends ITEMs up to the other end\'s window, waits, goes on with each CREDIT, and ends with END', async () => {
    const { peer, far, send } = rig({ extended: LIMITS });
    let asked = 0;
    async function* letters() {
      for (const c of 'vwxyz') {
        asked++;
        yield c;
      }
    }
    let outcome: unknown;
    const sending = peer.streams.send(6, letters(), 'm');
    void sending.then((o) => (outcome = o));
    await settle();
    assert.deepEqual(far.received, [item(6, 'v'), item(6, 'w')]);
    assert.equal(asked, 2, 'the source is not asked without credit');
    assert.equal(outcome, undefined);
    send(frame([Kind.Credit, 6, 1]));
    await settle();
    assert.deepEqual(far.received, [item(6, 'v'), item(6, 'w'), item(6, 'x')]);
    assert.equal(asked, 3);
    send(frame([Kind.Credit, 6, 10]));
    assert.equal(await sending, 'done');
    await settle();
    assert.deepEqual(far.received, [item(6, 'v'), item(6, 'w'), item(6, 'x'), item(6, 'y'), item(6, 'z'), frame([Kind.End, 6])]);
  });

  it('a source that throws: ERROR for its id, and send resolves with the error', async () => {
    const { peer, far } = rig({ extended: LIMITS });
    const thrown = new Error('broken');
    async function* broken() {
      yield 1;
      throw thrown;
    }
    const outcome = await peer.streams.send(6, broken(), 'm');
    assert.ok(outcome instanceof IpcborError);
    assert.equal(outcome.code, 'IPCBOR_ERR_HANDLER');
    assert.equal(outcome.message, 'broken');
    assert.equal(outcome.method, 'm');
    assert.equal(outcome.cause, thrown);
    await settle();
    assert.deepEqual(far.received, [item(6, 1), error(6, 'IPCBOR_ERR_HANDLER', 'broken')]);
  });

  it('an item over the other end\'s maxFrameBytes: ERROR IPCBOR_ERR_FRAME_TOO_LARGE for its id, nothing of it written, the source closed', async () => {
    const { peer, far } = rig({ extended: { maxFrameBytes: 8, window: 2 } });
    let finished = false;
    async function* big() {
      try {
        yield 'x'.repeat(20);
      } finally {
        finished = true;
      }
    }
    const outcome = await peer.streams.send(7, big(), 'm');
    assert.ok(outcome instanceof IpcborError);
    assert.equal(outcome.code, 'IPCBOR_ERR_FRAME_TOO_LARGE');
    assert.equal(outcome.message, 'stream item of 21 bytes is over the peer\'s limit of 8 bytes');
    assert.equal(finished, true);
    await settle();
    assert.deepEqual(far.received, [error(7, 'IPCBOR_ERR_FRAME_TOO_LARGE', 'stream item of 21 bytes is over the peer\'s limit of 8 bytes')]);
  });

  it('CANCEL: send resolves \'stopped\' and the source\'s return() runs', async () => {
    const { peer, role, far, send } = rig({ extended: { maxFrameBytes: 1 << 20, window: 1 } });
    let n = 0;
    let returned = 0;
    const source: AsyncIterable<number> = {
      [Symbol.asyncIterator]: () => ({
        next: async () => (n < 100 ? { value: n++, done: false } : { value: undefined, done: true }),
        return: async () => {
          returned++;
          return { value: undefined, done: true };
        },
      }),
    };
    const sending = peer.streams.send(6, source, 'm');
    await settle();
    assert.deepEqual(far.received, [item(6, 0)]);
    send(frame([Kind.Cancel, 6]));
    assert.equal(await sending, 'stopped');
    assert.equal(returned, 1);
    assert.equal(n, 1, 'asked once: one item of credit');
    assert.deepEqual(role.log, [['cancelled', 6]]);
  });
});

describe('Peer: the phase', () => {
  it('beginClosing(\'drain\'): stage draining, nothing written, the transport left alone', async () => {
    const { peer, role, far, ops } = rig();
    peer.beginClosing('drain');
    assert.deepEqual(peer.phase, { framing: 'base', stage: 'draining' });
    await settle();
    assert.deepEqual(ops, []);
    assert.deepEqual(far.received, []);
    assert.deepEqual(role.log, []);
    assert.throws(() => peer.enterExtended(LIMITS), { code: 'IPCBOR_ERR_PROTOCOL' });
  });

  it('beginClosing(\'end\'): our side ended, stage ending, and the linger cuts a transport the other end keeps open', async () => {
    const { peer, role, far, ops, farClosed } = rig({ linger: 20, extended: LIMITS });
    // The other end reads nothing: the frame waiting for it keeps it from closing its side.
    far.pause();
    peer.writeHead([Kind.Credit, 1, 1]);
    peer.beginClosing('end');
    assert.deepEqual(peer.phase, { framing: 'extended', stage: 'ending' });
    assert.deepEqual(ops, ['end']);
    await whileAlive(farClosed, 'the linger to cut the transport');
    assert.deepEqual(ops, ['end', 'destroy']);
    const closed = await peer.closed;
    assert.equal(closed.message, 'the connection closed');
    assert.equal(closed.cause, undefined);
    assert.deepEqual(role.log, [['connectionClosed', 'IpcborError IPCBOR_ERR_CONNECTION_CLOSED: the connection closed']]);
    assert.deepEqual(far.received, [], 'cut: what was not read is dropped');
    assert.deepEqual(peer.phase, { framing: 'extended', stage: 'closed' });
  });

  it('stages only move forward; the transport is ended once', async () => {
    const { peer, ops } = rig();
    peer.beginClosing('drain');
    peer.beginClosing('end');
    assert.deepEqual(peer.phase, { framing: 'base', stage: 'ending' });
    peer.beginClosing('drain');
    assert.deepEqual(peer.phase, { framing: 'base', stage: 'ending' });
    peer.beginClosing('end');
    assert.deepEqual(ops, ['end']);
    assert.throws(() => peer.enterExtended(LIMITS), { code: 'IPCBOR_ERR_PROTOCOL' });
    // The other end closes its side in turn (it had nothing to read).
    await peer.closed;
    assert.deepEqual(peer.phase, { framing: 'base', stage: 'closed' });
    peer.beginClosing('drain');
    peer.beginClosing('end');
    assert.deepEqual(peer.phase, { framing: 'base', stage: 'closed' });
    assert.deepEqual(ops, ['end']);
  });
});

describe('Peer: flow control', () => {
  it('guardWrites: a write the transport refuses stops reading until drain; the unsent bytes are charged meanwhile', async () => {
    const { peer, role, near, far, ops, send } = rig({ guardWrites: true, highWater: 16, extended: LIMITS });
    far.pause();
    peer.writeValue(Kind.Result, 1, 'x'.repeat(20), 'm');
    const result = frame([Kind.Result, 1], cbor.encode('x'.repeat(20)));
    assert.equal(peer.writeBlocked, true);
    assert.deepEqual(ops, ['pause']);
    assert.equal(peer.budget.held, result.length);
    const next = call(2, 'm');
    send(next);
    await settle();
    assert.deepEqual(role.log, [], 'the paused transport holds the CALL');
    assert.equal(near.inboxBytes, next.length);
    far.resume();
    await settle();
    assert.deepEqual(role.log, [['drained'], ['frame', { kind: Kind.Call, id: 2, method: 'm', opts: {} }, NONE]]);
    assert.deepEqual(ops, ['pause', 'resume']);
    assert.equal(peer.writeBlocked, false);
    assert.equal(peer.budget.held, 0);
    assert.deepEqual(far.received, [result]);
  });

  it('without guardWrites a refused write does not stop reading, and the unsent bytes are not charged', async () => {
    const { peer, role, far, ops, send } = rig({ guardWrites: false, highWater: 16, extended: LIMITS });
    far.pause();
    peer.writeValue(Kind.Result, 1, 'x'.repeat(20), 'm');
    assert.equal(peer.writeBlocked, true);
    assert.equal(peer.budget.held, 0);
    send(call(2, 'm'));
    await settle();
    assert.deepEqual(role.log, [['frame', { kind: Kind.Call, id: 2, method: 'm', opts: {} }, NONE]]);
    assert.deepEqual(ops, []);
    far.resume();
    await settle();
    assert.deepEqual(role.log.at(-1), ['drained']);
    assert.equal(peer.writeBlocked, false);
  });

  it('a partial frame is charged to the budget while it arrives, and released when it completes', async () => {
    const { peer, role, send } = rig({ extended: LIMITS });
    const bytes = call(1, 'm', cbor.encode({}));
    const first = bytes.slice(0, 6);
    send(first);
    await settle();
    assert.equal(peer.budget.held, first.length);
    assert.deepEqual(role.log, []);
    send(bytes.slice(6));
    await settle();
    assert.equal(peer.budget.held, 0);
    assert.deepEqual(role.log, [['frame', { kind: Kind.Call, id: 1, method: 'm', opts: {} }, cbor.encode({})]]);
  });

  /** A Peer with a budget of 100 bytes whose role charges 150 for CALL 1 (as a server does for a call it runs). */
  function overBudget(): Rig {
    let peer!: Peer;
    const role = recordingRole({ frame: (head: Head) => head.kind === Kind.Call && head.id === 1 && peer.budget.charge(150) });
    const r = rig({ role, budget: new ConnectionBudget(100), extended: LIMITS });
    peer = r.peer;
    return r;
  }

  it('over the budget the transport is paused, and resumes when the role releases', async () => {
    const r = overBudget();
    const { peer, role } = r;
    const second = call(2, 'm');
    r.send(call(1, 'm'), second);
    await settle();
    assert.deepEqual(role.log.map(hookAndId), [['frame', 1]]);
    assert.deepEqual(r.ops, ['pause']);
    assert.equal(peer.budget.held, 150);
    assert.equal(r.near.inboxBytes, second.length, 'the second CALL waits in the transport');
    peer.budget.release(150);
    assert.deepEqual(r.ops, ['pause', 'resume']);
    assert.deepEqual(role.log.map(hookAndId), [['frame', 1], ['roomMade']]);
    await settle();
    assert.deepEqual(role.log.map(hookAndId), [['frame', 1], ['roomMade'], ['frame', 2]]);
  });

  it('over the budget between two frames of one chunk: the second waits in the decoder, charged, until the role releases', async () => {
    const r = overBudget();
    const { peer, role } = r;
    const second = call(2, 'm');
    r.send(concatParts([call(1, 'm'), second]));
    await settle();
    assert.deepEqual(role.log.map(hookAndId), [['frame', 1]]);
    assert.deepEqual(r.ops, ['pause']);
    assert.equal(peer.decoder.buffered, second.length);
    assert.ok(peer.budget.held > 150, `the held frame is charged too (${peer.budget.held})`);
    peer.budget.release(150);
    assert.deepEqual(role.log.map(hookAndId), [['frame', 1], ['frame', 2], ['roomMade']]);
    assert.deepEqual(r.ops, ['pause', 'resume']);
    assert.equal(peer.budget.held, 0);
  });

  it('a role that holds reading: frames wait until it lets go and asks the flow again', async () => {
    let holding = false;
    const role = recordingRole({ holdsReading: () => holding });
    const { peer, ops, send } = rig({ role, extended: LIMITS });
    holding = true;
    send(call(1, 'm'), call(2, 'm'));
    await settle();
    assert.deepEqual(frameIds(role.log), [1]);
    assert.deepEqual(ops, ['pause']);
    holding = false;
    peer.flow.update();
    await settle();
    assert.deepEqual(frameIds(role.log), [1, 2]);
    assert.deepEqual(ops, ['pause', 'resume']);
  });

  it(`yields after FRAMES_PER_TURN (${FRAMES_PER_TURN}) frames of one chunk, and reads on in the next turn`, async () => {
    assert.ok(FRAMES_PER_TURN < 300, 'the chunk holds more frames than one turn runs');
    const turns: (() => void)[] = [];
    const { peer, role, near, ops, send } = rig({ defer: (f) => turns.push(f), extended: LIMITS });
    const frames = Array.from({ length: 300 }, (_, i) => call(i + 1, 'n'));
    send(concatParts(frames));
    await settle();
    assert.deepEqual(frameIds(role.log), Array.from({ length: FRAMES_PER_TURN }, (_, i) => i + 1));
    assert.deepEqual(ops, ['pause']);
    assert.equal(near.paused, true);
    assert.equal(turns.length, 1, 'the end of the turn is the one thing waiting');
    turns.shift()!();
    assert.deepEqual(frameIds(role.log), Array.from({ length: 300 }, (_, i) => i + 1));
    assert.deepEqual(ops, ['pause', 'resume']);
    assert.equal(peer.decoder.buffered, 0);
  });
});

describe('Peer: timers', () => {
  it('frameTimeout: a frame left half sent is cut with IPCBOR_ERR_FRAME_TIMEOUT, reported to the role', async () => {
    const { peer, role, far, ops, farClosed, send } = rig({ frameTimeout: 30, extended: LIMITS });
    send(call(1, 'm', cbor.encode({})).slice(0, 6));
    const closed = await whileAlive(peer.closed, 'the frame timer to cut the connection');
    const why = 'IpcborError IPCBOR_ERR_FRAME_TIMEOUT: a frame was not finished within 30 ms of its first byte';
    assert.deepEqual(role.log, [
      ['report', why],
      ['connectionClosed', why],
    ]);
    assert.equal(closed.cause, role.errors[0]);
    assert.deepEqual(ops, ['destroy']);
    await farClosed;
    assert.deepEqual(far.received, [], 'no goodbye to a peer stuck mid-frame');
    assert.equal(peer.budget.held, 0);
  });

  it('idleTimeout with a quiet role: IPCBOR_ERR_IDLE_TIMEOUT reported, and our side ended', async () => {
    const { peer, role, ops } = rig({ idleTimeout: 30, extended: LIMITS });
    const closed = await whileAlive(peer.closed, 'the idle timer to end the connection');
    assert.deepEqual(role.log, [
      ['report', 'IpcborError IPCBOR_ERR_IDLE_TIMEOUT: closed after 30 ms idle'],
      ['connectionClosed', 'IpcborError IPCBOR_ERR_CONNECTION_CLOSED: the connection closed'],
    ]);
    assert.equal(closed.message, 'the connection closed');
    assert.deepEqual(ops, ['end'], 'ended (beginClosing(\'end\')), and the other end closed in turn');
  });

  it('a connection already ending is not reported idle: the linger closes it, with no IPCBOR_ERR_IDLE_TIMEOUT', async () => {
    const { peer, role, far, ops } = rig({ idleTimeout: 30, linger: 300, extended: LIMITS });
    // The other end reads nothing: ending waits, and the idle check (at 30 ms) runs before the linger (at 300 ms).
    far.pause();
    peer.writeHead([Kind.End, 1]);
    peer.beginClosing('end');
    assert.equal(peer.phase.stage, 'ending');
    await whileAlive(peer.closed, 'the linger to cut the connection');
    assert.deepEqual(role.log, [['connectionClosed', 'IpcborError IPCBOR_ERR_CONNECTION_CLOSED: the connection closed']]);
    assert.deepEqual(ops, ['end', 'destroy'], 'ended, then cut by the linger');
  });
});

describe('Peer: after the close', () => {
  it('destroy() after the close still destroys a transport that is still ending', async () => {
    const { peer, role, near, far, ops, farClosed, send } = rig({ extended: LIMITS });
    // The other end reads nothing: the ERROR the peer sends keeps the transport ending.
    far.pause();
    send(frame([Kind.Result, 1]));
    await peer.closed;
    assert.deepEqual(ops, ['end']);
    assert.equal(near.closed, false);
    peer.destroy();
    assert.deepEqual(ops, ['end', 'destroy']);
    assert.equal(near.closed, true);
    await farClosed;
    await settle();
    assert.deepEqual(
      role.log.map(([hook]) => hook),
      ['report', 'connectionClosed'],
    );
  });

  it('once the transport has closed, no linger holds the connection', async () => {
    const { peer, near, far, ops, send } = rig({ extended: LIMITS, linger: 60_000 });
    // Broken by the other end: ERROR, our side ended, settled; the transport ends after the other end reads.
    far.pause();
    send(frame([Kind.Result, 1]));
    await peer.closed;
    const timers = peer.timers as unknown as { linger: unknown };
    assert.notEqual(timers.linger, undefined, 'the linger waits for the transport to close');
    far.resume();
    await whileAlive(new Promise<void>((resolve) => {
      const poll = () => (near.closed ? resolve() : setImmediate(poll));
      poll();
    }), 'the transport to close');
    assert.equal(timers.linger, undefined, 'and is gone once it has');
    assert.deepEqual(ops, ['end']);
  });

  it('a stream opened after the close fails at once: its reader does not wait for ever', async () => {
    const { peer } = rig({ extended: LIMITS });
    peer.destroy();
    await peer.closed;
    const queue = peer.streams.open(5);
    await assert.rejects(queue.next(), (err: unknown) => err instanceof IpcborError && err.code === 'IPCBOR_ERR_CONNECTION_CLOSED');
  });

  it('onData after the close is ignored: nothing decoded, nothing held', async () => {
    const { peer, role } = rig({ extended: LIMITS });
    peer.destroy();
    await peer.closed;
    peer.onData(call(1, 'm', cbor.encode({})).slice(0, 6));
    peer.onData(call(2, 'm'));
    assert.equal(peer.decoder.buffered, 0);
    assert.equal(peer.budget.held, 0);
    assert.deepEqual(role.log, [['connectionClosed', 'IpcborError IPCBOR_ERR_CONNECTION_CLOSED: the connection closed']]);
  });

  it('send() on a closed connection resolves \'stopped\' without asking its source, and closes it', async () => {
    const { peer, far } = rig({ extended: LIMITS });
    peer.destroy();
    await peer.closed;
    let asked = 0;
    let returned = 0;
    const source: AsyncIterable<number> = {
      [Symbol.asyncIterator]: () => ({
        next: async () => ({ value: ++asked, done: false }),
        return: async () => {
          returned++;
          return { value: undefined, done: true };
        },
      }),
    };
    assert.equal(await peer.streams.send(3, source, 'm'), 'stopped');
    assert.equal(asked, 0);
    assert.equal(returned, 1);
    assert.deepEqual(far.received, []);
  });

  it('the transport closing under it: readers fail, senders stop, connectionClosed once with the transport\'s error', async () => {
    const { peer, role, far } = rig({ extended: { maxFrameBytes: 1 << 20, window: 1 } });
    const queue = peer.streams.open(2);
    const sending = peer.streams.send(
      4,
      (async function* () {
        for (let i = 0; i < 100; i++) yield i;
      })(),
      'm',
    );
    await settle();
    const reset = new Error('ECONNRESET');
    peer.onClose(reset);
    far.destroy();
    const closed = await peer.closed;
    assert.equal(closed.message, 'the connection closed: ECONNRESET');
    assert.equal(closed.cause, reset);
    assert.equal(await sending, 'stopped');
    await assert.rejects(queue.next(), (e: IpcborError) => {
      assert.equal(e.code, 'IPCBOR_ERR_CONNECTION_CLOSED');
      assert.equal(e.cause, closed);
      return true;
    });
    await settle();
    assert.deepEqual(role.log, [['connectionClosed', 'IpcborError IPCBOR_ERR_CONNECTION_CLOSED: the connection closed: ECONNRESET']]);
  });
});

describe('Peer: a role that takes every kind (a relay)', () => {
  it('gets every extended frame as it came, control kinds included, and the peer keeps no stream of its own', async () => {
    const { peer, role, far, send } = rig({ takes: [1, 2, 3, 4, 5, 6, 7, 8, 9], extended: LIMITS });
    const sent = [
      frame([Kind.Item, 7], cbor.encode('a')),
      frame([Kind.Credit, 7, 3]),
      frame([Kind.Cancel, 7]),
      frame([Kind.End, 7]),
      frame([Kind.Error, 0, 'IPCBOR_ERR_PROTOCOL', 'bye']),
      frame([Kind.Result, 9], cbor.encode(1)),
    ];
    send(...sent);
    await settle();
    assert.deepEqual(
      role.log.map((e) => (e[1] as { kind: number }).kind),
      [Kind.Item, Kind.Credit, Kind.Cancel, Kind.End, Kind.Error, Kind.Result],
      'each frame reached the role, in order',
    );
    assert.ok(role.log.every((e) => e[0] === 'frame'), 'and nothing else: no cancelled, callFailed or streamArrived');
    // The head as received: the frame rebuilt from it and the payload is the frame that came.
    role.heads.forEach((head, i) => assert.deepEqual(concatParts(encodeExtended(head, role.log[i]![2] as Uint8Array)), sent[i]));
    assert.equal(peer.phase.stage, 'open', 'an ERROR on id 0 is the relay\'s to move on, not a reason to close');
    assert.deepEqual(far.received, [], 'the peer wrote nothing of its own (no CREDIT, no CANCEL)');
    assert.equal(peer.budget.held, 0);
  });
});
