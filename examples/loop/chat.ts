/**
 * The event loop, as libIPC's presentation uses it: init a service, then
 * loop over events. A small chat: clients call `say`, everyone subscribed
 * to `said` hears it; lines typed on this program's stdin (an external
 * input added to the loop) are said by "server"; a quiet second prints who
 * is connected.
 *
 *     node dist/examples/loop/chat.js --name chat
 *     ipcbor subscribe chat said &
 *     ipcbor call chat say '{"from": "ada", "text": "hello"}'
 */
import { addressesFromArgs, createLoop } from '../../src/index.js';

async function main(): Promise<void> {
  const { addresses } = addressesFromArgs(process.argv.slice(2));
  await using loop = createLoop();
  // Ctrl-C (SIGINT) or SIGTERM closes the loop: that removes the socket
  // file, and the `for await` below ends. Set before the socket exists, so
  // that no signal finds it there without them.
  const stop = () => void loop.close();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  for (const a of await loop.serve(addresses.length > 0 ? addresses : ['chat'])) console.log(`listening ${a}`);
  loop.add(process.stdin);

  let people = 0;
  for await (const ev of loop.events(1000)) {
    switch (ev.type) {
      case 'connection':
        people++;
        console.log(`+ connection ${ev.connection.info.id} (${ev.connection.info.transport})`);
        break;
      case 'disconnection':
        people--;
        console.log(`- connection ${ev.connection.info.id}`);
        break;
      case 'message': {
        const m = ev.message;
        if (m.method !== 'say') {
          m.fail(`unknown method: ${m.method} (this chat knows "say")`);
          break;
        }
        const { from, text } = m.params() as { from?: unknown; text?: unknown };
        if (typeof from !== 'string' || typeof text !== 'string') {
          m.fail('say takes {from: string, text: string}');
          break;
        }
        console.log(`${from}: ${text}`);
        m.reply({ heard: loop.emit('said', { from, text }) });
        break;
      }
      case 'external':
        if (ev.data === null) break; // stdin closed: the chat goes on
        for (const line of String(ev.data).split('\n').filter(Boolean)) loop.emit('said', { from: 'server', text: line });
        break;
      case 'timer':
        if (people > 0) console.log(`(${people} connected)`);
        break;
      case 'error':
        console.error(`error: ${ev.error.message}`);
        break;
    }
  }
}

// The loop is closed (and its socket removed) once main returns; stdin,
// which the loop read, would keep the process alive.
main().then(() => process.exit(0)).catch((err: Error) => {
  console.error(`chat: ${err.message}`);
  process.exit(1);
});
