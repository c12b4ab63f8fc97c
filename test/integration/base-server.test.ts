/**
 * The timer server over real unix and TCP sockets, driven with raw base-framing
 * frames: golden answers byte for byte, every error path, limits, and
 * connections that misbehave.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { serve, type Server } from '../../src/index.js';
import { createTimer } from '../../examples/timer/timer.js';
import { golden, hex, baseRequestHex, toHex } from '../fixtures/golden.js';
import { RawReader, rawConnect, tempSocket } from '../helpers.js';

const text = (b: Buffer) => b.toString('utf8');

for (const transport of ['unix', 'tcp'] as const) {
  describe(`timer server over ${transport}`, () => {
    let server: Server;
    let address: string;
    before(async () => {
      server = await serve(createTimer('ipc-server'), transport === 'unix' ? `unix:${tempSocket()}` : 'tcp:127.0.0.1:0', {
        maxMethodBytes: 64,
        maxFrameBytes: 4096,
      });
      address = server.addresses[0]!;
    });
    after(() => server.close());

    async function exchange(requestHex: string) {
      const s = await rawConnect(address);
      const r = new RawReader(s);
      s.write(hex(requestHex));
      const res = await r.response();
      s.destroy();
      return res;
    }

    it('answers version and echo with the golden bytes', async () => {
      assert.equal(toHex((await exchange(golden.versionRequest)).bytes), hex(golden.versionResponse).reduce((a, b) => a + b.toString(16).padStart(2, '0'), ''));
      assert.equal(toHex((await exchange(golden.echoRequest)).bytes), toHex(hex(golden.echoResponse)));
    });

    it('answers schedule and complex with the golden bodies', async () => {
      const sched = await exchange(baseRequestHex('schedule', golden.scheduleRequestBody));
      assert.equal(sched.ret, 0);
      assert.equal(toHex(sched.body), golden.scheduleResponseBody);
      const cx = await exchange(baseRequestHex('complex', golden.complexRequestBody));
      assert.equal(toHex(cx.body), golden.complexResponseBody);
    });

    it('reassembles a request written one byte at a time (like the C client, only worse)', async () => {
      const s = await rawConnect(address);
      const r = new RawReader(s);
      const bytes = hex(golden.echoRequest);
      for (const b of bytes) {
        s.write(Uint8Array.of(b));
        await new Promise((res) => setImmediate(res));
      }
      assert.equal(toHex((await r.response()).bytes), toHex(hex(golden.echoResponse)));
      s.destroy();
    });

    it('keeps the connection through every answerable error, in order', async () => {
      const s = await rawConnect(address);
      const r = new RawReader(s);
      const sched = (name: string, attempts: number) =>
        baseRequestHex('schedule', toHex(new Uint8Array(Buffer.from(golden.scheduleRequestBody, 'hex'))).replace('646e616d65616a', name === '' ? '646e616d6560' : '646e616d65616a').replace('6b6d6178417474656d70747303', attempts === 0 ? '6b6d6178417474656d70747300' : '6b6d6178417474656d70747303'));
      s.write(
        hex(
          [
            baseRequestHex('nope', 'a0'),
            baseRequestHex('echo', 'ff'),
            baseRequestHex('echo', 'a1637265710'.slice(0, 10) + 'a0'),
            baseRequestHex('echo', 'a163726571a2676d657373616765016764656c61794d7305'),
            sched('', 3),
            sched('j', 0),
            golden.versionRequest,
          ].join(''),
        ),
      );
      const answers = [];
      for (let i = 0; i < 7; i++) answers.push(await r.response());
      assert.deepEqual(
        answers.map((a) => [a.ret, a.ret === 0 ? toHex(a.body) : text(a.body)]),
        [
          [1, 'unknown method: nope'],
          [1, answers[1]!.ret === 1 ? text(answers[1]!.body) : ''],
          [1, 'req.message: required; req.delayMs: required'],
          [1, 'req.message: expected string, got number'],
          [1, 'job name must not be empty'],
          [1, 'retry.maxAttempts must be positive'],
          [0, '706e696d2d74696d65722076302e312e30'],
        ],
      );
      assert.match(text(answers[1]!.body), /^invalid payload: /);
      assert.ok(!r.ended, 'connection still open');
      s.destroy();
    });

    it('answers an oversize method name with a clear error, then closes that connection only', async () => {
      const other = await rawConnect(address);
      const otherReader = new RawReader(other);
      const s = await rawConnect(address);
      const r = new RawReader(s);
      s.write(hex(golden.versionRequest + '00000041' + '61'.repeat(65) + '00000001a0'));
      assert.equal((await r.response()).ret, 0, 'the earlier request is still answered');
      const err = await r.response();
      assert.equal(err.ret, 1);
      assert.equal(text(err.body), 'method name of 65 bytes is over the limit of 64 bytes');
      await r.closed();
      other.write(hex(golden.versionRequest));
      assert.equal((await otherReader.response()).ret, 0, 'other connections are served on');
      other.destroy();
    });

    it('refuses an oversize payload from its header, before it is sent', async () => {
      const s = await rawConnect(address);
      const r = new RawReader(s);
      s.write(hex('00000004 6563686f ffffffff'));
      const err = await r.response();
      assert.equal(text(err.body), 'frame of 4294967295 bytes is over the limit of 4096 bytes');
      await r.closed();
    });

    it('answers a method name that is not UTF-8, then closes', async () => {
      const s = await rawConnect(address);
      const r = new RawReader(s);
      s.write(hex('00000002 c328 00000001 a0'));
      assert.equal(text((await r.response()).body), 'method name is not valid UTF-8');
      await r.closed();
    });

    it('answers 1,000 pipelined calls in request order', async () => {
      const s = await rawConnect(address);
      const r = new RawReader(s);
      const frames: string[] = [];
      for (let i = 0; i < 1000; i++) {
        // Alternate slow and fast calls: answers must still come back in order.
        const delay = i % 10 === 0 ? 3 : 0;
        const body = Buffer.concat([hex('a163726571a2676d657373616765'), cborText(`m${i}`), hex(`6764656c61794d73${delay.toString(16).padStart(2, '0')}`)]);
        frames.push(baseRequestHex('echo', body.toString('hex')));
      }
      s.write(hex(frames.join('')));
      for (let i = 0; i < 1000; i++) {
        const a = await r.response();
        assert.equal(a.ret, 0);
        assert.ok(text(a.body).includes(`m${i}i`), `answer ${i}: ${toHex(a.body)}`);
      }
      s.destroy();
    });

    it('survives a client that vanishes mid-request and mid-call', async () => {
      const a = await rawConnect(address);
      a.write(hex(golden.echoRequest).subarray(0, 20));
      a.destroy();
      const b = await rawConnect(address);
      b.write(hex(baseRequestHex('echo', 'a163726571a2676d6573736167656178' + '6764656c61794d73' + '1864')));
      await new Promise((res) => setTimeout(res, 10));
      b.destroy();
      assert.equal(toHex((await exchange(golden.versionRequest)).bytes), toHex(hex(golden.versionResponse)));
    });
  });
}

function cborText(s: string): Buffer {
  const b = Buffer.from(s);
  if (b.length >= 24) throw new Error('short strings only');
  return Buffer.concat([Buffer.from([0x60 + b.length]), b]);
}
