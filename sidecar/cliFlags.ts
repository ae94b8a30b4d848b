/**
 * Command-line flags mapped onto a request schema (protocol.ts): each schema field is a flag (`saveEvery` →
 * `--save-every`, or a name the command gives it), booleans also have `--no-…`, and the values are converted by the
 * field's type before the schema validates them, so that the CLI accepts, bounds and defaults exactly what the
 * sidecar does and says so in the same words. node:util parseArgs does the tokenising.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { z } from 'zod';
import { kebab, ParamsError, parseParams } from './validation.ts';

/** Bad command-line usage: exit status 2 and the usage text. */
export class UsageError extends Error {
  override name = 'UsageError';
}

type FieldKind = 'boolean' | 'number' | 'numbers' | 'union' | 'string';

/** The type under optional/default wrappers. */
function base(field: z.ZodType): z.ZodType {
  let f = field;
  while (f instanceof z.ZodOptional || f instanceof z.ZodDefault || f instanceof z.ZodNullable)
    f = f.unwrap() as z.ZodType;
  return f;
}

function kindOf(field: z.ZodType): FieldKind {
  const b = base(field);
  if (b instanceof z.ZodBoolean) return 'boolean';
  if (b instanceof z.ZodNumber) return 'number';
  if (b instanceof z.ZodArray) return 'numbers';
  if (b instanceof z.ZodUnion) return 'union';
  return 'string';
}

/** The words and numbers a union takes, for the usage: auto|N. */
function unionPlaceholder(b: z.ZodType): string {
  const options = (b as z.ZodUnion<readonly z.ZodType[]>).options.map((o) => base(o as z.ZodType));
  return options.map((o) => (o instanceof z.ZodLiteral ? String(o.value) : 'N')).join('|');
}

/** A number if the text is one (else the text, so that the error quotes what was typed). */
function toNumber(raw: string): number | string {
  const n = Number(raw);
  return raw.trim() !== '' && Number.isFinite(n) ? n : raw;
}

function convert(kind: FieldKind, raw: string): unknown {
  if (kind === 'number') return toNumber(raw);
  if (kind === 'numbers') return raw.split(',').map(toNumber);
  // A choice of words or a number (workers: auto or N; class: each, any or N).
  if (kind === 'union') return toNumber(raw);
  return raw;
}

export interface CommandSpec<S extends z.ZodObject> {
  schema: S;
  /** Flag names that differ from the kebab-case of the field (`checkpoint: 'ckpt'`). */
  rename?: Partial<Record<keyof S['shape'] & string, string>>;
  /** Fields the CLI does not offer (e.g. the sidecar's progress token). */
  omit?: (keyof S['shape'] & string)[];
  /** The field that a first positional argument sets (`ddpm inspect FILE`). */
  positional?: keyof S['shape'] & string;
  /** What the usage shows for a field's value where its name says too little (`out: 'RUN_DIR'`). */
  placeholder?: Partial<Record<keyof S['shape'] & string, string>>;
  /** Options of the CLI only (output files, --json), with their parseArgs types and defaults. */
  extra?: Record<string, { type: 'string' | 'boolean'; default?: string | boolean; value?: string }>;
}

function fieldFlags<S extends z.ZodObject>(
  spec: CommandSpec<S>,
): { key: string; flag: string; kind: FieldKind; field: z.ZodType }[] {
  return Object.entries(spec.schema.shape)
    .filter(([key]) => !spec.omit?.includes(key as never))
    .map(([key, field]) => ({
      key,
      flag: (spec.rename as Record<string, string> | undefined)?.[key] ?? kebab(key),
      kind: kindOf(field as z.ZodType),
      field: field as z.ZodType,
    }));
}

/** Edit distance between two short words: insertions, deletions, substitutions and swaps of neighbours. */
function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++) {
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  return d[a.length][b.length];
}

/**
 * ", did you mean '--steps'?" for a misspelled name: the closest of `names` within a third of its length (at least
 * 1, at most 3 edits), or one that starts with what was typed; '' when none is close.
 */
export function suggestion(typed: string, names: readonly string[], prefix: string): string {
  const limit = Math.min(3, Math.max(1, Math.floor(typed.length / 3)));
  let best: string | undefined;
  let bestD = Infinity;
  for (const n of names) {
    const d = n.startsWith(typed) && typed.length >= 2 ? 0.5 : distance(typed, n);
    if (d < bestD) [best, bestD] = [n, d];
  }
  return best !== undefined && bestD <= limit ? `, did you mean '${prefix}${best}'?` : '';
}

/** Parses `argv` (after the command name) into the schema's output and the extra options. */
export function parseCommand<S extends z.ZodObject>(
  spec: CommandSpec<S>,
  argv: string[],
): { params: z.output<S>; extra: Record<string, string | boolean | undefined> } {
  const fields = fieldFlags(spec);
  const options: ParseArgsConfig['options'] = {};
  for (const f of fields) {
    options[f.flag] = { type: f.kind === 'boolean' ? 'boolean' : 'string' };
    if (f.kind === 'boolean') options[`no-${f.flag}`] = { type: 'boolean' };
  }
  for (const [name, o] of Object.entries(spec.extra ?? {}))
    options[name] = { type: o.type, ...(o.default !== undefined ? { default: o.default } : {}) };
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (e) {
    // parseArgs' messages name the option and say what is wrong; they end with advice about '--' we don't need.
    const m = (e as Error).message.replace(/\. To specify a positional argument.*$/s, '');
    const unknown = /^Unknown option '--([^']+)'/.exec(m)?.[1];
    const hint = unknown ? suggestion(unknown, Object.keys(options), '--') : '';
    throw new UsageError(m[0].toLowerCase() + m.slice(1) + hint);
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  const positionals = parsed.positionals;
  if (positionals.length > (spec.positional ? 1 : 0))
    throw new UsageError(`unexpected argument '${positionals.at(-1)}'`);
  const raw: Record<string, unknown> = {};
  for (const f of fields) {
    const v = values[f.flag];
    if (f.kind === 'boolean') {
      if (values[`no-${f.flag}`]) raw[f.key] = false;
      else if (v) raw[f.key] = true;
    } else if (typeof v === 'string') raw[f.key] = convert(f.kind, v);
  }
  if (spec.positional && positionals[0] !== undefined && raw[spec.positional] === undefined)
    raw[spec.positional] = positionals[0];
  const flagOf = new Map(fields.map((f) => [f.key, f.flag]));
  try {
    const params = parseParams(
      spec.schema,
      raw,
      (p) =>
        `--${flagOf.get(String(p[0])) ?? kebab(String(p[0]))}${p.length > 1 ? ` item ${p.slice(1).map(String).join('.')}` : ''}`,
    );
    const extra: Record<string, string | boolean | undefined> = {};
    for (const name of Object.keys(spec.extra ?? {})) extra[name] = values[name];
    return { params, extra };
  } catch (e) {
    throw e instanceof ParamsError ? new UsageError(e.message) : e;
  }
}

/** One usage line's options, from the schema: required flags, then [--flag default], [--flag|--no-flag]. */
export function usageOf<S extends z.ZodObject>(spec: CommandSpec<S>): string {
  const parts: string[] = [];
  for (const f of fieldFlags(spec)) {
    const b = base(f.field);
    const fallback = f.field.safeParse(undefined);
    const required = !fallback.success;
    const placeholder =
      (spec.placeholder as Record<string, string> | undefined)?.[f.key] ??
      (b instanceof z.ZodEnum
        ? (b.options as string[]).join('|')
        : f.kind === 'union'
          ? unionPlaceholder(b)
          : f.kind === 'number'
            ? 'N'
            : f.kind === 'numbers'
              ? 'X,Y,…'
              : kebab(f.key).toUpperCase().replace(/-/g, '_'));
    if (f.key === spec.positional) parts.push(required ? placeholder : `[${placeholder}]`);
    else if (f.kind === 'boolean') parts.push(`[--${f.flag}|--no-${f.flag}]`);
    else if (required) parts.push(`--${f.flag} ${placeholder}`);
    else {
      const d = fallback.success ? fallback.data : undefined;
      // Choices with the default first; other fields show their default value.
      const shown =
        b instanceof z.ZodEnum
          ? [d, ...(b.options as string[]).filter((o) => o !== d)].filter((o) => o !== undefined).join('|')
          : d === undefined
            ? placeholder
            : Array.isArray(d)
              ? d.join(',')
              : String(d);
      parts.push(`[--${f.flag} ${shown}]`);
    }
  }
  for (const [name, o] of Object.entries(spec.extra ?? {}))
    parts.push(
      o.type === 'boolean'
        ? `[--${name}]`
        : `[--${name} ${o.value ?? (o.default !== undefined ? String(o.default) : name.toUpperCase())}]`,
    );
  return parts.join(' ');
}
