/** `ipcbor describe ADDRESS`: what a server offers, readably. */
import { DEFAULT_CLI_DESCRIBE_TIMEOUT } from '../core/constants.js';
import { connect, type Client } from '../node/client.js';
import { DESCRIBE_METHOD } from '../core/protocol/heads.js';
import type { Description, DescribeMethod } from '../core/service.js';
import { IpcborError } from '../core/errors.js';
import { EXIT, numberOption, tlsFromOptions, tlsHelp, tlsOptions, type Command } from './command.js';
import { escapeControls } from './escape.js';
import { toJson } from './json.js';

type Json = Record<string, unknown>;

/** A JSON Schema as a short TypeScript-like type. */
export function typeText(schema: unknown, depth = 0): string {
  if (!schema || typeof schema !== 'object') return 'any';
  const s = schema as Json;
  if (depth > 6) return '…';
  if ('const' in s) return JSON.stringify(s.const);
  if (Array.isArray(s.enum)) return s.enum.map((v) => JSON.stringify(v)).join(' | ');
  const union = (s.anyOf ?? s.oneOf) as unknown[] | undefined;
  if (Array.isArray(union)) return union.map((u) => typeText(u, depth + 1)).join(' | ');
  const type = s.type;
  if (Array.isArray(type)) return type.map((t) => typeText({ ...s, type: t }, depth + 1)).join(' | ');
  switch (type) {
    case 'object': {
      const props = (s.properties ?? {}) as Record<string, unknown>;
      const required = new Set((s.required ?? []) as string[]);
      const fields = Object.entries(props).map(([k, v]) => `${k}${required.has(k) ? '' : '?'}: ${typeText(v, depth + 1)}`);
      return fields.length === 0 ? '{}' : `{${fields.join(', ')}}`;
    }
    case 'array':
      return `${typeText(s.items, depth + 1)}[]`;
    case 'string':
      return s.contentEncoding === 'base64' ? 'bytes' : 'string';
    case 'integer':
    case 'number':
    case 'boolean':
    case 'null':
      return type;
    default:
      return 'any';
  }
}

function signature(name: string, m: DescribeMethod): string {
  const params = m.params ? typeText(m.params) : '';
  const result = m.result ? ` -> ${typeText(m.result)}` : '';
  return `${name}(${params === '{}' ? '' : params})${result}`;
}

/** The description, readably. Every line holds text from the server: each is escaped whole (escape.ts). */
export function describeText(d: Description): string {
  const out: string[] = [];
  for (const svc of d.services) {
    out.push(`${svc.name} ${svc.version}${svc.default ? '  (default service: also answers bare method names)' : ''}`);
    if (svc.description) out.push(`  ${svc.description}`);
    for (const m of svc.methods) {
      out.push(`  ${signature(`${svc.prefix}.${m.name}`, m)}`);
      if (m.description) out.push(`      ${m.description}`);
    }
    if (svc.events.length > 0) {
      out.push('  events:');
      for (const e of svc.events) out.push(`    ${svc.default ? e.name : `${svc.prefix}.${e.name}`}${e.payload ? ` ${typeText(e.payload)}` : ''}`);
    }
    out.push('');
  }
  if (d.methods && d.methods.length > 0) out.push(`methods: ${d.methods.join(', ')}`);
  return out
    .map((line) => escapeControls(line))
    .join('\n')
    .trimEnd();
}

/** Every callable method name, or undefined when the server cannot say (a base-framing peer). */
export async function methodNames(client: Client): Promise<string[] | undefined> {
  try {
    const d = (await client.call(DESCRIBE_METHOD, {}, { timeout: 5000 })) as Description;
    return [
      ...d.services.flatMap((s) => s.methods.flatMap((m) => (s.default ? [m.name, `${s.prefix}.${m.name}`] : [`${s.prefix}.${m.name}`]))),
      ...(d.methods ?? []),
    ];
  } catch {
    return undefined;
  }
}

/** Every event name a subscription can use, or undefined when the server cannot say. */
export async function eventNames(client: Client): Promise<string[] | undefined> {
  try {
    const d = (await client.call(DESCRIBE_METHOD, {}, { timeout: 5000 })) as Description;
    return d.services.flatMap((s) => s.events.flatMap((e) => (s.default ? [e.name, `${s.prefix}.${e.name}`] : [`${s.prefix}.${e.name}`])));
  } catch {
    return undefined;
  }
}

/** True when the description names nothing: no service, no method. */
function isEmpty(d: Description): boolean {
  return d.services.length === 0 && (d.methods ?? []).length === 0;
}

export const describeCommand: Command = {
  name: 'describe',
  summary: 'list the services, methods and events a server offers',
  usage: 'ipcbor describe ADDRESS [--json] [--timeout MS] [--ca FILE [--cert FILE --key FILE]]',
  help: `Asks the server at ADDRESS what it offers (the reserved method
$ipcbor.describe) and prints each service with its methods, their params
and results (from the services' schemas), and its events.

Options:
  --json          print the description as JSON
  --timeout MS    give up after MS milliseconds (default 10000)

${tlsHelp}

Base-framing peers (the reference C and Nim servers) have no introspection, and
ipcbor servers turn it off on network listeners (TLS, and TCP off loopback)
unless started with introspection on: the command then says so and exits 1.`,
  options: { json: { type: 'boolean' }, timeout: { type: 'string' }, ...tlsOptions },
  async run(positionals, values, io) {
    const [address] = positionals;
    if (!address || positionals.length > 1) return io.usage();
    const timeout = numberOption(values, 'timeout', DEFAULT_CLI_DESCRIBE_TIMEOUT, { what: 'milliseconds' });
    const tls = tlsFromOptions(values);
    await using client = await connect(address, { connectTimeout: timeout, signal: io.signal, ...tls });
    let d: Description;
    try {
      d = (await client.call(DESCRIBE_METHOD, {}, { timeout, signal: io.signal })) as Description;
    } catch (err) {
      if (io.signal.aborted) throw err;
      if (err instanceof IpcborError && (err.code === 'IPCBOR_ERR_TIMEOUT' || err.code === 'IPCBOR_ERR_CONNECTION_CLOSED')) throw err;
      io.error(
        `ipcbor describe: ${escapeControls(address)} does not describe itself (${escapeControls((err as Error).message)}): it may be a base-framing peer, or a server with introspection off (the default on network listeners)`,
      );
      return EXIT.refused;
    }
    if (values.json) io.out(toJson(d));
    else if (isEmpty(d)) {
      io.out(
        `${escapeControls(address)} describes no services and lists no methods${client.server ? ` (server: ${escapeControls(client.server.server ?? 'unnamed')})` : ''}: it may still answer calls it does not list (an event loop hands every call to its application)`,
      );
    } else io.out(describeText(d));
    return EXIT.ok;
  },
};
