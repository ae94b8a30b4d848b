/**
 * The Fréchet distance between two Gaussians fitted to feature vectors (Heusel et al. 2017, the "FID" when the
 * features are Inception's):
 *   d² = ‖μ1 − μ2‖² + Tr(Σ1 + Σ2 − 2 (Σ1 Σ2)^{1/2}).
 * Everything is float64. Σ1Σ2 is not symmetric, so its square root's trace is taken through a symmetric matrix with
 * the same eigenvalues: Tr((Σ1Σ2)^{1/2}) = Tr((Σ1^{1/2} Σ2 Σ1^{1/2})^{1/2}) = Σ √λ_i of that PSD matrix, with two
 * symmetric eigendecompositions (ml-matrix), the eigenvalues that rounding makes slightly negative taken as 0.
 */
import { EigenvalueDecomposition, Matrix } from 'ml-matrix';

/** A Gaussian fitted to n feature vectors of dimension d: mean [d] and covariance [d·d] (row-major), float64. */
export interface GaussianStats {
  n: number;
  mu: Float64Array;
  sigma: Float64Array;
}

/** Mean and unbiased covariance (divides by n − 1, as numpy.cov) of n rows of d features. */
export function featureStats(features: ArrayLike<number>, n: number, d: number): GaussianStats {
  if (features.length !== n * d) throw new Error(`expected ${n}×${d} features, got ${features.length} values`);
  if (n < 2) throw new Error(`a covariance needs at least 2 samples, got ${n}`);
  const mu = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mu[j] += features[i * d + j];
  for (let j = 0; j < d; j++) mu[j] /= n;
  const sigma = new Float64Array(d * d);
  const row = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) row[j] = features[i * d + j] - mu[j];
    for (let a = 0; a < d; a++) {
      const ra = row[a];
      if (ra === 0) continue;
      for (let b = a; b < d; b++) sigma[a * d + b] += ra * row[b];
    }
  }
  for (let a = 0; a < d; a++)
    for (let b = a; b < d; b++) {
      const v = sigma[a * d + b] / (n - 1);
      sigma[a * d + b] = v;
      sigma[b * d + a] = v;
    }
  return { n, mu, sigma };
}

function toMatrix(sym: Float64Array, d: number): Matrix {
  const m = new Matrix(d, d);
  for (let a = 0; a < d; a++) for (let b = 0; b < d; b++) m.set(a, b, (sym[a * d + b] + sym[b * d + a]) / 2);
  return m;
}

/** The square root of a symmetric positive semi-definite matrix (negative eigenvalues from rounding taken as 0). */
export function sqrtPsd(m: Matrix): Matrix {
  const e = new EigenvalueDecomposition(m, { assumeSymmetric: true });
  const v = e.eigenvectorMatrix;
  const roots = e.realEigenvalues.map((l) => Math.sqrt(Math.max(l, 0)));
  return v.mmul(Matrix.diag(roots)).mmul(v.transpose());
}

/** Tr((Σ1 Σ2)^{1/2}) for symmetric PSD Σ1, Σ2. */
export function traceSqrtProduct(s1: Matrix, s2: Matrix): number {
  const r = sqrtPsd(s1);
  const m = r.mmul(s2).mmul(r);
  const sym = m.add(m.transpose()).div(2);
  const e = new EigenvalueDecomposition(sym, { assumeSymmetric: true });
  return e.realEigenvalues.reduce((a, l) => a + Math.sqrt(Math.max(l, 0)), 0);
}

/** The Fréchet distance d² between N(μ1, Σ1) and N(μ2, Σ2) (≥ 0; tiny negative rounding is clamped to 0). */
export function frechetDistance(
  a: Pick<GaussianStats, 'mu' | 'sigma'>,
  b: Pick<GaussianStats, 'mu' | 'sigma'>,
): number {
  const d = a.mu.length;
  if (b.mu.length !== d) throw new Error(`feature dimensions differ: ${d} and ${b.mu.length}`);
  if (a.sigma.length !== d * d || b.sigma.length !== d * d) throw new Error(`covariances must be ${d}×${d}`);
  let meanTerm = 0;
  for (let j = 0; j < d; j++) meanTerm += (a.mu[j] - b.mu[j]) ** 2;
  let traces = 0;
  for (let j = 0; j < d; j++) traces += a.sigma[j * d + j] + b.sigma[j * d + j];
  const cross = traceSqrtProduct(toMatrix(a.sigma, d), toMatrix(b.sigma, d));
  return Math.max(meanTerm + traces - 2 * cross, 0);
}
