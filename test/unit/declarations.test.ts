/**
 * The published declarations are the API: what the package's entry points
 * export, and the members of what they export, carry nothing internal.
 * Read from the built `.d.ts` files (dist/src), the ones `exports` names.
 */
import { strict as assert } from 'node:assert';
import { readFileSync, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { exports: Record<string, { types?: string }> };
const entries = Object.values(pkg.exports)
  .map((e) => (typeof e === 'object' ? e.types : undefined))
  .filter((t): t is string => t !== undefined)
  .map((t) => join(root, t));

/** Every declaration file reachable from the entry points through relative imports and re-exports. */
function reachable(): Map<string, string> {
  const seen = new Map<string, string>();
  const todo = [...entries];
  while (todo.length > 0) {
    const file = todo.pop()!;
    if (seen.has(file)) continue;
    const text = readFileSync(file, 'utf8');
    seen.set(file, text);
    for (const m of text.matchAll(/from '(\.[^']+)\.js'/g)) {
      const next = join(dirname(file), `${m[1]}.d.ts`);
      if (existsSync(next)) todo.push(next);
    }
  }
  return seen;
}

/** The names an entry point exports, through `export * from` too. */
function exportedNames(file: string, names = new Set<string>()): Set<string> {
  const text = readFileSync(file, 'utf8');
  for (const m of text.matchAll(/export \* from '(\.[^']+)\.js'/g)) exportedNames(join(dirname(file), `${m[1]}.d.ts`), names);
  for (const m of text.matchAll(/export (?:type )?\{([^}]*)\}/g)) {
    for (const part of m[1]!.split(',')) {
      const name = part.trim().replace(/^type\s+/, '').split(/\s+as\s+/).pop()!.trim();
      if (name) names.add(name);
    }
  }
  for (const m of text.matchAll(/export declare (?:class|function|const|abstract class) (\w+)/g)) names.add(m[1]!);
  return names;
}

/** The members declared in the body of `class` or `interface` `name` in `text`, without its comments. */
function membersOf(source: string, name: string): string {
  const text = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
  const start = text.search(new RegExp(`(?:class|interface) ${name}\\b`));
  assert.ok(start >= 0, `${name} is declared`);
  let depth = 0;
  for (let i = text.indexOf('{', start); i < text.length; i++) {
    if (text[i] === '{') depth++;
    else if (text[i] === '}' && --depth === 0) return text.slice(start, i);
  }
  throw new Error(`${name}: unbalanced braces`);
}

describe('published declarations', () => {
  const files = reachable();

  it('the entry points and what they reach are there (a build ran)', () => {
    assert.equal(entries.length, 3, 'three typed entry points: ., ./core and ./browser');
    assert.ok(files.size >= 15, `${files.size} declaration files reached`);
  });

  it('nothing marked @internal is left in them', () => {
    for (const [file, text] of files) assert.ok(!text.includes('@internal'), `${file.slice(root.length)} still declares something @internal`);
  });

  it('the entry points export no internal class or constant', () => {
    const internal = ['ServerConnection', 'ClientConnection', 'Peer', 'EventHub', 'ServerBudget', 'ConnectionBudget', 'FrameDecoder', 'SubscriptionSet', 'OutgoingCall', 'FRAMES_PER_TURN', 'FAIL_GRACE_MS', 'REFUSE_GRACE_MS', 'STATE_BACKLOG'];
    for (const entry of entries) {
      const names = exportedNames(entry);
      assert.ok(names.has('IpcborError') && names.has('DEFAULT_MAX_FRAME_BYTES'), `${entry}: the export list was read (${names.size} names)`);
      for (const name of internal) assert.ok(!names.has(name), `${entry.slice(root.length)} exports ${name}`);
    }
  });

  it('what users hold shows only its API: the server core, a connection, a subscription', () => {
    const text = (rel: string) => files.get(join(root, 'dist/src', rel)) ?? assert.fail(`${rel} is not reached from the entry points`);
    const core = membersOf(text('core/server/server.d.ts'), 'ServerCore');
    for (const member of ['hub', 'budget']) assert.ok(!new RegExp(`\\b${member}\\s*:`).test(core), `ServerCore declares ${member}`);
    assert.match(core, /accept\(/);
    const handle = membersOf(text('core/server/connection.d.ts'), 'ConnectionHandle');
    for (const member of ['complete', 'decodeParams', 'refusal', 'peer', 'sendEvent', 'wants']) assert.ok(!new RegExp(`\\b${member}\\b`).test(handle), `ConnectionHandle declares ${member}`);
    assert.match(handle, /shutdown\(\)/);
    const sub = membersOf(text('core/client/subscription.d.ts'), 'Subscription');
    for (const member of ['deliver', 'noteDropped', 'onRoom', 'close\\(', 'full']) assert.ok(!new RegExp(`\\b${member}`).test(sub), `Subscription declares ${member}`);
    assert.match(sub, /unsubscribe\(\)/);
  });
});
