/** Validation of request params: every problem becomes InvalidParams with a message that names the field. */
import { ResponseError } from 'vscode-jsonrpc';
import { ErrorCodes } from './protocol.ts';

export function invalid(message: string): ResponseError<void> {
  return new ResponseError(ErrorCodes.InvalidParams, message);
}

export type Obj = Record<string, unknown>;

export function object(params: unknown, method: string): Obj {
  if (params === null || params === undefined) return {};
  if (typeof params !== 'object' || Array.isArray(params)) throw invalid(`${method}: params must be an object`);
  return params as Obj;
}

export function str(p: Obj, name: string, fallback?: string): string {
  const v = p[name];
  if (v === undefined || v === null) {
    if (fallback !== undefined) return fallback;
    throw invalid(`missing field '${name}'`);
  }
  if (typeof v !== 'string' || v.length === 0) throw invalid(`field '${name}' must be a non-empty string`);
  return v;
}

export function int(p: Obj, name: string, fallback: number | undefined, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const v = p[name];
  if (v === undefined || v === null) {
    if (fallback !== undefined) return fallback;
    throw invalid(`missing field '${name}'`);
  }
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw invalid(`field '${name}' must be an integer in ${min}..${max}, got ${JSON.stringify(v)}`);
  return v;
}

export function num(p: Obj, name: string, fallback: number | undefined, min = -Infinity, max = Infinity): number {
  const v = p[name];
  if (v === undefined || v === null) {
    if (fallback !== undefined) return fallback;
    throw invalid(`missing field '${name}'`);
  }
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) throw invalid(`field '${name}' must be a number in [${min}, ${max}], got ${JSON.stringify(v)}`);
  return v;
}

export function bool(p: Obj, name: string, fallback: boolean): boolean {
  const v = p[name];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'boolean') throw invalid(`field '${name}' must be true or false, got ${JSON.stringify(v)}`);
  return v;
}

export function oneOf<T extends string>(p: Obj, name: string, choices: readonly T[], fallback: T): T {
  const v = p[name] ?? fallback;
  if (typeof v !== 'string' || !(choices as readonly string[]).includes(v)) throw invalid(`field '${name}' must be one of ${choices.join(', ')}, got ${JSON.stringify(v)}`);
  return v as T;
}

export function optional<T>(p: Obj, name: string, read: () => T): T | undefined {
  return p[name] === undefined || p[name] === null ? undefined : read();
}
