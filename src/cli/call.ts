/** `ipcbor call ADDRESS METHOD [JSON]` */
import { DEFAULT_CLI_CALL_TIMEOUT } from '../core/constants.js';
import { connect } from '../node/client.js';
import { IpcborError } from '../core/errors.js';
import { fromJson, toJson } from './json.js';
import { option, tlsFromOptions, tlsHelp, tlsOptions, type Command } from './command.js';
import { methodNames } from './describe.js';
import { isAsyncIterable } from '../core/peer/streams.js';
import { escapeControls } from './escape.js';

export const callCommand: Command = {
  name: 'call',
  summary: 'call a method and print its result as JSON',
  usage: 'ipcbor call ADDRESS METHOD [JSON] [--timeout MS] [--protocol auto|seed|extended] [--compact] [--ca FILE [--cert FILE --key FILE]]',
  help: `Calls METHOD on the service at ADDRESS with the params JSON (default {}),
converted to CBOR, and prints the result as JSON. Byte strings are written
{"$bytes": "<hex>"} in both directions. A method that answers with a
stream prints one JSON line per item until the stream ends.

Exit status: 0 on success; 1 when the server answers with an error (its
text goes to stderr); 2 on a usage error; 3 when the server cannot be reached
or the connection fails.

ADDRESS is a service NAME (see 'ipcbor ls'), unix:PATH, tcp:HOST:PORT or
tls:HOST:PORT (IPv6 hosts in brackets).

Options:
  --timeout MS        give up after MS milliseconds (default 30000)
  --protocol MODE     auto (default), seed (plain seed framing) or extended
  --compact           print the JSON on one line

${tlsHelp}

Examples:
  ipcbor call timer version
  ipcbor call tcp:127.0.0.1:9099 echo '{"req":{"message":"hi","delayMs":0}}'
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
    let params: unknown = {};
    if (json !== undefined) {
      try {
        params = fromJson(json);
      } catch (err) {
        io.error(`params are not valid JSON: ${(err as Error).message}`);
        return 2;
      }
    }
    const timeout = Number(option(values, 'timeout') ?? DEFAULT_CLI_CALL_TIMEOUT);
    const protocol = (option(values, 'protocol') ?? 'auto') as 'auto' | 'seed' | 'extended';
    if (!['auto', 'seed', 'extended'].includes(protocol) || !(timeout > 0)) return io.usage();
    const client = await connect(address, { protocol, connectTimeout: timeout, signal: io.signal, ...tlsFromOptions(values) });
    try {
      const result = await client.call(method, params, { timeout, signal: io.signal });
      if (isAsyncIterable(result)) {
        // A stream: one JSON line per item, as they arrive, until it ends.
        for await (const item of result) io.out(toJson(item, false));
        return 0;
      }
      io.out(toJson(result, values.compact !== true));
      return 0;
    } catch (err) {
      const unknown = err instanceof IpcborError && (err.code === 'IPCBOR_ERR_UNKNOWN_METHOD' || (err.code === 'IPCBOR_ERR_REMOTE' && err.message.startsWith('unknown method')));
      if (unknown && client.protocol === 'extended') {
        const names = await methodNames(client);
        const message = escapeControls(err.message);
        io.error(names ? `${message}\navailable methods: ${names.map((n) => escapeControls(n)).join(', ')}` : message);
        return 1;
      }
      throw err;
    } finally {
      if (io.signal.aborted) client.destroy();
      else await client.close();
    }
  },
};
