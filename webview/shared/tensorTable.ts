/**
 * The checkpoint inspector's tensor table: rows grouped by module path (the name without its last part, e.g.
 * `model.down.1.res.0.conv1` for `model.down.1.res.0.conv1.weight`), filtered by a substring, sorted by a column.
 * Pure logic, unit-tested.
 */
import type { InspectResult } from '../../sidecar/protocol.ts';

/** A tensor as ddpm/inspect lists it. */
export type TensorRow = InspectResult['tensors'][number];

export const SORT_KEYS = ['name', 'dtype', 'shape', 'params'] as const;
export type SortKey = (typeof SORT_KEYS)[number];
export const isSortKey = (s: string): s is SortKey => (SORT_KEYS as readonly string[]).includes(s);

export interface TableGroup {
  module: string;
  params: number;
  rows: (TensorRow & { params: number; leaf: string })[];
}

export const paramsOf = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

export function moduleOf(name: string): string {
  const i = name.lastIndexOf('.');
  return i < 0 ? '' : name.slice(0, i);
}

export function buildTable(
  rows: readonly TensorRow[],
  filter = '',
  sort: SortKey = 'name',
  descending = false,
): TableGroup[] {
  const f = filter.trim().toLowerCase();
  const kept = rows.filter((r) => !f || r.name.toLowerCase().includes(f) || r.dtype.toLowerCase() === f);
  const cmp = (a: TensorRow, b: TensorRow): number => {
    let d = 0;
    if (sort === 'params') d = paramsOf(a.shape) - paramsOf(b.shape);
    else if (sort === 'dtype') d = a.dtype.localeCompare(b.dtype);
    else if (sort === 'shape')
      d =
        a.shape.length - b.shape.length ||
        a.shape.join('x').localeCompare(b.shape.join('x'), undefined, { numeric: true });
    if (d === 0) d = a.name.localeCompare(b.name, undefined, { numeric: true });
    return descending ? -d : d;
  };
  const groups = new Map<string, TableGroup>();
  for (const r of [...kept].sort(cmp)) {
    const module = moduleOf(r.name);
    let g = groups.get(module);
    if (!g) {
      g = { module, params: 0, rows: [] };
      groups.set(module, g);
    }
    const params = paramsOf(r.shape);
    g.params += params;
    g.rows.push({ ...r, params, leaf: r.name.slice(module.length ? module.length + 1 : 0) });
  }
  const list = [...groups.values()];
  if (sort === 'params') list.sort((a, b) => (descending ? b.params - a.params : a.params - b.params));
  else if (sort === 'name')
    list.sort((a, b) => (descending ? -1 : 1) * a.module.localeCompare(b.module, undefined, { numeric: true }));
  return list;
}

export function formatCount(n: number): string {
  return n.toLocaleString('en-US');
}
