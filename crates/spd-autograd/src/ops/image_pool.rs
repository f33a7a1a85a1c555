//! Max and average pooling of multi-channel images with zero padding, and global average
//! pooling (DARTS's `MaxPool2d(3, s, padding=1)`, `AvgPool2d(3, s, padding=1,
//! count_include_pad=False)` and the classifier's `AdaptiveAvgPool2d(1)`). Every channel plane
//! is pooled on its own, in parallel over planes; pixel `(h, w)` of a plane is at `w·H + h`.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{AutogradError, Result};
use crate::graph::{Backward, BackwardContext, Graph, Var};
use crate::ops::pool::PoolMode;
use crate::tensor::Tensor;

/// Window size, stride and padding of a 2-D pooling (the same along both axes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pool2dConfig {
    /// Window width, ≥ 1.
    pub kernel: usize,
    /// Step between windows, ≥ 1.
    pub stride: usize,
    /// Padding on every side, at most `kernel / 2` (so every window holds an input pixel).
    /// Padded pixels never win a max and are not counted by the average.
    pub padding: usize,
}

impl Pool2dConfig {
    /// Output size `⌊(n + 2p − k)/s⌋ + 1` along an axis of size `n`, or `None` when the
    /// configuration is invalid or the window does not fit.
    pub fn output_size(&self, n: usize) -> Option<usize> {
        let ok = self.kernel >= 1 && self.stride >= 1 && 2 * self.padding <= self.kernel;
        (ok && n + 2 * self.padding >= self.kernel)
            .then(|| (n + 2 * self.padding - self.kernel) / self.stride + 1)
    }

    /// Input indices of window `o` along an axis of size `n` (the padding cut off).
    fn window(&self, o: usize, n: usize) -> std::ops::Range<usize> {
        let start = (o * self.stride) as isize - self.padding as isize;
        let lo = start.max(0) as usize;
        let hi = ((start + self.kernel as isize).max(0) as usize).min(n);
        lo..hi.max(lo)
    }
}

struct Pool {
    cfg: Pool2dConfig,
    mode: PoolMode,
    /// Max pooling: for every output pixel, the index within its input plane of the maximum.
    argmax: Vec<usize>,
}

/// Pools each `H × W` plane over `kernel × kernel` windows: output `[B, C, H_o, W_o]`.
/// [`PoolMode::Max`] takes the first maximum in column-major window order (NaN wins, as in
/// PyTorch); [`PoolMode::Average`] divides by the number of input pixels in the window
/// (`count_include_pad = false`).
pub fn pool2d_padded(g: &mut Graph, x: Var, cfg: Pool2dConfig, mode: PoolMode) -> Result<Var> {
    let xv = g.value(x);
    let [b, c, h, w] = xv.shape();
    let (Some(ho), Some(wo)) = (cfg.output_size(h), cfg.output_size(w)) else {
        return Err(AutogradError::Invalid(format!(
            "pool2d: {cfg:?} does not fit an input of {h} × {w} (needs padding ≤ kernel/2)"
        )));
    };
    let (in_len, out_len) = (h * w, ho * wo);
    let mut out = Tensor::zeros([b, c, ho, wo]);
    let mut argmax = vec![
        0usize;
        if mode == PoolMode::Max {
            b * c * out_len
        } else {
            0
        }
    ];
    if out_len > 0 && in_len > 0 {
        let planes = xv
            .data()
            .par_chunks(in_len)
            .zip(out.data_mut().par_chunks_mut(out_len));
        match mode {
            PoolMode::Max => planes
                .zip(argmax.par_chunks_mut(out_len))
                .for_each(|((x, y), am)| {
                    for ow in 0..wo {
                        let cols = cfg.window(ow, w);
                        for oh in 0..ho {
                            let rows = cfg.window(oh, h);
                            let (mut best, mut at) = (f64::NEG_INFINITY, usize::MAX);
                            for s in cols.clone() {
                                for r in rows.clone() {
                                    let v = x[s * h + r];
                                    if at == usize::MAX
                                        || v > best
                                        || (v.is_nan() && !best.is_nan())
                                    {
                                        (best, at) = (v, s * h + r);
                                    }
                                }
                            }
                            y[ow * ho + oh] = best;
                            am[ow * ho + oh] = at;
                        }
                    }
                }),
            PoolMode::Average => planes.for_each(|(x, y)| {
                for ow in 0..wo {
                    let cols = cfg.window(ow, w);
                    for oh in 0..ho {
                        let rows = cfg.window(oh, h);
                        let mut total = 0.0;
                        for s in cols.clone() {
                            total += x[s * h + rows.start..s * h + rows.end].iter().sum::<f64>();
                        }
                        y[ow * ho + oh] = total / (rows.len() * cols.len()) as f64;
                    }
                }
            }),
        }
    }
    Ok(g.push(out, vec![x], Box::new(Pool { cfg, mode, argmax })))
}

/// Max pooling, `padding ≤ kernel/2` ([`pool2d_padded`] with [`PoolMode::Max`]).
pub fn max_pool2d(
    g: &mut Graph,
    x: Var,
    kernel: usize,
    stride: usize,
    padding: usize,
) -> Result<Var> {
    let cfg = Pool2dConfig {
        kernel,
        stride,
        padding,
    };
    pool2d_padded(g, x, cfg, PoolMode::Max)
}

/// Average pooling over the input pixels of each window (`count_include_pad = false`),
/// `padding ≤ kernel/2` ([`pool2d_padded`] with [`PoolMode::Average`]).
pub fn avg_pool2d(
    g: &mut Graph,
    x: Var,
    kernel: usize,
    stride: usize,
    padding: usize,
) -> Result<Var> {
    let cfg = Pool2dConfig {
        kernel,
        stride,
        padding,
    };
    pool2d_padded(g, x, cfg, PoolMode::Average)
}

impl Backward for Pool {
    fn backward(&self, ctx: &BackwardContext<'_>, grad: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let xv = ctx.inputs[0];
        let [_, _, h, w] = xv.shape();
        let [_, _, ho, wo] = grad.shape();
        let (in_len, out_len) = (h * w, ho * wo);
        let mut d = Tensor::zeros(xv.shape());
        if in_len == 0 || out_len == 0 {
            return Ok(vec![Some(d)]);
        }
        let planes = d
            .data_mut()
            .par_chunks_mut(in_len)
            .zip(grad.data().par_chunks(out_len));
        match self.mode {
            PoolMode::Max => {
                planes
                    .zip(self.argmax.par_chunks(out_len))
                    .for_each(|((dx, gy), am)| {
                        for (gv, &at) in gy.iter().zip(am) {
                            dx[at] += gv;
                        }
                    })
            }
            PoolMode::Average => planes.for_each(|(dx, gy)| {
                for ow in 0..wo {
                    let cols = self.cfg.window(ow, w);
                    for oh in 0..ho {
                        let rows = self.cfg.window(oh, h);
                        let share = gy[ow * ho + oh] / (rows.len() * cols.len()) as f64;
                        for s in cols.clone() {
                            for v in &mut dx[s * h + rows.start..s * h + rows.end] {
                                *v += share;
                            }
                        }
                    }
                }
            }),
        }
        Ok(vec![Some(d)])
    }
}

struct GlobalAvg;

/// Mean of every channel plane: `[B, C, H, W] → [B, C, 1, 1]`.
pub fn global_avg_pool2d(g: &mut Graph, x: Var) -> Var {
    let xv = g.value(x);
    let [b, c, h, w] = xv.shape();
    let len = h * w;
    let mut out = Tensor::zeros([b, c, 1, 1]);
    if len > 0 {
        for (y, plane) in out.data_mut().iter_mut().zip(xv.data().chunks(len)) {
            *y = plane.iter().sum::<f64>() / len as f64;
        }
    }
    g.push(out, vec![x], Box::new(GlobalAvg))
}

impl Backward for GlobalAvg {
    fn backward(&self, ctx: &BackwardContext<'_>, grad: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let xv = ctx.inputs[0];
        let len = xv.matrix_len();
        let mut d = Tensor::zeros(xv.shape());
        if len > 0 {
            for (plane, gv) in d.data_mut().chunks_mut(len).zip(grad.data()) {
                plane.fill(gv / len as f64);
            }
        }
        Ok(vec![Some(d)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{InputKind, check, config};
    use crate::ops::conv::valid_range;
    use proptest::prelude::*;

    fn sample(shape: [usize; 4], seed: u64) -> Tensor {
        InputKind::General.sample(shape, seed).value
    }

    /// Naive pooling straight from the definition: every window position over the padded
    /// plane, padded pixels skipped.
    fn reference(x: &Tensor, cfg: Pool2dConfig, mode: PoolMode) -> Tensor {
        let [b, c, h, w] = x.shape();
        let (ho, wo) = (cfg.output_size(h).unwrap(), cfg.output_size(w).unwrap());
        let mut out = Tensor::zeros([b, c, ho, wo]);
        for k in 0..b * c {
            let xm = x.mat(k);
            let mut y = out.mat_mut(k);
            for oh in 0..ho {
                for ow in 0..wo {
                    let mut vals = Vec::new();
                    for i in 0..cfg.kernel {
                        for j in 0..cfg.kernel {
                            let r = (oh * cfg.stride + i) as isize - cfg.padding as isize;
                            let s = (ow * cfg.stride + j) as isize - cfg.padding as isize;
                            if (0..h as isize).contains(&r) && (0..w as isize).contains(&s) {
                                vals.push(xm[(r as usize, s as usize)]);
                            }
                        }
                    }
                    y[(oh, ow)] = match mode {
                        PoolMode::Max => vals.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                        PoolMode::Average => vals.iter().sum::<f64>() / vals.len() as f64,
                    };
                }
            }
        }
        out
    }

    /// Whether every window's maximum beats its runner-up by more than `gap`.
    fn maxima_are_separated(x: &Tensor, cfg: Pool2dConfig, gap: f64) -> bool {
        let [b, c, h, w] = x.shape();
        let (ho, wo) = (cfg.output_size(h).unwrap(), cfg.output_size(w).unwrap());
        (0..b * c).all(|k| {
            let xm = x.mat(k);
            (0..ho).all(|oh| {
                (0..wo).all(|ow| {
                    let mut vals: Vec<f64> = Vec::new();
                    for s in cfg.window(ow, w) {
                        for r in cfg.window(oh, h) {
                            vals.push(xm[(r, s)]);
                        }
                    }
                    vals.sort_by(|a, b| b.total_cmp(a));
                    vals.len() < 2 || vals[0] - vals[1] > gap
                })
            })
        })
    }

    fn geometry() -> impl Strategy<Value = (usize, usize, Pool2dConfig)> {
        (1usize..8, 1usize..8, 1usize..5, 1usize..4, 0usize..3).prop_filter_map(
            "window fits",
            |(h, w, kernel, stride, padding)| {
                let cfg = Pool2dConfig {
                    kernel,
                    stride,
                    padding,
                };
                (cfg.output_size(h).is_some() && cfg.output_size(w).is_some())
                    .then_some((h, w, cfg))
            },
        )
    }

    proptest! {
        #![proptest_config(config())]

        /// Values equal the definition on odd and even sizes, strides 1–3, padding up to
        /// kernel/2: the max exactly; the average up to summation order (the reference sums a
        /// window row by row, the op column by column): at most 16 Gaussian values of size
        /// ≲ 5, so ≤ 16² ε 5 ≈ 3e-13 in the worst case; 1e-12 (1 + |y|) is asserted.
        #[test]
        fn pooling_matches_the_definition(b in 1usize..3, c in 1usize..3, (h, w, cfg) in geometry(), seed in any::<u64>()) {
            let x = sample([b, c, h, w], seed);
            for mode in [PoolMode::Max, PoolMode::Average] {
                let mut g = Graph::new();
                let xv = g.constant(x.clone());
                let y = pool2d_padded(&mut g, xv, cfg, mode).unwrap();
                let expected = reference(&x, cfg, mode);
                prop_assert_eq!(g.value(y).shape(), expected.shape());
                for (a, e) in g.value(y).data().iter().zip(expected.data()) {
                    prop_assert!((a - e).abs() <= 1e-12 * (1.0 + e.abs()), "{mode:?}: {a} vs {e}");
                }
            }
        }

        /// Average pooling's backward against finite differences (a linear op: the default
        /// 1e-6 relative tolerance has ample margin).
        #[test]
        fn avg_pool_gradients(b in 1usize..3, c in 1usize..3, (h, w, cfg) in geometry(), seed in any::<u64>()) {
            let x = [InputKind::General.sample([b, c, h, w], seed)];
            check(&x, |g, v| pool2d_padded(g, v[0], cfg, PoolMode::Average), seed)?;
        }

        /// Max pooling's backward against finite differences where every window's maximum
        /// leads its runner-up by more than 1e-2 max(1, max|x|), five times the largest move of
        /// an entry in the check's stencil (`2h = 2e-4 max(1, max|x|)`), so no argmax changes.
        #[test]
        fn max_pool_gradients_away_from_ties(b in 1usize..3, c in 1usize..3, (h, w, cfg) in geometry(), seed in any::<u64>()) {
            let x = InputKind::General.sample([b, c, h, w], seed);
            let top = x.value.data().iter().fold(1.0f64, |a, v| a.max(v.abs()));
            prop_assume!(maxima_are_separated(&x.value, cfg, 1e-2 * top));
            check(&[x], |g, v| pool2d_padded(g, v[0], cfg, PoolMode::Max), seed)?;
        }

        /// Global average pooling's backward against finite differences (linear).
        #[test]
        fn global_avg_pool_gradients(b in 1usize..3, c in 1usize..4, h in 1usize..6, w in 1usize..6, seed in any::<u64>()) {
            let x = [InputKind::General.sample([b, c, h, w], seed)];
            check(&x, |g, v| Ok(global_avg_pool2d(g, v[0])), seed)?;
        }
    }

    /// DARTS's 3×3, stride 1, padding 1 average on a 2 × 2 plane: every window holds all four
    /// pixels (count_include_pad = false divides by 4, not 9); the max is the plane's max.
    #[test]
    fn darts_pools_on_a_small_plane_exclude_the_padding() {
        let x = Tensor::from_vec([1, 1, 2, 2], vec![1.0, 2.0, 3.0, 4.0]).unwrap();
        let mut g = Graph::new();
        let xv = g.constant(x);
        let a = avg_pool2d(&mut g, xv, 3, 1, 1).unwrap();
        assert_eq!(g.value(a).data(), &[2.5; 4]);
        let m = max_pool2d(&mut g, xv, 3, 1, 1).unwrap();
        assert_eq!(g.value(m).data(), &[4.0; 4]);
        let s = avg_pool2d(&mut g, xv, 3, 2, 1).unwrap();
        assert_eq!(g.value(s).shape(), [1, 1, 1, 1]);
        let gp = global_avg_pool2d(&mut g, xv);
        assert_eq!(g.value(gp).data(), &[2.5]);
        assert!(
            avg_pool2d(&mut g, xv, 2, 1, 2).is_err(),
            "padding above kernel/2"
        );
    }

    /// The pooled size is the convolution's with dilation 1, and `valid_range` agrees with the
    /// windows (both derived from the same geometry).
    #[test]
    fn pooled_size_is_the_convolution_size() {
        for n in 1..12 {
            for kernel in 1..5 {
                for stride in 1..4 {
                    for padding in 0..=kernel / 2 {
                        let pool = Pool2dConfig {
                            kernel,
                            stride,
                            padding,
                        };
                        let conv = crate::ops::conv::Conv2dConfig {
                            stride,
                            padding,
                            ..Default::default()
                        };
                        assert_eq!(pool.output_size(n), conv.output_size(n, kernel));
                        if let Some(m) = pool.output_size(n) {
                            for o in 0..m {
                                let win = pool.window(o, n);
                                let first = (0..kernel).find(|&t| {
                                    valid_range(n, m, t as isize - padding as isize, stride)
                                        .contains(&o)
                                });
                                assert_eq!(
                                    first.map(|t| (o * stride + t) - padding),
                                    Some(win.start)
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}
