/** A handler that transfers the memory of its own cbor.encode() result, over a real socket: the results the library keeps for the wire are not that memory. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

describe('encode results shared with the application', () => {
  it('a handler that transfers the buffer of its own cbor.encode() result does not crash the server nor corrupt another call\'s result', () => {
    const child = fileURLToPath(new URL('./encode-transfer-child.js', import.meta.url));
    const run = spawnSync(process.execPath, [child], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(run.status, 0, `the process died:\n${run.stderr.split('\n').slice(0, 8).join('\n')}`);
    assert.deepEqual(JSON.parse(run.stdout.trim()), [{ v: 'A'.repeat(40) }, 'ok']);
  });
});
