/** Is `v` something to send as a stream rather than as one value? (A Uint8Array is a value.) */
export function isAsyncIterable(v: unknown): v is AsyncIterable<unknown> {
  // The method first: most values have none, and instanceof walks a prototype chain.
  return typeof v === 'object' && v !== null && typeof (v as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function' && !(v instanceof Uint8Array);
}

/** Close an async iterable nobody will read, so its cleanup (`finally`) runs. */
export function discardIterable(value: unknown): void {
  if (!isAsyncIterable(value)) return;
  try {
    const it = value[Symbol.asyncIterator]();
    void Promise.resolve(it.return?.()).catch(() => undefined);
  } catch {
    // a broken iterable: nothing to close
  }
}
