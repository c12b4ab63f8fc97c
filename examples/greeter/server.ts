// server.ts: the same definition on a socket (address from the command line)
import { serve } from '../../src/index.js';
import { greeter } from './greeter.js';

// 'greeter': a socket in your runtime directory; or 'unix:/path', 'tcp:127.0.0.1:9099'
// (across machines, 'tls:HOST:PORT' with a certificate: see the README)
const server = await serve(greeter, process.argv[2] ?? 'greeter');
// On Ctrl-C or SIGTERM: close (which removes the socket file) and exit.
const stop = () => void server.close().then(() => process.exit(0));
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
console.log(`listening ${server.addresses[0]}`);
