/**
 * Call at the top level of a test file: after each test, assert that no
 * unhandled rejection or uncaught exception escaped during it.
 */
import assert from 'node:assert/strict';
import { after, afterEach } from 'node:test';

export function nothingEscapes(): void {
  const escaped: unknown[] = [];
  const onEscape = (err: unknown) => escaped.push(err);
  process.on('unhandledRejection', onEscape);
  process.on('uncaughtException', onEscape);
  after(() => {
    process.off('unhandledRejection', onEscape);
    process.off('uncaughtException', onEscape);
  });
  afterEach(async () => {
    // A rejection is reported a turn after it happens.
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(escaped.splice(0), [], 'nothing escaped');
  });
}
