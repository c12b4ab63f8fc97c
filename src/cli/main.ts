#!/usr/bin/env node
/** The `ipcbor` command line. */
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { IpcborError, RemoteError } from '../core/errors.js';
import { callCommand } from './call.js';
import { conformanceCommand } from './conformance.js';
import { describeCommand } from './describe.js';
import { lsCommand } from './ls.js';
import { monitorCommand } from './monitor.js';
import { relayCommand } from './relay.js';
import { subscribeCommand } from './subscribe.js';
import type { Command, Io } from './command.js';
import { escapeControls } from './escape.js';

const commands: Command[] = [callCommand, describeCommand, lsCommand, monitorCommand, relayCommand, subscribeCommand, conformanceCommand];

const mainHelp = `ipcbor: talk to CBOR-over-socket services (unix sockets, TCP and TLS)

Usage: ipcbor COMMAND [ARGS] [OPTIONS]

Commands:
${commands.map((c) => `  ${c.name.padEnd(12)} ${c.summary}`).join('\n')}

Addresses are unix:PATH, tcp:HOST:PORT, tls:HOST:PORT, or the NAME of a
service started by name (its socket is NAME.sock in the runtime directory;
'ipcbor ls' lists them).
Run 'ipcbor COMMAND --help' for the options of a command.`;

/** stdout and stderr; `drained` waits while stdout is backed up (a pipe nobody reads fast enough). */
const stdio: Pick<Io, 'out' | 'error' | 'blocked'> & { drained(): Promise<void> | undefined } = {
  out: (line) => void process.stdout.write(`${line}\n`),
  error: (line) => void process.stderr.write(`${line}\n`),
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
};

export async function main(argv: string[], sink: Pick<Io, 'out' | 'error'> & { drained?(): Promise<void> | undefined; blocked?(): boolean } = stdio): Promise<number> {
  // Everything printed goes through one escape: no control character a
  // server sent reaches the terminal raw.
  const io = {
    out: (line: string) => sink.out(escapeControls(line, 'lines')),
    error: (line: string) => sink.error(escapeControls(line, 'lines')),
  };
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.out(mainHelp);
    return name === undefined ? 2 : 0;
  }
  if (name === '--version') {
    io.out('ipcbor 0.1.0');
    return 0;
  }
  const command = commands.find((c) => c.name === name);
  if (!command) {
    io.error(`ipcbor: unknown command '${name}'\n\n${mainHelp}`);
    return 2;
  }
  let parsed;
  try {
    parsed = parseArgs({ args: rest, allowPositionals: true, strict: true, options: { ...command.options, help: { type: 'boolean', short: 'h' } } });
  } catch (err) {
    io.error(`ipcbor ${command.name}: ${(err as Error).message}\nUsage: ${command.usage}`);
    return 2;
  }
  if (parsed.values.help) {
    io.out(`Usage: ${command.usage}\n\n${command.help}`);
    return 0;
  }
  // The first Ctrl-C (or SIGTERM) stops the command cleanly (it aborts
  // io.signal); a second one exits at once.
  const ac = new AbortController();
  let exitStatus = 130;
  const onSignal = (signal: NodeJS.Signals) => {
    if (ac.signal.aborted) process.exit(exitStatus);
    exitStatus = signal === 'SIGTERM' ? 143 : 130;
    ac.abort(new IpcborError('IPCBOR_ERR_CANCELLED', signal === 'SIGTERM' ? 'terminated' : 'interrupted'));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const full: Io = {
    ...io,
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
    blocked: () => sink.blocked?.() ?? false,
    signal: ac.signal,
    usage: () => {
      io.error(`Usage: ${command.usage}\nRun 'ipcbor ${command.name} --help' for details.`);
      return 2;
    },
  };
  try {
    const status = await command.run(parsed.positionals, parsed.values as Record<string, string | boolean | string[] | undefined>, full);
    return status === 130 && ac.signal.aborted ? exitStatus : status;
  } catch (err) {
    if (err instanceof RemoteError) {
      io.error(escapeControls(err.message));
      return 1;
    }
    if (err instanceof IpcborError) {
      if (err.code === 'IPCBOR_ERR_CANCELLED' && ac.signal.aborted) return exitStatus;
      io.error(`ipcbor ${command.name}: ${escapeControls(err.message)}`);
      return err.code === 'IPCBOR_ERR_INVALID_ADDRESS' ? 2 : 3;
    }
    io.error(`ipcbor ${command.name}: ${(err as Error).stack ?? String(err)}`);
    return 3;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

const isEntry = process.argv[1] !== undefined && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href;
if (isEntry) {
  process.exitCode = await main(process.argv.slice(2));
}
