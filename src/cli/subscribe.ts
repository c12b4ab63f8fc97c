/** `ipcbor subscribe ADDRESS EVENT`: events as JSON lines until interrupted. */
import { connect } from '../node/client.js';
import { option, type Command } from './command.js';
import { toJson } from './json.js';

export const subscribeCommand: Command = {
  name: 'subscribe',
  summary: 'print a server\'s events as JSON lines until interrupted',
  usage: 'ipcbor subscribe ADDRESS EVENT [--count N]',
  help: `Subscribes to EVENT (or * for every event) on the server at ADDRESS and
prints each event as one JSON line, {"event": NAME, "payload": ...}, until
Ctrl-C, the server closing the connection, or --count events.

When the server had to drop events because this reader was too slow, a line
{"dropped": N} says how many.

Options:
  --count N   exit after N events

Events need the extended protocol; against a seed peer the command exits 1.`,
  options: { count: { type: 'string' } },
  async run(positionals, values, io) {
    const [address, event] = positionals;
    if (!address || !event || positionals.length > 2) return io.usage();
    const countText = option(values, 'count');
    const count = countText === undefined ? Infinity : Number(countText);
    if (!(count > 0)) return io.usage();
    const client = await connect(address);
    try {
      if (client.protocol !== 'extended') {
        io.error(`${address} speaks only the seed framing, which has no events`);
        return 1;
      }
      const sub = client.subscribe(event);
      sub.onDrop = (n) => io.out(JSON.stringify({ dropped: n }));
      io.signal.addEventListener('abort', () => void sub.unsubscribe(), { once: true });
      await sub.ready;
      let seen = 0;
      for await (const { name, payload } of sub) {
        io.out(toJson({ event: name, payload }, false));
        if (++seen >= count) break;
      }
      return 0;
    } finally {
      await client.close();
    }
  },
};
