/** The λ values of an interpolation strip: `count` evenly spaced values from 0 to 1 (one value: the midpoint). */
export function lambdaValues(count: number): number[] {
  if (count < 2) return [0.5];
  return Array.from({ length: count }, (_, i) => i / (count - 1));
}
