//! 2-D pooling of each matrix seen as a one-channel image, and the log-domain pooling of SPD
//! matrices built on it: `exp(pool(log X))` (SPDNetNAS's AvgPooling2/MaxPooling reduced ops).

use super::{check_square, par_fill};
use crate::error::{Result, shape_err};
use crate::graph::{Backward, BackwardContext, Graph, Var};
use crate::ops::eig::{exp_eig_capped, log_eig};
use crate::tensor::Tensor;
use spd_linalg::CappedExp;

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

/// Pooling windows along one axis, the same along rows and columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Windows {
    /// `[i·stride, i·stride + kernel)`, `⌊(n − kernel)/stride⌋ + 1` of them.
    Regular {
        /// Window width.
        kernel: usize,
        /// Step between windows.
        stride: usize,
    },
    /// `output` windows `[⌊i n/m⌋, ⌈(i+1) n/m⌉)` covering all `n` indices (adaptive pooling):
    /// every window is `⌈n/m⌉` or `⌈n/m⌉ + 1` wide.
    Adaptive {
        /// Number of windows `m`.
        output: usize,
    },
}

impl Windows {
    /// The index ranges over an axis of length `n`, or `None` if the windows do not fit.
    pub fn ranges(&self, n: usize) -> Option<Vec<std::ops::Range<usize>>> {
        match *self {
            Windows::Regular { kernel, stride } => pooled_size(n, kernel, stride)
                .map(|m| (0..m).map(|i| i * stride..i * stride + kernel).collect()),
            Windows::Adaptive { output } => (output >= 1 && output <= n).then(|| {
                (0..output)
                    .map(|i| (i * n) / output..((i + 1) * n).div_ceil(output))
                    .collect()
            }),
        }
    }
}

struct Pool2d {
    ranges: Vec<std::ops::Range<usize>>,
    mode: PoolMode,
    /// For max pooling, the flat input index chosen for each output entry.
    argmax: Vec<usize>,
}

/// Pools each `n × n` matrix over the windows `ranges[i] × ranges[j]`, then symmetrises the
/// result (symmetric windows of a symmetric input give a symmetric output up to rounding).
pub fn pool2d(g: &mut Graph, x: Var, windows: Windows, mode: PoolMode) -> Result<Var> {
    let xv = g.value(x);
    let n = check_square("pool", xv)?;
    let ranges = windows
        .ranges(n)
        .ok_or_else(|| shape_err("pool", format!("windows {windows:?} on size {n}")))?;
    let m = ranges.len();
    let [b, c, _, _] = xv.shape();
    let mut out = Tensor::zeros([b, c, m, m]);
    let mut argmax = vec![0usize; b * c * m * m];
    {
        let data = out.data_mut();
        for k in 0..b * c {
            let xk = xv.mat(k);
            for (j, cols) in ranges.iter().enumerate() {
                for (i, rows) in ranges.iter().enumerate() {
                    let (mut best, mut at, mut total) = (f64::NEG_INFINITY, 0, 0.0);
                    for s in cols.clone() {
                        for r in rows.clone() {
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
                        PoolMode::Average => total / (rows.len() * cols.len()) as f64,
                        PoolMode::Max => best,
                    };
                    argmax[o] = at;
                }
            }
        }
    }
    par_fill(&mut out, |_, y| spd_linalg::dense::symmetrize_in_place(y));
    let rule = Pool2d {
        ranges,
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
        for k in 0..xv.count() {
            for (j, cols) in self.ranges.iter().enumerate() {
                for (i, rows) in self.ranges.iter().enumerate() {
                    let o = k * m * m + i + j * m;
                    let gv = gs.data()[o];
                    match self.mode {
                        PoolMode::Max => data[self.argmax[o]] += gv,
                        PoolMode::Average => {
                            let area = (rows.len() * cols.len()) as f64;
                            for s in cols.clone() {
                                for r in rows.clone() {
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

/// Log-domain pooling of SPD matrices: `exp(pool(log X))`, the exponential capped to a
/// condition number of `e^τ` ([`exp_eig_capped`]): max pooling does not keep the pooled
/// log-spectrum inside the input's (2×2 windows on `κ = 1e8` inputs spread it to 59, i.e.
/// `κ = e^59`), and without the cap its exponential is numerically indefinite.
pub fn log_pool_of_log(g: &mut Graph, log_x: Var, windows: Windows, mode: PoolMode) -> Result<Var> {
    let p = pool2d(g, log_x, windows, mode)?;
    exp_eig_capped(g, p, CappedExp::default())
}

/// [`log_pool_of_log`] from `X` itself.
pub fn log_pool(g: &mut Graph, x: Var, windows: Windows, mode: PoolMode) -> Result<Var> {
    let l = log_eig(g, x)?;
    log_pool_of_log(g, l, windows, mode)
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
            check(&x, |g, v| log_pool(g, v[0], Windows::Regular { kernel, stride }, PoolMode::Average), seed)?;
        }

        #[test]
        fn adaptive_average_log_pool_gradients(b in 1usize..3, n in 2usize..10, m in 1usize..10, seed in any::<u64>()) {
            prop_assume!(m <= n);
            let x = [InputKind::Spd.sample([b, 1, n, n], seed)];
            check(&x, |g, v| log_pool(g, v[0], Windows::Adaptive { output: m }, PoolMode::Average), seed)?;
        }

        /// Adaptive windows cover every index, in order, each `⌈n/m⌉` or `⌈n/m⌉ + 1` wide.
        #[test]
        fn adaptive_windows_cover_the_axis_locally(n in 1usize..200, m in 1usize..200) {
            prop_assume!(m <= n);
            let r = Windows::Adaptive { output: m }.ranges(n).unwrap();
            prop_assert_eq!(r.len(), m);
            prop_assert_eq!(r[0].start, 0);
            prop_assert_eq!(r[m - 1].end, n);
            for w in r.windows(2) {
                prop_assert!(w[0].start <= w[1].start && w[1].start <= w[0].end);
            }
            let widest = n.div_ceil(m);
            prop_assert!(r.iter().all(|w| w.len() >= n / m && w.len() <= widest + 1));
        }

        /// Max pooling is differentiable where each window's maximum is unique (up to the mirror
        /// entry of a symmetric matrix, which moves with it): checked where the runner-up is at
        /// least 1e-2 below (the finite-difference step is about 1e-4).
        #[test]
        fn max_pool_gradients(b in 1usize..3, n in 2usize..9, kernel in 1usize..4, stride in 1usize..4, seed in any::<u64>()) {
            prop_assume!(kernel <= n);
            let x = [InputKind::Symmetric.sample([b, 1, n, n], seed)];
            for k in 0..b {
                let xm = x[0].value.mat(k);
                let ranges = Windows::Regular { kernel, stride }.ranges(n).unwrap();
                for rows in &ranges {
                    for cols in &ranges {
                        let mut vals: Vec<(usize, usize, f64)> = Vec::new();
                        for r in rows.clone() {
                            for s in cols.clone() {
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
            check(&x, |g, v| pool2d(g, v[0], Windows::Regular { kernel, stride }, PoolMode::Max), seed)?;
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
