/** The shape every CLI command has; main.ts parses and dispatches. */
import { readFileSync } from 'node:fs';
import { IpcborError, RemoteError } from '../core/errors.js';
import type { TlsClientOptions } from '../node/tls.js';
import { fromJson } from './json.js';

/**
 * The exit statuses, the same for every command (README, "The command
 * line"): main.ts turns what a command threw into one of them.
 */
export const EXIT = {
  ok: 0,
  /** The server answered with an error, or cannot do what was asked. */
  refused: 1,
  usage: 2,
  /** The server could not be reached, or the connection failed. */
  unreachable: 3,
  timeout: 4,
  /** A bug in ipcbor itself. */
  internal: 70,
  interrupted: 130,
  terminated: 143,
} as const;

export const exitHelp = `Exit status (every command):
  0    success
  1    the server answered with an error, or cannot do what was asked (an
       unknown method or event; no events, notify or describe there)
  2    usage: bad arguments, options, JSON params, address or file
  3    the server could not be reached, or the connection failed
  4    timed out (--timeout), connecting or waiting for the answer
  130  interrupted (Ctrl-C); 143 terminated (SIGTERM)
  70   an internal error of ipcbor itself (a bug: please report it)
A closed stdout (ipcbor ... | head) ends a command quietly, with 0.`;

/** The exit status an error stands for (see EXIT and exitHelp). */
export function statusOf(err: unknown): number {
  if (err instanceof UsageError) return EXIT.usage;
  if (err instanceof RemoteError) return err.code === 'IPCBOR_ERR_DEADLINE_EXCEEDED' ? EXIT.timeout : EXIT.refused;
  if (!(err instanceof IpcborError)) return EXIT.internal;
  switch (err.code) {
    case 'IPCBOR_ERR_INVALID_ADDRESS':
      return EXIT.usage;
    case 'IPCBOR_ERR_TIMEOUT':
      return EXIT.timeout;
    case 'IPCBOR_ERR_CONNECT':
      // The connect deadline (--timeout) passed.
      return err.cause instanceof IpcborError && err.cause.code === 'IPCBOR_ERR_TIMEOUT' ? EXIT.timeout : EXIT.unreachable;
    case 'IPCBOR_ERR_UNKNOWN_METHOD':
    case 'IPCBOR_ERR_UNKNOWN_EVENT':
    case 'IPCBOR_ERR_NOT_SUPPORTED':
    case 'IPCBOR_ERR_INVALID_PARAMS':
    case 'IPCBOR_ERR_ENCODE':
    case 'IPCBOR_ERR_FRAME_TOO_LARGE':
      return EXIT.refused;
    default:
      return EXIT.unreachable;
  }
}

/** A mistake on the command line: main.ts prints it with the command's usage and exits 2. */
export class UsageError extends Error {
  override get name(): string {
    return 'UsageError';
  }
}

export interface Io {
  /** Print a line on stdout (escaped: see escape.ts). */
  out(line: string): void;
  error(line: string): void;
  /** Resolves once stdout can take more (at once unless it is backed up), or it closed, or the command was interrupted. */
  drained(): Promise<void>;
  /** stdout is backed up now (what is printed waits in memory): a command that must not wait drops lines instead. */
  blocked(): boolean;
  /** Print the command's usage to stderr and return exit status 2. */
  usage(): number;
  /** Aborts on Ctrl-C or SIGTERM, and when stdout is closed (its reader went away). */
  signal: AbortSignal;
  /** A status line on stderr that the next one replaces (on a terminal; elsewhere one line each); `undefined` clears it. Not escaped: never server text. */
  progress(line: string | undefined): void;
  /** Standard input, for params given as `-`. */
  stdin: AsyncIterable<Buffer | string>;
}

export interface Command {
  name: string;
  summary: string;
  usage: string;
  help: string;
  options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }>;
  run(positionals: string[], values: Record<string, string | boolean | string[] | undefined>, io: Io): Promise<number>;
}

export function option(values: Record<string, string | boolean | string[] | undefined>, name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
}

/** The TLS options of the commands that connect. */
export const tlsOptions = {
  ca: { type: 'string' },
  cert: { type: 'string' },
  key: { type: 'string' },
  servername: { type: 'string' },
} as const;

export const tlsHelp = `TLS (tls:HOST:PORT addresses; the server is always verified):
  --ca FILE           the CA certificate (PEM) that signed the server's
                      certificate (default: Node's public CAs)
  --cert FILE         this client's certificate, for mutual TLS (with --key)
  --key FILE          its private key (PEM)
  --servername NAME   the name the server's certificate must carry (default:
                      the address's host; an IP address is checked as one)`;

/** The contents of the file named by option `--name`, or undefined when it is not given; a file that cannot be read is a usage error. */
export function readOption(values: Record<string, string | boolean | string[] | undefined>, name: string): Buffer | undefined {
  const file = option(values, name);
  if (file === undefined) return undefined;
  try {
    return readFileSync(file);
  } catch (err) {
    throw new UsageError(`cannot read --${name} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
}

/** `{ tls }` for connect(), from --ca/--cert/--key/--servername (nothing when none is given). */
export function tlsFromOptions(values: Record<string, string | boolean | string[] | undefined>, prefix = ''): { tls?: TlsClientOptions } {
  const ca = readOption(values, `${prefix}ca`);
  const cert = readOption(values, `${prefix}cert`);
  const key = readOption(values, `${prefix}key`);
  const servername = option(values, `${prefix}servername`);
  if (ca === undefined && cert === undefined && key === undefined && servername === undefined) return {};
  return { tls: { ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}), ...(servername === undefined ? {} : { servername }) } };
}

/**
 * A number option (`--timeout 500`, `--duration 2.5`), or `fallback` when
 * it is not given. Anything but a number above `min` (at least `min` with
 * `orEqual`) is a usage error that says what is wrong.
 */
export function numberOption(
  values: Record<string, string | boolean | string[] | undefined>,
  name: string,
  fallback: number,
  how: { what: string; integer?: boolean; min?: number; orEqual?: boolean },
): number {
  const text = option(values, name);
  if (text === undefined) return fallback;
  const min = how.min ?? 0;
  const n = Number(text);
  const shaped = how.integer ? /^\d+$/.test(text) && Number.isSafeInteger(n) : /^(\d+(\.\d*)?|\.\d+)$/.test(text) && Number.isFinite(n);
  if (!shaped || n < min || (n === min && !how.orEqual)) {
    const kind = how.integer ? 'a whole number' : 'a number';
    const bound = how.orEqual ? `at least ${min}` : min === 0 ? 'above 0' : `above ${min}`;
    throw new UsageError(`--${name} must be ${kind} ${bound} (${how.what}), not '${text}'`);
  }
  return n;
}

/** Params on stdin are read up to this size (a frame's default limit is 16 MiB). */
const MAX_STDIN_BYTES = 64 * 1024 * 1024;

/**
 * The params of a call: the JSON argument (`{}` when there is none), or,
 * for `-`, the JSON read from stdin. Bad JSON is a usage error.
 */
export async function readParams(json: string | undefined, io: Pick<Io, 'stdin'>): Promise<unknown> {
  if (json === undefined) return {};
  let text = json;
  let from = '';
  if (json === '-') {
    from = ' (from stdin)';
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of io.stdin) {
      const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      size += b.length;
      if (size > MAX_STDIN_BYTES) throw new UsageError(`the params on stdin are over ${MAX_STDIN_BYTES / 1024 / 1024} MiB`);
      chunks.push(b);
    }
    text = Buffer.concat(chunks).toString('utf8');
    if (text.trim() === '') throw new UsageError("no params on stdin: '-' reads the params JSON from stdin, and it was empty");
  }
  try {
    return fromJson(text);
  } catch (err) {
    throw new UsageError(`params are not valid JSON${from}: ${(err as Error).message}`);
  }
}

/** What to do on the command line about a connect failure, when the library's error has a cause the CLI has a flag for. */
export function connectHint(err: IpcborError): string | undefined {
  if (err.code !== 'IPCBOR_ERR_CONNECT') return undefined;
  const code = (err.cause as NodeJS.ErrnoException | undefined)?.code ?? '';
  if (code === 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED' || /ALERT_HANDSHAKE_FAILURE$/.test(code)) return 'give this client a certificate and its key: --cert FILE --key FILE';
  if (/^(UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT|UNABLE_TO_GET_ISSUER_CERT_LOCALLY|SELF_SIGNED_CERT_IN_CHAIN|DEPTH_ZERO_SELF_SIGNED_CERT)$/.test(code)) {
    return "give the CA that signed the server's certificate: --ca FILE";
  }
  return undefined;
}
