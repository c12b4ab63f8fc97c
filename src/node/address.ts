/**
 * Addresses: `unix:/path/to.sock`, `tcp:host:port`, `tcp:[::1]:port`,
 * `tls:host:port` (TCP with TLS from the first byte: see tls.ts), a service
 * name (`timer`, a socket in the runtime directory: see rundir.ts), a bare
 * path (`./timer.sock`, `/run/x`: a word holding a '/' or ending in
 * `.sock`), and the
 * nim-ffi's example programs' flags `--unix PATH` / `--tcp HOST PORT`, plus `--tls HOST
 * PORT` and `--name NAME`.
 */
import { BlockList, isIP } from 'node:net';
import { IpcborError } from '../core/errors.js';
import { isServiceName, runtimeDir, socketPathFor } from './rundir.js';

/**
 * A unix socket (`name` is set when it was given as a service name, and
 * `path` is then `<rundir>/<name>.sock`), a TCP host and port, or the same
 * with TLS.
 */
export type Address =
  | {
      /** A unix socket. */
      kind: 'unix';
      /** The socket file's path. */
      path: string;
      /** The service name it was given as, if it was (formatAddress then gives back the name). */
      name?: string;
    }
  | {
      /** Plain TCP. */
      kind: 'tcp';
      /** A host name or IP address, IPv6 without brackets (`::1`). */
      host: string;
      /** The port, 0 to 65535 (0: any free one, when listening). */
      port: number;
    }
  | {
      /** TCP with TLS from the first byte. */
      kind: 'tls';
      /** A host name or IP address, IPv6 without brackets (`::1`). */
      host: string;
      /** The port, 0 to 65535 (0: any free one, when listening). */
      port: number;
    };

/** Longest unix socket path Linux accepts (sun_path is 108 bytes with the NUL); macOS allows 103. */
export const MAX_UNIX_PATH_BYTES = process.platform === 'darwin' ? 103 : 107;

const invalid = (msg: string) => new IpcborError('IPCBOR_ERR_INVALID_ADDRESS', msg);

function port(text: string, whole: string): number {
  if (!/^\d{1,5}$/.test(text) || Number(text) > 65535) throw invalid(`bad port "${text}" in address "${whole}": expected 0 to 65535`);
  return Number(text);
}

export function unixAddress(path: string): Address {
  if (path === '') throw invalid('unix socket path is empty');
  const bytes = Buffer.byteLength(path);
  if (bytes > MAX_UNIX_PATH_BYTES) {
    throw invalid(`unix socket path is ${bytes} bytes, over the limit of ${MAX_UNIX_PATH_BYTES} on this system: use a shorter path (${path})`);
  }
  return { kind: 'unix', path };
}

/** Service `name`, resolved now to `<rundir>/<name>.sock` (the runtime directory is checked when it is used). */
export function nameAddress(name: string): Address {
  const dir = runtimeDir();
  const path = socketPathFor(name, dir);
  const bytes = Buffer.byteLength(path);
  if (bytes > MAX_UNIX_PATH_BYTES) {
    throw invalid(`the socket of service "${name}" would be ${path}, ${bytes} bytes, over the unix socket path limit of ${MAX_UNIX_PATH_BYTES} on this system: use a shorter name or runtime directory (IPCBOR_RUNDIR)`);
  }
  return { kind: 'unix', path, name };
}

export function tcpAddress(host: string, portText: string | number, kind: 'tcp' | 'tls' = 'tcp'): Address {
  const h = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  if (h === '') throw invalid(`${kind} host is empty`);
  return { kind, host: h, port: port(String(portText), `${host}:${portText}`) };
}

/** `tls:HOST:PORT`: TCP with TLS from the first byte. */
export function tlsAddress(host: string, portText: string | number): Address {
  return tcpAddress(host, portText, 'tls');
}

/**
 * True for a host that only this machine can reach: `localhost`,
 * 127.0.0.0/8, `::1` (in any spelling, and 127.x as an IPv4-mapped IPv6
 * address).
 * Anything else, names included, counts as a network address.
 */
export function isLoopbackHost(host: string): boolean {
  if (host.toLowerCase() === 'localhost') return true;
  const family = isIP(host);
  return family !== 0 && LOOPBACK.check(host, family === 4 ? 'ipv4' : 'ipv6');
}

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/**
 * A bare word that is a unix socket path, not a service name: it holds a
 * '/' (`./x`, `/run/x.sock`) or ends in `.sock` (`timer.sock`, whose name
 * would be `timer.sock.sock`). A word that starts like a URL (`http:`,
 * `ws:`) is neither.
 */
export function looksLikePath(text: string): boolean {
  return (text.includes('/') || text.endsWith('.sock')) && !/^[A-Za-z][A-Za-z0-9+.-]*:/.test(text);
}

/**
 * Parse `unix:PATH`, `tcp:HOST:PORT` or `tls:HOST:PORT` (IPv6 hosts in
 * brackets), a bare path (a word holding a '/' or ending in `.sock`), or a
 * service name (`timer` or `name:timer`; `name:` takes only names), which
 * is resolved now to its socket in the runtime directory. An
 * {@link Address} is returned as it is.
 *
 * Throws IPCBOR_ERR_INVALID_ADDRESS for anything else: a bad port (not 0
 * to 65535), an empty host or path, a unix socket path too long for the
 * system (107 bytes on Linux, 103 on macOS).
 *
 * @example
 * ```ts
 * import { parseAddress } from 'ipcbor';
 *
 * parseAddress('tcp:[::1]:9099'); // { kind: 'tcp', host: '::1', port: 9099 }
 * parseAddress('./timer.sock');   // { kind: 'unix', path: './timer.sock' }
 * parseAddress('timer');          // { kind: 'unix', path: '<rundir>/timer.sock', name: 'timer' }
 * ```
 */
export function parseAddress(text: string | Address): Address {
  if (typeof text !== 'string') return text;
  if (text.startsWith('unix:')) return unixAddress(text.slice(5));
  if (text.startsWith('name:')) return nameAddress(text.slice(5));
  if (looksLikePath(text)) return unixAddress(text);
  if (isServiceName(text)) return nameAddress(text);
  if (text.startsWith('tcp:') || text.startsWith('tls:')) {
    const kind = text.slice(0, 3) as 'tcp' | 'tls';
    const rest = text.slice(4);
    const m = /^\[([^\]]+)\]:(\d+)$/.exec(rest) ?? /^([^:[\]]+):(\d+)$/.exec(rest);
    if (!m) throw invalid(`bad ${kind} address "${text}": expected ${kind}:HOST:PORT, with IPv6 hosts in brackets (${kind}:[::1]:9099)`);
    return tcpAddress(m[1]!, m[2]!, kind);
  }
  throw invalid(`bad address "${text}": expected unix:PATH, tcp:HOST:PORT or tls:HOST:PORT, a socket path (holding a '/' or ending in .sock), or a service name (letters, digits, '.', '_', '-')`);
}

/**
 * An address as text: `unix:PATH`, `tcp:HOST:PORT`, `tls:HOST:PORT` (an
 * IPv6 host in brackets), or, for an address given as a service name, the
 * bare name. {@link parseAddress} parses it back.
 */
export function formatAddress(a: Address): string {
  if (a.kind === 'unix') return a.name !== undefined ? a.name : `unix:${a.path}`;
  return a.host.includes(':') ? `${a.kind}:[${a.host}]:${a.port}` : `${a.kind}:${a.host}:${a.port}`;
}

/**
 * Take addresses from program arguments: `--unix PATH`, `--tcp HOST PORT`,
 * `--tls HOST PORT`, `--name NAME` (the flags of nim-ffi's example
 * programs, and two more), or `unix:…` / `tcp:…` / `tls:…` / `name:…`
 * arguments, any number of them. Returns them in order, and the arguments
 * left over. (A bare word is left over, not taken as a name: use
 * `--name`.) Throws IPCBOR_ERR_INVALID_ADDRESS for a flag missing its
 * value or an address that does not parse.
 */
export function addressesFromArgs(args: readonly string[]): {
  /** The addresses, in the order given (none if there were none). */
  addresses: Address[];
  /** The other arguments, in order. */
  rest: string[];
} {
  const rest: string[] = [];
  const addresses: Address[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--unix') {
      const p = args[++i];
      if (p === undefined) throw invalid('--unix needs a PATH');
      addresses.push(unixAddress(p));
    } else if (arg === '--tcp' || arg === '--tls') {
      const host = args[++i];
      const p = args[++i];
      if (host === undefined || p === undefined) throw invalid(`${arg} needs a HOST and a PORT`);
      addresses.push(tcpAddress(host, p, arg === '--tls' ? 'tls' : 'tcp'));
    } else if (arg === '--name') {
      const n = args[++i];
      if (n === undefined) throw invalid('--name needs a service NAME');
      addresses.push(nameAddress(n));
    } else if (arg.startsWith('unix:') || arg.startsWith('tcp:') || arg.startsWith('tls:') || arg.startsWith('name:')) {
      addresses.push(parseAddress(arg));
    } else {
      rest.push(arg);
    }
  }
  return { addresses, rest };
}

/**
 * Exactly one address from program arguments (see
 * {@link addressesFromArgs}), and the arguments left over. Throws
 * IPCBOR_ERR_INVALID_ADDRESS when there is none, more than one, or one
 * that does not parse.
 */
export function addressFromArgs(args: readonly string[]): {
  /** The address. */
  address: Address;
  /** The other arguments, in order. */
  rest: string[];
} {
  const { addresses, rest } = addressesFromArgs(args);
  if (addresses.length === 0) throw invalid('no address given: use --name NAME, --unix PATH, --tcp HOST PORT, --tls HOST PORT, unix:PATH, tcp:HOST:PORT or tls:HOST:PORT');
  if (addresses.length > 1) throw invalid('more than one address given');
  return { address: addresses[0]!, rest };
}
