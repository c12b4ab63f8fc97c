/**
 * The runtime directory: where services given by name (`timer`) have their
 * sockets, `<rundir>/<name>.sock`.
 *
 * It is `$IPCBOR_RUNDIR`, else `$XDG_RUNTIME_DIR/ipcbor`, else
 * `<home>/.ipcbor/run` when the home directory is a directory of the
 * user's own, else `<os.tmpdir()>/ipcbor-<uid>`. The choice depends on the
 * environment and the home directory only, never on what is found at the
 * candidates: a client and a server of the same user resolve to the same
 * directory. The home fallback is one other users cannot create first; a
 * name in the shared temporary directory they can, and that is refused
 * (naming who did it, and how to get past it), never silently replaced.
 *
 * A server creates it (mode 0700: that one level, and `.ipcbor` above it
 * for the home fallback; never other parents); servers and clients check
 * it before every use: a real directory (not a symlink), owned by the
 * user, writable by nobody else. In a directory nobody else can write,
 * nobody else can plant a socket a client would take for the service, nor
 * replace or remove a server's socket, nor plant a lock file beside it.
 */
import { lstatSync, mkdirSync, readdirSync, statSync, type Stats } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import { IpcborError } from '../core/errors.js';

/** What a service name looks like: no `/`, no `:`, not `.`/`..`, at most 64 characters. */
export const SERVICE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function isServiceName(text: string): boolean {
  return SERVICE_NAME.test(text);
}

const invalid = (msg: string) => new IpcborError('IPCBOR_ERR_INVALID_ADDRESS', msg);

/** The current uid, or undefined where there is none (Windows). */
export function currentUid(): number | undefined {
  return typeof process.getuid === 'function' ? process.getuid() : undefined;
}

/** The runtime directory's path, from the environment (nothing is created or checked here). */
export function runtimeDir(env: NodeJS.ProcessEnv = process.env): string {
  const own = env.IPCBOR_RUNDIR;
  if (own) {
    if (!isAbsolute(own)) throw invalid(`IPCBOR_RUNDIR must be an absolute path, not "${own}"`);
    return own;
  }
  const xdg = env.XDG_RUNTIME_DIR;
  if (xdg && isAbsolute(xdg)) return join(xdg, 'ipcbor');
  return homeRuntimeDir() ?? join(tmpdir(), `ipcbor-${currentUid() ?? 'user'}`);
}

/**
 * `<home>/.ipcbor/run`, if the home directory is an absolute path to a
 * directory owned by the user (the owner check is left out where there
 * are no uids); else undefined (no home, as for some system users, or one
 * that is not theirs: HOME=/nonexistent, or another user's under sudo).
 */
function homeRuntimeDir(): string | undefined {
  let home: string;
  try {
    home = homedir();
  } catch {
    return undefined;
  }
  if (!home || !isAbsolute(home)) return undefined;
  let st: Stats | undefined;
  try {
    st = statSync(home, { throwIfNoEntry: false });
  } catch {
    return undefined;
  }
  const me = currentUid();
  if (!st || !st.isDirectory() || (me !== undefined && st.uid !== me)) return undefined;
  return join(home, HOME_PARENT, 'run');
}

/** The directory in the home directory that holds the runtime directory of the home fallback. */
const HOME_PARENT = '.ipcbor';

/** The socket path of service `name`: `<rundir>/<name>.sock`. (Its length is checked by the address parser.) */
export function socketPathFor(name: string, dir: string = runtimeDir()): string {
  if (!isServiceName(name)) {
    throw invalid(`bad service name "${name}": expected 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit`);
  }
  return join(dir, `${name}.sock`);
}

export interface RundirCheck {
  /** Owners accepted besides the current user (a client also accepts root, and whom it was told to trust). */
  owners?: readonly number[];
  /** Skip the owner check (a client told to trust any owner). */
  anyOwner?: boolean;
}

/**
 * Check that `dir` is fit to hold sockets: a directory (a symlink is not
 * followed), owned by the current user (or one of `owners`), and not
 * writable by group or others. Throws IPCBOR_ERR_INVALID_ADDRESS naming the
 * problem; returns the directory's stats, or undefined if it does not exist.
 */
export function checkRuntimeDir(dir: string, check: RundirCheck = {}): Stats | undefined {
  let st: Stats | undefined;
  try {
    st = lstatSync(dir, { throwIfNoEntry: false });
  } catch (err) {
    throw new IpcborError('IPCBOR_ERR_INVALID_ADDRESS', `cannot use the runtime directory ${dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
  if (!st) return undefined;
  const unsafe = (what: string) => invalid(`refusing the runtime directory ${dir}: ${what}`);
  if (st.isSymbolicLink()) throw unsafe('it is a symbolic link (it must be a real directory)');
  if (!st.isDirectory()) throw unsafe('it is not a directory');
  const me = currentUid();
  if (me !== undefined && !check.anyOwner && st.uid !== me && !(check.owners ?? []).includes(st.uid)) {
    throw unsafe(
      `it is owned by uid ${st.uid}, not by you (uid ${me}): that user may have created it to keep your services from starting. ` +
        'Remove it (as its owner or root), or set IPCBOR_RUNDIR to a directory of your own (an absolute path; mode 0700) for servers and clients alike',
    );
  }
  if (me !== undefined && (st.mode & 0o022) !== 0) {
    throw unsafe(`it is writable by ${(st.mode & 0o020) !== 0 ? 'its group' : 'others'} (mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')}; it must be 0700 or at least not group/other-writable)`);
  }
  return st;
}

/**
 * Make sure the runtime directory exists (created mode 0700; only the last
 * level is created, and for the home fallback `<home>/.ipcbor` too, never
 * other parents) and passes checkRuntimeDir.
 */
export function ensureRuntimeDir(dir: string = runtimeDir()): string {
  if (checkRuntimeDir(dir)) return dir;
  // The home fallback's `.ipcbor`, held to the same rules as the directory itself.
  if (dir === homeRuntimeDir()) makeDir(dirname(dir));
  return makeDir(dir);
}

/** Create `dir` (mode 0700, parents not created) unless it exists, then check it. */
function makeDir(dir: string): string {
  if (checkRuntimeDir(dir)) return dir;
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EEXIST') {
      const why = code === 'ENOENT' ? 'its parent directory does not exist' : (code ?? (err as Error).message);
      throw new IpcborError('IPCBOR_ERR_INVALID_ADDRESS', `cannot create the runtime directory ${dir}: ${why}`, { cause: err });
    }
  }
  // Created by us or by someone else in between: check it either way.
  if (!checkRuntimeDir(dir)) throw invalid(`the runtime directory ${dir} vanished while it was being created`);
  return dir;
}

/** The names of the services with a socket in the runtime directory (sorted); none if it does not exist. */
export function listServiceNames(dir: string = runtimeDir()): string[] {
  if (!checkRuntimeDir(dir, { owners: [0] })) return [];
  const names: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (!entry.isSocket() || !entry.name.endsWith('.sock')) continue;
    const name = entry.name.slice(0, -'.sock'.length);
    if (isServiceName(name)) names.push(name);
  }
  return names.sort();
}
