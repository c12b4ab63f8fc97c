/**
 * A client that knows whom it reaches: before dialing a unix socket, check
 * that it is a socket (a symlink is not followed) owned by the current user,
 * by root, or by the uid the caller said to trust. Otherwise another user
 * could plant a socket where a server is expected (a squatted path in /tmp,
 * or a server that has not started yet) and receive the client's calls.
 *
 * Node cannot ask a connected unix socket for its peer's credentials
 * (SO_PEERCRED), so the check is on the socket file, just before connect().
 * It is as strong as its directory: in one only its owner can write (the
 * runtime directory), or a sticky one such as /tmp (where nobody can
 * replace another user's file), the file checked is the one dialed.
 */
import { lstatSync, type Stats } from 'node:fs';
import { dirname } from 'node:path';
import { IpcborError } from '../core/errors.js';
import { formatAddress, type Address } from './address.js';
import { checkRuntimeDir, currentUid } from './rundir.js';

/** Whose socket a client accepts: a uid (besides its own and root's), or `'any'` (no check). */
export type SocketOwner = number | 'any';

/**
 * Throw IPCBOR_ERR_CONNECT unless `path` is a socket (not a symlink) owned
 * by the current user, root, or `owner`. `owner: 'any'` skips the check.
 * `shown` names the address in messages (default `unix:PATH`).
 */
export function checkSocketOwner(path: string, owner: SocketOwner | undefined, shown = `unix:${path}`): void {
  if (owner === 'any') return;
  const me = currentUid();
  if (me === undefined) return;
  const refuse = (why: string, cause?: unknown) => new IpcborError('IPCBOR_ERR_CONNECT', `could not connect to ${shown}: ${why}`, cause === undefined ? {} : { cause });
  let st: Stats;
  try {
    st = lstatSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw refuse(code === 'ENOENT' ? `ENOENT (no socket at ${path}: is the server running?)` : code, err);
  }
  if (st.isSymbolicLink()) {
    throw refuse(`${path} is a symbolic link: refusing to follow it to a server another user may have planted; connect to the socket itself, or pass socketOwner: 'any' to trust it`);
  }
  if (!st.isSocket()) throw refuse(`${path} is not a socket`);
  if (st.uid !== me && st.uid !== 0 && st.uid !== owner) {
    throw refuse(`the socket ${path} is owned by uid ${st.uid}, not by you (uid ${me}) or root: refusing to talk to a server another user may have planted; pass socketOwner to trust it`);
  }
}

/**
 * The check `connect()` makes before dialing a unix address: for a service
 * name, the runtime directory first (see rundir.ts), then the socket file.
 */
export function checkUnixPeer(address: Address, owner: SocketOwner | undefined): void {
  if (address.kind !== 'unix') return;
  const shown = formatAddress(address);
  if (address.name !== undefined) {
    const dir = dirname(address.path);
    const owners = typeof owner === 'number' ? [0, owner] : [0];
    if (!checkRuntimeDir(dir, { owners, anyOwner: owner === 'any' })) {
      throw new IpcborError('IPCBOR_ERR_CONNECT', `could not connect to ${shown}: no service of that name is running (the runtime directory ${dir} does not exist)`);
    }
  }
  checkSocketOwner(address.path, owner, shown);
}
