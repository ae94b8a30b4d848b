/**
 * Building blocks of the request schemas (protocol.ts) and the one place their errors become messages. Each field
 * carries its own message ("must be an integer in 1..1024"), so that the sidecar ("field 'n' must be …"), the CLI
 * ("--n must be …") and the extension's input boxes all say the same thing about the same value.
 */
import { z } from 'zod';
import { LIMITS } from './limits.ts';

/** An integer in [min, max]. */
export function int(min: number, max = Number.MAX_SAFE_INTEGER) {
  const error = `must be an integer in ${min}..${max}`;
  return z.number({ error }).int({ error }).min(min, { error }).max(max, { error });
}

/** A finite number in [min, max]; `exclusiveMin` makes the lower bound open (a learning rate of 0 trains nothing). */
export function num(min: number, max: number, exclusiveMin = false) {
  const error = `must be a number in ${exclusiveMin ? '(' : '['}${min}, ${max}]`;
  const base = z.number({ error });
  return (exclusiveMin ? base.gt(min, { error }) : base.min(min, { error })).max(max, { error });
}

export function str() {
  const error = 'must be a non-empty string';
  return (
    z
      .string({ error })
      .min(1, { error })
      .max(LIMITS.stringChars, { error: `must be at most ${LIMITS.stringChars} characters long` })
      // No path or name holds one; node's fs refuses it deep inside a job, as an internal error.
      .refine((s) => !s.includes('\0'), { error: 'must not contain a NUL character' })
  );
}

export function bool() {
  return z.boolean({ error: 'must be true or false' });
}

export function oneOf<const T extends readonly [string, ...string[]]>(choices: T) {
  return z.enum(choices, { error: `must be one of ${choices.join(', ')}` });
}

/** Threads running the model on the CPU backends: a count, or 'auto' (one per core where the model gains from it). */
export const MAX_WORKERS = 64;
export function workers() {
  const error = `must be auto or an integer in 1..${MAX_WORKERS}`;
  return z.union(
    [z.literal('auto', { error }), z.number({ error }).int({ error }).min(1, { error }).max(MAX_WORKERS, { error })],
    { error },
  );
}

/** A problem with a request's parameters; the message names the field (or flag) and says what it must be. */
export class ParamsError extends Error {
  override name = 'ParamsError';
}

export type FieldNamer = (path: readonly PropertyKey[]) => string;

/** How the sidecar names a field: `field 'n'` (`field 'lambdas' item 1` inside a list); the CLI names flags instead. */
export const rpcField: FieldNamer = (p) =>
  `field '${String(p[0])}'${p.length > 1 ? ` item ${p.slice(1).map(String).join('.')}` : ''}`;

export function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

function describe(input: unknown): string {
  return typeof input === 'string' ? `'${input}'` : (JSON.stringify(input) ?? String(input));
}

/** One line per problem: "missing field 'x'", "field 'n' must be an integer in 1..1024, got 0". */
export function formatIssues(error: z.ZodError, name: FieldNamer, what = 'params'): string {
  return error.issues
    .map((iss) => {
      if (iss.path.length === 0) return `${what} must be an object`;
      if (iss.input === undefined && (iss.code === 'invalid_type' || iss.code === 'invalid_value'))
        return `missing ${name(iss.path)}`;
      return `${name(iss.path)} ${iss.message}${iss.input === undefined ? '' : `, got ${describe(iss.input)}`}`;
    })
    .join('; ');
}

/** Parses `raw` with `schema` (defaults filled in) or throws a ParamsError naming the fields. */
export function parseParams<S extends z.ZodType>(
  schema: S,
  raw: unknown,
  name: FieldNamer = rpcField,
  what?: string,
): z.output<S> {
  const r = schema.safeParse(raw ?? {}, { reportInput: true });
  if (!r.success) throw new ParamsError(formatIssues(r.error, name, what));
  return r.data;
}

/**
 * The message for one field's value, or null when it is valid: for the extension's input boxes
 * (`validateInput: (v) => fieldError(TrainParamsSchema, 'steps', Number(v))`).
 */
export function fieldError<S extends z.ZodObject>(
  schema: S,
  key: keyof S['shape'] & string,
  value: unknown,
): string | null {
  const r = (schema.shape[key] as z.ZodType).safeParse(value, { reportInput: true });
  return r.success ? null : (r.error.issues[0]?.message ?? 'invalid');
}

/** The default a schema field declares (undefined if none): what a request gets when it leaves the field out. */
export function fieldDefault<S extends z.ZodObject>(schema: S, key: keyof S['shape'] & string): unknown {
  const r = (schema.shape[key] as z.ZodType).safeParse(undefined);
  return r.success ? r.data : undefined;
}
