/** The shape every CLI command has; main.ts parses and dispatches. */
import { readFileSync } from 'node:fs';
import { IpcborError } from '../core/errors.js';
import type { TlsClientOptions } from '../node/tls.js';

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
  /** Aborts on Ctrl-C. */
  signal: AbortSignal;
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
    throw new IpcborError('IPCBOR_ERR_INVALID_ADDRESS', `cannot read --${name} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
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
