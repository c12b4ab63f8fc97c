/**
 * `npm run demo:web` in a real browser: the demo in its own process, as a
 * user starts it, and Debian's Chromium (headless, driven by
 * playwright-core) on its page. Without /usr/bin/chromium these tests are
 * skipped, unless IPCBOR_REQUIRE_CHROMIUM=1 (.ci/run): then they fail.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { accessSync, constants, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { prerequisite } from '../helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const chromiumHere = prerequisite('IPCBOR_REQUIRE_CHROMIUM', () => {
  try {
    accessSync(CHROMIUM, constants.X_OK);
    return undefined;
  } catch {
    return `no Chromium at ${CHROMIUM} (Debian: apt-get install chromium)`;
  }
});

const demoScript = fileURLToPath(new URL('../../examples/web/demo.js', import.meta.url));
/** How long a page or the demo may take to get somewhere, on a loaded machine. */
const WAIT = 15_000;

/** The demo in its own process: what it prints, and its address. */
class Demo {
  readonly out: string[] = [];
  readonly err: string[] = [];
  private readonly seen: (() => void)[] = [];
  /** Its process has exited and its output has been read to the end. */
  private closed = false;
  private constructor(readonly child: ChildProcess) {
    child.once('close', () => {
      this.closed = true;
      for (const wake of this.seen.splice(0)) wake();
    });
    for (const [stream, lines] of [
      [child.stdout!, this.out],
      [child.stderr!, this.err],
    ] as const) {
      createInterface({ input: stream }).on('line', (line) => {
        lines.push(line);
        for (const wake of this.seen.splice(0)) wake();
      });
    }
  }

  static async start(...args: string[]): Promise<Demo> {
    const demo = new Demo(spawn(process.execPath, [demoScript, '--port', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] }));
    await demo.line('out', /^open http:/);
    return demo;
  }

  /** The URL it says to open. */
  get url(): string {
    return this.out.find((l) => l.startsWith('open '))!.slice('open '.length);
  }

  /** The temp dir its service's socket is in. */
  get dir(): string {
    const line = this.out.find((l) => l.startsWith('timer service on unix:'))!;
    return dirname(line.slice('timer service on unix:'.length));
  }

  /** Resolves once it has printed `count` lines matching `pattern` on stdout or stderr. */
  async line(stream: 'out' | 'err', pattern: RegExp, count = 1): Promise<void> {
    const deadline = Date.now() + WAIT;
    const lines = stream === 'out' ? this.out : this.err;
    while (lines.filter((l) => pattern.test(l)).length < count) {
      if (this.closed) throw new Error(`the demo exited (${this.child.exitCode}) before printing ${pattern}:\n${[...this.out, ...this.err].join('\n')}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`the demo did not print ${pattern} (${count}x) within ${WAIT} ms:\n${[...this.out, ...this.err].join('\n')}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 200));
        this.seen.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** SIGINT, as Ctrl-C; resolves with the exit code. */
  async stop(): Promise<number | null> {
    if (this.closed) return this.child.exitCode;
    // 'close', not 'exit': by then its output has been read to the end.
    const closed = once(this.child, 'close');
    this.child.kill('SIGINT');
    await closed;
    return this.child.exitCode;
  }
}

/** Waits until the element at `selector` shows text matching `pattern`, and returns its text. */
async function shown(page: Page, selector: string, pattern: RegExp): Promise<string> {
  const element = page.locator(selector, { hasText: pattern });
  await element.waitFor({ timeout: WAIT });
  return (await element.textContent()) ?? '';
}

/** Waits until the output `selector` holds the outcome of a call (not empty, not the '…' of a call under way). */
async function outcome(page: Page, selector: string): Promise<{ text: string; failed: boolean }> {
  const text = await shown(page, selector, /^[^…]/);
  return { text, failed: (await page.locator(selector).getAttribute('class')) === 'error' };
}

/** Waits until the page's connection state is `state` (`!open`: anything but open). */
async function state(page: Page, state: string): Promise<void> {
  const selector = state.startsWith('!') ? `#state:not([data-state="${state.slice(1)}"])` : `#state[data-state="${state}"]`;
  await page.locator(selector).waitFor({ timeout: WAIT });
}

describe('the web demo in Chromium', { skip: chromiumHere.skip }, () => {
  let browser: Browser;
  let shots: string;

  before(async () => {
    chromiumHere.check();
    shots = mkdtempSync(join(tmpdir(), 'ipcbor-shots-'));
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      // playwright gives each launch a fresh user-data dir of its own, removed on close.
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        // Without these Chromium dials out at start, and this machine's closed network refuses it.
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        // A foreign site whose name resolves to this machine (DNS rebinding): the page is served, its WebSocket must not be.
        '--host-resolver-rules=MAP evil.test 127.0.0.1',
      ],
    });
  });

  after(async () => {
    await browser?.close();
    if (shots !== undefined) rmSync(shots, { recursive: true, force: true });
  });

  describe('without a token', () => {
    let demo: Demo;
    before(async () => {
      demo = await Demo.start();
    });
    after(async () => {
      await demo.stop();
    });

    it('calls version, echo and schedule, shows each result, and lists on_echo_fired events live', async () => {
      const page = await browser.newPage();
      // A second tab: the events of the first tab's echo reach every subscriber.
      const other = await browser.newPage();
      await Promise.all([page.goto(demo.url), other.goto(demo.url)]);
      for (const p of [page, other]) {
        await state(p, 'open');
        await shown(p, '#events-state', /^subscribed/);
      }
      assert.deepEqual(await outcome(page, '#version-result'), { text: 'nim-timer v0.1.0', failed: false });

      await page.fill('#echo-form [name=message]', 'hello from chromium');
      await page.fill('#echo-form [name=delayMs]', '300');
      await page.click('#echo-form button');
      const echo = await outcome(page, '#echo-result');
      assert.equal(echo.failed, false, echo.text);
      assert.deepEqual(JSON.parse(echo.text), { echoed: 'hello from chromium', timerName: 'ipc-server' });
      for (const p of [page, other]) await shown(p, '#events li', /hello from chromium +\(echoCount 1\)/);

      await page.fill('#schedule-form [name=name]', 'nightly');
      await page.fill('#schedule-form [name=intervalMs]', '15000');
      await page.click('#schedule-form button');
      const schedule = await outcome(page, '#schedule-result');
      assert.equal(schedule.failed, false, schedule.text);
      const scheduled = JSON.parse(schedule.text) as Record<string, unknown>;
      assert.equal(scheduled.jobId, 'ipc-server:nightly');
      assert.equal(scheduled.willRunCount, 4);
      assert.equal(scheduled.effectiveBackoffMs, 2000);
      assert.ok(Number.isSafeInteger(scheduled.firstRunAtMs) && (scheduled.firstRunAtMs as number) > Date.UTC(2020, 0), `firstRunAtMs ${String(scheduled.firstRunAtMs)}`);

      // A call the service refuses: its error, plainly, in place of the result.
      await page.fill('#schedule-form [name=name]', '');
      await page.click('#schedule-form button');
      await shown(page, '#schedule-result', /job name must not be empty/);
      assert.equal(await page.locator('#schedule-result').getAttribute('class'), 'error');

      const file = join(shots, 'demo-web.png');
      await page.screenshot({ path: file, fullPage: true });
      const png = readFileSync(file);
      assert.ok(png.length > 1000, `a screenshot of ${png.length} bytes`);
      assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'the PNG signature');
      assert.ok(png.readUInt32BE(16) > 0 && png.readUInt32BE(20) > 0, 'a width and a height');
      await Promise.all([page.close(), other.close()]);
    });

    it("refuses the WebSocket of a foreign site's page, though the page itself loads", async () => {
      const port = new URL(demo.url).port;
      const page = await browser.newPage();
      await page.goto(`http://evil.test:${port}/`);
      await state(page, 'failed');
      assert.match(await shown(page, '#connection-error', /\S/), /^IPCBOR_ERR_CONNECT: /);
      assert.equal(await page.locator('#version-result').textContent(), '', 'no call was made');
      await demo.line('err', new RegExp(`^\\[bridge\\] a WebSocket upgrade from the origin http://evil\\.test:${port} was refused \\(from 127\\.0\\.0\\.1:\\d+\\)$`));
      await page.close();
    });

    it('stops on SIGINT: an open page sees the bridge go, and the socket and temp dir are removed', async () => {
      const page = await browser.newPage();
      await page.goto(demo.url);
      await state(page, 'open');
      const dir = demo.dir;
      assert.ok(existsSync(join(dir, 'timer.sock')));
      assert.equal(await demo.stop(), 0);
      await demo.line('out', /^bridge and service stopped/);
      assert.equal(existsSync(dir), false, `${dir} removed`);
      // With reconnect the page keeps trying (reconnecting, connecting, …), and says so.
      await state(page, '!open');
      assert.match((await page.locator('#state').textContent()) ?? '', /^(reconnecting|connecting) \(attempt \d+\)$/);
      await page.close();
    });
  });

  describe('with a token', () => {
    let demo: Demo;
    before(async () => {
      demo = await Demo.start('--token', 'k3y.for-the+demo');
    });
    after(async () => {
      await demo.stop();
    });

    it('prints the URL with the token in its fragment, and the page with it connects', async () => {
      assert.match(demo.url, /^http:\/\/127\.0\.0\.1:\d+\/#token=k3y\.for-the%2Bdemo$/);
      const page = await browser.newPage();
      await page.goto(demo.url);
      await state(page, 'open');
      assert.deepEqual(await outcome(page, '#version-result'), { text: 'nim-timer v0.1.0', failed: false });
      await page.close();
    });

    for (const [what, fragment] of [
      ['no token', ''],
      ['a wrong token', '#token=k3y.for-the-demo'],
    ] as const) {
      it(`refuses a page with ${what}`, async () => {
        const refused = demo.err.filter((l) => /without the right token was refused/.test(l)).length;
        const page = await browser.newPage();
        await page.goto(demo.url.replace(/#.*$/, fragment));
        await state(page, 'failed');
        assert.match(await shown(page, '#connection-error', /\S/), /^IPCBOR_ERR_CONNECT: /);
        await demo.line('err', /^\[bridge\] a WebSocket upgrade without the right token was refused \(from 127\.0\.0\.1:\d+\)$/, refused + 1);
        await page.close();
      });
    }
  });
});
