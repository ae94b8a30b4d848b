// The Trajectory view's seed: shown with the run, editable, and what "Sample again" uses. The same seed gives the same
// images (sampling is a function of the checkpoint, the settings and the seed), so the button says which it will be.

/** Seeds are 32-bit unsigned integers (the protocol's bounds). */
export const MAX_SEED = 2 ** 32 - 1;

/** The seed typed in the field, or null when it is not a whole number in 0 … 2³² − 1. */
export function parseSeed(text: string): number | null {
  const t = text.trim();
  if (!/^\d+$/.test(t)) return null;
  const n = Number(t);
  return n <= MAX_SEED ? n : null;
}

/** A new seed (from `random` in [0, 1)), never the current one. */
export function newSeed(current: number | null, random: () => number = Math.random): number {
  let s = Math.floor(random() * 100000);
  if (s === current) s = (s + 1) % 100000;
  return s;
}

/** The button's words: the same seed (same images) or the one typed (other images). */
export function againLabel(typed: number | null, last: number | undefined): string {
  if (typed === null) return 'Sample again';
  return typed === last ? `Sample again (same seed ${typed})` : `Sample again (seed ${typed})`;
}
