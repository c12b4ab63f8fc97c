/**
 * Typed services: one definition called in-process and remotely, schema
 * validation at the socket edge, several services on one socket, and
 * introspection.
 */
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { describe, it } from 'node:test';
import { z } from 'zod';
import { connect, defineService, IpcborError, method, s, serve, serviceOf, type Description } from '../../src/index.js';
import { createTimer, type TimerService } from '../../examples/timer/timer.js';
import { golden, hex, toHex, values } from '../fixtures/golden.js';
import { RawReader, rawConnect, tempSocket } from '../helpers.js';

async function codeOf(p: Promise<unknown>): Promise<IpcborError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof IpcborError, String(err));
    return err;
  }
  assert.fail('expected a rejection');
}

function counting() {
  let calls = 0;
  const svc = defineService({
    name: 'math',
    version: '2.1.0',
    methods: {
      add: method({
        description: 'adds',
        params: s.object({ a: s.int(), b: s.int() }),
        result: s.int(),
        handler: ({ a, b }) => {
          calls++;
          return a + b;
        },
      }),
      // zod, through Standard Schema only
      greet: method({
        params: z.object({ name: z.string().min(2), times: z.number().int().positive().optional() }),
        handler: ({ name, times }) => {
          calls++;
          return `hello ${name}`.repeat(times ?? 1);
        },
      }),
      // a hand-written Standard Schema with an async validator
      even: method({
        params: {
          '~standard': {
            version: 1 as const,
            vendor: 'hand',
            types: undefined as unknown as { input: { n: number }; output: { n: number } },
            validate: async (v: unknown) =>
              typeof v === 'object' && v !== null && typeof (v as { n?: unknown }).n === 'number' && (v as { n: number }).n % 2 === 0
                ? { value: v as { n: number } }
                : { issues: [{ message: 'must be even', path: [{ key: 'n' }] }] },
          },
        },
        handler: ({ n }) => n / 2,
      }),
      now: method({ handler: () => new Date(0) }),
    },
  });
  return { svc, calls: () => calls };
}

describe('services in-process', () => {
  it('calls the handler directly: the result is its own object, nothing is serialized', async () => {
    const own = { deep: { array: [1, 2, 3] } };
    const svc = defineService({ name: 'x', version: '1', methods: { get: method({ handler: () => own }) } });
    assert.equal(await svc.get(), own);
    const { svc: math } = counting();
    assert.deepEqual(await math.now(), new Date(0), 'a Date, which has no CBOR form, passes in-process untouched');
  });

  it('gives timeout and cancellation the same outcomes as a remote call', async () => {
    const svc = defineService({
      name: 'x',
      version: '1',
      methods: {
        wait: method({
          handler: (_p: { ms: number }, ctx) =>
            new Promise((resolve, reject) => {
              const t = setTimeout(resolve, 1000);
              ctx.signal.addEventListener('abort', () => {
                clearTimeout(t);
                reject(ctx.signal.reason);
              });
            }),
        }),
      },
    });
    assert.equal((await codeOf(svc.wait({ ms: 1000 }, { timeout: 10 }))).code, 'IPCBOR_ERR_TIMEOUT');
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 5);
    assert.equal((await codeOf(svc.wait({ ms: 1000 }, { signal: ac.signal }))).code, 'IPCBOR_ERR_CANCELLED');
  });

  it('delivers events to in-process listeners with the example envelope', async () => {
    const timer = createTimer('ipc-server');
    const seen: unknown[] = [];
    const off = serviceOf(timer).on('on_echo_fired', (e) => seen.push(e));
    await timer.echo({ req: { message: 'hi', delayMs: 0 } });
    off();
    await timer.echo({ req: { message: 'again', delayMs: 0 } });
    assert.deepEqual(seen, [{ eventType: 'on_echo_fired', payload: { message: 'hi', echoCount: 1 } }]);
  });

  it('refuses reserved or unsafe names', () => {
    for (const name of ['then', '$x', 'constructor', '__proto__', 'toJSON']) {
      assert.throws(() => defineService({ name: 'x', version: '1', methods: { [name]: method({ handler: () => 1 }) } }), TypeError, name);
    }
    for (const name of ['', '$ipcbor', 'a.b']) {
      assert.throws(() => defineService({ name, version: '1', methods: {} }), TypeError, name);
    }
  });
});

describe('services over a socket', () => {
  it('serves the same definition: typed remote calls give equal results', async () => {
    const timer = createTimer('ipc-server');
    await using server = await serve(timer, `unix:${tempSocket()}`);
    await using client = await connect(server.addresses[0]!);
    const remote = client.service<TimerService>();
    for (const [name, params] of [
      ['version', undefined],
      ['echo', values.echoParams],
      ['complex', values.complexParams],
      ['schedule', values.scheduleParams],
    ] as const) {
      const local = await (timer[name] as (p?: unknown) => Promise<unknown>)(params);
      const far = await (remote[name] as (p?: unknown) => Promise<unknown>)(params);
      assert.deepEqual(far, local, name);
    }
  });

  it('validates params before the handler: path and reason, ret 1, handler never runs', async () => {
    const { svc, calls } = counting();
    await using server = await serve(svc, `unix:${tempSocket()}`);
    for (const protocol of ['auto', 'base'] as const) {
      await using client = await connect(server.addresses[0]!, { protocol });
      const bad = [
        ['add', { a: 1, b: 'x' }, 'b: expected integer, got string'],
        ['add', { a: 1.5, b: 1 }, 'a: expected integer, got number'],
        ['add', { a: 1 }, 'b: required'],
        ['add', { a: 1, b: 2, c: 3 }, 'c: unknown field'],
        ['add', [1, 2], 'expected map, got array'],
        ['greet', { name: 'x' }, /^name: Too small/],
        ['even', { n: 3 }, 'n: must be even'],
      ] as const;
      for (const [m, params, message] of bad) {
        const err = await codeOf(client.call(m, params));
        assert.equal(err.code, protocol === 'base' ? 'IPCBOR_ERR_REMOTE' : 'IPCBOR_ERR_INVALID_PARAMS', `${m} ${JSON.stringify(params)}`);
        if (typeof message === 'string') assert.equal(err.message, message);
        else assert.match(err.message, message);
      }
    }
    assert.equal(calls(), 0, 'no invalid request reached a handler');
    await using client = await connect(server.addresses[0]!);
    assert.equal(await client.call('add', { a: 2, b: 3 }), 5);
    assert.equal(await client.call('greet', { name: 'ann', times: 2 }), 'hello annhello ann');
    assert.equal(await client.call('even', { n: 8 }), 4);
  });

  it('mounts several services under prefixes, the default one also under bare names', async () => {
    const timer = createTimer('ipc-server');
    const { svc: math } = counting();
    await using server = await serve([timer, math], `unix:${tempSocket()}`);
    await using client = await connect(server.addresses[0]!);
    assert.equal(await client.call('timer.version'), 'nim-timer v0.1.0');
    assert.equal(await client.call('version'), 'nim-timer v0.1.0');
    assert.equal(await client.call('math.add', { a: 1, b: 1 }), 2);
    assert.equal((await codeOf(client.call('add', { a: 1, b: 1 }))).code, 'IPCBOR_ERR_UNKNOWN_METHOD');
    const m = client.service<typeof math>('math');
    assert.equal(await m.add({ a: 20, b: 22 }), 42);

    // A base-framing client, knowing nothing of prefixes, still gets golden answers.
    const raw = await rawConnect(server.addresses[0]!);
    const r = new RawReader(raw);
    raw.write(hex(golden.versionRequest + golden.echoRequest));
    assert.equal(toHex((await r.response()).bytes), toHex(hex(golden.versionResponse)));
    assert.equal(toHex((await r.response()).bytes), toHex(hex(golden.echoResponse)));
    raw.destroy();
  });

  it('can serve with no default service', async () => {
    await using server = await serve([createTimer('t')], `unix:${tempSocket()}`, { defaultService: null });
    await using client = await connect(server.addresses[0]!);
    assert.equal((await codeOf(client.call('version'))).code, 'IPCBOR_ERR_UNKNOWN_METHOD');
    assert.equal(await client.call('timer.version'), 'nim-timer v0.1.0');
  });

  it('describes itself under the reserved $ipcbor. namespace, with JSON Schemas', async () => {
    const { svc: math } = counting();
    await using server = await serve([createTimer('ipc-server'), math], `unix:${tempSocket()}`);
    for (const protocol of ['auto', 'base'] as const) {
      await using client = await connect(server.addresses[0]!, { protocol });
      const d = (await client.call('$ipcbor.describe')) as Description;
      assert.deepEqual(
        d.services.map((x) => [x.name, x.version, x.prefix, x.default]),
        [
          ['timer', '0.1.0', 'timer', true],
          ['math', '2.1.0', 'math', false],
        ],
      );
      const echo = d.services[0]!.methods.find((x) => x.name === 'echo')!;
      assert.deepEqual((echo.params as { required: string[] }).required, ['req']);
      assert.equal(((echo.result as { properties: Record<string, { type: string }> }).properties.echoed!).type, 'string');
      assert.deepEqual(d.services[0]!.events.map((e) => e.name), ['on_echo_fired']);
      const greet = d.services[1]!.methods.find((x) => x.name === 'greet')!;
      assert.equal((greet.params as { properties: { name: { minLength: number } } }).properties.name.minLength, 2, 'zod produced its JSON Schema');
      const even = d.services[1]!.methods.find((x) => x.name === 'even')!;
      assert.equal(even.params, null, 'a schema without JSON Schema support is described as null');
      assert.equal(d.services[1]!.methods.find((x) => x.name === 'add')!.description, 'adds');
    }
  });

  it('describes a plain handler object by method names', async () => {
    await using server = await serve({ ping: () => 'pong' }, `unix:${tempSocket()}`);
    await using client = await connect(server.addresses[0]!);
    assert.deepEqual(await client.call('$ipcbor.describe'), { services: [], methods: ['ping'] });
  });

  it('has a remote view that is safe to await, log and serialize', async () => {
    await using server = await serve(createTimer('t'), `unix:${tempSocket()}`);
    await using client = await connect(server.addresses[0]!);
    const remote = client.service<TimerService>();
    assert.equal(await remote, remote, 'awaiting it does not call a remote "then"');
    assert.equal(JSON.stringify(remote), '{}');
    assert.doesNotThrow(() => inspect(remote));
    assert.equal(String(Object.keys(remote)), '');
    assert.equal(client.inflight, 0, 'none of that made a call');
  });

  it('gives typed events of a service, by bare name or under its prefix', async () => {
    const timer = createTimer('ipc-server');
    await using server = await serve(timer, `unix:${tempSocket()}`);
    await using client = await connect(server.addresses[0]!);
    const bare = client.events<TimerService>().subscribe('on_echo_fired');
    const prefixed = client.events<TimerService>('timer').subscribe('on_echo_fired');
    await Promise.all([bare.ready, prefixed.ready]);
    await client.service<TimerService>().echo({ req: { message: 'typed', delayMs: 0 } });
    const it1 = bare[Symbol.asyncIterator]();
    const it2 = prefixed[Symbol.asyncIterator]();
    const [a, b] = await Promise.all([it1.next(), it2.next()]);
    assert.equal(a.value!.name, 'on_echo_fired');
    assert.equal(a.value!.payload.payload.message, 'typed');
    assert.equal(b.value!.name, 'timer.on_echo_fired');
    assert.deepEqual(b.value!.payload, a.value!.payload);
  });
});
