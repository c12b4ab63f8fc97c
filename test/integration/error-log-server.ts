/**
 * A server in a process of its own for error-log.test.ts: `boom` throws,
 * `refuse` throws an IpcborError (an answer it chose), `ok` answers.
 * argv: ADDRESS [silent]. Prints "listening" once it listens; stops on SIGTERM.
 */
import { IpcborError, serve } from '../../src/index.js';

const [address, mode] = process.argv.slice(2);
const handlers = {
  boom: (p: { n?: number }) => {
    throw new Error(`kaput ${p.n ?? 0}`);
  },
  later: async () => {
    await Promise.resolve();
    throw new Error('kaput later');
  },
  refuse: () => {
    throw new IpcborError('IPCBOR_ERR_INVALID_PARAMS', 'no thanks');
  },
  ok: () => 'ok',
};
const server = await serve(handlers, address!, mode === 'silent' ? { onError: () => {} } : {});
process.once('SIGTERM', () => void server.close().then(() => process.exit(0)));
console.log('listening');
