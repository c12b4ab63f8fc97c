/**
 * Fans events out to the connections that subscribed. The payload is
 * encoded once per event, however many subscribers there are, and only if
 * there is at least one.
 */
import { cbor, type Codec } from '../codec/cbor.js';
import type { ServerSession } from './server-session.js';

export class EventHub {
  private readonly sessions = new Set<ServerSession>();

  constructor(private readonly codec: Codec = cbor) {}

  add(session: ServerSession): void {
    this.sessions.add(session);
  }

  delete(session: ServerSession): void {
    this.sessions.delete(session);
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
    for (const s of this.sessions) {
      if (!s.wants(name) && !(alias !== undefined && s.wants(alias))) continue;
      bytes ??= this.codec.encode(payload);
      s.sendEvent(name, bytes, alias);
      count++;
    }
    return count;
  }
}
