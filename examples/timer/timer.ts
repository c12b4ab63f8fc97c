/**
 * The timer library of nim-ffi's examples as an ipcbor service. It is defined once and
 * knows nothing of sockets: in-process callers call it directly (the
 * handler's own objects, no serialization); server.ts puts the very same
 * definition on a socket; client.ts calls it remotely with the same types.
 */
import { defineService, method, s, serviceOf, type Infer } from '../../src/index.js';
import { ComplexRequest, EchoRequest, JobSpec, RetryPolicy, ScheduleConfig } from './schemas.js';

export const TIMER_VERSION = 'nim-timer v0.1.0';

const EchoResponse = s.object({ echoed: s.string(), timerName: s.string() });
const ComplexResponse = s.object({ summary: s.string(), itemCount: s.int(), hasNote: s.boolean() });
const ScheduleResult = s.object({ jobId: s.string(), willRunCount: s.int(), firstRunAtMs: s.int(), effectiveBackoffMs: s.int() });
const EchoEvent = s.object({ message: s.string(), echoCount: s.int() });
/** What event listeners receive, as in nim-ffi's example library. */
const EchoFired = s.object({ eventType: s.literal('on_echo_fired'), payload: EchoEvent });

export type EchoResponse = Infer<typeof EchoResponse>;
export type EchoFired = Infer<typeof EchoFired>;

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal.reason);
    };
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** A timer named `name` (the base-framing server creates one named `ipc-server`, shared by all clients). */
export function createTimer(name: string) {
  const timer = defineService({
    name: 'timer',
    version: '0.1.0',
    description: "nim-ffi's example timer",
    methods: {
      version: method({
        description: 'the library version',
        result: s.string(),
        handler: () => TIMER_VERSION,
      }),
      echo: method({
        description: 'wait delayMs, fire on_echo_fired, and echo the message with the timer name',
        params: s.object({ req: EchoRequest }),
        result: EchoResponse,
        handler: async ({ req }, ctx) => {
          if (req.delayMs > 0) await sleep(req.delayMs, ctx.signal);
          serviceOf(timer).emit('on_echo_fired', { eventType: 'on_echo_fired', payload: { message: req.message, echoCount: 1 } });
          return { echoed: req.message, timerName: name };
        },
      }),
      complex: method({
        description: 'summarise a batch of messages',
        params: s.object({ req: ComplexRequest }),
        result: ComplexResponse,
        handler: ({ req }) => ({
          summary: `received ${req.messages.length} messages, note=${req.note ?? '<none>'}, retries=${req.retries ?? 0}`,
          itemCount: req.messages.length,
          hasNote: req.note !== undefined,
        }),
      }),
      schedule: method({
        description: 'plan a job',
        params: s.object({ job: JobSpec, retry: RetryPolicy, schedule: ScheduleConfig }),
        result: ScheduleResult,
        handler: async ({ job, retry, schedule }, ctx) => {
          await sleep(1, ctx.signal);
          if (job.name === '') throw new Error('job name must not be empty');
          if (retry.maxAttempts <= 0) throw new Error('retry.maxAttempts must be positive');
          return {
            jobId: `${name}:${job.name}`,
            willRunCount: schedule.intervalMs > 0 ? Math.max(1, Math.floor(60000 / schedule.intervalMs)) : 1,
            firstRunAtMs: schedule.startAtMs + (schedule.jitter ?? 0),
            effectiveBackoffMs: retry.backoffMs,
          };
        },
      }),
    },
    events: { on_echo_fired: EchoFired },
  });
  return timer;
}

/** The service's type: all a remote client needs (`import type`). */
export type TimerService = ReturnType<typeof createTimer>;
