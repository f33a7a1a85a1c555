//! Vectorisation of matrices for a Euclidean head: all `n²` entries (the official code), or the
//! upper triangle with off-diagonal entries scaled by `√2`, which preserves the Frobenius norm.

use serde::{Deserialize, Serialize};

use super::check_square;
use crate::error::Result;
use crate::graph::{Backward, BackwardContext, Graph, Var};
use crate::ops::eig::log_eig;
use crate::tensor::Tensor;

/// How a matrix becomes a vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Vectorize {
    /// All `n²` entries, column-major (as SPDNetNAS's LogEig head).
    Full,
    /// `n(n+1)/2` entries `X_ij` (`i ≤ j`), off-diagonal ones times `√2`.
    UpperTriangular,
}

impl Vectorize {
    /// Length of the vector of one `n × n` matrix.
    pub fn len(self, n: usize) -> usize {
        match self {
            Vectorize::Full => n * n,
            Vectorize::UpperTriangular => n * (n + 1) / 2,
        }
    }

    /// `(flat index, factor)` of each vector entry within an `n × n` column-major matrix.
    fn entries(self, n: usize) -> Vec<(usize, f64)> {
        match self {
            Vectorize::Full => (0..n * n).map(|i| (i, 1.0)).collect(),
            Vectorize::UpperTriangular => (0..n)
                .flat_map(|j| {
                    (0..=j).map(move |i| {
                        (
                            i + j * n,
                            if i == j {
                                1.0
                            } else {
                                std::f64::consts::SQRT_2
                            },
                        )
                    })
                })
                .collect(),
        }
    }
}

struct Flatten {
    entries: Vec<(usize, f64)>,
}

/// `[B, C, n, n]` → `[B, 1, 1, C·len]`: each sample's channels vectorised and concatenated.
pub fn flatten(g: &mut Graph, x: Var, how: Vectorize) -> Result<Var> {
    let xv = g.value(x);
    let n = check_square("flatten", xv)?;
    let entries = how.entries(n);
    let [b, c, _, _] = xv.shape();
    let per = entries.len();
    let mut data = Vec::with_capacity(b * c * per);
    for k in 0..b * c {
        let m = &xv.data()[k * n * n..(k + 1) * n * n];
        data.extend(entries.iter().map(|&(i, f)| f * m[i]));
    }
    let out = Tensor::from_vec([b, 1, 1, c * per], data)?;
    Ok(g.push(out, vec![x], Box::new(Flatten { entries })))
}

impl Backward for Flatten {
    fn backward(&self, ctx: &BackwardContext<'_>, grad: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let xv = ctx.inputs[0];
        let nn = xv.matrix_len();
        let per = self.entries.len();
        let mut d = Tensor::zeros(xv.shape());
        let data = d.data_mut();
        for k in 0..xv.count() {
            for (e, &(i, f)) in self.entries.iter().enumerate() {
                data[k * nn + i] += f * grad.data()[k * per + e];
            }
        }
        Ok(vec![Some(d)])
    }
}

/// The LogEig head: `flatten(log X)`.
pub fn log_eig_flatten(g: &mut Graph, x: Var, how: Vectorize) -> Result<Var> {
    let l = log_eig(g, x)?;
    flatten(g, l, how)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{InputKind, check, config};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn log_eig_flatten_gradients(b in 1usize..3, c in 1usize..3, n in 1usize..7, full in any::<bool>(), seed in any::<u64>()) {
            let how = if full { Vectorize::Full } else { Vectorize::UpperTriangular };
            let x = [InputKind::Spd.sample([b, c, n, n], seed)];
            check(&x, |g, v| log_eig_flatten(g, v[0], how), seed)?;
        }
    }

    #[test]
    fn upper_triangle_preserves_the_norm() {
        let x = InputKind::Symmetric.sample([1, 1, 5, 5], 3).value;
        let mut g = Graph::new();
        let v = g.constant(x.clone());
        let f = flatten(&mut g, v, Vectorize::UpperTriangular).unwrap();
        assert_eq!(g.value(f).shape(), [1, 1, 1, 15]);
        assert!((g.value(f).norm_sq() - x.norm_sq()).abs() < 1e-12 * x.norm_sq());
    }
}
