/**
 * Run any Standard Schema and turn its issues into one IpcborError
 * (IPCBOR_ERR_INVALID_PARAMS) whose message names each path and reason:
 * `req.delayMs: expected integer, got string`.
 */
import type { StandardSchemaV1 } from '@standard-schema/spec';
import { IpcborError } from './errors.js';
import { formatPath } from './schema.js';

export function issuesText(issues: ReadonlyArray<StandardSchemaV1.Issue>, prefix = ''): string {
  return issues
    .slice(0, 10)
    .map((i) => {
      const p = formatPath(i.path);
      const where = prefix && p ? `${prefix}.${p}` : prefix || p;
      return where ? `${where}: ${i.message}` : i.message;
    })
    .join('; ');
}

export async function validate<O>(schema: StandardSchemaV1<unknown, O>, value: unknown, method?: string): Promise<O> {
  let result = schema['~standard'].validate(value);
  if (result instanceof Promise) result = await result;
  if (result.issues) {
    throw new IpcborError('IPCBOR_ERR_INVALID_PARAMS', issuesText(result.issues), method === undefined ? {} : { method });
  }
  return result.value;
}
