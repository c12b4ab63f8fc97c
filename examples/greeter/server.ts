// server.ts: the same definition on a socket (address from the command line)
import { serve } from '../../src/index.js';
import { greeter } from './greeter.js';

const server = await serve(greeter, process.argv[2] ?? 'unix:/tmp/greeter.sock'); // or 'tcp:0.0.0.0:9099'
console.log(`listening ${server.addresses[0]}`);
process.on('SIGINT', () => void server.close());
process.on('SIGTERM', () => void server.close());
