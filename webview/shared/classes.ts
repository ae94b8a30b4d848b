/**
 * Classes of class-conditional checkpoints, as the extension and the webviews show them: the labels a class choice
 * gives n images (the sidecar's rule), class names, the choice's quick pick label, captions per grid row, the cells of
 * a sample grid and a checkpoint's classes in one line. Pure logic, unit-tested; used by both sides.
 */
import type { InspectResult, SampleParams } from '../../sidecar/protocol.ts';

/** The class choice of a sampling request: a class index, every class in turn ('each'), or none ('any'). */
export type ClassChoice = NonNullable<SampleParams['class']>;

/** The label of an image sampled without a class (the sidecar's NULL_CLASS). */
export const NO_CLASS = -1;

/**
 * The class of each of n images, as the sidecar computes it (sidecar/jobs/sampleCheckpoint.ts classLabels): image i
 * gets class i mod k for 'each', every image the class for a number; no labels for 'any' (the model's unconditional
 * distribution) or for a model without classes (k = 0).
 */
export function sampleLabels(k: number, choice: ClassChoice, n: number): number[] | undefined {
  if (!(k > 0) || choice === 'any') return undefined;
  if (choice === 'each') return Array.from({ length: n }, (_, i) => i % k);
  return new Array<number>(n).fill(choice);
}

/** Class names whose text is not just their index ("Sneaker", not "7"). */
const named = (classes: readonly string[]) => classes.some((c, i) => c !== String(i));

/** A class's short name: its name ("Sneaker", "7"), or its index when the checkpoint names none; '' for none. */
export function className(classes: readonly string[], label: number): string {
  if (label < 0) return '';
  return classes[label] ?? String(label);
}

/** A class with its index, for choosing: "7" for digits, "Sneaker (7)" for named classes. */
export function classWithIndex(classes: readonly string[], label: number): string {
  const name = className(classes, label);
  return name === String(label) ? name : `${name} (${label})`;
}

/** The class choice in words, for captions and summaries. */
export function choiceText(choice: ClassChoice, classes: readonly string[]): string {
  if (choice === 'any') return 'no class (unconditional)';
  if (choice === 'each') return 'each class in turn';
  return `class ${classWithIndex(classes, choice)}`;
}

/** Sample grids are ⌈√n⌉ columns wide, row-major (sidecar/jobs/sampleCheckpoint.ts). */
export const gridColumns = (n: number): number => Math.ceil(Math.sqrt(n));

/** One caption per row of an n-image grid: the class names of its images, left to right ('' for none). */
export function rowCaptions(labels: readonly number[], classes: readonly string[]): string[] {
  const cols = gridColumns(labels.length);
  const rows: string[] = [];
  for (let r = 0; r * cols < labels.length; r++) {
    const names = labels.slice(r * cols, (r + 1) * cols).map((l) => className(classes, l));
    rows.push(names.every((s) => s === '') ? '' : names.join(named(classes) ? ', ' : ' '));
  }
  return rows;
}

/** Where image i of an n-image grid lies, as fractions of the grid's width and height (2-pixel gaps, as drawn). */
export interface CellBox {
  index: number;
  row: number;
  col: number;
  left: number;
  top: number;
  width: number;
  height: number;
}

/** The cells of a grid of n images of `gridWidth`×`gridHeight` pixels (the PNG's size), `pad` pixels apart. */
export function gridCells(n: number, gridWidth: number, gridHeight: number, pad = 2): CellBox[] {
  const cols = gridColumns(n);
  const rows = Math.ceil(n / cols);
  const w = (gridWidth - (cols + 1) * pad) / cols;
  const h = (gridHeight - (rows + 1) * pad) / rows;
  if (!(w > 0 && h > 0)) return [];
  return Array.from({ length: n }, (_, i) => {
    const row = Math.floor(i / cols);
    const col = i % cols;
    return {
      index: i,
      row,
      col,
      left: (pad + col * (w + pad)) / gridWidth,
      top: (pad + row * (h + pad)) / gridHeight,
      width: w / gridWidth,
      height: h / gridHeight,
    };
  });
}

/** A list of names, shortened in the middle past `max`: "0, 1, …, 9". */
function nameList(names: readonly string[], max: number): string {
  return names.length <= max ? names.join(', ') : `${names.slice(0, max - 1).join(', ')}, …, ${names.at(-1)}`;
}

/**
 * A checkpoint's classes in one line: "10 (0, 1, …, 9)" for digits, every name for named classes ("10 (T-shirt/top,
 * Trouser, …)", shortened past `maxNames`); undefined for an unconditional checkpoint.
 */
export function classesText(r: Pick<InspectResult, 'classes' | 'model'>, maxNames = 12): string | undefined {
  const k = r.model?.numClasses ?? r.classes?.length ?? 0;
  if (!(k > 0)) return undefined;
  const classes = r.classes ?? Array.from({ length: k }, (_, i) => String(i));
  return `${k} (${named(classes) ? nameList(classes, maxNames) : nameList(classes, 3)})`;
}

/** The number of classes of a checkpoint (0: unconditional) and its class names (indices when it names none). */
export function checkpointClasses(r: Pick<InspectResult, 'classes' | 'model'> | undefined): {
  k: number;
  classes: string[];
} {
  const k = r?.model?.numClasses ?? 0;
  return { k, classes: k > 0 ? (r?.classes ?? Array.from({ length: k }, (_, i) => String(i))) : [] };
}

/** A checkpoint in a few words, for the checkpoint pick: preset, image size, classes. */
export function checkpointSummary(r: InspectResult): string {
  if (r.format === null) return 'not a DDPM Studio checkpoint';
  const m = r.model;
  const parts = [
    r.preset ? `${r.preset} preset` : 'custom model',
    m ? `${m.imageSize}×${m.imageSize}×${m.channels}` : '',
    classesText(r, 4) ? `classes ${classesText(r, 4)}` : 'unconditional',
    r.step !== undefined ? `step ${r.step.toLocaleString('en-US')}` : '',
  ];
  return parts.filter(Boolean).join(' · ');
}
