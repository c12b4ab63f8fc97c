/**
 * A small schema builder for the CBOR data model, so a service can validate
 * its params without another dependency. Every schema here is a Standard
 * Schema (validate) and a Standard JSON Schema (describe), so it is used
 * exactly like a zod, valibot or arktype schema would be.
 *
 * Objects follow nim-ffi's conventions: unknown keys are refused, an
 * optional field may be absent or null (both become absent).
 */
import type { StandardJSONSchemaV1, StandardSchemaV1 } from '@standard-schema/spec';

type Issue = StandardSchemaV1.Issue;
const INVALID = Symbol('invalid');
type Checked<T> = T | typeof INVALID;

/**
 * A schema made by {@link s}, checking values of type `T`. It is a Standard
 * Schema, so it goes wherever one does (a method's `params`, {@link
 * validate}, other libraries), and a Standard JSON Schema, so
 * `$ipcbor.describe` can show it as JSON Schema (draft 2020-12).
 * Validation is synchronous.
 */
export interface Schema<T> extends StandardSchemaV1<T, T>, StandardJSONSchemaV1<T, T> {
  /** The Standard Schema interface: `validate(value)` and `jsonSchema.input()` / `.output()`. */
  readonly '~standard': StandardSchemaV1.Props<T, T> & StandardJSONSchemaV1.Props<T, T>;
  /** @internal */
  readonly check: (value: unknown, path: PropertyKey[], issues: Issue[]) => Checked<T>;
  /** @internal JSON Schema of this type */
  readonly json: () => Record<string, unknown>;
}

export interface OptionalSchema<T> extends Schema<T | undefined> {
  readonly optional: true;
}

/**
 * The type of the values schema `S` produces (its output type): works for
 * any Standard Schema, not only those of {@link s}.
 *
 * @example
 * ```ts
 * const Point = s.object({ x: s.number(), y: s.number(), label: s.optional(s.string()) });
 * type Point = Infer<typeof Point>; // { x: number; y: number; label?: string }
 * ```
 */
export type Infer<S> = S extends StandardSchemaV1<unknown, infer O> ? O : never;

function make<T>(check: Schema<T>['check'], json: () => Record<string, unknown>): Schema<T> {
  const schema: Schema<T> = {
    check,
    json,
    '~standard': {
      version: 1,
      vendor: 'ipcbor',
      validate(value: unknown): StandardSchemaV1.Result<T> {
        const issues: Issue[] = [];
        const out = check(value, [], issues);
        return out === INVALID ? { issues } : { value: out };
      },
      jsonSchema: {
        input: () => ({ $schema: 'https://json-schema.org/draft/2020-12/schema', ...json() }),
        output: () => ({ $schema: 'https://json-schema.org/draft/2020-12/schema', ...json() }),
      },
    },
  };
  return schema;
}

function fail(issues: Issue[], path: PropertyKey[], message: string): typeof INVALID {
  issues.push({ message, path: [...path] });
  return INVALID;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (v instanceof Uint8Array) return 'bytes';
  return typeof v;
}

const TWO_64 = 1n << 64n;

function primitive<T>(name: string, test: (v: unknown) => boolean, json: Record<string, unknown>): Schema<T> {
  return make<T>(
    (v, path, issues) => (test(v) ? (v as T) : fail(issues, path, `expected ${name}, got ${describe(v)}`)),
    () => json,
  );
}

/**
 * The schema builder: schemas for the CBOR data model, each a Standard
 * Schema (usable as a method's `params` or `result`, or with
 * {@link validate}) and a Standard JSON Schema (shown by `$ipcbor.describe`).
 * A failed check reports every issue with its path (`items[2].name:
 * expected string, got number`); as a method's params, that rejects the
 * call with `IPCBOR_ERR_INVALID_PARAMS`.
 *
 * @example
 * ```ts
 * const Order = s.object({
 *   id: s.int(),
 *   items: s.array(s.object({ sku: s.string(), qty: s.int() })),
 *   note: s.optional(s.string()),
 *   kind: s.literal('retail'),
 * });
 * const place = method({ params: Order, handler: (order) => order.items.length });
 * ```
 */
export const s = {
  /** A text string. */
  string: (): Schema<string> => primitive('string', (v) => typeof v === 'string', { type: 'string' }),
  /**
   * A safe integer, −(2^53−1) to 2^53−1: exactly the numbers ipcbor sends
   * as CBOR integers (major type 0 or 1), each standing for itself alone.
   * The CBOR integers ±2^53 decode to numbers too, but are refused here
   * (2^53 is also 2^53+1 rounded, and ipcbor sends a number that large as a
   * float); beyond them integers decode to bigint, refused too.
   * docs/PROTOCOL.md §5.
   */
  int: (): Schema<number> =>
    make<number>(
      (v, path, issues) => {
        if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
        if ((typeof v === 'number' && Number.isInteger(v)) || (typeof v === 'bigint' && v >= -TWO_64 && v < TWO_64)) {
          return fail(issues, path, `expected integer within ±(2^53-1), got ${String(v)}`);
        }
        return fail(issues, path, `expected integer, got ${describe(v)}`);
      },
      () => ({ type: 'integer', minimum: -Number.MAX_SAFE_INTEGER, maximum: Number.MAX_SAFE_INTEGER }),
    ),
  /** Any number: an integer or a float, NaN and ±Infinity included (see {@link s.int} for integers). */
  number: (): Schema<number> => primitive('number', (v) => typeof v === 'number', { type: 'number' }),
  /** `true` or `false`. */
  boolean: (): Schema<boolean> => primitive('boolean', (v) => typeof v === 'boolean', { type: 'boolean' }),
  /** A CBOR byte string (Uint8Array). */
  bytes: (): Schema<Uint8Array> => primitive('bytes', (v) => v instanceof Uint8Array, { type: 'string', contentEncoding: 'base64', description: 'CBOR byte string' }),
  /** `null` (CBOR null) only. */
  null: (): Schema<null> => primitive('null', (v) => v === null, { type: 'null' }),
  /** Anything: no check. */
  unknown: (): Schema<unknown> => make<unknown>((v) => v, () => ({})),
  /** Exactly `value` (compared with `===`): a string, number or boolean. */
  literal<const L extends string | number | boolean>(value: L): Schema<L> {
    return primitive(JSON.stringify(value), (v) => v === value, { const: value });
  },
  /** An array whose every element passes `item`; issues name the element's index. */
  array<T>(item: Schema<T>): Schema<T[]> {
    return make<T[]>(
      (v, path, issues) => {
        if (!Array.isArray(v)) return fail(issues, path, `expected array, got ${describe(v)}`);
        const out: T[] = [];
        let ok = true;
        for (let i = 0; i < v.length; i++) {
          path.push(i);
          const r = item.check(v[i], path, issues);
          path.pop();
          if (r === INVALID) ok = false;
          else out.push(r);
        }
        return ok ? out : INVALID;
      },
      () => ({ type: 'array', items: item.json() }),
    );
  },
  /**
   * May be absent or null; both arrive as absent. Meant for a field of
   * {@link s.object}, where it makes the key optional; a present value must
   * pass `inner`.
   */
  optional<T>(inner: Schema<T>): OptionalSchema<T> {
    const schema = make<T | undefined>(
      (v, path, issues) => (v === undefined || v === null ? undefined : inner.check(v, path, issues)),
      () => ({ anyOf: [inner.json(), { type: 'null' }] }),
    );
    return Object.assign(schema, { optional: true as const });
  },
  /**
   * A map with text keys, each checked by its schema in `shape`. A key
   * whose schema is not {@link s.optional} is required; unknown keys are
   * refused. The value produced is a new object with the shape's keys only
   * (an optional field that was absent or null is left out).
   */
  object<const Shape extends Record<string, Schema<unknown>>>(shape: Shape): Schema<ObjectOf<Shape>> {
    const keys = Object.keys(shape);
    return make<ObjectOf<Shape>>(
      (v, path, issues) => {
        if (typeof v !== 'object' || v === null || Array.isArray(v) || v instanceof Uint8Array) {
          return fail(issues, path, `expected map, got ${describe(v)}`);
        }
        const input = v as Record<string, unknown>;
        const out: Record<string, unknown> = {};
        let ok = true;
        for (const key of keys) {
          const field = shape[key]!;
          // Own properties only: a missing `toString` must not find Object.prototype's.
          const value = Object.hasOwn(input, key) ? input[key] : undefined;
          path.push(key);
          if (value === undefined && !(field as Partial<OptionalSchema<unknown>>).optional) {
            fail(issues, path, 'required');
            ok = false;
          } else {
            const r = field.check(value, path, issues);
            if (r === INVALID) ok = false;
            else if (r !== undefined) out[key] = r;
          }
          path.pop();
        }
        for (const key of Object.keys(input)) {
          if (!Object.hasOwn(shape, key)) {
            path.push(key);
            fail(issues, path, 'unknown field');
            path.pop();
            ok = false;
          }
        }
        return ok ? (out as ObjectOf<Shape>) : INVALID;
      },
      () => {
        const properties: Record<string, unknown> = {};
        const required: string[] = [];
        for (const key of keys) {
          properties[key] = shape[key]!.json();
          if (!(shape[key] as Partial<OptionalSchema<unknown>>).optional) required.push(key);
        }
        return { type: 'object', properties, required, additionalProperties: false };
      },
    );
  },
};

type OptionalKeys<Shape> = { [K in keyof Shape]: Shape[K] extends OptionalSchema<unknown> ? K : never }[keyof Shape];
type Simplify<T> = { [K in keyof T]: T[K] };
export type ObjectOf<Shape extends Record<string, Schema<unknown>>> = Simplify<
  { [K in Exclude<keyof Shape, OptionalKeys<Shape>>]: Infer<Shape[K]> } & { [K in OptionalKeys<Shape>]?: Exclude<Infer<Shape[K]>, undefined> }
>;

/** `a.b[0].c`-style text for an issue path (used in error messages). */
export function formatPath(path: ReadonlyArray<PropertyKey | StandardSchemaV1.PathSegment> | undefined): string {
  if (!path || path.length === 0) return '';
  let out = '';
  for (const seg of path) {
    const key = typeof seg === 'object' && seg !== null ? seg.key : seg;
    if (typeof key === 'number') out += `[${key}]`;
    else out += out === '' ? String(key) : `.${String(key)}`;
  }
  return out;
}
