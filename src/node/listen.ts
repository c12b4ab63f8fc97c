/**
 * Listening on an address. For a unix socket path:
 *
 * - The socket is bound at a temporary name beside `path`, with the umask
 *   set to `~permissions`: its mode is right from bind(), and nothing is ever
 *   changed by path afterwards (a chmod by path follows a symlink swapped in
 *   meanwhile). The mode and owner are then read back (lstat) and checked.
 * - It is put in place with link(tmp, path), which fails if anything is at
 *   `path`: the socket appears there atomically, already listening, and
 *   never over anything else.
 * - If a socket is there, it is either a live server's (it answers a
 *   connect: IPCBOR_ERR_ALREADY_RUNNING) or left by a crash (the connect is
 *   refused: it is replaced by rename(tmp, path), atomic too). Probe and
 *   replace happen while holding `<path>.lock`, a file created with
 *   O_EXCL|O_NOFOLLOW holding our pid, so that two servers starting at once
 *   cannot both find the same stale socket and each replace it (the second
 *   would replace the first's live socket). Outside this short critical
 *   section the lock file does not exist; a lock whose process is dead (or
 *   older than LOCK_STALE_MS) is removed. A lock path that is not a regular
 *   file, or is another user's in a directory others can write to, is
 *   refused at once (see breakStaleLock): it is never opened in a way that
 *   blocks or follows a link. The live socket itself, answering
 *   connects, is what says a server is running: a SIGKILLed server leaves
 *   only a socket nobody answers, which the next server replaces.
 * - What listen() returns releases the path: it removes the socket file
 *   only if it is still the one we bound (same device and inode), and is
 *   called while the server still listens, so no other ipcbor server can
 *   have judged it stale and replaced it in between.
 *
 * libuv unlinks a unix server's bind path when it closes: here that is the
 * temporary name, already gone, never `path` (which may by then be another
 * server's socket).
 */
import { randomBytes } from 'node:crypto';
import { closeSync, constants, fstatSync, linkSync, lstatSync, openSync, readSync, renameSync, unlinkSync, writeSync, type BigIntStats } from 'node:fs';
import { createConnection, type Server as NetServer } from 'node:net';
import { dirname, join } from 'node:path';
import { IpcborError } from '../core/errors.js';
import { MAX_UNIX_PATH_BYTES, type Address } from './address.js';
import { currentUid, ensureRuntimeDir } from './rundir.js';

/** Releases what listen() took: removes the socket file if it is still ours. Idempotent. */
export type Release = () => void;

/** How long a server waits for another one starting at the same path to finish its probe-and-replace. */
const LOCK_WAIT_MS = 3000;
/** A lock file older than this is left over whoever wrote it: the critical section takes milliseconds. */
const LOCK_STALE_MS = 10_000;

const O_NOFOLLOW = constants.O_NOFOLLOW ?? 0;

const invalid = (msg: string, cause?: unknown) => new IpcborError('IPCBOR_ERR_INVALID_ADDRESS', msg, cause === undefined ? {} : { cause });
const errno = (err: unknown) => (err as NodeJS.ErrnoException).code ?? (err as Error).message;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function lstatExact(path: string): BigIntStats | undefined {
  return lstatSync(path, { bigint: true, throwIfNoEntry: false });
}

const sameFile = (a: BigIntStats | undefined, b: BigIntStats | undefined) => a !== undefined && b !== undefined && a.dev === b.dev && a.ino === b.ino;

function kindOf(st: BigIntStats): string {
  if (st.isSymbolicLink()) return 'a symbolic link';
  if (st.isDirectory()) return 'a directory';
  if (st.isFile()) return 'a regular file';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  return 'of an unknown kind';
}

/** process.umask(mask), returning the old mask; undefined where it cannot be set (worker threads). */
function setUmask(mask: number): number | undefined {
  try {
    return process.umask(mask);
  } catch {
    return undefined;
  }
}

function listenOnce(server: NetServer, start: () => void): Promise<void> {
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
    start();
  });
}

/**
 * Listen on `address`. `backlog`: connections the operating system queues
 * for accept() (Node's default, 511, when undefined; the kernel caps it at
 * net.core.somaxconn).
 */
export async function listen(server: NetServer, address: Address, permissions: number, backlog?: number): Promise<Release> {
  if (address.kind === 'unix' && process.platform !== 'win32') return listenUnix(server, address, permissions, backlog);
  try {
    await listenOnce(server, () => (address.kind === 'unix' ? server.listen({ path: address.path, backlog }) : server.listen({ port: address.port, host: address.host, backlog })));
  } catch (err) {
    throw listenError(address, err);
  }
  return () => {};
}

function listenError(address: Address, err: unknown): IpcborError {
  const e = err as NodeJS.ErrnoException;
  const where = address.kind === 'unix' ? address.path : `${address.host}:${address.port}`;
  return invalid(`cannot listen on ${where}: ${e.code ?? ''} ${e.message}`.trim(), err);
}

async function listenUnix(server: NetServer, address: Address & { kind: 'unix' }, permissions: number, backlog: number | undefined): Promise<Release> {
  if (!Number.isInteger(permissions) || permissions < 0 || permissions > 0o777) {
    throw invalid(`permissions must be mode bits from 0 to 0o777, not ${String(permissions)}`);
  }
  const { path } = address;
  if (address.name !== undefined) ensureRuntimeDir(dirname(path));

  // Bind at a fresh temporary name (a name taken by chance is retried).
  let tmp = '';
  for (let attempt = 0; ; attempt++) {
    tmp = tempPathBeside(path);
    try {
      await listenOnce(server, () => {
        // bind() happens inside listen(), synchronously: with this umask the
        // socket file has exactly `permissions` from its first moment.
        const old = setUmask(~permissions & 0o777);
        try {
          server.listen({ path: tmp, backlog });
        } finally {
          if (old !== undefined) setUmask(old);
        }
      });
      break;
    } catch (err) {
      if (errno(err) !== 'EADDRINUSE' || attempt >= 3) throw listenError(address, err);
    }
  }

  let mine: BigIntStats | undefined;
  try {
    mine = checkBound(tmp, permissions);
    await publish(tmp, path, mine, address);
  } catch (err) {
    // libuv unlinks the bind path (tmp) when the server closes.
    server.close();
    throw err;
  }
  let released = false;
  const ours = mine;
  return () => {
    if (released) return;
    released = true;
    try {
      if (sameFile(lstatExact(path), ours)) unlinkSync(path);
    } catch {
      // gone already, or not ours to remove
    }
  };
}

/** A temporary path in the same directory as `path` (link() and rename() need the same filesystem), short enough to bind. */
function tempPathBeside(path: string): string {
  const dir = dirname(path);
  const room = MAX_UNIX_PATH_BYTES - Buffer.byteLength(join(dir, '.'));
  const len = Math.min(12, room);
  if (len < 4) throw invalid(`unix socket path ${path} leaves no room in its directory for the temporary name it is bound at before being put in place: use a shorter directory`);
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  const rand = [...randomBytes(len)].map((b) => alphabet[b % alphabet.length]).join('');
  return join(dir, `.${rand}`);
}

/** The socket just bound at `tmp`: ours, a socket, no more open than asked. Returns its identity. */
function checkBound(tmp: string, permissions: number): BigIntStats {
  const st = lstatExact(tmp);
  const me = currentUid();
  if (!st || !st.isSocket() || (me !== undefined && Number(st.uid) !== me)) {
    throw invalid(`the socket just bound at ${tmp} is not there or not ours any more: is someone else writing to ${dirname(tmp)}?`);
  }
  // Connecting to a unix socket takes write permission on it: a write bit
  // not asked for lets someone in. (Only where the umask cannot be set, in a
  // worker thread, can the mode differ from `permissions` at all.)
  const mode = Number(st.mode) & 0o777;
  if ((mode & 0o222 & ~permissions) !== 0) {
    throw invalid(`the socket bound at ${tmp} has mode ${mode.toString(8)}, more open than the ${permissions.toString(8)} asked for: the umask could not be set (a worker thread?) and is ${(0o777 & ~mode).toString(8)}`);
  }
  return st;
}

/** Put the socket bound at `tmp` at `path`: linked if nothing is there, replacing a stale socket, refusing anything else. */
async function publish(tmp: string, path: string, mine: BigIntStats, address: Address & { kind: 'unix' }): Promise<void> {
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      linkSync(tmp, path);
      unlinkQuietly(tmp, mine);
      return;
    } catch (err) {
      if (errno(err) !== 'EEXIST') throw listenError(address, err);
    }
    const st = lstatExact(path);
    if (!st) continue; // gone meanwhile: link again
    if (!st.isSocket()) throw notASocket(path, st);
    const replaced = await withLock(path, async () => {
      const now = lstatExact(path);
      if (!now) return false;
      if (!now.isSocket()) throw notASocket(path, now);
      const state = await probe(path);
      if (state === 'live') {
        const who = Number(now.uid) === currentUid() ? '' : ` (its socket is owned by uid ${now.uid})`;
        const what = address.name !== undefined ? ` (service "${address.name}")` : '';
        throw new IpcborError('IPCBOR_ERR_ALREADY_RUNNING', `a server is already running at ${path}${what}${who}`);
      }
      if (state === 'gone') return false;
      if (state !== 'stale') {
        throw invalid(`cannot tell whether the socket at ${path} (owned by uid ${now.uid}) belongs to a live server: connecting to it gave ${state}. Remove it if no server is running there`);
      }
      // Replace it only if it is still the socket found refusing connections.
      if (!sameFile(lstatExact(path), now)) return false;
      try {
        renameSync(tmp, path);
      } catch (err) {
        throw invalid(`cannot replace the stale socket at ${path} (owned by uid ${now.uid}): ${errno(err)}`, err);
      }
      return true;
    });
    if (replaced) return;
  }
  throw invalid(`${path} keeps changing while a server starts there; giving up`);
}

function notASocket(path: string, st: BigIntStats): IpcborError {
  return invalid(`${path} exists and is ${kindOf(st)}, not a socket; refusing to replace it`);
}

function unlinkQuietly(path: string, expected: BigIntStats): void {
  try {
    if (sameFile(lstatExact(path), expected)) unlinkSync(path);
  } catch {
    // best effort
  }
}

/**
 * Is there a live server behind the socket at `path`? Only a refused
 * connection says it is stale (`gone`: removed meanwhile); a server that
 * accepts, or is too busy to (EAGAIN: its backlog is full), is live. Any
 * other error (EACCES: not ours to connect to) is returned as is: it says
 * nothing about liveness.
 */
function probe(path: string): Promise<'live' | 'stale' | 'gone' | string> {
  return new Promise((resolve) => {
    const s = createConnection(path);
    const timer = setTimeout(() => {
      s.destroy();
      resolve('live');
    }, 2000);
    s.once('connect', () => {
      clearTimeout(timer);
      s.destroy();
      resolve('live');
    });
    s.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const code = err.code ?? err.message;
      resolve(code === 'ECONNREFUSED' ? 'stale' : code === 'ENOENT' ? 'gone' : code === 'EAGAIN' ? 'live' : code);
    });
  });
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errno(err) === 'EPERM';
  }
}

/**
 * Flags for every open() of a path another user may have planted: never
 * follow a symlink, never block (a FIFO would block open() until a writer
 * comes: the whole process would freeze), never take a terminal.
 */
const O_PLANTED = O_NOFOLLOW | (constants.O_NONBLOCK ?? 0) | (constants.O_NOCTTY ?? 0);

/** The most a lock file holds (a pid and a newline); more is not read. */
const LOCK_TEXT_MAX = 32;

/** Run `fn` holding `<path>.lock` (see the top of this file). */
async function withLock<T>(path: string, fn: () => Promise<T>): Promise<T> {
  const lockPath = `${path}.lock`;
  const deadline = Date.now() + LOCK_WAIT_MS;
  let held: BigIntStats;
  for (;;) {
    let fd: number | undefined;
    try {
      fd = openSync(lockPath, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY | O_PLANTED, 0o600);
    } catch (err) {
      if (errno(err) !== 'EEXIST') throw invalid(`cannot create the lock file ${lockPath}: ${errno(err)}`, err);
    }
    if (fd !== undefined) {
      try {
        writeSync(fd, `${process.pid}\n`);
        held = fstatSync(fd, { bigint: true });
      } catch (err) {
        closeSync(fd);
        fd = undefined;
        try {
          unlinkSync(lockPath);
        } catch {
          // nothing more to do
        }
        throw invalid(`cannot write the lock file ${lockPath}: ${errno(err)}`, err);
      }
      closeSync(fd);
      break;
    }
    const holder = breakStaleLock(lockPath, path);
    if (holder === undefined) continue;
    if (Date.now() > deadline) {
      throw invalid(`${lockPath} is held by process ${holder}: another server is starting at ${path}, or the lock was left behind (remove it if no server is starting)`);
    }
    await sleep(10 + Math.random() * 20);
  }
  try {
    return await fn();
  } finally {
    unlinkQuietly(lockPath, held);
  }
}

/**
 * Can nobody but us (and root) create files in `dir`: ours, and writable by
 * neither group nor others? Then nobody else can have planted a file there.
 */
function privateDir(dir: string): boolean {
  const st = lstatExact(dir);
  const me = currentUid();
  return st !== undefined && st.isDirectory() && (me === undefined || Number(st.uid) === me) && (Number(st.mode) & 0o022) === 0;
}

/**
 * Remove `lockPath` if its holder is gone (its pid is dead, or it is older
 * than LOCK_STALE_MS). Returns undefined when the lock is gone (try again),
 * else the live holder's pid (as text).
 *
 * The lock path is opened without following a symlink and without
 * blocking, then checked by its descriptor before a byte is read: a regular
 * file, ours, or found in a directory nobody else can write to. Anything
 * else (a FIFO, a directory, a symlink, a file another user put in a
 * shared directory such as /tmp) is refused at once, naming it and its
 * owner: it was not left by an ipcbor server of ours.
 */
function breakStaleLock(lockPath: string, path: string): string | undefined {
  const remove = `Remove it if no server is starting at ${path}, or serve where only you can write (a service name, in your runtime directory)`;
  let fd: number;
  try {
    fd = openSync(lockPath, constants.O_RDONLY | O_PLANTED);
  } catch (err) {
    const code = errno(err);
    if (code === 'ENOENT') return undefined;
    const st = lstatExact(lockPath);
    if (!st) return undefined;
    // ELOOP: a symlink; ENXIO: a socket (or a FIFO with no writer, on some systems).
    throw invalid(`the lock file ${lockPath} is ${kindOf(st)} (owned by uid ${st.uid}), not a regular file: refusing it (${code}). ${remove}`, err);
  }
  try {
    const st = fstatSync(fd, { bigint: true });
    if (!st.isFile()) throw invalid(`the lock file ${lockPath} is ${kindOf(st)} (owned by uid ${st.uid}), not a regular file: refusing it. ${remove}`);
    const me = currentUid();
    if (me !== undefined && Number(st.uid) !== me && !privateDir(dirname(lockPath))) {
      throw invalid(
        `the lock file ${lockPath} belongs to uid ${st.uid}, not to you (uid ${me}), in a directory others can write to: another user may have put it there to keep this server from starting. Have uid ${st.uid} (or root) remove it if no server of theirs is starting at ${path}, or serve where only you can write (a service name, in your runtime directory)`,
      );
    }
    const buf = Buffer.alloc(LOCK_TEXT_MAX);
    const text = buf.subarray(0, readSync(fd, buf, 0, LOCK_TEXT_MAX, 0)).toString('latin1').trim();
    const pid = /^\d{1,10}$/.test(text) ? Number(text) : undefined;
    const age = Date.now() - Number(st.mtimeMs);
    // An empty lock file is being written, unless it is old: its writer died.
    const dead = pid !== undefined ? pid === 0 || !pidAlive(pid) : age > 1000;
    if (!dead && age < LOCK_STALE_MS) return pid !== undefined ? String(pid) : 'unknown';
    // Remove it only if it is still the file read: another server may have
    // removed it already and taken the lock afresh.
    const now = lstatExact(lockPath);
    if (sameFile(now, st)) {
      try {
        unlinkSync(lockPath);
      } catch (err) {
        throw invalid(`cannot remove the stale lock file ${lockPath} (owned by uid ${st.uid}): ${errno(err)}. ${remove}`, err);
      }
    }
    return undefined;
  } finally {
    closeSync(fd);
  }
}
