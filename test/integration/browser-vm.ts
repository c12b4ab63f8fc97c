/**
 * Runs the compiled browser client (dist/src/browser/index.js) where Node
 * is not: in a vm context holding only the web platform's globals a page
 * has (URL, TextEncoder, timers, AbortController, WebSocket), none of
 * Node's (no Buffer, process, setImmediate, require). Every module it
 * imports is loaded by the linker below, which refuses any specifier that
 * is not a relative path into dist/src/browser or dist/src/core, so a
 * `node:` import or a package fails the run.
 *
 * Started by browser-client.test.ts as its own process (vm modules need
 * --experimental-vm-modules): `node --experimental-vm-modules browser-vm.js
 * URL TOKEN ORIGIN`. It connects through the bridge at URL, makes a call,
 * receives an event and reads a result stream, and prints one JSON line:
 * `{ loaded, result }`, or `{ error }`.
 */
import { readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import vm from 'node:vm';
import { WebSocket } from 'ws';

const [url, token, origin] = process.argv.slice(2) as [string, string, string];
/** dist/src (this file is dist/test/integration/browser-vm.js). */
const root = fileURLToPath(new URL('../../src/', import.meta.url));
const allowed = [join(root, 'browser') + sep, join(root, 'core') + sep];

/** The `ws` package's WebSocket, sending the Origin a page would. */
class PageWebSocket extends WebSocket {
  constructor(address: string, protocols: string[]) {
    super(address, protocols, { origin });
  }
}

const context = vm.createContext({ URL, TextEncoder, TextDecoder, setTimeout, clearTimeout, queueMicrotask, AbortController, AbortSignal, WebSocket: PageWebSocket });

const modules = new Map<string, vm.SourceTextModule>();
function load(file: string): vm.SourceTextModule {
  let m = modules.get(file);
  if (m) return m;
  if (!allowed.some((dir) => file.startsWith(dir))) throw new Error(`the browser client loads ${file}, outside dist/src/browser and dist/src/core`);
  m = new vm.SourceTextModule(readFileSync(file, 'utf8'), { identifier: pathToFileURL(file).href, context });
  modules.set(file, m);
  return m;
}

try {
  const entry = load(join(root, 'browser', 'index.js'));
  await entry.link((specifier, referencing) => {
    if (!specifier.startsWith('./') && !specifier.startsWith('../')) throw new Error(`${referencing.identifier} imports '${specifier}', which is not a relative path`);
    return load(resolve(dirname(fileURLToPath(referencing.identifier)), specifier));
  });
  await entry.evaluate();
  // The program runs in the context too: its objects are the context's own, as a page's are.
  const program = vm.runInContext(
    `(async (connect, url, token) => {
      const client = await connect(url, { token });
      const sub = client.subscribe('said');
      await sub.ready;
      const echoed = await client.call('echo', { text: 'from a page' });
      let event;
      for await (const e of sub) { event = e.payload; break; }
      const items = [];
      for await (const x of await client.call('count', { n: 5 })) items.push(x);
      const protocol = client.protocol;
      await client.close();
      return { protocol, echoed, event, items, state: client.state };
    })`,
    context,
  ) as (connect: unknown, url: string, token: string) => Promise<unknown>;
  const result = await program((entry.namespace as { connect: unknown }).connect, url, token);
  const loaded = [...modules.keys()].map((f) => relative(root, f).split(sep).join('/')).sort();
  console.log(JSON.stringify({ loaded, result }));
} catch (err) {
  console.log(JSON.stringify({ error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) }));
}
