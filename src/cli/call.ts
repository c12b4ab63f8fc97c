/** `ipcbor call ADDRESS METHOD [JSON|-]` */
import { DEFAULT_CLI_CALL_TIMEOUT } from '../core/constants.js';
import { connect } from '../node/client.js';
import { IpcborError } from '../core/errors.js';
import { toJson } from './json.js';
import { EXIT, numberOption, option, readParams, tlsFromOptions, tlsHelp, tlsOptions, UsageError, type Command } from './command.js';
import { methodNames } from './describe.js';
import { isAsyncIterable } from '../core/peer/streams.js';
import { escapeControls } from './escape.js';

/** --protocol: auto, base or extended. */
export function protocolOption(values: Record<string, string | boolean | string[] | undefined>): 'auto' | 'base' | 'extended' {
  const protocol = option(values, 'protocol') ?? 'auto';
  if (protocol !== 'auto' && protocol !== 'base' && protocol !== 'extended') throw new UsageError(`--protocol must be auto, base or extended, not '${protocol}'`);
  return protocol;
}

/** --timeout MS, a positive number of milliseconds. */
export function timeoutOption(values: Record<string, string | boolean | string[] | undefined>, fallback: number): number {
  return numberOption(values, 'timeout', fallback, { what: 'milliseconds' });
}

export const callCommand: Command = {
  name: 'call',
  summary: 'call a method and print its result as JSON',
  usage: 'ipcbor call ADDRESS METHOD [JSON|-] [--timeout MS] [--protocol auto|base|extended] [--compact] [--ca FILE [--cert FILE --key FILE]]',
  help: `Calls METHOD on the service at ADDRESS with the params JSON (default {};
- reads it from stdin), converted to CBOR, and prints the result as JSON.
Byte strings are written {"$bytes": "<hex>"} in both directions. A method
that answers with a stream prints one JSON line per item until the stream
ends. An unknown METHOD is answered with the methods the server has.

ADDRESS is a service NAME (see 'ipcbor ls'), a socket path, unix:PATH,
tcp:HOST:PORT or tls:HOST:PORT (IPv6 hosts in brackets).

Options:
  --timeout MS        give up after MS milliseconds, connecting included
                      (default 30000; exit status 4)
  --protocol MODE     auto (default), base (plain base framing) or extended
  --compact           print the JSON on one line

${tlsHelp}

Examples:
  ipcbor call timer version
  ipcbor call tcp:127.0.0.1:9099 echo '{"req":{"message":"hi","delayMs":0}}'
  echo '{"req":{"message":"hi","delayMs":0}}' | ipcbor call timer echo -
  ipcbor call tls:timer.example.org:9443 version --ca ca.pem`,
  options: {
    timeout: { type: 'string' },
    protocol: { type: 'string' },
    compact: { type: 'boolean' },
    ...tlsOptions,
  },
  async run(positionals, values, io) {
    const [address, method, json] = positionals;
    if (!address || !method || positionals.length > 3) return io.usage();
    const timeout = timeoutOption(values, DEFAULT_CLI_CALL_TIMEOUT);
    const protocol = protocolOption(values);
    const tls = tlsFromOptions(values);
    const params = await readParams(json, io);
    const client = await connect(address, { protocol, connectTimeout: timeout, signal: io.signal, ...tls });
    try {
      const result = await client.call(method, params, { timeout, signal: io.signal });
      if (isAsyncIterable(result)) {
        // A stream: one JSON line per item, as they arrive, until it ends
        // (or stdout is closed: the loop stops, which cancels the stream).
        for await (const item of result) {
          if (io.signal.aborted) break;
          io.out(toJson(item, false));
        }
        return io.signal.aborted ? EXIT.interrupted : EXIT.ok;
      }
      io.out(toJson(result, values.compact !== true));
      return EXIT.ok;
    } catch (err) {
      const unknown = err instanceof IpcborError && (err.code === 'IPCBOR_ERR_UNKNOWN_METHOD' || (err.code === 'IPCBOR_ERR_REMOTE' && err.message.startsWith('unknown method')));
      if (unknown && client.protocol === 'extended') {
        const names = await methodNames(client);
        const message = escapeControls(err.message);
        io.error(names ? `${message}\navailable methods: ${names.length > 0 ? names.map((n) => escapeControls(n)).join(', ') : '(none listed)'}` : message);
        return EXIT.refused;
      }
      throw err;
    } finally {
      if (io.signal.aborted) client.destroy();
      else await client.close();
    }
  },
};
