/**
 * Every bound on what a file or a request may ask of the sidecar, in one place. A checkpoint is something users
 * download and open, a dataset something they point at, and a request can come from any client: each value that
 * sizes an allocation or a loop (T, image size, channels, levels, n, frames, steps, header size, tensor count,
 * history length, decompressed bytes, message size) is checked against these when a file is opened or a request
 * arrives, and the message names the value and the limit (`limitError`).
 *
 * The bounds are far above anything the presets or the paper use (T = 1000, 32×32 images, 4 levels) and far below
 * what would exhaust a machine: a hostile file gets a clear error, never gigabytes of allocation or a run for ever.
 * Imported by protocol.ts (request schemas), so the extension and the webviews see the same numbers.
 */

export const LIMITS = {
  /** Diffusion steps T of a schedule (the paper: 1000; improved DDPM: 4000). */
  T: 10_000,
  /** A model's image side, in pixels. */
  imageSize: 1024,
  /** Base channel count `ch` of the U-Net. */
  ch: 2048,
  /** Each entry of `chMult` (a level's channel multiplier). */
  chMult: 64,
  /** U-Net levels (`chMult.length`): 2^(levels−1) must divide the image size. */
  levels: 10,
  /** Residual blocks per level. */
  numResBlocks: 32,
  /** GroupNorm groups. */
  groups: 1024,
  /** Classes of a conditional model. */
  numClasses: 10_000,
  /** Images per sampling request. */
  n: 1024,
  /** Trajectory frames per sampling request. */
  frames: 1000,
  /** DDIM steps of a sampling or interpolation request. */
  steps: 1000,
  /** Bytes of trajectory frames kept in memory for strips (n × frames × image × 2 × 4 bytes). */
  keptFrameBytes: 1024 ** 3,
  /** Bytes of a safetensors header (JSON). */
  headerBytes: 100 * 1024 * 1024,
  /** Tensors in one safetensors file (a DDPM Studio checkpoint has a few hundred; a large LLM shard a few thousand). */
  tensors: 20_000,
  /** Entries of a zip archive (a PyTorch .bin holds one per storage, plus four). */
  archiveEntries: 100_000,
  /** Nesting (open MARKs) of a pickle; a state_dict nests a few deep. Its length is bounded by headerBytes. */
  pickleDepth: 1000,
  /** Values on a pickle's stack, and in its memo (a state_dict's memo holds ~10 per tensor). */
  pickleValues: 10_000_000,
  /** Dimensions of one tensor. */
  rank: 8,
  /** Points of a checkpoint's loss history (files we write keep 1000). */
  historyPoints: 100_000,
  /** Bytes of a decompressed dataset file (a .gz IDX file): MNIST's training images are 47 MB. */
  inflatedBytes: 2 * 1024 ** 3,
  /** Bytes of one image file to interpolate (sharp's own limit on pixels applies after). */
  imageFileBytes: 256 * 1024 * 1024,
  /** Characters of a path or other string parameter of a request. */
  stringChars: 4096,
  /** Bytes of one JSON-RPC message on the stdio transport. */
  messageBytes: 256 * 1024 * 1024,
} as const;

export type LimitName = keyof typeof LIMITS;

/** A value outside a limit: says which value, what it is and what the limit is. */
export class LimitError extends Error {
  override name = 'LimitError';
  constructor(
    readonly what: string,
    readonly value: number,
    readonly limit: number,
  ) {
    super(`${what} is ${value.toLocaleString('en-US')}, over the limit of ${limit.toLocaleString('en-US')}`);
  }
}

/** Throws a LimitError when `value` exceeds LIMITS[name]; `what` names the value for the message. */
export function checkLimit(name: LimitName, value: number, what: string = name): void {
  if (value > LIMITS[name]) throw new LimitError(what, value, LIMITS[name]);
}
