/** `ipcbor subscribe ADDRESS EVENT`: events as JSON lines until interrupted. */
import { IpcborError } from '../core/errors.js';
import { connect } from '../node/client.js';
import { EXIT, numberOption, tlsFromOptions, tlsHelp, tlsOptions, type Command } from './command.js';
import { eventNames } from './describe.js';
import { escapeControls } from './escape.js';
import { toJson } from './json.js';

export const subscribeCommand: Command = {
  name: 'subscribe',
  summary: 'print a server\'s events as JSON lines until interrupted',
  usage: 'ipcbor subscribe ADDRESS EVENT [--count N] [--ca FILE [--cert FILE --key FILE]]',
  help: `Subscribes to EVENT (or * for every event) on the server at ADDRESS and
prints each event as one JSON line, {"event": NAME, "payload": ...}, until
Ctrl-C or SIGTERM, --count events, or stdout is closed (exit status 0), or
the server closes the connection (exit status 3). An unknown EVENT is
answered with the events the server has.

This command reads events only as fast as its output is taken: while
stdout is backed up (a pipe read slowly) it stops reading the connection,
and the server keeps and then drops events for it. When the server had to
drop events, a line {"dropped": N} says how many.

Options:
  --count N   exit after N events

${tlsHelp}

Events need the extended protocol; against a base-framing peer the command exits 1.`,
  options: { count: { type: 'string' }, ...tlsOptions },
  async run(positionals, values, io) {
    const [address, event] = positionals;
    if (!address || !event || positionals.length > 2) return io.usage();
    const count = numberOption(values, 'count', Infinity, { what: 'events', integer: true });
    // A full subscription queue stops reading the connection (eventOverflow
    // 'pause'), and the loop below takes no event while stdout is backed
    // up: what this process holds stays within the queue's bound.
    const client = await connect(address, { signal: io.signal, eventOverflow: 'pause', ...tlsFromOptions(values) });
    try {
      if (client.protocol !== 'extended') {
        io.error(`ipcbor subscribe: ${escapeControls(address)} speaks only the base framing, which has no events`);
        return EXIT.refused;
      }
      const sub = client.subscribe(event);
      sub.onDrop = (n) => io.out(JSON.stringify({ dropped: n }));
      const stop = () => void sub.unsubscribe();
      if (io.signal.aborted) stop();
      else io.signal.addEventListener('abort', stop, { once: true });
      try {
        await sub.ready;
      } catch (err) {
        if (!(err instanceof IpcborError && err.code === 'IPCBOR_ERR_UNKNOWN_EVENT')) throw err;
        const names = await eventNames(client);
        const message = escapeControls(err.message);
        io.error(names ? `${message}\navailable events: ${names.length > 0 ? `${names.map((n) => escapeControls(n)).join(', ')} (or * for all)` : '(none listed)'}` : message);
        return EXIT.refused;
      }
      let seen = 0;
      try {
        for await (const { name, payload } of sub) {
          io.out(toJson({ event: name, payload }, false));
          if (++seen >= count) return EXIT.ok;
          await io.drained();
        }
      } catch (err) {
        if (!(err instanceof IpcborError && err.code === 'IPCBOR_ERR_CONNECTION_CLOSED')) throw err;
      }
      if (io.signal.aborted) return EXIT.interrupted;
      // Not stopped here: the connection ended under it.
      io.error(`ipcbor subscribe: the server closed the connection after ${seen} event${seen === 1 ? '' : 's'}`);
      return EXIT.unreachable;
    } finally {
      if (io.signal.aborted) client.destroy();
      else await client.close();
    }
  },
};
