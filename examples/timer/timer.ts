/**
 * The seed's timer library, ported: one timer with a name, four methods and
 * one event. This file knows nothing of sockets: in-process callers use it
 * directly; server.ts puts it on a socket.
 */

export interface EchoRequest {
  message: string;
  delayMs: number;
}
export interface EchoResponse {
  echoed: string;
  timerName: string;
}
export interface ComplexRequest {
  messages: EchoRequest[];
  tags: string[];
  note?: string;
  retries?: number;
}
export interface ComplexResponse {
  summary: string;
  itemCount: number;
  hasNote: boolean;
}
export interface EchoEvent {
  message: string;
  echoCount: number;
}
export interface JobSpec {
  name: string;
  payload: string[];
  priority: number;
}
export interface RetryPolicy {
  maxAttempts: number;
  backoffMs: number;
  retryOn: string[];
}
export interface ScheduleConfig {
  startAtMs: number;
  intervalMs: number;
  jitter?: number;
}
export interface ScheduleResult {
  jobId: string;
  willRunCount: number;
  firstRunAtMs: number;
  effectiveBackoffMs: number;
}

/** What event listeners receive, as in the seed library. */
export interface TimerEventEnvelope {
  eventType: 'on_echo_fired';
  payload: EchoEvent;
}

export const TIMER_VERSION = 'nim-timer v0.1.0';

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export class Timer {
  readonly name: string;
  private readonly listeners = new Set<(e: TimerEventEnvelope) => void>();

  constructor(name: string) {
    this.name = name;
  }

  /** Listen to the timer's events; returns a function that stops listening. */
  onEvent(listener: (e: TimerEventEnvelope) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  version(): string {
    return TIMER_VERSION;
  }

  async echo(req: EchoRequest, signal?: AbortSignal): Promise<EchoResponse> {
    if (req.delayMs > 0) await sleep(req.delayMs, signal);
    const event: TimerEventEnvelope = { eventType: 'on_echo_fired', payload: { message: req.message, echoCount: 1 } };
    for (const l of this.listeners) l(event);
    return { echoed: req.message, timerName: this.name };
  }

  complex(req: ComplexRequest): ComplexResponse {
    const n = req.messages.length;
    return {
      summary: `received ${n} messages, note=${req.note ?? '<none>'}, retries=${req.retries ?? 0}`,
      itemCount: n,
      hasNote: req.note !== undefined,
    };
  }

  async schedule(job: JobSpec, retry: RetryPolicy, schedule: ScheduleConfig, signal?: AbortSignal): Promise<ScheduleResult> {
    await sleep(1, signal);
    if (job.name === '') throw new Error('job name must not be empty');
    if (retry.maxAttempts <= 0) throw new Error('retry.maxAttempts must be positive');
    return {
      jobId: `${this.name}:${job.name}`,
      willRunCount: schedule.intervalMs > 0 ? Math.max(1, Math.floor(60000 / schedule.intervalMs)) : 1,
      firstRunAtMs: schedule.startAtMs + (schedule.jitter ?? 0),
      effectiveBackoffMs: retry.backoffMs,
    };
  }
}
