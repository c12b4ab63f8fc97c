/** Writing to a raw socket at the pace its reader takes the bytes. */
import type { Socket } from 'node:net';

/** Resolves once the socket drained what it buffered, or closed (then nothing more will drain). */
export function drainedOrClosed(s: Socket): Promise<void> {
  return new Promise<void>((resolve) => {
    const wake = () => {
      s.off('drain', wake);
      s.off('close', wake);
      resolve();
    };
    s.on('drain', wake);
    s.on('close', wake);
  });
}
