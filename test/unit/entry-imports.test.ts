/**
 * What each entry point loads, read from the compiled modules: their static
 * imports, followed to the end. The library's entry points never load the
 * `ws` package (only the WebSocket bridge does, imported on demand when a
 * ws: or wss: listener is asked for), and the browser entry loads nothing
 * but its own modules and the core.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

const src = fileURLToPath(new URL('../../src/', import.meta.url));

/** Static `import … from` / `export … from` specifiers of a compiled module (not `import()`). */
function staticImports(file: string): string[] {
  const code = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of code.matchAll(/^\s*(?:import|export)\s[^;]*?\sfrom\s+['"]([^'"]+)['"]|^\s*import\s+['"]([^'"]+)['"]/gm)) out.push((m[1] ?? m[2])!);
  return out;
}

/** Every module an entry loads: relative files by path, packages and builtins by name. */
function graph(entry: string): { files: Set<string>; bare: Set<string> } {
  const files = new Set<string>();
  const bare = new Set<string>();
  const todo = [entry];
  while (todo.length > 0) {
    const file = todo.pop()!;
    if (files.has(file)) continue;
    files.add(file);
    for (const spec of staticImports(file)) {
      if (spec.startsWith('.')) todo.push(resolve(dirname(file), spec));
      else bare.add(spec);
    }
  }
  return { files, bare };
}

describe('what the entry points load', () => {
  for (const entry of ['index.js', 'core/index.js']) {
    it(`${entry} never loads ws, nor the bridge`, () => {
      const { files, bare } = graph(join(src, entry));
      assert.ok(files.has(join(src, 'node/relay.js')) || entry !== 'index.js', 'the relay is part of the main entry');
      assert.ok(!bare.has('ws'), `ws is loaded by ${entry}`);
      assert.ok(!files.has(join(src, 'node/bridge.js')), `the bridge is loaded by ${entry}`);
    });
  }

  it('the relay loads the bridge only on demand', () => {
    const code = readFileSync(join(src, 'node/relay.js'), 'utf8');
    assert.match(code, /await import\('\.\/bridge\.js'\)/);
  });

  it('browser/index.js loads only its own modules and the core: no package, no Node builtin', () => {
    const { files, bare } = graph(join(src, 'browser/index.js'));
    assert.deepEqual([...bare], []);
    for (const f of files) assert.ok(f.startsWith(join(src, 'browser')) || f.startsWith(join(src, 'core')), f);
  });
});
