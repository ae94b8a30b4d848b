/**
 * The inpainting mask the user paints, at the model's resolution (one cell per model pixel, so what is painted is
 * exactly what the sidecar regenerates): 1 = regenerate (white in the mask PNG), 0 = keep. Pure logic, no DOM.
 */
export class PaintMask {
  readonly cells: Uint8Array;

  constructor(
    readonly size: number,
    cells?: ArrayLike<number>,
  ) {
    this.cells = new Uint8Array(size * size);
    if (cells && cells.length === this.cells.length) this.cells.set(Array.from(cells, (v) => (v ? 1 : 0)));
  }

  /**
   * Sets (paint) or clears (erase) every cell whose centre lies within `radius` cells of (x, y), in cell units, and
   * always the cell under (x, y) itself, so that the smallest brush paints what the pointer is on.
   */
  disc(x: number, y: number, radius: number, value: 0 | 1): void {
    const [ci, cj] = [Math.floor(x), Math.floor(y)];
    if (ci >= 0 && ci < this.size && cj >= 0 && cj < this.size) this.cells[cj * this.size + ci] = value;
    const r = Math.max(radius, 0.5);
    const [x0, x1] = [Math.max(0, Math.floor(x - r)), Math.min(this.size - 1, Math.ceil(x + r))];
    const [y0, y1] = [Math.max(0, Math.floor(y - r)), Math.min(this.size - 1, Math.ceil(y + r))];
    for (let j = y0; j <= y1; j++)
      for (let i = x0; i <= x1; i++)
        if (Math.hypot(i + 0.5 - x, j + 0.5 - y) <= r) this.cells[j * this.size + i] = value;
  }

  /** A stroke from (ax, ay) to (bx, by): discs every half cell along it, so that a fast mouse leaves no gaps. */
  stroke(ax: number, ay: number, bx: number, by: number, radius: number, value: 0 | 1): void {
    const steps = Math.max(1, Math.ceil(Math.hypot(bx - ax, by - ay) * 2));
    for (let k = 0; k <= steps; k++)
      this.disc(ax + ((bx - ax) * k) / steps, ay + ((by - ay) * k) / steps, radius, value);
  }

  clear(): void {
    this.cells.fill(0);
  }

  invert(): void {
    for (let i = 0; i < this.cells.length; i++) this.cells[i] ^= 1;
  }

  /** Cells to regenerate. */
  count(): number {
    let n = 0;
    for (const v of this.cells) n += v;
    return n;
  }

  /** RGBA pixels of the mask image: white to regenerate, black to keep, opaque (what the sidecar reads). */
  maskRgba(): Uint8ClampedArray<ArrayBuffer> {
    const out = new Uint8ClampedArray(this.cells.length * 4);
    for (let i = 0; i < this.cells.length; i++) {
      const v = this.cells[i] ? 255 : 0;
      out.set([v, v, v, 255], i * 4);
    }
    return out;
  }

  /** RGBA pixels of the overlay shown over the image: `color` where the mask regenerates, transparent elsewhere. */
  overlayRgba(color: readonly [number, number, number, number]): Uint8ClampedArray<ArrayBuffer> {
    const out = new Uint8ClampedArray(this.cells.length * 4);
    for (let i = 0; i < this.cells.length; i++) if (this.cells[i]) out.set(color, i * 4);
    return out;
  }
}

/** The cell under a pointer at (clientX, clientY) over an element's box of the mask's size (fractional, for discs). */
export function cellAt(
  size: number,
  box: { left: number; top: number; width: number; height: number },
  clientX: number,
  clientY: number,
): { x: number; y: number } {
  return { x: ((clientX - box.left) / box.width) * size, y: ((clientY - box.top) / box.height) * size };
}

/**
 * The square the model sees of a width×height image: resized to cover and centre-cropped, as the sidecar's loader does
 * (sidecar/image/png.ts). Returns the source rectangle to draw into the size×size canvas.
 */
export function coverCrop(width: number, height: number): { sx: number; sy: number; side: number } {
  const side = Math.min(width, height);
  return { sx: (width - side) / 2, sy: (height - side) / 2, side };
}

/** Rec. 601 luma, as libvips' grey-scale conversion: the model of one channel sees this. */
export function toGrey(rgba: Uint8ClampedArray): void {
  for (let i = 0; i < rgba.length; i += 4) {
    const y = Math.round(0.299 * rgba[i] + 0.587 * rgba[i + 1] + 0.114 * rgba[i + 2]);
    rgba[i] = rgba[i + 1] = rgba[i + 2] = y;
  }
}
