/**
 * The raw baseline server: plain `net`, the base framing, no CBOR. Every
 * request is answered with ret 0 and its payload bytes as the body. It is
 * the floor a Node program cannot go under on this machine: ipcbor is
 * measured against it.
 *
 * Started with the extra argument `codec`, it also decodes each payload
 * with ipcbor's codec and encodes the answer again (the `raw+codec`
 * system): the Node limit for this framing plus the CBOR work ipcbor cannot
 * avoid. With `cborg` or `cborx`, the same with plain cborg or cbor-x
 * instead (bench/codecs.ts).
 *
 *   request : [u32 method_len][method][u32 payload_len][payload]
 *   response: [i32 ret][u32 body_len][body]
 */
import { createServer, type Socket } from 'node:net';
import { unlinkSync } from 'node:fs';
import { ByteQueue } from './byte-queue.js';
import { runChild } from './child.js';
import { CODECS, type CodecId } from './codecs.js';

/** Bodies up to this size are copied behind their header (one write); larger ones go as their own write, uncopied. */
const COPY_LIMIT = 16 * 1024;

function answer(socket: Socket, body: Buffer): void {
  if (body.length <= COPY_LIMIT) {
    const frame = Buffer.allocUnsafe(8 + body.length);
    frame.writeInt32BE(0, 0);
    frame.writeUInt32BE(body.length, 4);
    body.copy(frame, 8);
    socket.write(frame);
  } else {
    const head = Buffer.allocUnsafe(8);
    head.writeInt32BE(0, 0);
    head.writeUInt32BE(body.length, 4);
    socket.write(head);
    socket.write(body);
  }
}

const mode = process.argv[3] as CodecId | undefined;
if (mode !== undefined && !(mode in CODECS)) throw new Error(`raw-server: unknown codec ${mode}`);
const codec = mode === undefined ? undefined : CODECS[mode]();
/** The codec's output is already a copy of its own (or, cbor-x's, a slice it never writes again): a view, not another copy. */
const view = (u: Uint8Array) => Buffer.from(u.buffer, u.byteOffset, u.byteLength);
const transform: ((payload: Buffer) => Buffer) | undefined = codec && ((p) => view(codec.encode(codec.decode(p))));

function onConnection(socket: Socket): void {
  const q = new ByteQueue();
  socket.on('data', (chunk: Buffer) => {
    q.push(chunk);
    // Answers to every request in this chunk leave in one syscall.
    socket.cork();
    for (;;) {
      if (q.length < 4) break;
      const methodLen = q.u32(0);
      if (q.length < 8 + methodLen) break;
      const payloadLen = q.u32(4 + methodLen);
      if (q.length < 8 + methodLen + payloadLen) break;
      q.skip(8 + methodLen);
      const payload = q.take(payloadLen);
      answer(socket, transform ? transform(payload) : payload);
    }
    socket.uncork();
  });
  socket.on('error', () => socket.destroy());
}

runChild(async (socketPath) => {
  const server = createServer(onConnection);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, resolve);
  });
  return {
    address: `unix:${socketPath}`,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        try {
          unlinkSync(socketPath);
        } catch {
          // already gone
        }
      }),
  };
});
