/**
 * Adapters: a relay's clients may speak another message format (libIPC's
 * "switching callbacks"). An adapter turns what such a client sends into
 * whole ipcbor frames, and each frame for it back into its format. It sits
 * between the client's transport and the relay, so the frames it makes
 * pass the relay's own checks (frame limits, the framing itself) like any
 * client's.
 */
import { DEFAULT_WRITE_HIGH_WATER } from '../constants.js';
import type { FrameParts } from '../frame/encoder.js';
import { concatParts } from '../frame/encoder.js';
import type { OpenTransport, TransportSink } from '../transport.js';

/**
 * One client's adapter (make one per connection: it may keep state, such
 * as a line not yet complete). Each hook is one direction; a hook left out
 * passes bytes through unchanged.
 */
export interface RelayAdapter {
  /**
   * Bytes from the client, as they arrived: return the ipcbor frames they
   * complete (base framing, or extended after a hello), each whole. Keep
   * what is not complete yet, and bound it: throw to close the connection.
   * `reply` sends bytes straight back to the client (an answer of the
   * adapter's own, to a message it could not turn into a frame).
   */
  fromClient?(chunk: Uint8Array, reply: (bytes: Uint8Array) => void): readonly Uint8Array[];
  /** One whole ipcbor frame for the client: return the bytes to send it. */
  toClient?(frame: Uint8Array): Uint8Array;
}

const EMPTY = new Uint8Array(0);

/**
 * `transport` with `adapter` between it and the relay. The adapter's own
 * replies are written like the relay's: they count in `pendingBytes`
 * (charged to the client's budget), and while they back up the client is
 * not read. A hook that throws closes the connection.
 */
export function adaptTransport(transport: OpenTransport, adapter: RelayAdapter): OpenTransport {
  const { fromClient, toClient } = adapter;
  /** Paused by the relay (its flow control), and by the adapter's own replies backing up. */
  let pausedByRelay = false;
  let pausedByReplies = false;
  let sink: TransportSink | undefined;
  const sync = () => (pausedByRelay || pausedByReplies ? transport.pause() : transport.resume());
  const fail = (err: unknown) => {
    transport.destroy();
    sink?.onClose(err);
  };
  const reply = (bytes: Uint8Array) => {
    if (!transport.write([bytes, EMPTY]) && !pausedByReplies && transport.writable !== false) {
      pausedByReplies = true;
      sync();
    }
  };
  return {
    attach(s: TransportSink): void {
      sink = s;
      transport.attach({
        onData(chunk) {
          if (fromClient === undefined) return s.onData(chunk);
          let frames: readonly Uint8Array[];
          try {
            frames = fromClient.call(adapter, chunk, reply);
          } catch (err) {
            return fail(err);
          }
          for (const f of frames) s.onData(f);
          // The relay re-reads pendingBytes: the replies are charged like its own writes.
          if (!pausedByReplies && transport.pendingBytes < DEFAULT_WRITE_HIGH_WATER) s.onDrain();
        },
        onDrain() {
          if (pausedByReplies) {
            pausedByReplies = false;
            sync();
          }
          s.onDrain();
        },
        onClose: (cause) => s.onClose(cause),
      });
    },
    write(parts: FrameParts): boolean {
      if (toClient === undefined) return transport.write(parts);
      let bytes: Uint8Array;
      try {
        bytes = toClient.call(adapter, concatParts(parts));
      } catch (err) {
        fail(err);
        return true;
      }
      return transport.write([bytes, EMPTY]);
    },
    get pendingBytes() {
      return transport.pendingBytes;
    },
    get readAhead() {
      return transport.readAhead ?? 0;
    },
    get writable() {
      return transport.writable ?? true;
    },
    pause() {
      pausedByRelay = true;
      sync();
    },
    resume() {
      pausedByRelay = false;
      sync();
    },
    end: () => {
      // Replies backed up before the end get no 'drain' now: reading is the relay's to decide.
      pausedByReplies = false;
      sync();
      transport.end();
    },
    destroy: () => transport.destroy(),
  };
}
