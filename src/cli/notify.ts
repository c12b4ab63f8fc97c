/** `ipcbor notify ADDRESS METHOD [JSON|-]`: a one-way call. */
import { DEFAULT_CLI_CALL_TIMEOUT } from '../core/constants.js';
import { IpcborError } from '../core/errors.js';
import { connect } from '../node/client.js';
import { timeoutOption } from './call.js';
import { EXIT, readParams, tlsFromOptions, tlsHelp, tlsOptions, type Command } from './command.js';
import { escapeControls } from './escape.js';

export const notifyCommand: Command = {
  name: 'notify',
  summary: 'send a one-way call (no answer comes back)',
  usage: 'ipcbor notify ADDRESS METHOD [JSON|-] [--timeout MS] [--ca FILE [--cert FILE --key FILE]]',
  help: `Sends METHOD with the params JSON (default {}; - reads it from stdin) to
the service at ADDRESS as a notification: a one-way call, which the server
runs and answers to nobody. Nothing is printed; exit status 0 means it was
sent, not that the method exists or succeeded (use 'ipcbor call' for that).

Notifications need the extended protocol: against a server that speaks only
the base framing the command sends nothing and exits 1.

Options:
  --timeout MS    give up connecting after MS milliseconds (default 30000)

${tlsHelp}`,
  options: { timeout: { type: 'string' }, ...tlsOptions },
  async run(positionals, values, io) {
    const [address, method, json] = positionals;
    if (!address || !method || positionals.length > 3) return io.usage();
    const timeout = timeoutOption(values, DEFAULT_CLI_CALL_TIMEOUT);
    const tls = tlsFromOptions(values);
    const params = await readParams(json, io);
    let client;
    try {
      client = await connect(address, { protocol: 'extended', connectTimeout: timeout, signal: io.signal, ...tls });
    } catch (err) {
      if (!(err instanceof IpcborError && err.code === 'IPCBOR_ERR_NOT_SUPPORTED')) throw err;
      io.error(
        `ipcbor notify: ${escapeControls(address)} speaks only the base framing, which has no one-way calls: nothing was sent (use 'ipcbor call', which waits for the answer)`,
      );
      return EXIT.refused;
    }
    try {
      client.notify(method, params);
    } catch (err) {
      client.destroy();
      throw err;
    }
    // close() flushes what was written, then closes.
    await client.close();
    return EXIT.ok;
  },
};
