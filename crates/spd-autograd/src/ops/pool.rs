//! 2-D pooling of each matrix seen as a one-channel image, and the log-domain pooling of SPD
//! matrices built on it: `exp(pool(log X))` (SPDNetNAS's AvgPooling2/MaxPooling reduced ops).

use super::{check_square, par_fill};
use crate::error::{Result, shape_err};
use crate::graph::{Backward, BackwardContext, Graph, Var};
use crate::ops::eig::{exp_eig, log_eig};
use crate::tensor::Tensor;

/// Pooling reduction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum PoolMode {
    /// Window mean.
    Average,
    /// Window maximum (the first maximum in column-major window order).
    Max,
}

/// Output size `⌊(n − kernel)/stride⌋ + 1` of a `kernel`/`stride` window over `n`.
pub fn pooled_size(n: usize, kernel: usize, stride: usize) -> Option<usize> {
    (kernel >= 1 && stride >= 1 && kernel <= n).then(|| (n - kernel) / stride + 1)
}

struct Pool2d {
    kernel: usize,
    stride: usize,
    mode: PoolMode,
    /// For max pooling, the flat input index chosen for each output entry.
    argmax: Vec<usize>,
}

/// Pools each `n × n` matrix with a `kernel × kernel` window moved by `stride`, then
/// symmetrises the result (symmetric windows of a symmetric input give a symmetric output up to
/// rounding).
pub fn pool2d(g: &mut Graph, x: Var, kernel: usize, stride: usize, mode: PoolMode) -> Result<Var> {
    let xv = g.value(x);
    let n = check_square("pool", xv)?;
    let m = pooled_size(n, kernel, stride).ok_or_else(|| {
        shape_err(
            "pool",
            format!("kernel {kernel}, stride {stride} on size {n}"),
        )
    })?;
    let [b, c, _, _] = xv.shape();
    let mut out = Tensor::zeros([b, c, m, m]);
    let mut argmax = vec![0usize; b * c * m * m];
    {
        let data = out.data_mut();
        for k in 0..b * c {
            let xk = xv.mat(k);
            for j in 0..m {
                for i in 0..m {
                    let (mut best, mut at, mut total) = (f64::NEG_INFINITY, 0, 0.0);
                    for q in 0..kernel {
                        for p in 0..kernel {
                            let (r, s) = (i * stride + p, j * stride + q);
                            let v = xk[(r, s)];
                            total += v;
                            if v > best {
                                best = v;
                                at = k * n * n + r + s * n;
                            }
                        }
                    }
                    let o = k * m * m + i + j * m;
                    data[o] = match mode {
                        PoolMode::Average => total / (kernel * kernel) as f64,
                        PoolMode::Max => best,
                    };
                    argmax[o] = at;
                }
            }
        }
    }
    par_fill(&mut out, |_, y| spd_linalg::dense::symmetrize_in_place(y));
    let rule = Pool2d {
        kernel,
        stride,
        mode,
        argmax,
    };
    Ok(g.push(out, vec![x], Box::new(rule)))
}

impl Backward for Pool2d {
    fn backward(&self, ctx: &BackwardContext<'_>, grad: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let xv = ctx.inputs[0];
        let n = xv.rows();
        let m = grad.rows();
        let mut gs = grad.clone();
        par_fill(&mut gs, |_, y| spd_linalg::dense::symmetrize_in_place(y));
        let mut d = Tensor::zeros(xv.shape());
        let data = d.data_mut();
        let area = (self.kernel * self.kernel) as f64;
        for k in 0..xv.count() {
            for j in 0..m {
                for i in 0..m {
                    let o = k * m * m + i + j * m;
                    let gv = gs.data()[o];
                    match self.mode {
                        PoolMode::Max => data[self.argmax[o]] += gv,
                        PoolMode::Average => {
                            for q in 0..self.kernel {
                                for p in 0..self.kernel {
                                    let (r, s) = (i * self.stride + p, j * self.stride + q);
                                    data[k * n * n + r + s * n] += gv / area;
                                }
                            }
                        }
                    }
                }
            }
        }
        Ok(vec![Some(d)])
    }
}

/// Log-domain pooling of SPD matrices: `exp(pool(log X))`.
pub fn log_pool(
    g: &mut Graph,
    x: Var,
    kernel: usize,
    stride: usize,
    mode: PoolMode,
) -> Result<Var> {
    let l = log_eig(g, x)?;
    let p = pool2d(g, l, kernel, stride, mode)?;
    exp_eig(g, p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{InputKind, check, config};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn average_log_pool_gradients(b in 1usize..3, c in 1usize..3, n in 2usize..9, kernel in 1usize..4, stride in 1usize..4, seed in any::<u64>()) {
            prop_assume!(kernel <= n);
            let x = [InputKind::Spd.sample([b, c, n, n], seed)];
            check(&x, |g, v| log_pool(g, v[0], kernel, stride, PoolMode::Average), seed)?;
        }

        /// Max pooling is differentiable where each window's maximum is unique (up to the mirror
        /// entry of a symmetric matrix, which moves with it): checked where the runner-up is at
        /// least 1e-2 below (the finite-difference step is about 1e-4).
        #[test]
        fn max_pool_gradients(b in 1usize..3, n in 2usize..9, kernel in 1usize..4, stride in 1usize..4, seed in any::<u64>()) {
            prop_assume!(kernel <= n);
            let x = [InputKind::Symmetric.sample([b, 1, n, n], seed)];
            let m = pooled_size(n, kernel, stride).unwrap();
            for k in 0..b {
                let xm = x[0].value.mat(k);
                for i in 0..m {
                    for j in 0..m {
                        let mut vals: Vec<(usize, usize, f64)> = Vec::new();
                        for p in 0..kernel {
                            for q in 0..kernel {
                                let (r, s) = (i * stride + p, j * stride + q);
                                vals.push((r.max(s), r.min(s), xm[(r, s)]));
                            }
                        }
                        vals.sort_by(|a, b| b.2.total_cmp(&a.2));
                        let top = vals[0];
                        let runner = vals.iter().find(|v| (v.0, v.1) != (top.0, top.1));
                        prop_assume!(runner.is_none_or(|r| top.2 - r.2 > 1e-2));
                    }
                }
            }
            check(&x, |g, v| pool2d(g, v[0], kernel, stride, PoolMode::Max), seed)?;
        }
    }

    #[test]
    fn sizes_follow_the_paper() {
        assert_eq!(pooled_size(20, 2, 2), Some(10));
        assert_eq!(pooled_size(93, 4, 3), Some(30));
        assert_eq!(pooled_size(100, 2, 2), Some(50));
        assert_eq!(pooled_size(3, 4, 1), None);
    }
}
