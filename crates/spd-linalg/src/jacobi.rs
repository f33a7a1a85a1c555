//! Symmetric eigendecomposition of up to [`LANES`] matrices of one size at once by the cyclic
//! two-sided Jacobi method (Golub & Van Loan, *Matrix Computations*, §8.5), with the matrices
//! interleaved entry by entry so that lane `l` of every vector operation belongs to matrix `l`.
//!
//! Each sweep visits every pair `(p, q)` in a round-robin order: `n − 1` rounds (`n` for odd
//! `n`) of disjoint pairs, whose rotations commute, so a round's angles are all computed before
//! any is applied. The rotation of a pair zeroes `a_pq` (Rutishauser's formulas):
//! `θ = (a_qq − a_pp) / 2a_pq`, `t = sign(θ) / (|θ| + √(θ² + 1))`, `c = 1/√(t² + 1)`, `s = t c`,
//! `A ← Jᵀ A J`, `V ← V J`. A lane rotates a pair only while
//! `a_pq² > max(ε² |a_pp a_qq|, (ε ‖A‖_F / n)²)` (relative, then absolute, smallness); a lane
//! that does not rotate keeps its values exactly (the rotated values are blended away), and the
//! group stops after a sweep in which no lane rotated. A lane's arithmetic therefore never
//! depends on the other lanes: the same matrix gives the same bits in any lane, in any group,
//! alone or padded, on any thread count. Inputs are scaled per lane by a power of two (exact) so
//! that the squares above cannot overflow.
//!
//! The sweeps are compiled three times (AVX-512, AVX2, baseline) and the reconstruction twice
//! (AVX-512, baseline), picked at run time. The arithmetic is the same IEEE operations in the
//! same order in each (no FMA; Rust never contracts), so the encodings give the same bits;
//! what differs is how many lanes one instruction covers.

use faer::MatRef;

use crate::counter::count_evd;
use crate::error::{LinalgError, Result, check_sizes};

pub use crate::lanes::LANES;
use crate::lanes::{Entry, Lane};
use crate::validate::check_finite;

/// Sweeps allowed before a lane reports [`LinalgError::NoConvergence`] (quadratic convergence
/// takes 5–10 at the sizes of SPD networks).
const MAX_SWEEPS: usize = 60;

/// Per-lane selector: all ones where a lane rotates, zero where it keeps its values.
type Mask = [u64; LANES];

/// The rotation of one pair in one round, per lane.
#[derive(Clone, Copy)]
struct Rotation {
    p: usize,
    q: usize,
    c: Lane,
    s: Lane,
    t: Lane,
    active: Mask,
}

/// Scratch for groups of `n × n` decompositions; reused across calls.
pub struct JacobiBatch {
    n: usize,
    /// `A`, entry `(i, j)` at `j n + i`, one lane per matrix.
    a: Vec<Entry>,
    /// `V`, same layout.
    v: Vec<Entry>,
    /// Round-robin schedule: rounds of disjoint pairs `p < q`.
    rounds: Vec<Vec<(usize, usize)>>,
    rotations: Vec<Rotation>,
    scale: Lane,
    floor2: Lane,
    order: Vec<usize>,
    /// Matrices of the last successful decomposition (0 after a failure).
    last_count: usize,
    /// The last group's eigenvectors in ascending order of their eigenvalues, interleaved.
    u: Vec<Entry>,
    /// `U diag(f)` for [`JacobiBatch::reconstruct_into`], interleaved.
    w: Vec<Entry>,
    work: JacobiWork,
}

/// What the last group cost: sweeps run and rotations applied, for benchmarks that relate the
/// time to the arithmetic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JacobiWork {
    /// Sweeps run; the last rotated nothing unless a lane hit the sweep limit.
    pub sweeps: usize,
    /// Pairs rotated in at least one lane (each costs the group one rotation).
    pub rotations: usize,
    /// Rotations summed over the lanes that performed them.
    pub lane_rotations: usize,
}

impl JacobiBatch {
    /// Scratch for `n × n` matrices.
    pub fn new(n: usize) -> Self {
        let rounds = round_robin(n);
        let most = rounds.iter().map(Vec::len).max().unwrap_or(0);
        Self {
            n,
            a: vec![Entry([0.0; LANES]); n * n],
            v: vec![Entry([0.0; LANES]); n * n],
            rounds,
            rotations: Vec::with_capacity(most),
            scale: [1.0; LANES],
            floor2: [0.0; LANES],
            order: Vec::with_capacity(n),
            last_count: 0,
            u: vec![Entry([0.0; LANES]); n * n],
            w: vec![Entry([0.0; LANES]); n * n],
            work: JacobiWork::default(),
        }
    }

    /// Matrix size this scratch serves.
    pub fn dim(&self) -> usize {
        self.n
    }

    /// The work of the last [`JacobiBatch::decompose_group`].
    pub fn last_work(&self) -> JacobiWork {
        self.work
    }

    /// Decomposes the `count = inputs.len() / n² ≤ LANES` matrices stored contiguously in
    /// `inputs` (column-major, lower triangles read): ascending eigenvalues into `values`
    /// (`count · n`) and orthonormal eigenvectors into `vectors` (`count · n²`, column-major).
    /// Each matrix is counted as one EVD. A non-finite matrix, or one that does not converge,
    /// is `InBatch { index: its position here, .. }` (the first such).
    pub fn decompose_group(
        &mut self,
        inputs: &[f64],
        values: &mut [f64],
        vectors: &mut [f64],
    ) -> Result<()> {
        let n = self.n;
        let nn = n * n;
        let count = inputs.len().checked_div(nn).unwrap_or(0);
        check_sizes(&[
            ("Jacobi group (a multiple of n²)", count * nn, inputs.len()),
            ("Jacobi group (matrices)", count.min(LANES), count),
            ("Jacobi group (eigenvalues)", count * n, values.len()),
            ("Jacobi group (eigenvectors)", count * nn, vectors.len()),
        ])?;
        self.last_count = 0;
        if count == 0 {
            return Ok(());
        }
        for (l, m) in inputs.chunks_exact(nn).enumerate() {
            check_finite(MatRef::from_column_major_slice(m, n, n)).map_err(|e| e.in_batch(l))?;
        }
        for _ in 0..count {
            count_evd(n);
        }
        self.load(inputs, count);
        let converged = self.sweep_until_still();
        for (l, ok) in converged.iter().enumerate().take(count) {
            if !ok {
                return Err(LinalgError::NoConvergence.in_batch(l));
            }
        }
        self.store(count, values, vectors);
        self.last_count = count;
        Ok(())
    }

    /// Interleaves the lower triangles of `count` matrices (mirrored), pads the other lanes
    /// with the identity, scales each lane by a power of two and sets `V = I`.
    fn load(&mut self, inputs: &[f64], count: usize) {
        let n = self.n;
        let nn = n * n;
        self.a.fill(Entry([0.0; LANES]));
        self.v.fill(Entry([0.0; LANES]));
        for i in 0..n {
            self.v[i * n + i] = Entry([1.0; LANES]);
        }
        for l in 0..LANES {
            if l >= count {
                for i in 0..n {
                    self.a[i * n + i].0[l] = 1.0;
                }
                self.scale[l] = 1.0;
                self.floor2[l] = 0.0;
                continue;
            }
            let m = &inputs[l * nn..(l + 1) * nn];
            let biggest = (0..n)
                .flat_map(|j| (j..n).map(move |i| m[j * n + i].abs()))
                .fold(0.0f64, f64::max);
            let scale = power_of_two_below(biggest);
            let mut frob2 = 0.0;
            for j in 0..n {
                for i in j..n {
                    let x = m[j * n + i] / scale;
                    self.a[j * n + i].0[l] = x;
                    self.a[i * n + j].0[l] = x;
                    frob2 += if i == j { x * x } else { 2.0 * x * x };
                }
            }
            self.scale[l] = scale;
            self.floor2[l] = f64::EPSILON * f64::EPSILON * frob2 / (n * n) as f64;
        }
    }

    /// Runs sweeps until one rotates nothing in any lane; returns which lanes converged.
    fn sweep_until_still(&mut self) -> [bool; LANES] {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU supports AVX-512F, checked just above.
                return unsafe { self.sweeps_avx512() };
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports AVX2, checked just above.
                return unsafe { self.sweeps_avx2() };
            }
        }
        self.sweeps_here()
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn sweeps_avx512(&mut self) -> [bool; LANES] {
        self.sweeps_here()
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn sweeps_avx2(&mut self) -> [bool; LANES] {
        self.sweeps_here()
    }

    #[inline(always)]
    fn sweeps_here(&mut self) -> [bool; LANES] {
        self.work = JacobiWork::default();
        let mut rotated = [u64::MAX; LANES];
        for _ in 0..MAX_SWEEPS {
            self.work.sweeps += 1;
            rotated = [0u64; LANES];
            for r in 0..self.rounds.len() {
                self.plan_round(r);
                for rot in &self.rotations {
                    for (any, &act) in rotated.iter_mut().zip(&rot.active) {
                        *any |= act;
                    }
                    self.work.lane_rotations += rot.active.iter().filter(|&&m| m != 0).count();
                    apply(self.n, &mut self.a, &mut self.v, rot);
                }
                self.work.rotations += self.rotations.len();
            }
            if rotated == [0; LANES] {
                break;
            }
        }
        // A lane whose last sweep rotated nothing has converged (and stays put).
        rotated.map(|m| m == 0)
    }

    /// The rotations of round `r`, from the current `A` (disjoint pairs do not change each
    /// other's `a_pp`, `a_qq`, `a_pq`). Pairs no lane rotates are left out.
    #[inline(always)]
    fn plan_round(&mut self, r: usize) {
        let n = self.n;
        self.rotations.clear();
        for &(p, q) in &self.rounds[r] {
            let app = self.a[p * n + p].0;
            let aqq = self.a[q * n + q].0;
            let apq = self.a[q * n + p].0;
            let mut active = [0u64; LANES];
            for l in 0..LANES {
                let off2 = apq[l] * apq[l];
                let rel2 = f64::EPSILON * f64::EPSILON * (app[l] * aqq[l]).abs();
                active[l] = if off2 > rel2 && off2 > self.floor2[l] {
                    u64::MAX
                } else {
                    0
                };
            }
            if active == [0; LANES] {
                continue;
            }
            let mut c = [0.0; LANES];
            let mut s = [0.0; LANES];
            let mut t = [0.0; LANES];
            for l in 0..LANES {
                // t = sign(θ) / (|θ| + √(θ² + 1)) with θ = d / 2a_pq, multiplied through by
                // |2a_pq| to save a division.
                let d = aqq[l] - app[l];
                let tl = 2.0 * apq[l] * 1.0f64.copysign(d)
                    / (d.abs() + (d * d + 4.0 * apq[l] * apq[l]).sqrt());
                let cl = 1.0 / (tl * tl + 1.0).sqrt();
                c[l] = select(active[l], cl, 1.0);
                s[l] = select(active[l], tl * cl, 0.0);
                t[l] = select(active[l], tl, 0.0);
            }
            self.rotations.push(Rotation {
                p,
                q,
                c,
                s,
                t,
                active,
            });
        }
    }

    /// Sorts each lane's eigenvalues ascending (ties keep index order), undoes its scaling and
    /// writes the matrices out.
    fn store(&mut self, count: usize, values: &mut [f64], vectors: &mut [f64]) {
        let n = self.n;
        let nn = n * n;
        for l in 0..count {
            let diag = |i: usize| self.a[i * n + i].0[l];
            self.order.clear();
            self.order.extend(0..n);
            self.order.sort_by(|&i, &j| diag(i).total_cmp(&diag(j)));
            let out_values = &mut values[l * n..(l + 1) * n];
            let out_vectors = &mut vectors[l * nn..(l + 1) * nn];
            for (j, &src) in self.order.iter().enumerate() {
                out_values[j] = diag(src) * self.scale[l];
                for i in 0..n {
                    let x = self.v[src * n + i].0[l];
                    out_vectors[j * n + i] = x;
                    self.u[j * n + i].0[l] = x;
                }
            }
        }
    }

    /// `Y_l = U_l diag(f_l) U_lᵀ` for the `count` matrices of the last successful
    /// [`JacobiBatch::decompose_group`] (another count is a `DimensionMismatch`), with `f_l = fvals[l n .. (l+1) n]` in the order of the
    /// ascending eigenvalues; written to `out` (`count · n²`, column-major), exactly symmetric:
    /// `y_ij = Σ_k (u_ik f_k) u_jk` summed in order of `k` for `i ≥ j` and mirrored.
    pub fn reconstruct_into(&mut self, fvals: &[f64], out: &mut [f64]) -> Result<()> {
        let n = self.n;
        let nn = n * n;
        let count = fvals.len().checked_div(n).unwrap_or(0);
        check_sizes(&[
            ("Jacobi reconstruction (f-values)", count * n, fvals.len()),
            (
                "Jacobi reconstruction (matrices last decomposed)",
                self.last_count,
                count,
            ),
            ("Jacobi reconstruction (output)", count * nn, out.len()),
        ])?;
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F, checked just above.
            unsafe { self.reconstruct_avx512(fvals, count, out) };
            return Ok(());
        }
        self.reconstruct_here(fvals, count, out);
        Ok(())
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn reconstruct_avx512(&mut self, fvals: &[f64], count: usize, out: &mut [f64]) {
        self.reconstruct_here(fvals, count, out);
    }

    #[inline(always)]
    fn reconstruct_here(&mut self, fvals: &[f64], count: usize, out: &mut [f64]) {
        let n = self.n;
        let nn = n * n;
        for k in 0..n {
            let mut f = [0.0; LANES];
            for (l, fl) in f.iter_mut().enumerate().take(count) {
                *fl = fvals[l * n + k];
            }
            for i in 0..n {
                let (Entry(w), Entry(u)) = (&mut self.w[k * n + i], &self.u[k * n + i]);
                for l in 0..LANES {
                    w[l] = u[l] * f[l];
                }
            }
        }
        for j in 0..n {
            for i in j..n {
                let mut acc = [0.0; LANES];
                for k in 0..n {
                    let (Entry(w), Entry(u)) = (&self.w[k * n + i], &self.u[k * n + j]);
                    for l in 0..LANES {
                        acc[l] += w[l] * u[l];
                    }
                }
                for (l, &y) in acc.iter().enumerate().take(count) {
                    out[l * nn + j * n + i] = y;
                    out[l * nn + i * n + j] = y;
                }
            }
        }
    }
}

/// `x` where `mask` is all ones, `y` where it is zero, by bits.
#[inline(always)]
fn select(mask: u64, x: f64, y: f64) -> f64 {
    f64::from_bits((x.to_bits() & mask) | (y.to_bits() & !mask))
}

/// `A ← Jᵀ A J`, `V ← V J` for one pair, lanes that do not rotate left bit-for-bit unchanged.
#[inline(always)]
fn apply(n: usize, a: &mut [Entry], v: &mut [Entry], rot: &Rotation) {
    if rot.active == [u64::MAX; LANES] {
        apply_masked::<false>(n, a, v, rot);
    } else {
        apply_masked::<true>(n, a, v, rot);
    }
}

/// [`apply`], blending by the lane mask when `MASKED` (some lane does not rotate).
#[inline(always)]
fn apply_masked<const MASKED: bool>(n: usize, a: &mut [Entry], v: &mut [Entry], rot: &Rotation) {
    let Rotation {
        p,
        q,
        c,
        s,
        t,
        active,
    } = *rot;
    assert!(p < q && q < n && a.len() == n * n && v.len() == n * n);
    let app = a[p * n + p].0;
    let aqq = a[q * n + q].0;
    let apq = a[q * n + p].0;
    let rotate = |x: &Lane, y: &Lane| -> (Lane, Lane) {
        let mut nx = [0.0; LANES];
        let mut ny = [0.0; LANES];
        for l in 0..LANES {
            let (rx, ry) = (c[l] * x[l] - s[l] * y[l], s[l] * x[l] + c[l] * y[l]);
            nx[l] = if MASKED {
                select(active[l], rx, x[l])
            } else {
                rx
            };
            ny[l] = if MASKED {
                select(active[l], ry, y[l])
            } else {
                ry
            };
        }
        (nx, ny)
    };
    let (pa, pv) = (a.as_mut_ptr(), v.as_mut_ptr());
    for k in 0..n {
        // SAFETY: p, q, k < n and both slices hold n² entries (asserted above), so every
        // offset is in bounds. Step k reads (k, p), (k, q) and writes those and (p, k), (q, k).
        // The only entry read after an earlier step wrote it is a_qp (written at k = p, read
        // at k = q > p); it and everything else written at k ∈ {p, q} lies in the 2 × 2 block,
        // which is overwritten below from the values saved before the loop.
        unsafe {
            let (x, y) = rotate(&(*pa.add(p * n + k)).0, &(*pa.add(q * n + k)).0);
            *pa.add(p * n + k) = Entry(x);
            *pa.add(q * n + k) = Entry(y);
            // Off the 2 × 2 block, rows p and q of Jᵀ(AJ) are columns p and q of AJ.
            *pa.add(k * n + p) = Entry(x);
            *pa.add(k * n + q) = Entry(y);
            let (x, y) = rotate(&(*pv.add(p * n + k)).0, &(*pv.add(q * n + k)).0);
            *pv.add(p * n + k) = Entry(x);
            *pv.add(q * n + k) = Entry(y);
        }
    }
    let mut new_pp = [0.0; LANES];
    let mut new_qq = [0.0; LANES];
    let mut new_pq = [0.0; LANES];
    for l in 0..LANES {
        new_pp[l] = select(active[l], app[l] - t[l] * apq[l], app[l]);
        new_qq[l] = select(active[l], aqq[l] + t[l] * apq[l], aqq[l]);
        new_pq[l] = select(active[l], 0.0, apq[l]);
    }
    a[p * n + p] = Entry(new_pp);
    a[q * n + q] = Entry(new_qq);
    a[q * n + p] = Entry(new_pq);
    a[p * n + q] = Entry(new_pq);
}

/// The largest power of two `≤ x` for finite `x > 0` (1 for zero), so dividing by it is exact
/// and leaves the largest entry in `[1, 2)`, subnormal `x` included.
fn power_of_two_below(x: f64) -> f64 {
    const TWO_54: f64 = 18_014_398_509_481_984.0;
    if x.is_normal() {
        f64::from_bits(x.to_bits() & 0x7ff0_0000_0000_0000)
    } else if x > 0.0 && x.is_finite() {
        power_of_two_below(x * TWO_54) / TWO_54
    } else {
        1.0
    }
}

/// The circle method: for even `m = n + (n mod 2)`, `m − 1` rounds of `m/2` disjoint pairs
/// covering every pair once; pairs with the padding index `n` are dropped.
fn round_robin(n: usize) -> Vec<Vec<(usize, usize)>> {
    if n < 2 {
        return Vec::new();
    }
    let m = n + n % 2;
    (0..m - 1)
        .map(|r| {
            let mut pairs = vec![(r, m - 1)];
            for k in 1..m / 2 {
                pairs.push(((r + k) % (m - 1), (r + m - 1 - k) % (m - 1)));
            }
            pairs
                .into_iter()
                .filter(|&(i, j)| i < n && j < n)
                .map(|(i, j)| (i.min(j), i.max(j)))
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dense::{distance_frobenius, sandwich_diag};
    use crate::test_support::{Case, case, check_agrees_with_faer, check_eigenpairs, config, kind};
    use faer::Mat;
    use proptest::prelude::*;

    fn column_major(x: &Mat<f64>) -> Vec<f64> {
        let n = x.nrows();
        (0..n * n).map(|k| x[(k % n, k / n)]).collect()
    }

    fn solve_group(inputs: &[f64], n: usize) -> (Vec<f64>, Vec<f64>) {
        let count = inputs.len() / (n * n).max(1);
        let mut values = vec![0.0; count * n];
        let mut vectors = vec![0.0; count * n * n];
        JacobiBatch::new(n)
            .decompose_group(inputs, &mut values, &mut vectors)
            .unwrap();
        (values, vectors)
    }

    fn solve(x: &Mat<f64>) -> (Vec<f64>, Mat<f64>) {
        let n = x.nrows();
        let (values, vectors) = solve_group(&column_major(x), n);
        (values, Mat::from_fn(n, n, |i, j| vectors[j * n + i]))
    }

    #[test]
    fn round_robin_covers_every_pair_once_in_disjoint_rounds() {
        for n in 0..=13 {
            let rounds = round_robin(n);
            let mut seen = vec![vec![0; n]; n];
            for round in &rounds {
                let mut used = vec![false; n];
                for &(p, q) in round {
                    assert!(p < q && !used[p] && !used[q], "n = {n}: {round:?}");
                    used[p] = true;
                    used[q] = true;
                    seen[p][q] += 1;
                }
            }
            for (p, row) in seen.iter().enumerate() {
                for (q, &times) in row.iter().enumerate().skip(p + 1) {
                    assert_eq!(times, 1, "n = {n}, pair ({p}, {q})");
                }
            }
        }
    }

    proptest! {
        #![proptest_config(config())]

        /// The shared eigensolver properties (reconstruction, orthonormality, ascending
        /// eigenvalues at the built spectrum) on repeated, clustered, near-repeated and
        /// κ = 1e10 spectra.
        #[test]
        fn reconstructs_with_orthonormal_vectors_and_exact_spectrum(c in case(40)) {
            let (values, vectors) = solve(&c.x);
            check_eigenpairs(&c, &values, &vectors)?;
        }

        /// Eigenvalues and the basis-independent `U Λ² Uᵀ` agree with faer's solver.
        #[test]
        fn agrees_with_faer(c in case(40)) {
            let (values, vectors) = solve(&c.x);
            check_agrees_with_faer(&c.x, &values, &vectors)?;
        }

        /// A matrix's result does not depend on its lane, its neighbours or the group size:
        /// decomposed alone and at every position of a full group of other matrices (of other
        /// spectra, so they converge after other numbers of sweeps), it gives the same bits.
        #[test]
        fn a_lane_is_independent_of_its_neighbours(n in 1usize..=16, kinds in prop::collection::vec(kind(), LANES), seed in any::<u64>()) {
            let cases: Vec<Case> = kinds.iter().enumerate()
                .map(|(l, &k)| Case::new(n, k, seed.wrapping_add(l as u64)))
                .collect();
            let alone = solve_group(&column_major(&cases[0].x), n);
            for at in 0..LANES {
                let mut group = Vec::new();
                for l in 0..LANES {
                    let which = if l == at { 0 } else { 1 + (l + at) % (LANES - 1) };
                    group.extend(column_major(&cases[which].x));
                }
                let (values, vectors) = solve_group(&group, n);
                let nn = n * n;
                let same_values = values[at * n..(at + 1) * n].iter().zip(&alone.0).all(|(a, b)| a.to_bits() == b.to_bits());
                let same_vectors = vectors[at * nn..(at + 1) * nn].iter().zip(&alone.1).all(|(a, b)| a.to_bits() == b.to_bits());
                prop_assert!(same_values && same_vectors, "lane {at}");
            }
        }

        /// `reconstruct_into` with `f(λ) = λ` gives back each matrix of a group to rounding,
        /// exactly symmetric, and with `f(λ) = λ²` agrees with `U Λ² Uᵀ` formed by faer and
        /// with the baseline build bit for bit.
        #[test]
        fn reconstruction_gives_back_the_matrices(n in 1usize..=16, count in 1usize..=LANES, seed in any::<u64>(), k in kind()) {
            let cases: Vec<Case> = (0..count).map(|l| Case::new(n, k, seed.wrapping_add(l as u64))).collect();
            let group: Vec<f64> = cases.iter().flat_map(|c| column_major(&c.x)).collect();
            let nn = n * n;
            let mut solver = JacobiBatch::new(n);
            let mut values = vec![0.0; count * n];
            let mut vectors = vec![0.0; count * nn];
            solver.decompose_group(&group, &mut values, &mut vectors).unwrap();
            let mut back = vec![0.0; count * nn];
            solver.reconstruct_into(&values, &mut back).unwrap();
            let squares: Vec<f64> = values.iter().map(|v| v * v).collect();
            let mut back2 = vec![0.0; count * nn];
            solver.reconstruct_into(&squares, &mut back2).unwrap();
            let mut baseline = vec![0.0; count * nn];
            solver.reconstruct_here(&squares, count, &mut baseline);
            prop_assert!(back2.iter().zip(&baseline).all(|(a, b)| a.to_bits() == b.to_bits()), "builds differ");
            for (l, c) in cases.iter().enumerate() {
                let y = Mat::from_fn(n, n, |i, j| back[l * nn + j * n + i]);
                prop_assert!(y == y.transpose().to_owned());
                let scale = c.x.norm_l2();
                prop_assert!(distance_frobenius(y.as_ref(), c.x.as_ref()) <= 1e-12 * scale);
                let u = Mat::from_fn(n, n, |i, j| vectors[l * nn + j * n + i]);
                let want = sandwich_diag(u.as_ref(), &squares[l * n..(l + 1) * n]);
                let y2 = Mat::from_fn(n, n, |i, j| back2[l * nn + j * n + i]);
                prop_assert!(distance_frobenius(y2.as_ref(), want.as_ref()) <= 1e-12 * scale * scale);
            }
        }

        /// The AVX-512, AVX2 and baseline builds give the same bits.
        #[test]
        fn encodings_agree_bitwise(n in 1usize..=24, kinds in prop::collection::vec(kind(), 3), seed in any::<u64>()) {
            let mut group = Vec::new();
            for (l, &k) in kinds.iter().enumerate() {
                group.extend(column_major(&Case::new(n, k, seed.wrapping_add(l as u64)).x));
            }
            let mut runs: Vec<(Vec<u64>, Vec<u64>)> = Vec::new();
            for build in 0..3 {
                let mut solver = JacobiBatch::new(n);
                solver.load(&group, kinds.len());
                let converged = match build {
                    #[cfg(target_arch = "x86_64")]
                    0 if std::arch::is_x86_feature_detected!("avx512f") => unsafe { solver.sweeps_avx512() },
                    #[cfg(target_arch = "x86_64")]
                    1 if std::arch::is_x86_feature_detected!("avx2") => unsafe { solver.sweeps_avx2() },
                    _ => solver.sweeps_here(),
                };
                prop_assert!(converged.iter().all(|&c| c));
                let mut values = vec![0.0; kinds.len() * n];
                let mut vectors = vec![0.0; kinds.len() * n * n];
                solver.store(kinds.len(), &mut values, &mut vectors);
                runs.push((values.iter().map(|x| x.to_bits()).collect(), vectors.iter().map(|x| x.to_bits()).collect()));
            }
            prop_assert_eq!(&runs[0], &runs[1]);
            prop_assert_eq!(&runs[0], &runs[2]);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..config() })]

        /// The same properties on the larger sizes networks meet (41..=96), fewer cases.
        #[test]
        fn reconstructs_larger_matrices(n in 41usize..=96, k in kind(), seed in any::<u64>()) {
            let c = Case::new(n, k, seed);
            let (values, vectors) = solve(&c.x);
            check_eigenpairs(&c, &values, &vectors)?;
        }
    }

    #[test]
    fn diagonal_zero_indefinite_and_huge_matrices() {
        let mut x = Mat::<f64>::zeros(5, 5);
        for (i, v) in [3.0, -1.0, 0.0, 7.0, 3.0].into_iter().enumerate() {
            x[(i, i)] = v;
        }
        assert_eq!(solve(&x).0, vec![-1.0, 0.0, 3.0, 3.0, 7.0]);
        assert_eq!(solve(&Mat::<f64>::zeros(4, 4)).0, vec![0.0; 4]);
        let swap = Mat::from_fn(2, 2, |i, j| if i == j { 0.0 } else { 1.0 });
        let (values, _) = solve(&swap);
        assert!((values[0] + 1.0).abs() < 1e-15 && (values[1] - 1.0).abs() < 1e-15);
        let mut big = Mat::<f64>::identity(3, 3);
        big[(1, 0)] = 1e300;
        big[(0, 1)] = 1e300;
        let (values, _) = solve(&big);
        assert!(
            ((values[0] + 1e300) / 1e300).abs() < 1e-14
                && ((values[2] - 1e300) / 1e300).abs() < 1e-14
        );
        // Subnormal entries are scaled up too, so the pair still rotates.
        let tiny = Mat::from_fn(2, 2, |i, j| if i == j { 2e-310 } else { 1e-310 });
        let (values, _) = solve(&tiny);
        assert!(
            ((values[0] - 1e-310) / 1e-310).abs() < 1e-6
                && ((values[1] - 3e-310) / 3e-310).abs() < 1e-6,
            "{values:?}"
        );
    }

    #[test]
    fn non_finite_matrices_are_errors_at_their_position() {
        let mut group = vec![0.0; 3 * 4];
        for m in group.chunks_mut(4) {
            m[0] = 1.0;
            m[3] = 1.0;
        }
        group[4 + 2] = f64::NAN;
        let (mut values, mut vectors) = (vec![0.0; 6], vec![0.0; 12]);
        match JacobiBatch::new(2).decompose_group(&group, &mut values, &mut vectors) {
            Err(LinalgError::InBatch { index: 1, source }) => {
                assert!(matches!(*source, LinalgError::NotFinite { .. }))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn wrong_sizes_are_errors() {
        let mut solver = JacobiBatch::new(3);
        let mut values = vec![0.0; 3];
        let mut vectors = vec![0.0; 9];
        for inputs in [vec![0.0; 8], vec![0.0; 9 * (LANES + 1)]] {
            assert!(matches!(
                solver.decompose_group(&inputs, &mut values, &mut vectors),
                Err(LinalgError::DimensionMismatch { .. })
            ));
        }
        assert!(matches!(
            solver.decompose_group(&[0.0; 18], &mut values, &mut vectors),
            Err(LinalgError::DimensionMismatch { .. })
        ));
    }
}
