/** The timer's wire shapes (nim-ffi's CDDL), as schemas. */
import { s } from '../../src/index.js';

export const EchoRequest = s.object({ message: s.string(), delayMs: s.int() });
export const ComplexRequest = s.object({
  messages: s.array(EchoRequest),
  tags: s.array(s.string()),
  note: s.optional(s.string()),
  retries: s.optional(s.int()),
});
export const JobSpec = s.object({ name: s.string(), payload: s.array(s.string()), priority: s.int() });
export const RetryPolicy = s.object({ maxAttempts: s.int(), backoffMs: s.int(), retryOn: s.array(s.string()) });
export const ScheduleConfig = s.object({ startAtMs: s.int(), intervalMs: s.int(), jitter: s.optional(s.int()) });
