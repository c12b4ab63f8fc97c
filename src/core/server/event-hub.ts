/**
 * Fans events out to the connections that subscribed. The payload is
 * encoded once per event, however many subscribers there are, and only if
 * there is at least one.
 */
import { wireCodec, type Codec } from '../codec/cbor.js';
import type { ServerConnection } from './connection.js';

export class EventHub {
  private readonly connections = new Set<ServerConnection>();

  constructor(private readonly codec: Codec = wireCodec) {}

  add(connection: ServerConnection): void {
    this.connections.add(connection);
  }

  delete(connection: ServerConnection): void {
    this.connections.delete(connection);
  }

  /**
   * Send `payload` as event `name` to every connection subscribed to it, to
   * `*`, or to `alias` (the bare name of a default service's event). Each
   * connection gets one frame, which names both; its client hands it to
   * each matching subscription. Returns how many connections it was sent to.
   */
  emit(name: string, payload: unknown, alias?: string): number {
    let bytes: Uint8Array | undefined;
    let count = 0;
    for (const c of this.connections) {
      if (!c.wants(name) && !(alias !== undefined && c.wants(alias))) continue;
      bytes ??= this.codec.encode(payload);
      c.sendEvent(name, bytes, alias);
      count++;
    }
    return count;
  }
}
