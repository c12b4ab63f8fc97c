/** `ipcbor ls`: the services in the runtime directory, and whether they answer. */
import { DEFAULT_CLI_PROBE_TIMEOUT } from '../core/constants.js';
import { connect } from '../node/client.js';
import { DESCRIBE_METHOD } from '../core/protocol/heads.js';
import type { Description } from '../core/service.js';
import { listServiceNames, runtimeDir, socketPathFor } from '../node/rundir.js';
import { numberOption, type Command } from './command.js';
import { escapeControls } from './escape.js';
import { toJson } from './json.js';

export interface ServiceStatus {
  name: string;
  path: string;
  /** It accepted a connection and answered (the hello, or a base-framing call). */
  answers: boolean;
  protocol?: 'base' | 'extended';
  /** The server implementation, from the hello answer. */
  server?: string;
  /** The services it describes ($ipcbor.describe), if it did in time. */
  services?: { name: string; version: string }[];
  /** Why it does not answer. */
  error?: string;
}

/** Probe one service: connect, then describe, all within `timeout` ms. */
export async function probeService(name: string, dir: string, timeout: number, signal?: AbortSignal): Promise<ServiceStatus> {
  const path = socketPathFor(name, dir);
  const deadline = Date.now() + timeout;
  const status: ServiceStatus = { name, path, answers: false };
  let client;
  try {
    client = await connect(`unix:${path}`, { connectTimeout: timeout, ...(signal ? { signal } : {}) });
  } catch (err) {
    status.error = (err as Error).message.replace(`could not connect to unix:${path}: `, '');
    return status;
  }
  status.answers = true;
  status.protocol = client.protocol;
  if (client.server) status.server = client.server.server;
  try {
    if (client.protocol === 'extended') {
      const left = deadline - Date.now();
      if (left > 0) {
        try {
          const d = (await client.call(DESCRIBE_METHOD, {}, { timeout: left, ...(signal ? { signal } : {}) })) as Description;
          status.services = d.services.map((s) => ({ name: s.name, version: s.version }));
        } catch {
          // no description in time: the name and the hello are what there is
        }
      }
    }
  } finally {
    client.destroy();
  }
  return status;
}

function row(s: ServiceStatus): string[] {
  const state = s.answers ? (s.protocol === 'base' ? 'up (base framing)' : 'up') : s.error?.includes('ECONNREFUSED') ? 'stale' : 'no answer';
  const services = s.services?.map((x) => `${x.name} ${x.version}`).join(', ') ?? '';
  // Escaped before the columns are measured: a server's version or name is its own text.
  return [s.name, state, s.server ?? '', services || (s.answers ? '' : (s.error ?? ''))].map((cell) => escapeControls(cell));
}

export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n');
}

export const lsCommand: Command = {
  name: 'ls',
  summary: 'list the services in the runtime directory and whether they answer',
  usage: 'ipcbor ls [--json] [--timeout MS]',
  help: `Lists the services started by name (serve(service, 'NAME')): the sockets
NAME.sock in the runtime directory ($IPCBOR_RUNDIR, else
$XDG_RUNTIME_DIR/ipcbor, else ~/.ipcbor/run, else <tmpdir>/ipcbor-<uid>
when there is no home directory of your own). For each, says
whether it answers and, where it can, its server and the services it
describes with their versions. All are asked at once; one that does not
answer within the timeout is shown as such.

Options:
  --json          one JSON object per line instead of a table
  --timeout MS    how long to wait for each service (default 1000)`,
  options: { json: { type: 'boolean' }, timeout: { type: 'string' } },
  async run(positionals, values, io) {
    if (positionals.length > 0) return io.usage();
    const timeout = numberOption(values, 'timeout', DEFAULT_CLI_PROBE_TIMEOUT, { what: 'milliseconds' });
    const dir = runtimeDir();
    const names = listServiceNames(dir);
    const statuses = await Promise.all(names.map((n) => probeService(n, dir, timeout, io.signal)));
    if (values.json) {
      for (const s of statuses) io.out(toJson(s, false));
    } else if (statuses.length === 0) {
      io.error(`no services in ${dir}`);
    } else {
      io.out(table([['NAME', 'STATE', 'SERVER', 'SERVICES'], ...statuses.map(row)]));
    }
    return 0;
  },
};
