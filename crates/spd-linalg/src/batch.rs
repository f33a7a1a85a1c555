//! Batches of `n × n` matrices stored contiguously (matrix `k` occupies
//! `data[k·n² .. (k+1)·n²]`, column-major), processed in parallel with rayon with per-thread
//! scratch. Up to [`BATCHED_JACOBI_MAX`] the matrices are decomposed [`LANES`] at a time by the
//! batched Jacobi solver ([`crate::jacobi`]), above one at a time by [`EighWorkspace`]; either
//! way a matrix's result depends on nothing but the matrix, so outputs are bit-identical for
//! any thread count and any batch size or position.

use faer::{Mat, MatMut, MatRef};
use rayon::prelude::*;

use crate::dense::sandwich_diag_into;
use crate::eigh::EighWorkspace;
use crate::error::{LinalgError, Result, check_sizes};
use crate::jacobi::JacobiBatch;
use crate::lanes::DaleckiiKrein;
use crate::lanes::LANES;
use crate::spectral::{SpectralFn, SpectralWorkspace, check_domain, loewner_into};
use crate::validate::check_finite;

/// Largest size decomposed by the batched Jacobi solver. Measured per matrix on one thread
/// against the tridiagonal QR: n = 10: 3.0 vs 4.7 µs, n = 16: 9.5 vs 11.8 µs, n = 20: 38 vs
/// 24 µs (from n ≈ 20 a group's `A` and `V` no longer fit in a 48 KiB L1 cache).
pub const BATCHED_JACOBI_MAX: usize = 16;

/// One thread's eigensolver for a batch: groups of [`LANES`] matrices through the batched
/// Jacobi solver for small sizes, single matrices through [`EighWorkspace`] above.
enum Decomposer {
    Jacobi(JacobiBatch),
    /// The workspace and an `n × n` scratch for `U diag(f) Uᵀ`.
    Single(EighWorkspace, Mat<f64>),
}

impl Decomposer {
    fn new(n: usize) -> Self {
        if (1..=BATCHED_JACOBI_MAX).contains(&n) {
            Decomposer::Jacobi(JacobiBatch::new(n))
        } else {
            Decomposer::Single(EighWorkspace::new(n), Mat::zeros(n, n))
        }
    }

    /// Matrices decomposed together (the size of a parallel task).
    fn group(n: usize) -> usize {
        if (1..=BATCHED_JACOBI_MAX).contains(&n) {
            LANES
        } else {
            1
        }
    }

    /// Decomposes the `≤ group` matrices of `data` into `values` and `vectors`; an error
    /// carries the position of its matrix within `data`.
    fn decompose(
        &mut self,
        n: usize,
        data: &[f64],
        values: &mut [f64],
        vectors: &mut [f64],
    ) -> std::result::Result<(), (usize, LinalgError)> {
        let nn = n * n;
        match self {
            Decomposer::Jacobi(solver) => {
                solver
                    .decompose_group(data, values, vectors)
                    .map_err(|e| match e {
                        LinalgError::InBatch { index, source } => (index, *source),
                        other => (0, other),
                    })
            }
            Decomposer::Single(ws, _) => {
                for (k, ((a, values), vectors)) in data
                    .chunks(nn)
                    .zip(values.chunks_mut(n))
                    .zip(vectors.chunks_mut(nn))
                    .enumerate()
                {
                    let a = MatRef::from_column_major_slice(a, n, n);
                    let u = MatMut::from_column_major_slice_mut(vectors, n, n);
                    ws.decompose_into(a, values, Some(u)).map_err(|e| (k, e))?;
                }
                Ok(())
            }
        }
    }

    /// `Y_k = U_k diag(f_k) U_kᵀ` for the matrices just decomposed into `vectors`.
    fn reconstruct(
        &mut self,
        n: usize,
        vectors: &[f64],
        fvals: &[f64],
        out: &mut [f64],
    ) -> Result<()> {
        match self {
            Decomposer::Jacobi(solver) => solver.reconstruct_into(fvals, out),
            Decomposer::Single(_, scratch) => {
                let nn = n * n;
                for ((u, fv), y) in vectors
                    .chunks(nn)
                    .zip(fvals.chunks(n))
                    .zip(out.chunks_mut(nn))
                {
                    let u = MatRef::from_column_major_slice(u, n, n);
                    let y = MatMut::from_column_major_slice_mut(y, n, n);
                    sandwich_diag_into(y, u, fv, scratch.as_mut());
                }
                Ok(())
            }
        }
    }
}

/// Eigendecompositions of a batch: `values` is `count × n`, `vectors` is `count × n²`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EighBatch {
    /// Matrix size.
    pub n: usize,
    /// Ascending eigenvalues, `n` per matrix.
    pub values: Vec<f64>,
    /// Eigenvector matrices, `n²` per matrix, column-major.
    pub vectors: Vec<f64>,
}

impl EighBatch {
    /// An all-zero batch of `count` decompositions of size `n`.
    pub fn zeros(n: usize, count: usize) -> Self {
        Self {
            n,
            values: vec![0.0; count * n],
            vectors: vec![0.0; count * n * n],
        }
    }

    /// Number of decompositions.
    pub fn len(&self) -> usize {
        self.values.len().checked_div(self.n).unwrap_or(0)
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Eigenvalues of matrix `k`.
    pub fn values(&self, k: usize) -> &[f64] {
        &self.values[k * self.n..(k + 1) * self.n]
    }

    /// Eigenvectors of matrix `k`.
    pub fn vectors(&self, k: usize) -> MatRef<'_, f64> {
        let nn = self.n * self.n;
        MatRef::from_column_major_slice(&self.vectors[k * nn..(k + 1) * nn], self.n, self.n)
    }
}

/// Views matrix `k` of a contiguous batch.
pub fn matrix(data: &[f64], n: usize, k: usize) -> MatRef<'_, f64> {
    MatRef::from_column_major_slice(&data[k * n * n..(k + 1) * n * n], n, n)
}

fn check_len(data_len: usize, n: usize) -> Result<usize> {
    let nn = n * n;
    if nn == 0 {
        return Ok(0);
    }
    if data_len % nn != 0 {
        return Err(LinalgError::DimensionMismatch {
            context: "batch storage (a multiple of n²)",
            expected: data_len.div_ceil(nn) * nn,
            found: data_len,
        });
    }
    Ok(data_len / nn)
}

/// Keeps the error of the lowest matrix index, so the reported error does not depend on
/// which thread finished first.
fn first_error(results: impl ParallelIterator<Item = (usize, Result<()>)>) -> Result<()> {
    match results
        .filter_map(|(k, r)| r.err().map(|e| (k, e)))
        .min_by_key(|(k, _)| *k)
    {
        Some((k, e)) => Err(e.in_batch(k)),
        None => Ok(()),
    }
}

/// Eigendecomposes every `n × n` matrix of `data` in parallel.
pub fn eigh_batch(data: &[f64], n: usize) -> Result<EighBatch> {
    forward_batch(data, n, None).map(|(_, eig)| eig)
}

/// Eigendecomposes every `n × n` matrix of `data` on the calling thread (the same bits as
/// [`eigh_batch`]).
pub fn eigh_batch_seq(data: &[f64], n: usize) -> Result<EighBatch> {
    let count = check_len(data.len(), n)?;
    let mut out = EighBatch::zeros(n, count);
    let mut solver = Decomposer::new(n);
    let (nn, group) = (n * n, Decomposer::group(n));
    for (g, ((a, values), vectors)) in data
        .chunks(group * nn.max(1))
        .zip(out.values.chunks_mut(group * n.max(1)))
        .zip(out.vectors.chunks_mut(group * nn.max(1)))
        .enumerate()
    {
        solver
            .decompose(n, a, values, vectors)
            .map_err(|(k, e)| e.in_batch(g * group + k))?;
    }
    Ok(out)
}

/// `F(X_k) = U_k f(Λ_k) U_kᵀ` for every matrix of the batch, in parallel; returns the outputs
/// and the decompositions the backward needs.
pub fn spectral_batch<F: SpectralFn + ?Sized>(
    f: &F,
    data: &[f64],
    n: usize,
) -> Result<(Vec<f64>, EighBatch)> {
    forward_batch(
        data,
        n,
        Some(&|values: &[f64], fvals: &mut [f64]| {
            check_domain(f, values)?;
            f.values_into(values, fvals);
            Ok(())
        }),
    )
}

/// The values `f_k(λ_k)` of a spectral forward from one matrix's ascending eigenvalues, or the
/// reason they are undefined.
pub(crate) type SpectrumMap<'a> = &'a (dyn Fn(&[f64], &mut [f64]) -> Result<()> + Sync);

/// Decomposes every matrix (groups of [`LANES`] up to [`BATCHED_JACOBI_MAX`]) and, given
/// `spectrum_map`, writes `Y_k = U_k diag(f_k(λ_k)) U_kᵀ` while the group is in cache (for a
/// lane group, by the lane kernel [`JacobiBatch::reconstruct_into`]); in parallel with
/// per-thread workspaces. Returns the outputs (empty without a map) and the decompositions.
pub(crate) fn forward_batch(
    data: &[f64],
    n: usize,
    spectrum_map: Option<SpectrumMap<'_>>,
) -> Result<(Vec<f64>, EighBatch)> {
    let count = check_len(data.len(), n)?;
    let nn = n * n;
    let mut eig = EighBatch::zeros(n, count);
    let mut out = vec![
        0.0;
        if spectrum_map.is_some() {
            count * nn
        } else {
            0
        }
    ];
    if count == 0 {
        return Ok((out, eig));
    }
    let group = Decomposer::group(n);
    let mut outputs: Vec<&mut [f64]> = if spectrum_map.is_some() {
        out.chunks_mut(group * nn).collect()
    } else {
        (0..count.div_ceil(group))
            .map(|_| <&mut [f64]>::default())
            .collect()
    };
    let results = data
        .par_chunks(group * nn)
        .zip(outputs.par_iter_mut())
        .zip(eig.values.par_chunks_mut(group * n))
        .zip(eig.vectors.par_chunks_mut(group * nn))
        .enumerate()
        .map_init(
            || (Decomposer::new(n), vec![0.0; group * n]),
            |(solver, fvals), (g, (((x, y), values), vectors))| {
                let first = g * group;
                // The matrices before the first non-finite one are decomposed and mapped, so
                // the error reported is the lowest-indexed one, as matrix by matrix.
                let bad = x.chunks(nn).enumerate().find_map(|(k, m)| {
                    check_finite(MatRef::from_column_major_slice(m, n, n))
                        .err()
                        .map(|e| (k, e))
                });
                let good = bad.as_ref().map_or(x.len() / nn, |(k, _)| *k);
                let (values, vectors) = (&mut values[..good * n], &mut vectors[..good * nn]);
                if let Err((k, e)) = solver.decompose(n, &x[..good * nn], values, vectors) {
                    return (first + k, Err(e));
                }
                if let Some(map) = spectrum_map {
                    let fvals = &mut fvals[..values.len()];
                    for (k, (values, fv)) in values.chunks(n).zip(fvals.chunks_mut(n)).enumerate() {
                        if let Err(e) = map(values, fv) {
                            return (first + k, Err(e));
                        }
                    }
                    if bad.is_none()
                        && let Err(e) = solver.reconstruct(n, vectors, fvals, y)
                    {
                        return (first, Err(e));
                    }
                }
                match bad {
                    Some((k, e)) => (first + k, Err(e)),
                    None => (first, Ok(())),
                }
            },
        );
    first_error(results)?;
    Ok((out, eig))
}

/// Backward of [`spectral_batch`]: `∂L/∂X_k = U_k (K_k ∘ U_kᵀ sym(G_k) U_k) U_kᵀ` from the saved
/// decompositions and the upstream gradients `grad` (same layout as the data).
pub fn spectral_backward_batch<F: SpectralFn + ?Sized>(
    f: &F,
    eig: &EighBatch,
    grad: &[f64],
) -> Result<Vec<f64>> {
    backward_batch(
        eig,
        grad,
        SpectralBackward {
            loewner: &|values, fvals, k| {
                f.values_into(values, fvals);
                loewner_into(f, values, fvals, k);
            },
            correction: None,
        },
    )
}

/// What a spectral op contributes to its backward: the Loewner matrix `K` of its function at
/// a spectrum (`loewner(λ, f-value scratch, K)`), and a term added to the Daleckii–Krein
/// product (`correction(λ, U, G, ∂X)`; the capped exponential's floor).
pub(crate) struct SpectralBackward<'a> {
    pub(crate) loewner: &'a LoewnerFn<'a>,
    pub(crate) correction: Option<&'a CorrectionFn<'a>>,
}

/// `loewner(λ, f-value scratch, K)`.
pub(crate) type LoewnerFn<'a> = dyn Fn(&[f64], &mut [f64], MatMut<'_, f64>) + Sync + 'a;

/// `correction(λ, U, G, ∂X)`, adding to `∂X`.
pub(crate) type CorrectionFn<'a> =
    dyn Fn(&[f64], MatRef<'_, f64>, MatRef<'_, f64>, MatMut<'_, f64>) + Sync + 'a;

/// Per-thread scratch of a batched backward.
struct BackwardScratch {
    /// The lane kernel for groups, `None` when matrices go one at a time through faer.
    lanes: Option<DaleckiiKrein>,
    single: SpectralWorkspace,
    /// Loewner matrices of a group, column-major.
    k: Vec<f64>,
    fvals: Vec<f64>,
}

/// `∂X_k = U_k (K_k ∘ U_kᵀ sym(G_k) U_k) U_kᵀ (+ correction)` for every matrix, in parallel:
/// lane groups of [`LANES`] through [`DaleckiiKrein`] up to [`BATCHED_JACOBI_MAX`] (the sizes
/// whose decompositions came in groups), single matrices through faer above.
pub(crate) fn backward_batch(
    eig: &EighBatch,
    grad: &[f64],
    op: SpectralBackward<'_>,
) -> Result<Vec<f64>> {
    let n = eig.n;
    let count = eig.len();
    let nn = n * n;
    check_sizes(&[
        (
            "spectral backward (upstream gradient length)",
            count * nn,
            grad.len(),
        ),
        (
            "spectral backward (saved eigenvectors)",
            count * nn,
            eig.vectors.len(),
        ),
    ])?;
    let mut out = vec![0.0; count * nn];
    if count == 0 {
        return Ok(out);
    }
    let group = Decomposer::group(n);
    grad.par_chunks(group * nn)
        .zip(out.par_chunks_mut(group * nn))
        .zip(eig.values.par_chunks(group * n))
        .zip(eig.vectors.par_chunks(group * nn))
        .for_each_init(
            || BackwardScratch {
                lanes: (group > 1).then(|| DaleckiiKrein::new(n)),
                single: SpectralWorkspace::new(n),
                k: vec![0.0; group * nn],
                fvals: vec![0.0; n],
            },
            |scratch, (((g, dx), values), vectors)| {
                let k = &mut scratch.k[..g.len()];
                for (values, k) in values.chunks(n).zip(k.chunks_mut(nn)) {
                    let k = MatMut::from_column_major_slice_mut(k, n, n);
                    (op.loewner)(values, &mut scratch.fvals, k);
                }
                let matrices = || {
                    g.chunks(nn)
                        .zip(vectors.chunks(nn))
                        .zip(values.chunks(n))
                        .map(|((g, u), values)| {
                            let g = MatRef::from_column_major_slice(g, n, n);
                            let u = MatRef::from_column_major_slice(u, n, n);
                            (g, u, values)
                        })
                };
                match &mut scratch.lanes {
                    Some(lanes) => lanes.apply(vectors, k, g, dx),
                    None => {
                        for (((g, u, _), k), dx) in
                            matrices().zip(k.chunks(nn)).zip(dx.chunks_mut(nn))
                        {
                            let k = MatRef::from_column_major_slice(k, n, n);
                            let dx = MatMut::from_column_major_slice_mut(dx, n, n);
                            scratch.single.daleckii_krein_into(u, k, g, dx);
                        }
                    }
                }
                if let Some(correction) = op.correction {
                    for ((g, u, values), dx) in matrices().zip(dx.chunks_mut(nn)) {
                        let dx = MatMut::from_column_major_slice_mut(dx, n, n);
                        correction(values, u, g, dx);
                    }
                }
            },
        );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::SpectrumKind;
    use crate::spectral::{Log, Pow};
    use crate::test_support::{Case, config, kind};
    use proptest::prelude::*;

    /// `count` SPD matrices of size `n` with spectra of `kind`, matrix `k` from `seed + k`.
    fn batch_of(n: usize, count: usize, kind: SpectrumKind, seed: u64) -> Vec<f64> {
        let mut data = Vec::with_capacity(count * n * n);
        for k in 0..count {
            let c = Case::new(n, kind, seed.wrapping_add(k as u64));
            for j in 0..n {
                for i in 0..n {
                    data.push(c.x[(i, j)]);
                }
            }
        }
        data
    }

    fn on_threads<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(f)
    }

    proptest! {
        #![proptest_config(config())]

        /// A matrix's batched result depends on nothing but the matrix: the same bits on 1
        /// and 2 threads, sequentially, and alone in a batch of one (so at any position of any
        /// batch), for every spectrum kind (repeated, near-repeated and ill-conditioned
        /// included), through the EVD, a spectral forward and its backward.
        #[test]
        fn batch_results_are_independent_of_threads_and_neighbours(n in 1usize..=20, count in 0usize..=19, seed in any::<u64>(), spectrum in kind()) {
            let data = batch_of(n, count, spectrum, seed);
            let one = on_threads(1, || eigh_batch(&data, n).unwrap());
            let two = on_threads(2, || eigh_batch(&data, n).unwrap());
            let seq = eigh_batch_seq(&data, n).unwrap();
            prop_assert_eq!(&one, &two);
            prop_assert_eq!(&one, &seq);
            let (y1, e1) = on_threads(1, || spectral_batch(&Log, &data, n).unwrap());
            let (y2, _) = on_threads(2, || spectral_batch(&Log, &data, n).unwrap());
            prop_assert_eq!(&y1, &y2);
            prop_assert_eq!(&e1, &one);
            let g1 = on_threads(1, || spectral_backward_batch(&Log, &e1, &data).unwrap());
            let g2 = on_threads(2, || spectral_backward_batch(&Log, &e1, &data).unwrap());
            prop_assert_eq!(&g1, &g2);
            let nn = n * n;
            for k in 0..count {
                let alone = &data[k * nn..(k + 1) * nn];
                let e = eigh_batch(alone, n).unwrap();
                let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                prop_assert_eq!(bits(one.values(k)), bits(&e.values));
                prop_assert_eq!(bits(&one.vectors[k * nn..(k + 1) * nn]), bits(&e.vectors));
                let (y, _) = spectral_batch(&Log, alone, n).unwrap();
                prop_assert_eq!(bits(&y1[k * nn..(k + 1) * nn]), bits(&y));
                let g = spectral_backward_batch(&Log, &e, alone).unwrap();
                prop_assert_eq!(bits(&g1[k * nn..(k + 1) * nn]), bits(&g));
            }
        }

        /// Batched results agree with the single-matrix routines (the tridiagonal QR, faer's
        /// products) to rounding: eigenvalues within `1e-13 n ‖A‖`, `log A` within
        /// `1e-12 n κ max(1, ‖log A‖)`, the backward of `log` (lane kernel up to n = 16) within
        /// that times `max(1, ‖A‖)` and exactly symmetric.
        #[test]
        fn batch_agrees_with_single_matrices(n in 1usize..=20, count in 1usize..=9, seed in any::<u64>(), spectrum in kind()) {
            let data = batch_of(n, count, spectrum, seed);
            let eig = eigh_batch(&data, n).unwrap();
            let (y, _) = spectral_batch(&Log, &data, n).unwrap();
            let back = spectral_backward_batch(&Log, &eig, &data).unwrap();
            for k in 0..count {
                let x = matrix(&data, n, k);
                let scale = x.norm_l2();
                let single = crate::eigh::eigh(x).unwrap();
                for (a, b) in eig.values(k).iter().zip(&single.values) {
                    prop_assert!((a - b).abs() <= 1e-13 * n as f64 * scale, "{a} vs {b}");
                }
                let (ys, e) = crate::spectral::spectral(&Log, x).unwrap();
                let kappa = e.condition_number();
                let tol = 1e-12 * n as f64 * kappa.max(1.0) * ys.norm_l2().max(1.0);
                prop_assert!(crate::dense::distance_frobenius(matrix(&y, n, k), ys.as_ref()) <= tol);
                // The backward of a direction G = X (any symmetric matrix would do).
                let gs = crate::spectral::spectral_backward(&Log, &e, x);
                let gb = matrix(&back, n, k);
                prop_assert!(gb == gb.transpose().to_owned(), "backward not exactly symmetric");
                prop_assert!(crate::dense::distance_frobenius(gb, gs.as_ref()) <= tol * scale.max(1.0));
            }
        }
    }

    #[test]
    fn reports_the_first_bad_matrix() {
        for n in [3, 20] {
            // Lane groups (n = 3) and single matrices (n = 20); the bad ones in a later group.
            let nn = n * n;
            let mut data = batch_of(n, 13, SpectrumKind::WellSeparated, 1);
            data[10 * nn + 4] = f64::NAN;
            data[12 * nn] = f64::NAN;
            for threads in [1, 2] {
                match on_threads(threads, || eigh_batch(&data, n)) {
                    Err(LinalgError::InBatch { index: 10, source }) => {
                        assert!(matches!(*source, LinalgError::NotFinite { .. }))
                    }
                    other => panic!("n = {n}: {other:?}"),
                }
            }
            assert!(matches!(
                eigh_batch_seq(&data, n),
                Err(LinalgError::InBatch { index: 10, .. })
            ));
            // A matrix outside log's domain before a non-finite one in the same group: the
            // lower index is reported, as matrix by matrix.
            let mut mixed = batch_of(n, 3, SpectrumKind::WellSeparated, 2);
            for v in &mut mixed[nn..2 * nn] {
                *v = -*v;
            }
            mixed[2 * nn + 1] = f64::INFINITY;
            match spectral_batch(&Log, &mixed, n) {
                Err(LinalgError::InBatch { index: 1, source }) => {
                    assert!(matches!(*source, LinalgError::OutsideDomain { .. }))
                }
                other => panic!("n = {n}: {other:?}"),
            }
        }
        let neg = [1.0, 0.0, 0.0, -1.0];
        assert!(matches!(
            spectral_batch(&Pow(0.5), &neg, 2),
            Err(LinalgError::InBatch { index: 0, .. })
        ));
        assert!(matches!(
            eigh_batch(&[1.0; 5], 2),
            Err(LinalgError::DimensionMismatch { .. })
        ));
    }
}
