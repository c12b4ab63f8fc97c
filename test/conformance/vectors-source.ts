/**
 * The source of conformance/vectors.json: the cases written with a few
 * helpers, so each frame's bytes are computed and each `send` carries a
 * readable note. test/unit/conformance-vectors.test.ts checks that the file
 * is this output (and rewrites it with IPCBOR_WRITE_VECTORS=1).
 */
import { cbor } from '../../src/core/codec/cbor.js';
import { bytesToHex, type Case, type FrameExpect, type Pattern, type Step, type Vectors } from '../../src/core/conformance/runner.js';

const enc = (v: unknown): Uint8Array => cbor.encode(v);
const u32 = (n: number) => n.toString(16).padStart(8, '0');
const utf8 = (s: string) => new TextEncoder().encode(s);

/** A base-framing request: `u32 method_len | method | u32 payload_len | payload`. */
function request(method: string | Uint8Array, payload: Uint8Array | undefined): string {
  const m = typeof method === 'string' ? utf8(method) : method;
  const p = payload ?? new Uint8Array(0);
  return `${u32(m.length)} ${bytesToHex(m)} ${u32(p.length)}${p.length ? ` ${bytesToHex(p)}` : ''}`;
}

/** An extended frame: `u32 head_len | head | u32 payload_len | payload`. */
function frame(head: unknown, payload?: unknown): string {
  const h = enc(head);
  const p = payload === undefined ? new Uint8Array(0) : enc(payload);
  return `${u32(h.length)} ${bytesToHex(h)} ${u32(p.length)}${p.length ? ` ${bytesToHex(p)}` : ''}`;
}

const show = (v: unknown) => JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? `${x}` : x));
const NAMES = ['', 'CALL', 'NOTIFY', 'CANCEL', 'RESULT', 'ERROR', 'ITEM', 'END', 'CREDIT', 'EVENT'];
const frameNote = (head: readonly unknown[], payload?: unknown) => `${NAMES[head[0] as number] ?? 'frame'} ${show(head)}${payload === undefined ? '' : ` ${show(payload)}`}`;

// Steps.
const sendRequest = (method: string, params: unknown, note?: string): Step => ({
  note: note ?? `request ${method} ${params === undefined ? '(empty payload)' : show(params)}`,
  send: request(method, params === undefined ? undefined : enc(params)),
});
const sendFrame = (head: unknown[], payload?: unknown, note?: string): Step => ({ note: note ?? frameNote(head, payload), send: frame(head, payload) });
const sendRaw = (hex: string, note: string): Step => ({ note, send: hex });
const result = (body: Pattern, note?: string): Step => ({ note: note ?? `response ret 0 ${show(body)}`, response: { ret: 0, body } });
const failure = (text: Pattern, note?: string): Step => ({ note: note ?? `response ret != 0, text ${show(text)}`, response: { ret: 'error', text } });
const expectFrame = (e: FrameExpect, note: string, skip?: number[]): Step => ({ note, frame: e, ...(skip ? { skip } : {}) });
const expectResult = (id: number, payload: Pattern, skip?: number[]): Step => expectFrame({ head: [4, id], payload }, `RESULT [4, ${id}] ${show(payload)}`, skip);
const errorHead = (id: number, code: string): Pattern => [5, id, code, { $type: 'text' }];
const expectError = (id: number, code: string, skip?: number[]): Step => expectFrame({ head: errorHead(id, code) }, `ERROR [5, ${id}, "${code}", message]`, skip);
const close = (skip?: number[]): Step => ({ note: 'the server closes the connection', close: true, ...(skip ? { skip } : {}) });
/** The connection-ending answer to a broken rule: ERROR id 0 with this code, then the close. */
const brokenRule = (code: string): Step[] => [expectError(0, code, [8]), close([8])];

const TEXT = { $type: 'text' } as const;
const CREDIT = 8;

/** The hello every extended case starts with; `window` is the client's (the server's result streams use it). */
function hello(window = 64, note?: string): Step[] {
  return [
    sendRequest('$ipcbor.hello', { version: 1, maxFrameBytes: 16777216, window }, note ?? `hello {version: 1, maxFrameBytes: 16777216, window: ${window}}`),
    {
      note: 'the hello answer: ret 0, {version: 1, maxFrameBytes, window (at least 4), server, ...}',
      response: { ret: 0, body: { $has: { version: 1, maxFrameBytes: { $min: 1 }, window: { $min: 4 }, server: TEXT } } },
      capture: 'hello',
    },
  ];
}

const call = (id: number, method: string, params?: unknown, opts?: Record<string, unknown>): Step => sendFrame(opts ? [1, id, method, opts] : [1, id, method], params);

function cases(): Case[] {
  const base: Case[] = [
    {
      name: 'base.echo',
      section: '§2',
      about: 'A base-framing call: the answer is ret 0 and the result as one CBOR item.',
      steps: [sendRequest('echo', { x: [1, 'two', null, true, -5, { y: 2.5 }] }), result({ x: [1, 'two', null, true, -5, { y: 2.5 }] })],
    },
    {
      name: 'base.empty-payload',
      section: '§2',
      about: 'A payload of length 0 means no params: echo answers null.',
      steps: [sendRequest('echo', undefined), result(null)],
    },
    {
      name: 'base.unknown-method',
      section: '§3',
      about: 'An unknown method is answered ret != 0 with the text "unknown method: NAME"; the connection stays open.',
      steps: [sendRequest('nope', {}), failure({ $match: '^unknown method: nope$' }), sendRequest('echo', 1), result(1)],
    },
    {
      name: 'base.handler-error',
      section: '§3',
      about: "A handler's failure is answered ret != 0 with its message as UTF-8 text (not CBOR).",
      steps: [sendRequest('fail', { message: 'boom' }), failure('boom')],
    },
    {
      name: 'base.invalid-payload',
      section: '§3, §5',
      about: 'A payload that is not one valid CBOR item is answered "invalid payload: REASON"; the connection stays open.',
      steps: [sendRaw(request('echo', new Uint8Array([0xff])), 'request echo with payload ff (a break code alone)'), failure({ $match: '^invalid payload: ' }), sendRequest('echo', 2), result(2)],
    },
    {
      name: 'base.invalid-params',
      section: '§3',
      about: "Params that fail the method's schema are answered ret != 0 (the text names the field); the connection stays open.",
      steps: [sendRequest('sleep', { ms: 'soon' }), failure({ $match: 'ms' }), sendRequest('echo', 3), result(3)],
    },
    {
      name: 'base.pipelining',
      section: '§2',
      about: 'Requests written before any answer are answered in request order, a slow one first holding back the fast ones.',
      steps: [
        { note: 'three requests in one write: sleep {ms: 100}, echo "a", echo "b"', send: [request('sleep', enc({ ms: 100 })), request('echo', enc('a')), request('echo', enc('b'))].join(' ') },
        result(null, 'the answer to sleep (null) comes first'),
        result('a'),
        result('b'),
      ],
    },
    {
      name: 'base.split-frame',
      section: '§2',
      about: 'A request may arrive in pieces, split anywhere: the server reassembles it.',
      steps: (() => {
        const bytes = request('echo', enc({ split: true })).replace(/\s+/g, '');
        return [
          sendRaw(bytes.slice(0, 2), 'the first byte of request echo {split: true}'),
          sendRaw(bytes.slice(2, 12), 'four more bytes'),
          sendRaw(bytes.slice(12), 'the rest'),
          result({ split: true }),
        ];
      })(),
    },
    {
      name: 'base.method-too-long',
      section: '§3',
      about: "A method_len over the server's limit is answered (after the answers owed before it) as soon as the 4 bytes are read, then the connection closes.",
      steps: [sendRequest('echo', 'before'), sendRaw(u32(65536), 'method_len 65536, and nothing after it'), result('before'), failure({ $match: '^method name of 65536 bytes is over the limit of \\d+ bytes$' }), close()],
    },
    {
      name: 'base.frame-too-large',
      section: '§3',
      about: "A payload_len over the server's limit is answered as soon as it is read, then the connection closes.",
      steps: [sendRaw(`${u32(4)} ${bytesToHex(utf8('echo'))} ffffffff`, 'request echo announcing a payload of 4294967295 bytes'), failure({ $match: '^frame of 4294967295 bytes is over the limit of \\d+ bytes$' }), close()],
    },
    {
      name: 'base.method-not-utf8',
      section: '§3',
      about: 'A method name that is not valid UTF-8 is answered, then the connection closes.',
      steps: [sendRaw(request(new Uint8Array([0xff, 0xfe]), enc({})), 'request with method bytes ff fe'), failure('method name is not valid UTF-8'), close()],
    },
    {
      name: 'base.hello-not-first',
      section: '§6',
      about: 'The hello is answered only as the first request: later it is an unknown method, and the framing stays the base framing.',
      steps: [sendRequest('echo', 1), result(1), sendRequest('$ipcbor.hello', { version: 1, maxFrameBytes: 16777216, window: 64 }), failure({ $match: '^unknown method: \\$ipcbor\\.hello$' }), sendRequest('echo', 2), result(2)],
    },
    {
      name: 'base.subscribe-refused',
      section: '§10',
      about: 'Events need the extended protocol: a subscribe in the base framing is answered with an error.',
      steps: [sendRequest('$ipcbor.subscribe', { event: 'tick' }), failure('events need the extended protocol')],
    },
    {
      name: 'base.stream-result-refused',
      section: '§11',
      about: 'A method answering with a stream is answered with an error in the base framing.',
      steps: [sendRequest('count', { n: 3 }), failure('this method answers with a stream, which needs the extended protocol'), sendRequest('echo', 4), result(4)],
    },
    {
      name: 'base.method-at-limit',
      section: '§8',
      about: 'A method name under the limit, 256 bytes long: an unknown method like any other.',
      steps: [sendRequest('m'.repeat(256), {}), failure({ $match: `^unknown method: m{256}$` })],
    },
  ];

  const helloCases: Case[] = [
    {
      name: 'hello.accept',
      section: '§6',
      about: 'The hello as first request: ret 0 with version 1 and the limits; everything after it is extended framing.',
      steps: [...hello(), call(1, 'echo', 'extended'), expectResult(1, 'extended')],
    },
    {
      name: 'hello.higher-version',
      section: '§6',
      about: 'A client offering a later version gets the version both speak (1), never more than offered.',
      steps: [
        sendRequest('$ipcbor.hello', { version: 7, maxFrameBytes: 16777216, window: 64 }),
        result({ $has: { version: 1, maxFrameBytes: { $min: 1 }, window: { $min: 1 }, server: TEXT } }),
        call(1, 'echo', 1),
        expectResult(1, 1),
      ],
    },
    {
      name: 'hello.unknown-keys',
      section: '§6',
      about: 'Keys of the offer the server does not know are ignored.',
      steps: [
        sendRequest('$ipcbor.hello', { version: 1, maxFrameBytes: 16777216, window: 64, future: { anything: [1, 2] }, zz: 'top' }),
        result({ $has: { version: 1, server: TEXT } }),
        call(1, 'echo', 2),
        expectResult(1, 2),
      ],
    },
    {
      name: 'hello.no-limit-values',
      section: '§6',
      about: 'Limits above what a field can mean (2^64-1 as "no limit") are read as the largest meaningful value, not refused.',
      steps: [
        sendRequest('$ipcbor.hello', { version: 2n ** 64n - 1n, maxFrameBytes: 2n ** 64n - 1n, window: 2n ** 64n - 1n }, 'hello {version: 2^64-1, maxFrameBytes: 2^64-1, window: 2^64-1}'),
        result({ $has: { version: 1 } }),
        call(1, 'echo', 3),
        expectResult(1, 3),
      ],
    },
    {
      name: 'hello.bad-offer',
      section: '§6',
      about: 'An offer that is not {version, maxFrameBytes, window} of positive integers is answered with an error, and the connection stays in the base framing.',
      steps: [sendRequest('$ipcbor.hello', { version: 0, maxFrameBytes: 'big', window: 64 }), failure(TEXT), sendRequest('echo', 'still base'), result('still base')],
    },
    {
      name: 'hello.not-a-map',
      section: '§6',
      about: 'An offer that is not a map is answered with an error, and the connection stays in the base framing.',
      steps: [sendRequest('$ipcbor.hello', [1, 16777216, 64]), failure(TEXT), sendRequest('echo', 5), result(5)],
    },
  ];

  const ext: Case[] = [
    {
      name: 'ext.echo',
      section: '§8',
      about: 'CALL answered by RESULT with the same id.',
      steps: [...hello(), call(7, 'echo', { a: [1, 2, 3] }), expectResult(7, { a: [1, 2, 3] })],
    },
    {
      name: 'ext.empty-payload',
      section: '§7, §8',
      about: 'A CALL with an empty payload has no params: echo answers null.',
      steps: [...hello(), call(1, 'echo'), expectResult(1, null)],
    },
    {
      name: 'ext.unknown-method',
      section: '§8',
      about: 'ERROR IPCBOR_ERR_UNKNOWN_METHOD, and the connection goes on.',
      steps: [...hello(), call(1, 'nope', {}), expectFrame({ head: [5, 1, 'IPCBOR_ERR_UNKNOWN_METHOD', { $match: 'nope' }] }, 'ERROR [5, 1, "IPCBOR_ERR_UNKNOWN_METHOD", "...nope..."]'), call(2, 'echo', 1), expectResult(2, 1)],
    },
    {
      name: 'ext.handler-error',
      section: '§8',
      about: "A handler's failure is ERROR IPCBOR_ERR_HANDLER with its message.",
      steps: [...hello(), call(1, 'fail', { message: 'boom' }), expectFrame({ head: [5, 1, 'IPCBOR_ERR_HANDLER', 'boom'] }, 'ERROR [5, 1, "IPCBOR_ERR_HANDLER", "boom"]')],
    },
    {
      name: 'ext.invalid-params',
      section: '§8',
      about: 'Params failing the schema, or a payload that is not CBOR, are ERROR IPCBOR_ERR_INVALID_PARAMS for that call only.',
      steps: [
        ...hello(),
        call(1, 'sleep', { ms: 'soon' }),
        expectError(1, 'IPCBOR_ERR_INVALID_PARAMS'),
        sendRaw(`${frame([1, 2, 'echo']).split(' ').slice(0, 2).join(' ')} 00000001 ff`, 'CALL [1, 2, "echo"] with payload ff'),
        expectError(2, 'IPCBOR_ERR_INVALID_PARAMS'),
        call(3, 'echo', 3),
        expectResult(3, 3),
      ],
    },
    {
      name: 'ext.method-too-long',
      section: '§8',
      about: "A CALL whose method is over the server's limit is ERROR IPCBOR_ERR_METHOD_TOO_LONG (the limit is 256 bytes or more; this method has 4096).",
      steps: [...hello(), { ...call(1, 'm'.repeat(4096), {}), note: 'CALL [1, 1, "mmm…" (4096 bytes)] {}' }, expectError(1, 'IPCBOR_ERR_METHOD_TOO_LONG'), call(2, 'echo', 2), expectResult(2, 2)],
    },
    {
      name: 'ext.out-of-order',
      section: '§8',
      about: 'Answers come back as soon as they are ready: a fast call is answered while a slow one is still running.',
      steps: [...hello(), call(1, 'sleep', { ms: 60000 }), call(2, 'echo', 'fast'), expectResult(2, 'fast'), sendFrame([3, 1]), call(3, 'echo', 'after'), expectResult(3, 'after')],
    },
    {
      name: 'ext.pipelined',
      section: '§8',
      about: 'Several calls in flight at once; each answered once, in any order.',
      steps: [...hello(), call(1, 'echo', 'one'), call(2, 'echo', 'two'), call(3, 'fail', { message: 'three' }), { note: 'RESULT 1, RESULT 2 and ERROR 3, in any order', frames: [{ head: [4, 1], payload: 'one' }, { head: [4, 2], payload: 'two' }, { head: [5, 3, 'IPCBOR_ERR_HANDLER', 'three'] }] }],
    },
    {
      name: 'ext.id-reuse',
      section: '§7',
      about: 'An id may be used again once its call has ended.',
      steps: [...hello(), call(5, 'echo', 'a'), expectResult(5, 'a'), call(5, 'echo', 'b'), expectResult(5, 'b'), call(0xffffffff, 'echo', 'max'), expectResult(0xffffffff, 'max')],
    },
    {
      name: 'ext.unknown-opts',
      section: '§8',
      about: 'Keys of the call options the server does not know are ignored.',
      steps: [...hello(), call(1, 'echo', 'x', { later: true, timeout: 60000 }), expectResult(1, 'x')],
    },
    {
      name: 'ext.cancel',
      section: '§9',
      about: 'CANCEL stops a call: the server sends nothing more for that id (the next frame is the answer to a later call).',
      steps: [...hello(), call(1, 'sleep', { ms: 60000 }), sendFrame([3, 1]), call(2, 'echo', 'next'), expectResult(2, 'next'), call(3, 'echo', 'again'), expectResult(3, 'again')],
    },
    {
      name: 'ext.cancel-unknown-id',
      section: '§7',
      about: 'A CANCEL for an id not in flight is ignored.',
      steps: [...hello(), sendFrame([3, 42]), call(1, 'echo', 1), expectResult(1, 1)],
    },
    {
      name: 'ext.deadline-zero',
      section: '§8',
      about: 'timeout 0 is a deadline already past: ERROR IPCBOR_ERR_DEADLINE_EXCEEDED, the handler is not run.',
      steps: [...hello(), call(1, 'echo', 'never', { timeout: 0 }), expectError(1, 'IPCBOR_ERR_DEADLINE_EXCEEDED')],
    },
    {
      name: 'ext.deadline-passes',
      section: '§8',
      about: 'A sleep of 60 s with timeout 50 ms ends with ERROR IPCBOR_ERR_DEADLINE_EXCEEDED (well before the step timeout).',
      steps: [...hello(), call(1, 'sleep', { ms: 60000 }, { timeout: 50 }), expectError(1, 'IPCBOR_ERR_DEADLINE_EXCEEDED')],
    },
    {
      name: 'ext.deadline-met',
      section: '§8',
      about: 'A call finishing within its timeout is answered normally.',
      steps: [...hello(), call(1, 'sleep', { ms: 1 }, { timeout: 60000 }), expectResult(1, null)],
    },
    {
      name: 'ext.deadline-no-limit',
      section: '§8',
      about: 'A timeout over 2^31-1, 2^64-1 included, means no deadline.',
      steps: [...hello(), call(1, 'echo', 'a', { timeout: 2n ** 64n - 1n }), expectResult(1, 'a'), call(2, 'echo', 'b', { timeout: 2 ** 31 }), expectResult(2, 'b')],
    },
    {
      name: 'ext.notify',
      section: '§8',
      about: 'NOTIFY runs the method and answers nothing, not even an error.',
      steps: [...hello(), sendFrame([2, 'fail'], { message: 'unheard' }), sendFrame([2, 'nope'], {}), call(1, 'echo', 'only this'), expectResult(1, 'only this')],
    },
    {
      name: 'ext.events',
      section: '§10',
      about: 'Subscribe, receive an EVENT, unsubscribe, receive no more. The EVENT head names the event (head[1]: "tick", or the full name "conformance.tick" with the alias "tick" as head[3]).',
      steps: [
        ...hello(),
        call(1, '$ipcbor.subscribe', { event: 'tick' }),
        expectResult(1, null),
        call(2, 'emit', { name: 'tick', payload: { n: 1 } }),
        {
          note: 'RESULT [4, 2] null and EVENT tick {n: 1}, in any order',
          frames: [
            { head: [4, 2], payload: null },
            { head: { $oneOf: [[9, 'tick'], [9, 'tick', 0], { $prefix: [9, 'conformance.tick', 0, 'tick'] }] }, payload: { n: 1 } },
          ],
        },
        call(3, 'emit', { name: 'tock', payload: 'unsubscribed name' }),
        expectResult(3, null),
        call(4, '$ipcbor.unsubscribe', { event: 'tick' }),
        expectResult(4, null),
        call(5, 'emit', { name: 'tick', payload: { n: 2 } }),
        expectResult(5, null),
        call(6, 'echo', 'no event before this'),
        expectResult(6, 'no event before this'),
      ],
    },
    {
      name: 'ext.events-star',
      section: '§10',
      about: 'The name * subscribes to every event; an event fired by NOTIFY reaches it too.',
      steps: [
        ...hello(),
        call(1, '$ipcbor.subscribe', { event: '*' }),
        expectResult(1, null),
        sendFrame([2, 'emit'], { name: 'tock', payload: [1, 2] }),
        expectFrame({ head: { $oneOf: [[9, 'tock'], [9, 'tock', 0], { $prefix: [9, 'conformance.tock', 0] }] }, payload: [1, 2] }, 'EVENT tock [1, 2]'),
      ],
    },
    {
      name: 'ext.events-unknown',
      section: '§10',
      about: 'Subscribing to an event the service does not declare is ERROR IPCBOR_ERR_UNKNOWN_EVENT; an empty name is IPCBOR_ERR_INVALID_PARAMS.',
      steps: [...hello(), call(1, '$ipcbor.subscribe', { event: 'nope' }), expectError(1, 'IPCBOR_ERR_UNKNOWN_EVENT'), call(2, '$ipcbor.subscribe', { event: '' }), expectError(2, 'IPCBOR_ERR_INVALID_PARAMS')],
    },
    {
      name: 'ext.result-stream',
      section: '§11',
      about: 'A result stream: ITEMs, then END.',
      steps: [...hello(), call(1, 'count', { n: 3 }), expectFrame({ head: [6, 1], payload: 0 }, 'ITEM [6, 1] 0'), expectFrame({ head: [6, 1], payload: 1 }, 'ITEM [6, 1] 1'), expectFrame({ head: [6, 1], payload: 2 }, 'ITEM [6, 1] 2'), expectFrame({ head: [7, 1] }, 'END [7, 1]')],
    },
    {
      name: 'ext.result-stream-credit',
      section: '§11',
      about: "The server sends only as many ITEMs as the client's window (2 here), then waits for CREDIT.",
      steps: [
        ...hello(2, 'hello with window 2'),
        call(1, 'count', { n: 5 }),
        expectFrame({ head: [6, 1], payload: 0 }, 'ITEM [6, 1] 0'),
        expectFrame({ head: [6, 1], payload: 1 }, 'ITEM [6, 1] 1'),
        call(2, 'echo', 'credit spent'),
        expectResult(2, 'credit spent'),
        sendFrame([8, 1, 4], undefined, 'CREDIT [8, 1, 4]: enough for the three items left and more (END needs no credit, but a server may wait for credit to learn that its source has ended)'),
        expectFrame({ head: [6, 1], payload: 2 }, 'ITEM [6, 1] 2'),
        expectFrame({ head: [6, 1], payload: 3 }, 'ITEM [6, 1] 3'),
        expectFrame({ head: [6, 1], payload: 4 }, 'ITEM [6, 1] 4'),
        expectFrame({ head: [7, 1] }, 'END [7, 1]'),
      ],
    },
    {
      name: 'ext.result-stream-cancel',
      section: '§9, §11',
      about: 'CANCEL of a result stream: nothing more is sent for it, not even after CREDIT.',
      steps: [
        ...hello(2, 'hello with window 2'),
        call(1, 'count', { n: 100 }),
        expectFrame({ head: [6, 1], payload: 0 }, 'ITEM [6, 1] 0'),
        expectFrame({ head: [6, 1], payload: 1 }, 'ITEM [6, 1] 1'),
        sendFrame([3, 1]),
        sendFrame([8, 1, 10]),
        call(2, 'echo', 'after cancel'),
        expectResult(2, 'after cancel'),
      ],
    },
    {
      name: 'ext.input-stream',
      section: '§11',
      about: 'CALL with {stream: true}, then ITEMs and END from the client: the answer uses them all. CREDIT frames the server sends meanwhile are passed over.',
      steps: [...hello(), call(1, 'sum', undefined, { stream: true }), sendFrame([6, 1], 1), sendFrame([6, 1], 2), sendFrame([6, 1], 3), sendFrame([7, 1]), expectResult(1, 6, [CREDIT])],
    },
    {
      name: 'ext.input-stream-credit',
      section: '§11',
      about: "The server grants more CREDIT as it consumes its window's worth of ITEMs (window from its hello answer).",
      steps: [
        ...hello(),
        call(1, 'sum', undefined, { stream: true }),
        { ...sendFrame([6, 1], 0), note: 'ITEM [6, 1] 0, hello.window times', repeat: 'hello.window' },
        expectFrame({ head: [8, 1, { $min: 1 }] }, 'CREDIT [8, 1, n >= 1]'),
        sendFrame([6, 1], 5),
        sendFrame([7, 1]),
        expectResult(1, 5, [CREDIT]),
      ],
    },
    {
      name: 'ext.input-stream-stopped',
      section: '§11',
      about: 'A handler that stops reading its input stream makes the server send CANCEL for it; the answer comes as usual.',
      steps: [...hello(), call(1, 'first', undefined, { stream: true }), sendFrame([6, 1], 'only'), { note: 'RESULT [4, 1] "only" and CANCEL [3, 1], in any order', skip: [CREDIT], frames: [{ head: [4, 1], payload: 'only' }, { head: [3, 1] }] }],
    },
    {
      name: 'ext.input-stream-error',
      section: '§8, §11',
      about: "An ERROR from the client on its input stream fails the handler's stream: the call is answered with an ERROR.",
      steps: [...hello(), call(1, 'sum', undefined, { stream: true }), sendFrame([6, 1], 1), sendFrame([5, 1, 'SOURCE_FAILED', 'the source broke']), expectFrame({ head: [5, 1, TEXT, TEXT] }, 'ERROR [5, 1, code, message]', [CREDIT])],
    },
  ];

  const broken = (name: string, section: string, about: string, steps: Step[], code: string): Case => ({ name: `broken.${name}`, section, about: `${about} ERROR [5, 0, "${code}", message], then the close.`, steps: [...hello(), ...steps, ...brokenRule(code)] });
  const rules: Case[] = [
    broken('duplicate-id', '§8', 'A CALL whose id is already in flight:', [call(1, 'sleep', { ms: 60000 }), call(1, 'echo', 'dup')], 'IPCBOR_ERR_PROTOCOL'),
    broken('call-id-0', '§8', 'A CALL with id 0:', [call(0, 'echo', 1)], 'IPCBOR_ERR_BAD_FRAME'),
    broken('call-id-2^32', '§8', 'A CALL with id 2^32:', [call(2 ** 32, 'echo', 1)], 'IPCBOR_ERR_BAD_FRAME'),
    broken('cancel-id-0', '§8', 'A CANCEL with id 0:', [sendFrame([3, 0])], 'IPCBOR_ERR_BAD_FRAME'),
    broken('item-id-0', '§8', 'An ITEM with id 0:', [sendFrame([6, 0], 1)], 'IPCBOR_ERR_BAD_FRAME'),
    broken('end-id-0', '§8', 'An END with id 0:', [sendFrame([7, 0])], 'IPCBOR_ERR_BAD_FRAME'),
    broken('credit-id-0', '§8', 'A CREDIT with id 0:', [sendFrame([8, 0, 1])], 'IPCBOR_ERR_BAD_FRAME'),
    broken('credit-0', '§8', 'A CREDIT of 0:', [call(1, 'sleep', { ms: 60000 }), sendFrame([8, 1, 0])], 'IPCBOR_ERR_BAD_FRAME'),
    broken('credit-2^32', '§8', 'A CREDIT over 2^32-1:', [call(1, 'sleep', { ms: 60000 }), sendFrame([8, 1, 2 ** 32])], 'IPCBOR_ERR_BAD_FRAME'),
    broken('head-not-array', '§7, §8', 'A head that is not an array:', [sendFrame({ kind: 1 } as unknown as unknown[], undefined, 'head {"kind": 1}')], 'IPCBOR_ERR_BAD_FRAME'),
    broken('head-empty', '§7, §8', 'An empty head:', [sendFrame([])], 'IPCBOR_ERR_BAD_FRAME'),
    broken('unknown-kind', '§7, §8', 'An unknown kind:', [sendFrame([99, 1])], 'IPCBOR_ERR_BAD_FRAME'),
    broken('call-method-not-text', '§7, §8', 'A CALL whose method is not text:', [sendFrame([1, 1, 42])], 'IPCBOR_ERR_BAD_FRAME'),
    broken('call-without-method', '§7, §8', 'A CALL with no method:', [sendFrame([1, 1])], 'IPCBOR_ERR_BAD_FRAME'),
    broken('head-not-cbor', '§7', 'A head that is not valid CBOR:', [sendRaw('00000001 ff 00000000', 'head ff')], 'IPCBOR_ERR_DECODE'),
    broken('base-request-after-hello', '§6, §7', 'A base-framing request after the hello (its method is read as a head, and is not CBOR):', [sendRaw(request('echo', enc(1)), 'request echo 1, in the base framing')], 'IPCBOR_ERR_DECODE'),
    broken('client-result', '§8', 'A RESULT from the client:', [sendFrame([4, 1], null)], 'IPCBOR_ERR_PROTOCOL'),
    broken('client-event', '§8', 'An EVENT from the client:', [sendFrame([9, 'tick'], null)], 'IPCBOR_ERR_PROTOCOL'),
    broken('items-beyond-credit', '§11', "ITEMs beyond the credit granted (the server's window plus one, to a handler that reads none):", [call(1, 'hold', undefined, { stream: true }), { ...sendFrame([6, 1], 0), note: 'ITEM [6, 1] 0, hello.window + 1 times', repeat: 'hello.window+1' }], 'IPCBOR_ERR_PROTOCOL'),
    broken('head-too-long', '§7, §8', 'A head_len over 65,536 (only the 4 bytes are sent):', [sendRaw(u32(65537), 'head_len 65537')], 'IPCBOR_ERR_BAD_FRAME'),
    broken('payload-too-large', '§7, §8', "A payload_len over the server's maxFrameBytes (the server must announce less than 2^32-1; only the lengths and head are sent):", [sendRaw(`${frame([1, 1, 'echo']).split(' ').slice(0, 2).join(' ')} ffffffff`, 'CALL [1, 1, "echo"] announcing a payload of 4294967295 bytes')], 'IPCBOR_ERR_FRAME_TOO_LARGE'),
  ];
  return [...base, ...helloCases, ...ext, ...rules];
}

export function buildVectors(): Vectors {
  return {
    format: 1,
    about: 'Conformance vectors for the ipcbor wire protocol (docs/PROTOCOL.md): the base framing, the hello, and the extended protocol. conformance/README.md describes the format and the service the server under test must expose.',
    cases: cases(),
  };
}

export const vectorsJson = (): string => `${JSON.stringify(buildVectors(), null, 2)}\n`;
