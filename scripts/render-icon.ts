/**
 * The extension's icon: a 12×12 grid of pixels that goes from Gaussian noise (bottom left) to a clean ring (top
 * right), the forward process read backwards, as DDPM samples. Written as media/icon.svg and rendered to
 * media/icon.png (256×256, what the Marketplace and the Extensions view show) with sharp. Deterministic: the noise
 * comes from a fixed-seed generator, so re-running it changes nothing.
 *
 *   npm run icon
 */
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';

const root = path.resolve(__dirname, '..');
const N = 12;
const CELL = 16;
const PAD = 16;
const SIZE = N * CELL + 2 * PAD; // 224

/** mulberry32: a small seeded generator, enough for a picture. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function iconSvg(): string {
  const random = rng(2020);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  const cells: string[] = [];
  for (let y = 0; y < N; y++)
    for (let x = 0; x < N; x++) {
      // The clean image x0: a ring, in [-1, 1].
      const r = Math.hypot(x + 0.5 - N / 2, y + 0.5 - N / 2) / (N / 2);
      const x0 = Math.abs(r - 0.6) < 0.2 ? 1 : -0.9;
      // ᾱ from 0 (bottom left, pure noise) to 1 (top right, the image): x_t = √ᾱ x0 + √(1 − ᾱ) ε (eq. 4; ε scaled by 0.8 so that the ring shows).
      const d = (x + (N - 1 - y)) / (2 * (N - 1));
      const s = Math.min(1, Math.max(0, (d - 0.2) / 0.55));
      const abar = s * s * (3 - 2 * s);
      const v = Math.sqrt(abar) * x0 + Math.sqrt(1 - abar) * 0.8 * gauss();
      const level = Math.round(((Math.max(-1, Math.min(1, v)) + 1) / 2) * 255);
      const g = level.toString(16).padStart(2, '0');
      cells.push(
        `<rect x="${PAD + x * CELL}" y="${PAD + y * CELL}" width="${CELL}" height="${CELL}" fill="#${g}${g}${g}"/>`,
      );
    }
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${SIZE}" height="${SIZE}" viewBox="0 0 ${SIZE} ${SIZE}">`,
    '<defs><linearGradient id="bg" x1="0" y1="1" x2="1" y2="0">',
    '<stop offset="0" stop-color="#1e1b4b"/><stop offset="1" stop-color="#4338ca"/></linearGradient>',
    `<clipPath id="round"><rect x="${PAD}" y="${PAD}" width="${N * CELL}" height="${N * CELL}" rx="18"/></clipPath></defs>`,
    `<rect width="${SIZE}" height="${SIZE}" rx="40" fill="url(#bg)"/>`,
    `<g clip-path="url(#round)" shape-rendering="crispEdges">`,
    ...cells,
    '</g>',
    '</svg>',
    '',
  ].join('\n');
}

if (require.main === module) {
  const svg = iconSvg();
  fs.mkdirSync(path.join(root, 'media'), { recursive: true });
  fs.writeFileSync(path.join(root, 'media', 'icon.svg'), svg);
  void sharp(Buffer.from(svg), { density: (72 * 256) / SIZE })
    .resize(256, 256)
    .png({ compressionLevel: 9 })
    .toFile(path.join(root, 'media', 'icon.png'))
    .then((info) => console.log(`media/icon.png ${info.width}×${info.height}, ${info.size} bytes`));
}
