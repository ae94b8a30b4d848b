// The Fréchet distance (sidecar/quality/frechet.ts) on cases with known answers, computed independently of the
// eigendecompositions it uses: identical Gaussians, diagonal covariances (Σ (√a − √b)²), covariances that share
// eigenvectors, the 2×2 closed form for non-commuting covariances, and the feature statistics against numpy.cov's
// definition.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../sidecar/ddpm/rng.ts';
import { featureStats, frechetDistance, type GaussianStats } from '../../sidecar/quality/frechet.ts';

const close = (a: number, b: number, tol: number, what = '') =>
  assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);

function gaussian(mu: number[], sigma: number[][]): Pick<GaussianStats, 'mu' | 'sigma'> {
  return { mu: Float64Array.from(mu), sigma: Float64Array.from(sigma.flat()) };
}

/** A random d×d symmetric positive definite matrix A Aᵀ + εI. */
function randomSpd(rng: Rng, d: number, eps = 0.1): number[][] {
  const a = Array.from({ length: d }, () => Array.from({ length: d }, () => rng.uniform() * 2 - 1));
  return Array.from({ length: d }, (_, i) =>
    Array.from({ length: d }, (_, j) => a[i].reduce((s, v, k) => s + v * a[j][k], 0) + (i === j ? eps : 0)),
  );
}

/** A random rotation (Gram–Schmidt of a random matrix). */
function randomOrthogonal(rng: Rng, d: number): number[][] {
  const q: number[][] = [];
  while (q.length < d) {
    let v = Array.from({ length: d }, () => rng.uniform() * 2 - 1);
    for (const u of q) {
      const dot = v.reduce((s, x, i) => s + x * u[i], 0);
      v = v.map((x, i) => x - dot * u[i]);
    }
    const norm = Math.hypot(...v);
    if (norm > 1e-3) q.push(v.map((x) => x / norm));
  }
  return q;
}

const matmul = (a: number[][], b: number[][]) =>
  a.map((row) => b[0].map((_, j) => row.reduce((s, v, k) => s + v * b[k][j], 0)));
const transpose = (a: number[][]) => a[0].map((_, j) => a.map((row) => row[j]));
const diag = (v: number[]) => v.map((x, i) => v.map((_, j) => (i === j ? x : 0)));

test('identical Gaussians are at distance 0 (random 64-dimensional covariance)', () => {
  const rng = new Rng(1);
  const s = randomSpd(rng, 64);
  const mu = Array.from({ length: 64 }, () => rng.uniform());
  const d = frechetDistance(gaussian(mu, s), gaussian(mu, s));
  assert.ok(d >= 0 && d < 1e-8, `${d}`);
});

test('diagonal covariances: ‖μ1 − μ2‖² + Σ (√a − √b)²', () => {
  const rng = new Rng(2);
  const n = 32;
  const a = Array.from({ length: n }, () => rng.uniform() * 3 + 0.01);
  const b = Array.from({ length: n }, () => rng.uniform() * 3 + 0.01);
  const m1 = Array.from({ length: n }, () => rng.uniform());
  const m2 = Array.from({ length: n }, () => rng.uniform());
  const expected =
    m1.reduce((s, v, i) => s + (v - m2[i]) ** 2, 0) +
    a.reduce((s, v, i) => s + (Math.sqrt(v) - Math.sqrt(b[i])) ** 2, 0);
  close(frechetDistance(gaussian(m1, diag(a)), gaussian(m2, diag(b))), expected, 1e-10, 'diagonal');
  // One dimension: (μ1 − μ2)² + (σ1 − σ2)².
  close(frechetDistance(gaussian([1], [[4]]), gaussian([-2], [[9]])), 9 + 1, 1e-12, '1-D');
  // Singular covariances (a feature that never varies) are fine: √0 = 0.
  close(frechetDistance(gaussian([0, 0], diag([0, 4])), gaussian([0, 0], diag([1, 0]))), 1 + 4, 1e-10, 'singular');
});

test('covariances with the same eigenvectors: the diagonal answer, whatever the rotation', () => {
  const rng = new Rng(3);
  const n = 16;
  const q = randomOrthogonal(rng, n);
  const a = Array.from({ length: n }, () => rng.uniform() * 2 + 0.05);
  const b = Array.from({ length: n }, () => rng.uniform() * 2 + 0.05);
  const rot = (l: number[]) => matmul(matmul(transpose(q), diag(l)), q);
  const zero = new Array<number>(n).fill(0);
  const expected = a.reduce((s, v, i) => s + (Math.sqrt(v) - Math.sqrt(b[i])) ** 2, 0);
  close(frechetDistance(gaussian(zero, rot(a)), gaussian(zero, rot(b))), expected, 1e-9, 'rotated');
});

test('2×2 covariances that do not commute: Tr((Σ1Σ2)^½) = √(Tr Σ1Σ2 + 2√(det Σ1 det Σ2))', () => {
  const rng = new Rng(4);
  for (let k = 0; k < 20; k++) {
    const s1 = randomSpd(rng, 2, 0.01);
    const s2 = randomSpd(rng, 2, 0.01);
    const det = (m: number[][]) => m[0][0] * m[1][1] - m[0][1] * m[1][0];
    const p = matmul(s1, s2);
    const trSqrt = Math.sqrt(p[0][0] + p[1][1] + 2 * Math.sqrt(det(s1) * det(s2)));
    const expected = s1[0][0] + s1[1][1] + s2[0][0] + s2[1][1] - 2 * trSqrt + (0.3 - -0.2) ** 2;
    close(frechetDistance(gaussian([0.3, 1], s1), gaussian([-0.2, 1], s2)), expected, 1e-10, `case ${k}`);
  }
});

test('the distance is symmetric and grows with a shift of the mean by exactly ‖δ‖²', () => {
  const rng = new Rng(5);
  const a = gaussian(
    Array.from({ length: 8 }, () => rng.uniform()),
    randomSpd(rng, 8),
  );
  const b = gaussian(
    Array.from({ length: 8 }, () => rng.uniform()),
    randomSpd(rng, 8),
  );
  close(frechetDistance(a, b), frechetDistance(b, a), 1e-9, 'symmetry');
  const shifted = { mu: a.mu.map((v) => v + 0.5), sigma: a.sigma };
  close(frechetDistance(a, shifted), 8 * 0.25, 1e-9, 'shift');
});

test('featureStats: the mean and the unbiased covariance (numpy.cov) of the rows', () => {
  // Three samples of two features: x = [1, 2, 3], y = [2, 4, 9].
  const s = featureStats(Float32Array.from([1, 2, 2, 4, 3, 9]), 3, 2);
  assert.equal(s.n, 3);
  assert.deepEqual([...s.mu], [2, 5]);
  // var x = 1, var y = ((−3)² + (−1)² + 4²)/2 = 13, cov = ((−1)(−3) + 0 + 1·4)/2 = 3.5.
  assert.deepEqual([...s.sigma], [1, 3.5, 3.5, 13]);
  assert.throws(() => featureStats(new Float32Array(2), 1, 2), /at least 2 samples/);
  assert.throws(() => featureStats(new Float32Array(5), 3, 2), /expected 3×2/);
});

test('samples of one Gaussian: the distance between two large samples is small, and shrinks with N', () => {
  const rng = new Rng(6);
  const d = 4;
  const normal = () => Math.sqrt(-2 * Math.log(1 - rng.uniform())) * Math.cos(2 * Math.PI * rng.uniform());
  const draw = (n: number, shift = 0) => {
    const x = new Float64Array(n * d);
    for (let i = 0; i < x.length; i++) x[i] = normal() + shift;
    return featureStats(x, n, d);
  };
  const small = frechetDistance(draw(200), draw(200));
  const large = frechetDistance(draw(20000), draw(20000));
  assert.ok(large < small, `${large} ≥ ${small}`);
  assert.ok(large < 0.01, `${large}`);
  // Shifting every feature by 1 adds ‖δ‖² = 4.
  close(frechetDistance(draw(20000), draw(20000, 1)), 4, 0.05, 'shifted sample');
});
