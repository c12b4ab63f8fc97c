/**
 * A relay whose clients speak newline-delimited JSON instead of ipcbor:
 * each line `{"method": "echo", "params": {...}}` becomes a call to the
 * service, and each answer comes back as one line, `{"result": ...}` or
 * `{"error": "..."}`, in the order the lines were sent. Any program that
 * can write a line to a socket (a shell with `nc`, a script in any
 * language) can then call an ipcbor service, or a service in C or Nim.
 *
 *   node dist/examples/relay/ndjson.js --listen tcp:127.0.0.1:7070 --to timer
 *   printf '%s\n' '{"method":"version"}' | nc -q1 127.0.0.1 7070
 *
 * The adapter works in the base framing (one answer per request, in
 * order), so the relay passes its frames on as for any base-framing
 * client; it adds only the translation, and bounds the line it is reading.
 */
import { parseArgs } from 'node:util';
import { cbor, createRelay, type RelayAdapter } from '../../src/index.js';

const utf8 = new TextEncoder();
const text = new TextDecoder();
const NEWLINE = 0x0a;

/** A base-framing request: u32 method length, method, u32 payload length, payload (docs/PROTOCOL.md §2). */
function request(method: string, params: unknown): Uint8Array {
  const m = utf8.encode(method);
  const body = cbor.encode(params);
  const frame = new Uint8Array(8 + m.length + body.length);
  const view = new DataView(frame.buffer);
  view.setUint32(0, m.length);
  frame.set(m, 4);
  view.setUint32(4 + m.length, body.length);
  frame.set(body, 8 + m.length);
  return frame;
}

/** One JSON line. Byte strings (which JSON has not) are written as base64. */
function line(value: unknown): Uint8Array {
  const json = JSON.stringify(value, (_key, v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString('base64') : typeof v === 'bigint' ? v.toString() : v));
  return utf8.encode(`${json}\n`);
}

/**
 * The adapter of one connection. Lines longer than `maxLineBytes` close
 * it. A line that is not a call gets its error line at its place in the
 * order: after the answers to the lines before it.
 */
export function ndjsonAdapter(maxLineBytes = 1024 * 1024): RelayAdapter {
  let partial: Uint8Array[] = [];
  let partialBytes = 0;
  /** For each line sent on, in order: undefined (the service answers it) or the adapter's own error line. */
  const order: (Uint8Array | undefined)[] = [];
  let reply: (bytes: Uint8Array) => void = () => {};
  /** Send the adapter's own answers that are next in the order. */
  const flush = () => {
    while (order.length > 0 && order[0] !== undefined) reply(order.shift()!);
  };
  const parse = (bytes: Uint8Array): Uint8Array | undefined => {
    // Answers owed are bounded like a server's calls in flight: a client far ahead of its answers is closed.
    if (order.length >= 1024) throw new Error('more than 1024 lines waiting for their answers');
    let call: { method?: unknown; params?: unknown };
    try {
      call = JSON.parse(text.decode(bytes)) as { method?: unknown; params?: unknown };
    } catch (err) {
      order.push(line({ error: `not JSON: ${(err as Error).message}` }));
      return undefined;
    }
    if (typeof call !== 'object' || call === null || typeof call.method !== 'string' || call.method === '') {
      order.push(line({ error: 'expected {"method": NAME, "params": VALUE}' }));
      return undefined;
    }
    order.push(undefined);
    return request(call.method, call.params ?? null);
  };
  return {
    fromClient(chunk, send) {
      reply = send;
      const frames: Uint8Array[] = [];
      let start = 0;
      for (let i = chunk.indexOf(NEWLINE); i >= 0; i = chunk.indexOf(NEWLINE, start)) {
        partial.push(chunk.subarray(start, i));
        const whole = Buffer.concat(partial);
        partial = [];
        partialBytes = 0;
        start = i + 1;
        if (whole.length === 0) continue;
        const frame = parse(whole);
        if (frame) frames.push(frame);
      }
      if (start < chunk.length) {
        partial.push(chunk.slice(start));
        partialBytes += chunk.length - start;
        if (partialBytes > maxLineBytes) throw new Error(`a line over ${maxLineBytes} bytes`);
      }
      flush();
      return frames;
    },
    toClient(frame) {
      // The service's answer to the oldest line it was sent: ret, then the body.
      const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
      const ret = view.getInt32(0);
      const body = frame.subarray(8);
      order.shift();
      const out = ret === 0 ? line({ result: cbor.decode(body) }) : line({ error: text.decode(body) });
      // Whatever the adapter answered itself right after this line goes out behind it.
      const after: Uint8Array[] = [];
      while (order.length > 0 && order[0] !== undefined) after.push(order.shift()!);
      return after.length === 0 ? out : Buffer.concat([out, ...after]);
    },
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { listen: { type: 'string', default: 'tcp:127.0.0.1:7070' }, to: { type: 'string' } } });
  if (values.to === undefined) throw new Error('usage: ndjson --listen tcp:HOST:PORT --to SERVICE');
  const relay = await createRelay({ listen: values.listen, to: values.to, adapter: () => ndjsonAdapter() });
  console.log(`newline-delimited JSON on ${relay.addresses.join(', ')} -> ${relay.to}`);
  const stop = () => void relay.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
