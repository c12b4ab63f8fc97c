/** The timer's methods as socket handlers: validate the params, call the library. */
import type { CallContext, Handler } from '../../src/core/rpc/dispatcher.js';
import { validate } from '../../src/core/validate.js';
import { ComplexParams, EchoParams, ScheduleParams } from './schemas.js';
import type { Timer } from './timer.js';

export function timerHandlers(timer: Timer): Record<string, Handler> {
  return {
    version: () => timer.version(),
    echo: async (params: unknown, ctx: CallContext) => {
      const { req } = await validate(EchoParams, params, ctx.method);
      return timer.echo(req, ctx.signal);
    },
    complex: async (params: unknown, ctx: CallContext) => {
      const { req } = await validate(ComplexParams, params, ctx.method);
      return timer.complex(req);
    },
    schedule: async (params: unknown, ctx: CallContext) => {
      const p = await validate(ScheduleParams, params, ctx.method);
      return timer.schedule(p.job, p.retry, p.schedule, ctx.signal);
    },
  };
}
