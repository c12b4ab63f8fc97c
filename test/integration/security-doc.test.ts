/** SECURITY.md copies the README's resource-model table: the two must not drift apart. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = (f: string) => fileURLToPath(new URL(`../../../${f}`, import.meta.url));

/** The rows of the first table after `heading`. */
function tableAfter(text: string, heading: string): string[] {
  const from = text.indexOf(heading);
  assert.ok(from >= 0, `${heading} is there`);
  const lines = text.slice(from).split('\n');
  const start = lines.findIndex((l) => l.startsWith('|'));
  const end = lines.findIndex((l, i) => i > start && !l.startsWith('|'));
  return lines.slice(start, end);
}

describe('SECURITY.md', () => {
  it("has the README's limits table, row for row", () => {
    const readme = tableAfter(readFileSync(root('README.md'), 'utf8'), '## Limits');
    const security = tableAfter(readFileSync(root('SECURITY.md'), 'utf8'), '## Defaults and limits');
    assert.ok(readme.length > 10);
    assert.deepEqual(security, readme);
  });

  it('is linked from the README', () => {
    assert.match(readFileSync(root('README.md'), 'utf8'), /\(SECURITY\.md\)/);
  });
});
