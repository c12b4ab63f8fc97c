/**
 * Adapters: a relay's clients may speak another message format (libIPC's
 * "switching callbacks"). An adapter turns what such a client sends into
 * whole ipcbor frames, and each frame for it back into its format. It sits
 * between the client's transport and the relay, so the frames it makes
 * pass the relay's own checks (frame limits, the framing itself) like any
 * client's.
 */
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

/** `transport` with `adapter` between it and the relay. */
export function adaptTransport(transport: OpenTransport, adapter: RelayAdapter): OpenTransport {
  const { fromClient, toClient } = adapter;
  const reply = (bytes: Uint8Array) => void transport.write([bytes, EMPTY]);
  return {
    attach(sink: TransportSink): void {
      transport.attach({
        onData(chunk) {
          if (fromClient === undefined) return sink.onData(chunk);
          let frames: readonly Uint8Array[];
          try {
            frames = fromClient.call(adapter, chunk, reply);
          } catch (err) {
            transport.destroy();
            return sink.onClose(err);
          }
          for (const f of frames) sink.onData(f);
        },
        onDrain: () => sink.onDrain(),
        onClose: (cause) => sink.onClose(cause),
      });
    },
    write(parts: FrameParts): boolean {
      return transport.write(toClient === undefined ? parts : [toClient.call(adapter, concatParts(parts)), EMPTY]);
    },
    get pendingBytes() {
      return transport.pendingBytes;
    },
    get readAhead() {
      return transport.readAhead ?? 0;
    },
    pause: () => transport.pause(),
    resume: () => transport.resume(),
    end: () => transport.end(),
    destroy: () => transport.destroy(),
  };
}
