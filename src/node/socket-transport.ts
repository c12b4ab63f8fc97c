/**
 * The Transport over a Node stream socket (net or tls). Frames written in
 * one tick leave together: the first write corks the socket and a
 * nextTick uncorks it, so many small answers cost one syscall.
 */
import type { Socket } from 'node:net';
import { DEFAULT_WRITE_HIGH_WATER } from '../core/constants.js';
import type { FrameParts } from '../core/frame/encoder.js';
import type { Transport } from '../core/rpc/transport.js';

export interface SessionLike {
  receive(chunk: Uint8Array): void;
  drained(): void;
  closed(cause?: unknown): void;
}

function uncork(t: SocketTransport): void {
  t.corked = false;
  t.socket.uncork();
}

export class SocketTransport implements Transport {
  corked = false;
  private error: Error | undefined;

  constructor(readonly socket: Socket) {}

  /** Wire the socket's events to a session. */
  attach(session: SessionLike): void {
    const s = this.socket;
    s.on('data', (chunk: Buffer) => session.receive(chunk));
    s.on('drain', () => session.drained());
    s.on('error', (err) => (this.error = err));
    s.on('close', () => session.closed(this.error));
  }

  write(parts: FrameParts): boolean {
    const s = this.socket;
    if (s.destroyed || s.writableEnded) return true;
    if (!this.corked) {
      this.corked = true;
      s.cork();
      process.nextTick(uncork, this);
    }
    s.write(parts[0]);
    if (parts[1].length > 0) s.write(parts[1]);
    return s.writableLength < DEFAULT_WRITE_HIGH_WATER;
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  end(): void {
    if (!this.socket.destroyed) this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }
}
