// greeter.ts: the service, defined once (the README's five-minute example)
import { defineService, method, s } from '../../src/index.js';

export const greeter = defineService({
  name: 'greeter',
  version: '1.0.0',
  methods: {
    hello: method({
      params: s.object({ name: s.string(), times: s.optional(s.int()) }),
      handler: ({ name, times }) => ({ text: `hello ${name}`.repeat(times ?? 1) }),
    }),
  },
});
export type Greeter = typeof greeter;
