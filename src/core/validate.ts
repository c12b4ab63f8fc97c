/**
 * Run any Standard Schema and turn its issues into one IpcborError
 * (IPCBOR_ERR_INVALID_PARAMS) whose message names each path and reason:
 * `req.delayMs: expected integer, got string`.
 */
import type { StandardSchemaV1 } from '@standard-schema/spec';
import { IpcborError } from './errors.js';
import { formatPath } from './schema.js';

export function issuesText(issues: ReadonlyArray<StandardSchemaV1.Issue>, prefix = ''): string {
  const shown = issues
    .slice(0, 10)
    .map((i) => {
      const p = formatPath(i.path);
      const where = prefix && p ? `${prefix}.${p}` : prefix || p;
      return where ? `${where}: ${i.message}` : i.message;
    })
    .join('; ');
  return issues.length > 10 ? `${shown}; and ${issues.length - 10} more` : shown;
}

/**
 * Validate `value` with any Standard Schema ({@link s}, zod, valibot,
 * arktype…) and resolve to the schema's output. The same check a method's
 * `params` schema runs, for use in your own code.
 *
 * @param method - A method name to put on the error (`err.method`), if any.
 * @throws IpcborError `IPCBOR_ERR_INVALID_PARAMS` (as a rejection) when the
 * value does not pass; its message names each issue's path and reason (the
 * first 10, then how many more).
 *
 * @example
 * ```ts
 * const cfg = await validate(s.object({ port: s.int() }), JSON.parse(text));
 * cfg.port; // number
 * ```
 */
export async function validate<O>(schema: StandardSchemaV1<unknown, O>, value: unknown, method?: string): Promise<O> {
  return validateThen(schema, value, method, (v) => v);
}

/**
 * Validate, then continue with `next`: synchronously when the schema's
 * validation is synchronous (most are), so a valid call costs no promise.
 */
export function validateThen<O, R>(schema: StandardSchemaV1<unknown, O>, value: unknown, method: string | undefined, next: (value: O) => R): R | Promise<Awaited<R>> {
  const result = schema['~standard'].validate(value);
  // A thenable, not `instanceof Promise`: a schema may come from another realm.
  if (typeof (result as PromiseLike<unknown>).then === 'function') {
    return Promise.resolve(result).then((r) => next(checked(r, method))) as Promise<Awaited<R>>;
  }
  return next(checked(result as StandardSchemaV1.Result<O>, method));
}

function checked<O>(result: StandardSchemaV1.Result<O>, method: string | undefined): O {
  if (result.issues) {
    throw new IpcborError('IPCBOR_ERR_INVALID_PARAMS', issuesText(result.issues), method === undefined ? {} : { method });
  }
  return result.value;
}
