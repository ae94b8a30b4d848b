// The editing view's pure logic (webview/edit/mask.ts): painting discs and strokes on the model-sized mask, erase,
// clear, invert, the PNG pixels sent to the sidecar, the pointer-to-cell mapping and the cover crop.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cellAt, coverCrop, PaintMask, toGrey } from '../../webview/edit/mask.ts';

const rows = (m: PaintMask) =>
  Array.from({ length: m.size }, (_, j) => Array.from(m.cells.slice(j * m.size, (j + 1) * m.size)).join(''));

test('a disc sets the cells whose centres lie within the radius; erase clears them; tiny brushes set one cell', () => {
  const m = new PaintMask(7);
  m.disc(3.5, 3.5, 1.5, 1);
  assert.deepEqual(rows(m), ['0000000', '0000000', '0011100', '0011100', '0011100', '0000000', '0000000']);
  m.disc(3.5, 3.5, 0.5, 0);
  assert.equal(m.count(), 8);
  assert.equal(m.cells[3 * 7 + 3], 0);
  const one = new PaintMask(5);
  one.disc(0.2, 4.9, 0.1, 1);
  assert.deepEqual(rows(one), ['00000', '00000', '00000', '00000', '10000']);
  // Off the edge: clipped, no throw.
  one.disc(-3, -3, 2, 1);
  assert.equal(one.count(), 1);
});

test('a stroke leaves no gap however fast the pointer moved; clear, invert and the mask PNG pixels', () => {
  const m = new PaintMask(28);
  m.stroke(0.5, 14, 27.5, 14, 0.5, 1);
  assert.deepEqual(
    Array.from(m.cells.slice(13 * 28, 14 * 28)),
    new Array(28).fill(1),
    'row 13 (the line through y = 14 touches it)',
  );
  const painted = m.count();
  m.invert();
  assert.equal(m.count(), 28 * 28 - painted);
  const rgba = m.maskRgba();
  assert.equal(rgba.length, 28 * 28 * 4);
  // White (255) where regenerated, black where kept, always opaque.
  for (let i = 0; i < m.cells.length; i++) {
    assert.equal(rgba[i * 4], m.cells[i] ? 255 : 0);
    assert.equal(rgba[i * 4 + 3], 255);
  }
  const over = m.overlayRgba([1, 2, 3, 4]);
  assert.deepEqual(Array.from(over.slice(0, 4)), m.cells[0] ? [1, 2, 3, 4] : [0, 0, 0, 0]);
  m.clear();
  assert.equal(m.count(), 0);
  // A mask restored from the view's state: any truthy value is 1, a wrong length is ignored.
  assert.equal(new PaintMask(2, [0, 5, 1, 0]).count(), 2);
  assert.equal(new PaintMask(2, [1, 1]).count(), 0);
});

test('pointer to cell over a scaled canvas; the cover crop of the sidecar; Rec. 601 grey', () => {
  const box = { left: 100, top: 50, width: 308, height: 308 };
  assert.deepEqual(cellAt(28, box, 100, 50), { x: 0, y: 0 });
  assert.deepEqual(cellAt(28, box, 254, 204), { x: 14, y: 14 });
  assert.deepEqual(coverCrop(640, 480), { sx: 80, sy: 0, side: 480 });
  assert.deepEqual(coverCrop(28, 40), { sx: 0, sy: 6, side: 28 });
  const px = new Uint8ClampedArray([255, 0, 0, 255, 0, 255, 0, 255, 10, 10, 10, 7]);
  toGrey(px);
  assert.deepEqual(Array.from(px), [76, 76, 76, 255, 150, 150, 150, 255, 10, 10, 10, 7]);
});
