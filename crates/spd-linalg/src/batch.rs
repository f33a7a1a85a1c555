//! Batches of `n × n` matrices stored contiguously (matrix `k` occupies
//! `data[k·n² .. (k+1)·n²]`, column-major), processed in parallel with rayon, one matrix per
//! task, with per-thread scratch. Results are written in input order and each matrix is
//! computed sequentially, so outputs are bit-identical for any thread count.

use faer::{MatMut, MatRef};
use rayon::prelude::*;

use crate::eigh::EighWorkspace;
use crate::error::{LinalgError, Result};
use crate::spectral::{SpectralFn, SpectralWorkspace};

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
    let count = check_len(data.len(), n)?;
    let mut out = EighBatch::zeros(n, count);
    if count == 0 {
        return Ok(out);
    }
    let nn = n * n;
    let results = data
        .par_chunks(nn)
        .zip(out.values.par_chunks_mut(n))
        .zip(out.vectors.par_chunks_mut(nn))
        .enumerate()
        .map_init(
            || EighWorkspace::new(n),
            |ws, (k, ((a, values), vectors))| {
                let a = MatRef::from_column_major_slice(a, n, n);
                let u = MatMut::from_column_major_slice_mut(vectors, n, n);
                (k, ws.decompose_into(a, values, Some(u)))
            },
        );
    first_error(results)?;
    Ok(out)
}

/// Eigendecomposes every `n × n` matrix of `data` on the calling thread.
pub fn eigh_batch_seq(data: &[f64], n: usize) -> Result<EighBatch> {
    let count = check_len(data.len(), n)?;
    let mut out = EighBatch::zeros(n, count);
    let mut ws = EighWorkspace::new(n);
    let nn = n * n;
    for k in 0..count {
        let a = MatRef::from_column_major_slice(&data[k * nn..(k + 1) * nn], n, n);
        let u = MatMut::from_column_major_slice_mut(&mut out.vectors[k * nn..(k + 1) * nn], n, n);
        ws.decompose_into(a, &mut out.values[k * n..(k + 1) * n], Some(u))
            .map_err(|e| e.in_batch(k))?;
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
    forward_batch(data, n, |ws, x, values, u, y| {
        ws.forward_into(f, x, values, u, y)
    })
}

/// One forward per matrix, `forward(ws, X_k, λ_k, U_k, Y_k)`, in parallel with per-thread
/// workspaces; the decompositions it writes are returned for the backward.
pub(crate) fn forward_batch(
    data: &[f64],
    n: usize,
    forward: impl Fn(
        &mut SpectralWorkspace,
        MatRef<'_, f64>,
        &mut [f64],
        MatMut<'_, f64>,
        MatMut<'_, f64>,
    ) -> Result<()>
    + Sync,
) -> Result<(Vec<f64>, EighBatch)> {
    let count = check_len(data.len(), n)?;
    let nn = n * n;
    let mut eig = EighBatch::zeros(n, count);
    let mut out = vec![0.0; count * nn];
    if count == 0 {
        return Ok((out, eig));
    }
    let results = data
        .par_chunks(nn)
        .zip(out.par_chunks_mut(nn))
        .zip(eig.values.par_chunks_mut(n))
        .zip(eig.vectors.par_chunks_mut(nn))
        .enumerate()
        .map_init(
            || SpectralWorkspace::new(n),
            |ws, (k, (((x, y), values), vectors))| {
                let x = MatRef::from_column_major_slice(x, n, n);
                let y = MatMut::from_column_major_slice_mut(y, n, n);
                let u = MatMut::from_column_major_slice_mut(vectors, n, n);
                (k, forward(ws, x, values, u, y))
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
    backward_batch(eig, grad, |ws, values, u, g, dx| {
        ws.backward_into(f, values, u, g, dx)
    })
}

/// One backward per matrix, `backward(ws, λ_k, U_k, G_k, ∂X_k)`, in parallel with per-thread
/// workspaces.
pub(crate) fn backward_batch(
    eig: &EighBatch,
    grad: &[f64],
    backward: impl Fn(&mut SpectralWorkspace, &[f64], MatRef<'_, f64>, MatRef<'_, f64>, MatMut<'_, f64>)
    + Sync
    + Send,
) -> Result<Vec<f64>> {
    let n = eig.n;
    let count = eig.len();
    let nn = n * n;
    if grad.len() != count * nn {
        return Err(LinalgError::DimensionMismatch {
            context: "spectral backward (upstream gradient length)",
            expected: count * nn,
            found: grad.len(),
        });
    }
    let mut out = vec![0.0; count * nn];
    if count == 0 {
        return Ok(out);
    }
    grad.par_chunks(nn)
        .zip(out.par_chunks_mut(nn))
        .zip(eig.values.par_chunks(n))
        .zip(eig.vectors.par_chunks(nn))
        .for_each_init(
            || SpectralWorkspace::new(n),
            |ws, (((g, dx), values), vectors)| {
                let g = MatRef::from_column_major_slice(g, n, n);
                let u = MatRef::from_column_major_slice(vectors, n, n);
                let dx = MatMut::from_column_major_slice_mut(dx, n, n);
                backward(ws, values, u, g, dx);
            },
        );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::{SpectrumKind, seeded_rng};
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

        /// Batched results equal the single-matrix routines bit for bit, in input order, on
        /// 1 and 2 threads, for batches of every spectrum kind (repeated, near-repeated and
        /// ill-conditioned spectra included).
        #[test]
        fn batch_matches_single_matrices_bitwise(n in 1usize..=12, count in 0usize..=9, seed in any::<u64>(), spectrum in kind()) {
            let data = batch_of(n, count, spectrum, seed);
            let one = on_threads(1, || eigh_batch(&data, n).unwrap());
            let two = on_threads(2, || eigh_batch(&data, n).unwrap());
            let seq = eigh_batch_seq(&data, n).unwrap();
            prop_assert_eq!(&one, &two);
            prop_assert_eq!(&one, &seq);
            let (y1, e1) = on_threads(1, || spectral_batch(&Log, &data, n).unwrap());
            let (y2, _) = on_threads(2, || spectral_batch(&Log, &data, n).unwrap());
            prop_assert_eq!(&y1, &y2);
            let g1 = on_threads(1, || spectral_backward_batch(&Log, &e1, &data).unwrap());
            let g2 = on_threads(2, || spectral_backward_batch(&Log, &e1, &data).unwrap());
            prop_assert_eq!(&g1, &g2);
            for k in 0..count {
                let single = crate::eigh::eigh(matrix(&data, n, k)).unwrap();
                prop_assert_eq!(one.values(k), &single.values[..]);
                let (y, eig) = crate::spectral::spectral(&Log, matrix(&data, n, k)).unwrap();
                prop_assert_eq!(matrix(&y1, n, k), y.as_ref());
                let g = crate::spectral::spectral_backward(&Log, &eig, matrix(&data, n, k));
                prop_assert_eq!(matrix(&g1, n, k), g.as_ref());
            }
        }
    }

    #[test]
    fn reports_the_first_bad_matrix() {
        let mut data = batch_of(3, 5, SpectrumKind::WellSeparated, 1);
        data[2 * 9 + 4] = f64::NAN;
        data[4 * 9] = f64::NAN;
        match on_threads(2, || eigh_batch(&data, 3)) {
            Err(LinalgError::InBatch { index: 2, .. }) => {}
            other => panic!("{other:?}"),
        }
        let mut rng = seeded_rng(0);
        let _ = &mut rng;
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
