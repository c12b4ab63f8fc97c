// client.ts: typed from the service's *type*; none of the server's code is loaded
import { connect } from '../../src/index.js';
import type { Greeter } from './greeter.js';

await using client = await connect(process.argv[2] ?? 'greeter');
const g = client.service<Greeter>();
const { text } = await g.hello({ name: 'ada' }); // typed params and result
console.log(text);
