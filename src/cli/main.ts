#!/usr/bin/env node
/** The `ipcbor` command line. */
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { IpcborError, RemoteError } from '../core/errors.js';
import { benchCommand } from './bench.js';
import { conformanceCommand } from './conformance.js';
import { callCommand } from './call.js';
import { describeCommand } from './describe.js';
import { lsCommand } from './ls.js';
import { monitorCommand } from './monitor.js';
import { notifyCommand } from './notify.js';
import { relayCommand } from './relay.js';
import { subscribeCommand } from './subscribe.js';
import { connectHint, EXIT, exitHelp, statusOf, UsageError, type Command, type Io } from './command.js';
import { escapeControls } from './escape.js';

const commands: Command[] = [callCommand, describeCommand, subscribeCommand, notifyCommand, lsCommand, benchCommand, relayCommand, monitorCommand, conformanceCommand];

const mainHelp = `ipcbor: talk to CBOR-over-socket services (unix sockets, TCP and TLS)

Usage: ipcbor COMMAND [ARGS] [OPTIONS]

Commands:
${commands.map((c) => `  ${c.name.padEnd(10)} ${c.summary}`).join('\n')}

Addresses are unix:PATH, tcp:HOST:PORT, tls:HOST:PORT, a socket path (a
word with a '/' or ending in .sock: ./timer.sock), or the NAME of a
service started by name (its socket is NAME.sock in the runtime directory;
'ipcbor ls' lists them).

${exitHelp}

Run 'ipcbor help COMMAND' (or 'ipcbor COMMAND --help') for a command's options.`;

/** Where main() prints, and how it learns that stdout was closed. */
export interface Sink {
  out(line: string): void;
  error(line: string): void;
  /** Resolves once stdout is no longer backed up; undefined when it is not. */
  drained?(): Promise<void> | undefined;
  /** Whether stdout is backed up now (a command that drops output rather than wait asks). */
  blocked?(): boolean;
  /** Raw text on stderr (progress lines). */
  errorRaw?(text: string): void;
  /** stderr is a terminal (progress lines replace each other). */
  errorIsTty?: boolean;
  /** Call `closed` when stdout can take nothing more (its reader went away: EPIPE); returns how to stop watching. */
  watchClosed?(closed: () => void): () => void;
  stdin?: AsyncIterable<Buffer | string>;
}

/**
 * The process's stdout and stderr. A write to a stdout whose reader went
 * away (`ipcbor ... | head`) fails with EPIPE, told as an 'error' event:
 * it is heard here (see watchClosed), and what is written after it is dropped.
 */
const stdio: Sink = {
  out: (line) => {
    if (!process.stdout.destroyed) process.stdout.write(`${line}\n`);
  },
  error: (line) => {
    if (!process.stderr.destroyed) process.stderr.write(`${line}\n`);
  },
  errorRaw: (text) => {
    if (!process.stderr.destroyed) process.stderr.write(text);
  },
  errorIsTty: process.stderr.isTTY === true,
  blocked: () => process.stdout.writableNeedDrain && !process.stdout.destroyed,
  drained: () => {
    const s = process.stdout;
    if (!s.writableNeedDrain || s.destroyed) return undefined;
    return new Promise((resolve) => {
      const done = () => {
        s.off('drain', done);
        s.off('close', done);
        s.off('error', done);
        resolve();
      };
      s.on('drain', done);
      s.on('close', done);
      s.on('error', done);
    });
  },
  watchClosed: (closed) => {
    const onStdout = () => {
      process.stdout.destroy();
      closed();
    };
    // stderr gone too (2>&1 | head): nothing more can be said there either.
    const onStderr = () => process.stderr.destroy();
    process.stdout.on('error', onStdout);
    process.stderr.on('error', onStderr);
    return () => {
      process.stdout.off('error', onStdout);
      process.stderr.off('error', onStderr);
      // A write that fails later (the process is ending) must not crash it.
      process.stdout.on('error', () => {});
      process.stderr.on('error', () => {});
    };
  },
  stdin: process.stdin,
};

/** Print what a command threw; the exit status it stands for (README, "The command line"). */
function failure(err: unknown, command: Command, io: Pick<Io, 'error'>): number {
  if (err instanceof UsageError) {
    io.error(`ipcbor ${command.name}: ${err.message}\nUsage: ${command.usage}`);
  } else if (err instanceof RemoteError) {
    // The server's own text, as it is; a deadline it gave up on is this command's timeout.
    io.error(err.code === 'IPCBOR_ERR_DEADLINE_EXCEEDED' ? `ipcbor ${command.name}: the server gave up: ${escapeControls(err.message)} (--timeout)` : escapeControls(err.message));
  } else if (err instanceof IpcborError) {
    const hint = connectHint(err);
    io.error(`ipcbor ${command.name}: ${escapeControls(err.message)}${hint ? `\n  ${hint}` : ''}`);
  } else {
    io.error(`ipcbor ${command.name}: internal error (please report it): ${(err as Error).stack ?? String(err)}`);
  }
  return statusOf(err);
}

export async function main(argv: string[], sink: Sink = stdio): Promise<number> {
  // Everything printed goes through one escape: no control character a
  // server sent reaches the terminal raw.
  const io = {
    out: (line: string) => sink.out(escapeControls(line, 'lines')),
    error: (line: string) => sink.error(escapeControls(line, 'lines')),
  };
  let [name, ...rest] = argv;
  if (name === 'help' && rest.length > 0) {
    // `ipcbor help COMMAND` is `ipcbor COMMAND --help`.
    if (rest.length > 1) {
      io.error(`ipcbor help: one command at a time\n\n${mainHelp}`);
      return EXIT.usage;
    }
    [name, rest] = [rest[0], ['--help']];
  }
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.out(mainHelp);
    return name === undefined ? EXIT.usage : EXIT.ok;
  }
  if (name === '--version') {
    io.out('ipcbor 0.1.0');
    return EXIT.ok;
  }
  const command = commands.find((c) => c.name === name);
  if (!command) {
    io.error(`ipcbor: unknown command '${name}'\n\n${mainHelp}`);
    return EXIT.usage;
  }
  let parsed;
  try {
    parsed = parseArgs({ args: rest, allowPositionals: true, strict: true, options: { ...command.options, help: { type: 'boolean', short: 'h' } } });
  } catch (err) {
    io.error(`ipcbor ${command.name}: ${(err as Error).message}\nUsage: ${command.usage}`);
    return EXIT.usage;
  }
  if (parsed.values.help) {
    io.out(`Usage: ${command.usage}\n\n${command.help}\n\n${exitHelp}`);
    return EXIT.ok;
  }
  // The first Ctrl-C (or SIGTERM) stops the command cleanly (it aborts
  // io.signal); a second one exits at once. A closed stdout stops it too,
  // with status 0: its reader had what it wanted.
  const ac = new AbortController();
  let exitStatus: number = EXIT.interrupted;
  const onSignal = (signal: NodeJS.Signals) => {
    if (ac.signal.aborted) process.exit(exitStatus);
    exitStatus = signal === 'SIGTERM' ? EXIT.terminated : EXIT.interrupted;
    ac.abort(new IpcborError('IPCBOR_ERR_CANCELLED', signal === 'SIGTERM' ? 'terminated' : 'interrupted'));
  };
  const unwatch = sink.watchClosed?.(() => {
    if (ac.signal.aborted) return;
    exitStatus = EXIT.ok;
    ac.abort(new IpcborError('IPCBOR_ERR_CANCELLED', 'stdout was closed'));
  });
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let progressShown = false;
  const full: Io = {
    ...io,
    blocked: () => sink.blocked?.() ?? false,
    drained: () => {
      const wait = sink.drained?.();
      if (wait === undefined || ac.signal.aborted) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const done = () => {
          ac.signal.removeEventListener('abort', done);
          resolve();
        };
        ac.signal.addEventListener('abort', done, { once: true });
        void wait.then(done);
      });
    },
    signal: ac.signal,
    usage: () => {
      io.error(`Usage: ${command.usage}\nRun 'ipcbor help ${command.name}' for details.`);
      return EXIT.usage;
    },
    progress: (line) => {
      if (sink.errorIsTty) {
        if (line === undefined && !progressShown) return;
        sink.errorRaw?.(`\r\u001b[K${line ?? ''}`);
        progressShown = line !== undefined;
      } else if (line !== undefined) {
        sink.error(line);
      }
    },
    stdin: sink.stdin ?? (async function* () {})(),
  };
  try {
    const status = await command.run(parsed.positionals, parsed.values as Record<string, string | boolean | string[] | undefined>, full);
    return status === EXIT.interrupted && ac.signal.aborted ? exitStatus : status;
  } catch (err) {
    if (err instanceof IpcborError && err.code === 'IPCBOR_ERR_CANCELLED' && ac.signal.aborted) return exitStatus;
    return failure(err, command, io);
  } finally {
    full.progress(undefined);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    unwatch?.();
  }
}

const isEntry = process.argv[1] !== undefined && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href;
if (isEntry) {
  process.exitCode = await main(process.argv.slice(2));
}
