/**
 * Listening on an address: stale unix socket files are replaced, live ones
 * are never touched, and unix sockets are owner-only unless asked otherwise.
 */
import { chmodSync, lstatSync, unlinkSync } from 'node:fs';
import { createConnection, type Server as NetServer } from 'node:net';
import { IpcborError } from '../core/errors.js';
import type { Address } from './address.js';

/**
 * Is the socket file at `path` stale? Only a refused connection (or a file
 * gone meanwhile) says so; a server that accepts, or is too busy to
 * (EAGAIN: its backlog is full), is alive and must be left alone.
 */
function isStale(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection(path);
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED' || err.code === 'ENOENT'));
  });
}

/** process.umask(mask), returning the old mask; undefined where it cannot be set (worker threads). */
function setUmask(mask: number): number | undefined {
  try {
    return process.umask(mask);
  } catch {
    return undefined;
  }
}

function listenOnce(server: NetServer, address: Address): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => {
      server.off('listening', onListening);
      reject(err);
    };
    const onListening = () => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    if (address.kind === 'unix') {
      // The socket file is created by bind(), inside listen(): with this
      // umask it is owner-only from its first moment, not after a chmod.
      const old = setUmask(0o177);
      try {
        server.listen(address.path);
      } finally {
        if (old !== undefined) setUmask(old);
      }
    } else {
      server.listen(address.port, address.host);
    }
  });
}

export async function listen(server: NetServer, address: Address, permissions: number): Promise<void> {
  try {
    await listenOnce(server, address);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (address.kind !== 'unix' || code !== 'EADDRINUSE') throw listenError(address, err);
    // A socket file is there. If nobody answers on it, it is left over from a
    // crash: replace it. If a server answers, leave it alone.
    if (!(await isStale(address.path))) {
      throw new IpcborError('IPCBOR_ERR_INVALID_ADDRESS', `a server is already listening on ${address.path}`, { cause: err });
    }
    const st = lstatSync(address.path, { throwIfNoEntry: false });
    if (st && !st.isSocket()) {
      throw new IpcborError('IPCBOR_ERR_INVALID_ADDRESS', `${address.path} exists and is not a socket; refusing to replace it`, { cause: err });
    }
    if (st) unlinkSync(address.path);
    try {
      await listenOnce(server, address);
    } catch (again) {
      throw listenError(address, again);
    }
  }
  if (address.kind === 'unix') chmodSync(address.path, permissions);
}

function listenError(address: Address, err: unknown): IpcborError {
  const e = err as NodeJS.ErrnoException;
  const where = address.kind === 'unix' ? address.path : `${address.host}:${address.port}`;
  return new IpcborError('IPCBOR_ERR_INVALID_ADDRESS', `cannot listen on ${where}: ${e.code ?? ''} ${e.message}`.trim(), { cause: err });
}

/** Remove our unix socket file on close, if it is still a socket. */
export function removeSocketFile(path: string): void {
  try {
    const st = lstatSync(path, { throwIfNoEntry: false });
    if (st?.isSocket()) unlinkSync(path);
  } catch {
    // already gone, or not ours to remove
  }
}
