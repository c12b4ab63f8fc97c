/**
 * The URLs the browser client's connect() takes (webSocketUrl): ws(s) as
 * they are, http(s) mapped to ws(s), the relay's own `ws:HOST:PORT`, and in
 * a page a relative URL resolved against the page's address.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { IpcborError, webSocketUrl } from '../../src/browser/index.js';

/** Run `f` as if in a page at `href` (what `globalThis.location` says there). */
function inPage<T>(href: string, f: () => T): T {
  const g = globalThis as { location?: unknown };
  assert.equal(g.location, undefined, 'Node has no location of its own');
  g.location = { href };
  try {
    return f();
  } finally {
    delete g.location;
  }
}

function refused(url: string): IpcborError {
  try {
    webSocketUrl(url);
  } catch (err) {
    assert.ok(err instanceof IpcborError && err.code === 'IPCBOR_ERR_INVALID_ADDRESS', String(err));
    return err;
  }
  assert.fail(`${url} was taken`);
}

describe('webSocketUrl', () => {
  it('takes absolute URLs: ws and wss as they are, http and https as ws and wss, the relay address form, no fragment', () => {
    const cases: [string, string][] = [
      ['ws://127.0.0.1:8080/', 'ws://127.0.0.1:8080/'],
      ['wss://example.com/ipc?x=1', 'wss://example.com/ipc?x=1'],
      ['http://localhost:3000/app/', 'ws://localhost:3000/app/'],
      ['https://example.com', 'wss://example.com/'],
      ['HTTPS://Example.COM:8443/a#frag', 'wss://example.com:8443/a'],
      ['ws:127.0.0.1:43117', 'ws://127.0.0.1:43117/'],
      ['wss:[::1]:9000', 'wss://[::1]:9000/'],
    ];
    for (const [input, expected] of cases) assert.equal(webSocketUrl(input), expected, input);
  });

  it('resolves a relative URL against the page, then maps it the same way', () => {
    inPage('https://app.example.com/tools/page.html?q=1#top', () => {
      assert.equal(webSocketUrl('/'), 'wss://app.example.com/');
      assert.equal(webSocketUrl('bridge'), 'wss://app.example.com/tools/bridge');
      assert.equal(webSocketUrl('../up'), 'wss://app.example.com/up');
      assert.equal(webSocketUrl('ws://127.0.0.1:1/'), 'ws://127.0.0.1:1/', 'an absolute URL ignores the page');
    });
    inPage('http://127.0.0.1:8080/', () => assert.equal(webSocketUrl('/'), 'ws://127.0.0.1:8080/'));
  });

  it('refuses a relative URL without a page, and schemes other than ws, wss, http, https', () => {
    assert.match(refused('/').message, /relative URL needs a page/);
    refused('localhost:8080');
    refused('ftp://example.com/');
    refused('file:///tmp/x');
    inPage('https://app.example.com/', () => refused('javascript:alert(1)'));
  });
});
