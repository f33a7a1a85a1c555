//! 2-D convolution (cross-correlation, as in PyTorch's `Conv2d`) of multi-channel images, for
//! the Euclidean baselines (DARTS, FairDARTS) run on the matrix logarithms of SPD inputs.
//!
//! Layout. An image batch is a [`Tensor`] `[B, C, H, W]` whose matrices are the `H × W`
//! channel planes, column-major like every matrix of this crate: pixel `(h, w)` of plane `k` is
//! `data[k·H·W + w·H + h]`. The weight is a tensor `[C_out, C_in/groups, k, k]` whose matrices
//! are the `k × k` kernels, column-major too: tap `(i, j)` (row offset `i` along `H`, column
//! offset `j` along `W`) is at `j·k + i` of its kernel and multiplies
//! `x[h·s + i·d − p, w·s + j·d − p]`. (A PyTorch kernel, row-major, is the transpose of its
//! matrix here.) The bias is `[1, C_out, 1, 1]`.
//!
//! Algorithm. Per sample, in parallel over the batch: layers with more than one input or
//! output channel per group (dense, grouped and 1×1 convolutions) unfold the input (im2col: one
//! row per input channel and tap, one column per output pixel; skipped for 1×1 stride-1
//! unpadded layers, whose unfolding is the input itself) and multiply by the weight with faer;
//! depthwise layers (one input and one output channel per group) run direct loops, one axpy of
//! an input plane per kernel tap, where a `1 × k²` by `k² × P` product is all overhead. Both
//! were timed (forward + backward, batch 30, `examples/euclid_step.rs`) on the DARTS layer
//! shapes over 20×20, 93×93 and 6×6 inputs: direct loops are 1.3–3.5× faster on depthwise
//! layers, im2col + faer 1.2–9× faster on everything else. The weight gradient is computed per
//! sample and summed in sample order after the parallel loop, so results are bit-identical for
//! any number of threads.

use std::ops::Range;

use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{AutogradError, Result, shape_err};
use crate::graph::{Backward, BackwardContext, Graph, Var};
use crate::tensor::Tensor;

/// Stride, zero padding, dilation and groups of a 2-D convolution (the same along both axes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conv2dConfig {
    /// Step between output pixels, ≥ 1.
    pub stride: usize,
    /// Zeros added on every side of the input.
    pub padding: usize,
    /// Spacing between kernel taps, ≥ 1 (1: a dense kernel).
    pub dilation: usize,
    /// Channel groups, ≥ 1, dividing `C_in` and `C_out` (`groups = C_in`: depthwise).
    pub groups: usize,
}

impl Default for Conv2dConfig {
    fn default() -> Self {
        Self {
            stride: 1,
            padding: 0,
            dilation: 1,
            groups: 1,
        }
    }
}

impl Conv2dConfig {
    /// Output size `⌊(n + 2p − d(k−1) − 1)/s⌋ + 1` along an axis of size `n` for a kernel of
    /// width `kernel`, or `None` when the dilated kernel does not fit in the padded axis or a
    /// parameter is zero.
    pub fn output_size(&self, n: usize, kernel: usize) -> Option<usize> {
        if kernel == 0 || self.stride == 0 || self.dilation == 0 {
            return None;
        }
        let span = self.dilation * (kernel - 1) + 1;
        let padded = n + 2 * self.padding;
        (padded >= span).then(|| (padded - span) / self.stride + 1)
    }
}

/// Output indices `o < n_out` whose input index `o·s + off` lies in `[0, n_in)`.
pub(crate) fn valid_range(n_in: usize, n_out: usize, off: isize, s: usize) -> Range<usize> {
    let lo = if off >= 0 {
        0
    } else {
        off.unsigned_abs().div_ceil(s)
    };
    let top = n_in as isize - 1 - off;
    if top < 0 {
        return lo..lo;
    }
    let hi = n_out.min(top as usize / s + 1);
    lo..hi.max(lo)
}

/// Sizes of one convolution.
#[derive(Debug, Clone, Copy)]
struct Geom {
    batch: usize,
    c_in: usize,
    c_out: usize,
    h: usize,
    w: usize,
    k: usize,
    ho: usize,
    wo: usize,
    cfg: Conv2dConfig,
}

impl Geom {
    fn cin_g(&self) -> usize {
        self.c_in / self.cfg.groups
    }
    fn cout_g(&self) -> usize {
        self.c_out / self.cfg.groups
    }
    fn taps(&self) -> usize {
        self.k * self.k
    }
    fn pixels(&self) -> usize {
        self.ho * self.wo
    }
    fn in_len(&self) -> usize {
        self.c_in * self.h * self.w
    }
    fn out_len(&self) -> usize {
        self.c_out * self.pixels()
    }
    fn weight_len(&self) -> usize {
        self.c_out * self.cin_g() * self.taps()
    }
    /// Offset `t·d − p` of tap `t` on the input axis.
    fn off(&self, t: usize) -> isize {
        (t * self.cfg.dilation) as isize - self.cfg.padding as isize
    }
    /// Output rows reading an in-bounds input row through tap row `i`.
    fn rows(&self, i: usize) -> Range<usize> {
        valid_range(self.h, self.ho, self.off(i), self.cfg.stride)
    }
    /// Output columns reading an in-bounds input column through tap column `j`.
    fn cols(&self, j: usize) -> Range<usize> {
        valid_range(self.w, self.wo, self.off(j), self.cfg.stride)
    }
    /// Whether the unfolded input is the input itself (1×1 kernel, stride 1, no padding).
    fn unfold_is_identity(&self) -> bool {
        self.k == 1 && self.cfg.stride == 1 && self.cfg.padding == 0
    }
    /// Whether `algorithm` runs direct loops here.
    fn direct(&self, algorithm: ConvAlgorithm) -> bool {
        match algorithm {
            ConvAlgorithm::Direct => true,
            ConvAlgorithm::Im2colGemm => false,
            ConvAlgorithm::Auto => self.cin_g() == 1 && self.cout_g() == 1,
        }
    }
    /// Visits every (output pixel, input pixel) pair of input plane `ci`'s tap `(i, j)`:
    /// `f(out_offset, in_offset, len, in_step)` for each output column, where the pairs are
    /// `(out_offset + t, in_offset + t·in_step)` for `t < len`.
    fn for_each_run(&self, i: usize, j: usize, mut f: impl FnMut(usize, usize, usize, usize)) {
        let (rows, cols) = (self.rows(i), self.cols(j));
        if rows.is_empty() {
            return;
        }
        let s = self.cfg.stride;
        let row0 = (rows.start * s) as isize + self.off(i);
        for ow in cols {
            let col_in = (ow * s) as isize + self.off(j);
            f(
                ow * self.ho + rows.start,
                col_in as usize * self.h + row0 as usize,
                rows.len(),
                s,
            );
        }
    }
}

/// How [`conv2d_with`] computes a convolution; the result is the same up to rounding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ConvAlgorithm {
    /// Direct loops for depthwise layers (one input and one output channel per group),
    /// im2col + matrix product otherwise: the faster of the two on the shapes measured (see
    /// the [module docs](self)).
    #[default]
    Auto,
    /// Direct loops: every kernel tap is an axpy of an input plane into an output plane.
    Direct,
    /// Unfold the input (im2col) and multiply by the weight (faer).
    Im2colGemm,
}

struct Conv2d {
    geom: Geom,
    has_bias: bool,
    algorithm: ConvAlgorithm,
}

/// `y[b, o] = bias[o] + Σ_{c ∈ group(o)} Σ_{i,j} w[o, c, i, j] · x[b, c, h·s + i·d − p,
/// w·s + j·d − p]`: input `[B, C_in, H, W]`, weight `[C_out, C_in/groups, k, k]` (layout in the
/// [module docs](self)), optional bias `[1, C_out, 1, 1]`; output `[B, C_out, H_o, W_o]` with
/// sizes from [`Conv2dConfig::output_size`].
pub fn conv2d(
    g: &mut Graph,
    x: Var,
    weight: Var,
    bias: Option<Var>,
    cfg: Conv2dConfig,
) -> Result<Var> {
    conv2d_with(g, x, weight, bias, cfg, ConvAlgorithm::Auto)
}

/// [`conv2d`] computed by a chosen algorithm (for benchmarks and cross-checks).
pub fn conv2d_with(
    g: &mut Graph,
    x: Var,
    weight: Var,
    bias: Option<Var>,
    cfg: Conv2dConfig,
    algorithm: ConvAlgorithm,
) -> Result<Var> {
    let (xv, wv) = (g.value(x), g.value(weight));
    let [batch, c_in, h, w] = xv.shape();
    let [c_out, cin_g, k, k2] = wv.shape();
    let bad = |detail: String| Err(shape_err("conv2d", detail));
    if cfg.groups == 0 || c_in % cfg.groups != 0 || c_out % cfg.groups != 0 {
        return bad(format!(
            "groups {} must divide C_in {c_in} and C_out {c_out}",
            cfg.groups
        ));
    }
    if k != k2 || cin_g != c_in / cfg.groups {
        return bad(format!(
            "weight {:?} for input {:?} and {} groups (needs [C_out, C_in/groups, k, k])",
            wv.shape(),
            xv.shape(),
            cfg.groups
        ));
    }
    let (Some(ho), Some(wo)) = (cfg.output_size(h, k), cfg.output_size(w, k)) else {
        return Err(AutogradError::Invalid(format!(
            "conv2d: kernel {k} with {cfg:?} does not fit an input of {h} × {w}"
        )));
    };
    let bv = match bias {
        Some(b) => {
            let bv = g.value(b);
            if bv.shape() != [1, c_out, 1, 1] {
                return bad(format!(
                    "bias {:?}, expected [1, {c_out}, 1, 1]",
                    bv.shape()
                ));
            }
            Some(bv.data())
        }
        None => None,
    };
    let geom = Geom {
        batch,
        c_in,
        c_out,
        h,
        w,
        k,
        ho,
        wo,
        cfg,
    };
    let mut out = Tensor::zeros([batch, c_out, ho, wo]);
    let (xd, wd) = (xv.data(), wv.data());
    if geom.out_len() > 0 {
        out.data_mut()
            .par_chunks_mut(geom.out_len())
            .enumerate()
            .for_each_init(Vec::new, |cols, (b, y)| {
                let xb = &xd[b * geom.in_len()..(b + 1) * geom.in_len()];
                if let Some(bias) = bv {
                    for (o, plane) in y.chunks_mut(geom.pixels()).enumerate() {
                        plane.fill(bias[o]);
                    }
                }
                if geom.direct(algorithm) {
                    forward_direct(&geom, xb, wd, y);
                } else {
                    forward_gemm(&geom, xb, wd, y, cols);
                }
            });
    }
    let mut parents = vec![x, weight];
    parents.extend(bias);
    let rule = Conv2d {
        geom,
        has_bias: bias.is_some(),
        algorithm,
    };
    Ok(g.push(out, parents, Box::new(rule)))
}

/// `y += conv(x, w)` for one sample, direct loops: each tap of each kernel is an axpy of a
/// (strided) input plane into an output plane.
fn forward_direct(geom: &Geom, xb: &[f64], wd: &[f64], y: &mut [f64]) {
    let (hw, taps, k) = (geom.h * geom.w, geom.taps(), geom.k);
    let (cin_g, cout_g) = (geom.cin_g(), geom.cout_g());
    for (o, plane) in y.chunks_mut(geom.pixels()).enumerate() {
        for cl in 0..cin_g {
            let c = (o / cout_g) * cin_g + cl;
            let xc = &xb[c * hw..(c + 1) * hw];
            let kernel = &wd[(o * cin_g + cl) * taps..][..taps];
            for j in 0..k {
                for i in 0..k {
                    let wv = kernel[j * k + i];
                    geom.for_each_run(i, j, |out0, in0, len, step| {
                        let dst = &mut plane[out0..out0 + len];
                        if step == 1 {
                            for (d, v) in dst.iter_mut().zip(&xc[in0..in0 + len]) {
                                *d += wv * v;
                            }
                        } else {
                            for (t, d) in dst.iter_mut().enumerate() {
                                *d += wv * xc[in0 + t * step];
                            }
                        }
                    });
                }
            }
        }
    }
}

/// Unfolds one sample: row `c·k² + j·k + i` holds, for every output pixel, the input pixel
/// that tap `(i, j)` of input channel `c` reads (0 in the padding).
fn im2col(geom: &Geom, xb: &[f64], cols: &mut Vec<f64>) {
    let (p, hw, taps, k) = (geom.pixels(), geom.h * geom.w, geom.taps(), geom.k);
    cols.clear();
    cols.resize(geom.c_in * taps * p, 0.0);
    for c in 0..geom.c_in {
        let xc = &xb[c * hw..(c + 1) * hw];
        for j in 0..k {
            for i in 0..k {
                let row = &mut cols[(c * taps + j * k + i) * p..][..p];
                geom.for_each_run(i, j, |out0, in0, len, step| {
                    for (t, d) in row[out0..out0 + len].iter_mut().enumerate() {
                        *d = xc[in0 + t * step];
                    }
                });
            }
        }
    }
}

/// Scatter-adds unfolded gradients back onto the input planes (the adjoint of [`im2col`]).
fn col2im(geom: &Geom, dcols: &[f64], dx: &mut [f64]) {
    let (p, hw, taps, k) = (geom.pixels(), geom.h * geom.w, geom.taps(), geom.k);
    for c in 0..geom.c_in {
        let dxc = &mut dx[c * hw..(c + 1) * hw];
        for j in 0..k {
            for i in 0..k {
                let row = &dcols[(c * taps + j * k + i) * p..][..p];
                geom.for_each_run(i, j, |out0, in0, len, step| {
                    for (t, v) in row[out0..out0 + len].iter().enumerate() {
                        dxc[in0 + t * step] += v;
                    }
                });
            }
        }
    }
}

/// Row-major `rows × cols` view of `data`.
fn rm(data: &[f64], rows: usize, cols: usize) -> MatRef<'_, f64> {
    MatRef::from_row_major_slice(&data[..rows * cols], rows, cols)
}

fn rm_mut(data: &mut [f64], rows: usize, cols: usize) -> MatMut<'_, f64> {
    MatMut::from_row_major_slice_mut(&mut data[..rows * cols], rows, cols)
}

/// `y += conv(x, w)` for one sample: per group, `Y_g (C_out/g × P) += W_g (C_out/g × K) ·
/// cols_g (K × P)` with `K = (C_in/g)·k²`.
fn forward_gemm(geom: &Geom, xb: &[f64], wd: &[f64], y: &mut [f64], cols: &mut Vec<f64>) {
    let cols: &[f64] = if geom.unfold_is_identity() {
        xb
    } else {
        im2col(geom, xb, cols);
        cols
    };
    let (p, cout_g, kg) = (geom.pixels(), geom.cout_g(), geom.cin_g() * geom.taps());
    for grp in 0..geom.cfg.groups {
        faer::linalg::matmul::matmul(
            rm_mut(&mut y[grp * cout_g * p..], cout_g, p),
            Accum::Add,
            rm(&wd[grp * cout_g * kg..], cout_g, kg),
            rm(&cols[grp * kg * p..], kg, p),
            1.0,
            Par::Seq,
        );
    }
}

impl Backward for Conv2d {
    fn backward(&self, ctx: &BackwardContext<'_>, grad: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let geom = self.geom;
        let (xv, wv) = (ctx.inputs[0], ctx.inputs[1]);
        let (need_x, need_w) = (ctx.needs[0], ctx.needs[1]);
        let need_b = self.has_bias && ctx.needs[2];
        let (xd, wd, gd) = (xv.data(), wv.data(), grad.data());
        // Per sample: the weight gradient's share (then the bias's), summed below in sample
        // order.
        let partial_len = if need_w { geom.weight_len() } else { 0 };
        let sample = |scratch: &mut (Vec<f64>, Vec<f64>), b: usize, dx: Option<&mut [f64]>| {
            let xb = &xd[b * geom.in_len()..(b + 1) * geom.in_len()];
            let gb = &gd[b * geom.out_len()..(b + 1) * geom.out_len()];
            let mut dw = vec![0.0; partial_len];
            if geom.direct(self.algorithm) {
                backward_direct(&geom, xb, wd, gb, dx, need_w.then_some(&mut dw[..]));
            } else {
                backward_gemm(
                    &geom,
                    xb,
                    wd,
                    gb,
                    dx,
                    need_w.then_some(&mut dw[..]),
                    scratch,
                );
            }
            dw
        };
        let mut dx = need_x.then(|| Tensor::zeros(xv.shape()));
        let partials: Vec<Vec<f64>> = match (&mut dx, geom.in_len()) {
            (Some(dx), len) if len > 0 => dx
                .data_mut()
                .par_chunks_mut(len)
                .enumerate()
                .map_init(
                    || (Vec::new(), Vec::new()),
                    |s, (b, chunk)| sample(s, b, Some(chunk)),
                )
                .collect(),
            _ if need_w => (0..geom.batch)
                .into_par_iter()
                .map_init(|| (Vec::new(), Vec::new()), |s, b| sample(s, b, None))
                .collect(),
            _ => Vec::new(),
        };
        let dw = need_w.then(|| {
            let mut dw = Tensor::zeros(wv.shape());
            for part in &partials {
                for (a, v) in dw.data_mut().iter_mut().zip(part) {
                    *a += v;
                }
            }
            dw
        });
        let mut out = vec![dx, dw];
        if self.has_bias {
            out.push(need_b.then(|| {
                let mut db = Tensor::zeros([1, geom.c_out, 1, 1]);
                let p = geom.pixels();
                for b in 0..geom.batch {
                    for (o, acc) in db.data_mut().iter_mut().enumerate() {
                        let start = (b * geom.c_out + o) * p;
                        *acc += gd[start..start + p].iter().sum::<f64>();
                    }
                }
                db
            }));
        }
        Ok(out)
    }
}

/// One sample's input gradient (added to `dx`) and weight gradient (written to `dw`), direct
/// loops.
fn backward_direct(
    geom: &Geom,
    xb: &[f64],
    wd: &[f64],
    gb: &[f64],
    mut dx: Option<&mut [f64]>,
    mut dw: Option<&mut [f64]>,
) {
    let (hw, taps, k, p) = (geom.h * geom.w, geom.taps(), geom.k, geom.pixels());
    let (cin_g, cout_g) = (geom.cin_g(), geom.cout_g());
    for o in 0..geom.c_out {
        let go = &gb[o * p..(o + 1) * p];
        for cl in 0..cin_g {
            let c = (o / cout_g) * cin_g + cl;
            let xc = &xb[c * hw..(c + 1) * hw];
            let base = (o * cin_g + cl) * taps;
            for j in 0..k {
                for i in 0..k {
                    let wv = wd[base + j * k + i];
                    let mut acc = 0.0;
                    let mut dxc = dx.as_deref_mut().map(|d| &mut d[c * hw..(c + 1) * hw]);
                    geom.for_each_run(i, j, |out0, in0, len, step| {
                        let gs = &go[out0..out0 + len];
                        if step == 1 {
                            let xs = &xc[in0..in0 + len];
                            if let Some(dxc) = dxc.as_deref_mut() {
                                for (d, v) in dxc[in0..in0 + len].iter_mut().zip(gs) {
                                    *d += wv * v;
                                }
                            }
                            acc += dot(gs, xs);
                        } else {
                            if let Some(dxc) = dxc.as_deref_mut() {
                                for (t, v) in gs.iter().enumerate() {
                                    dxc[in0 + t * step] += wv * v;
                                }
                            }
                            for (t, v) in gs.iter().enumerate() {
                                acc += v * xc[in0 + t * step];
                            }
                        }
                    });
                    if let Some(dw) = dw.as_deref_mut() {
                        dw[base + j * k + i] = acc;
                    }
                }
            }
        }
    }
}

/// `Σ a_i b_i` with four accumulators in a fixed order (deterministic, and not limited by the
/// latency of one chain of additions).
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0; 4];
    let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..4 {
            acc[l] += x[l] * y[l];
        }
    }
    let tail: f64 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// One sample's gradients through im2col: `dW_g = dY_g cols_gᵀ`, `dcols_g = W_gᵀ dY_g`, then
/// [`col2im`].
fn backward_gemm(
    geom: &Geom,
    xb: &[f64],
    wd: &[f64],
    gb: &[f64],
    dx: Option<&mut [f64]>,
    dw: Option<&mut [f64]>,
    (cols, dcols): &mut (Vec<f64>, Vec<f64>),
) {
    let (p, cout_g, kg) = (geom.pixels(), geom.cout_g(), geom.cin_g() * geom.taps());
    if let Some(dw) = dw {
        let cols: &[f64] = if geom.unfold_is_identity() {
            xb
        } else {
            im2col(geom, xb, cols);
            cols
        };
        for grp in 0..geom.cfg.groups {
            faer::linalg::matmul::matmul(
                rm_mut(&mut dw[grp * cout_g * kg..], cout_g, kg),
                Accum::Replace,
                rm(&gb[grp * cout_g * p..], cout_g, p),
                rm(&cols[grp * kg * p..], kg, p).transpose(),
                1.0,
                Par::Seq,
            );
        }
    }
    if let Some(dx) = dx {
        // `dcols_g = W_gᵀ dY_g`, written straight into `dx` when unfolding is the identity.
        let unfolded_grad = |target: &mut [f64]| {
            for grp in 0..geom.cfg.groups {
                faer::linalg::matmul::matmul(
                    rm_mut(&mut target[grp * kg * p..], kg, p),
                    Accum::Replace,
                    rm(&wd[grp * cout_g * kg..], cout_g, kg).transpose(),
                    rm(&gb[grp * cout_g * p..], cout_g, p),
                    1.0,
                    Par::Seq,
                );
            }
        };
        if geom.unfold_is_identity() {
            unfolded_grad(dx);
        } else {
            dcols.clear();
            dcols.resize(geom.c_in * geom.taps() * p, 0.0);
            unfolded_grad(dcols);
            col2im(geom, dcols, dx);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{InputKind, check, config};
    use proptest::prelude::*;

    /// `(input shape, weight shape, config)`: batch 1–2, groups 1–3 with 1–2 input and output
    /// channels each (so depthwise, grouped and dense layers all occur), sizes 1–8 (odd and
    /// even), kernels 1–3, strides 1–3, padding 0–2, dilation 1–2; only geometries where the
    /// dilated kernel fits the padded input.
    fn geometry() -> impl Strategy<Value = ([usize; 4], [usize; 4], Conv2dConfig)> {
        (
            (1usize..3, 1usize..4, 1usize..3, 1usize..3),
            (1usize..9, 1usize..9, 1usize..4),
            (1usize..4, 0usize..3, 1usize..3),
        )
            .prop_filter_map(
                "kernel fits the padded input",
                |((b, groups, cin_g, cout_g), (h, w, k), (stride, padding, dilation))| {
                    let cfg = Conv2dConfig {
                        stride,
                        padding,
                        dilation,
                        groups,
                    };
                    cfg.output_size(h, k)?;
                    cfg.output_size(w, k)?;
                    Some((
                        [b, groups * cin_g, h, w],
                        [groups * cout_g, cin_g, k, k],
                        cfg,
                    ))
                },
            )
    }

    /// The convolution straight from its definition, with matrix indexing (so it also pins
    /// the layout: tap `(i, j)` of kernel `w.at(o, c)` reads row `h·s + i·d − p` and column
    /// `w·s + j·d − p`), and for each output the sum of the absolute values of its terms.
    fn reference(
        x: &Tensor,
        w: &Tensor,
        bias: Option<&Tensor>,
        cfg: Conv2dConfig,
    ) -> (Tensor, Tensor) {
        let [b, _, h, wd] = x.shape();
        let [c_out, cin_g, k, _] = w.shape();
        let cout_g = c_out / cfg.groups;
        let (ho, wo) = (
            cfg.output_size(h, k).unwrap(),
            cfg.output_size(wd, k).unwrap(),
        );
        let mut out = Tensor::zeros([b, c_out, ho, wo]);
        let mut mag = Tensor::zeros([b, c_out, ho, wo]);
        for bi in 0..b {
            for o in 0..c_out {
                for oh in 0..ho {
                    for ow in 0..wo {
                        let mut sum = bias.map_or(0.0, |t| t.data()[o]);
                        let mut abs = sum.abs();
                        for cl in 0..cin_g {
                            let c = (o / cout_g) * cin_g + cl;
                            for i in 0..k {
                                for j in 0..k {
                                    let r = (oh * cfg.stride + i * cfg.dilation) as isize
                                        - cfg.padding as isize;
                                    let s = (ow * cfg.stride + j * cfg.dilation) as isize
                                        - cfg.padding as isize;
                                    if (0..h as isize).contains(&r) && (0..wd as isize).contains(&s)
                                    {
                                        let term = w.at(o, cl)[(i, j)]
                                            * x.at(bi, c)[(r as usize, s as usize)];
                                        sum += term;
                                        abs += term.abs();
                                    }
                                }
                            }
                        }
                        let k_out = bi * c_out + o;
                        out.mat_mut(k_out)[(oh, ow)] = sum;
                        mag.mat_mut(k_out)[(oh, ow)] = abs;
                    }
                }
            }
        }
        (out, mag)
    }

    const ALGORITHMS: [ConvAlgorithm; 3] = [
        ConvAlgorithm::Auto,
        ConvAlgorithm::Direct,
        ConvAlgorithm::Im2colGemm,
    ];

    proptest! {
        #![proptest_config(config())]

        /// Every algorithm computes the definition, with and without bias. Both sides are
        /// sums of at most 2·9 + 1 products in different orders, so they differ by at most
        /// `2 γ_19 Σ|terms| ≈ 4.2e-15 Σ|terms|`; 1e-14 Σ|terms| (+ 1e-300 for empty sums) is
        /// asserted.
        #[test]
        fn conv2d_forward_matches_the_definition_for_every_algorithm((xs, ws, cfg) in geometry(), with_bias in any::<bool>(), seed in any::<u64>()) {
            let x = InputKind::General.sample(xs, seed).value;
            let w = InputKind::General.sample(ws, seed ^ 1).value;
            let b = InputKind::General.sample([1, ws[0], 1, 1], seed ^ 2).value;
            let bias = with_bias.then_some(&b);
            let (expected, mag) = reference(&x, &w, bias, cfg);
            for algorithm in ALGORITHMS {
                let mut g = Graph::new();
                let (xv, wv) = (g.constant(x.clone()), g.constant(w.clone()));
                let bv = bias.map(|b| g.constant(b.clone()));
                let y = conv2d_with(&mut g, xv, wv, bv, cfg, algorithm).unwrap();
                prop_assert_eq!(g.value(y).shape(), expected.shape());
                for ((a, e), m) in g.value(y).data().iter().zip(expected.data()).zip(mag.data()) {
                    prop_assert!((a - e).abs() <= 1e-14 * m + 1e-300, "{algorithm:?}: {a} vs {e}");
                }
            }
        }

        /// The backward of every algorithm against finite differences in the input, the
        /// weight and the bias. The op is linear in each, so the fourth-order difference is
        /// exact up to rounding and the check's default 1e-6 relative tolerance has ample
        /// margin.
        #[test]
        fn conv2d_gradients_in_input_weight_and_bias((xs, ws, cfg) in geometry(), seed in any::<u64>()) {
            let inputs = [
                InputKind::General.sample(xs, seed),
                InputKind::General.sample(ws, seed ^ 1),
                InputKind::General.sample([1, ws[0], 1, 1], seed ^ 2),
            ];
            for algorithm in ALGORITHMS {
                check(&inputs, |g, v| conv2d_with(g, v[0], v[1], Some(v[2]), cfg, algorithm), seed)?;
            }
        }
    }

    /// Forward and all three gradients of a batch of 7 (so threads split it unevenly) are the
    /// same bits on 1, 2 and 3 threads, for both algorithms and a depthwise, a dilated
    /// strided, and a grouped layer.
    #[test]
    fn conv2d_is_bit_identical_on_any_thread_count() {
        let layers = [
            (
                [7, 4, 9, 8],
                [4, 1, 3, 3],
                Conv2dConfig {
                    stride: 1,
                    padding: 1,
                    dilation: 1,
                    groups: 4,
                },
            ),
            (
                [7, 3, 10, 9],
                [5, 3, 3, 3],
                Conv2dConfig {
                    stride: 2,
                    padding: 2,
                    dilation: 2,
                    groups: 1,
                },
            ),
            (
                [7, 4, 6, 6],
                [6, 2, 2, 2],
                Conv2dConfig {
                    stride: 1,
                    padding: 0,
                    dilation: 1,
                    groups: 2,
                },
            ),
        ];
        for (xs, ws, cfg) in layers {
            for algorithm in [ConvAlgorithm::Direct, ConvAlgorithm::Im2colGemm] {
                let run = || {
                    let mut g = Graph::new();
                    let x = g.leaf(InputKind::General.sample(xs, 1).value);
                    let w = g.leaf(InputKind::General.sample(ws, 2).value);
                    let b = g.leaf(InputKind::General.sample([1, ws[0], 1, 1], 3).value);
                    let y = conv2d_with(&mut g, x, w, Some(b), cfg, algorithm).unwrap();
                    let c = InputKind::General.sample(g.value(y).shape(), 4).value;
                    let loss = crate::ops::arith::dot_const(&mut g, y, &c).unwrap();
                    let grads = g.backward(loss).unwrap();
                    let bits =
                        |t: &Tensor| t.data().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                    [
                        g.value(y),
                        grads.wrt(x).unwrap(),
                        grads.wrt(w).unwrap(),
                        grads.wrt(b).unwrap(),
                    ]
                    .map(bits)
                };
                let on = |threads| {
                    rayon::ThreadPoolBuilder::new()
                        .num_threads(threads)
                        .build()
                        .unwrap()
                        .install(run)
                };
                let one = on(1);
                assert_eq!(one, on(2), "{algorithm:?} {cfg:?}: 1 vs 2 threads");
                assert_eq!(one, on(3), "{algorithm:?} {cfg:?}: 1 vs 3 threads");
            }
        }
    }

    /// `⌊(n + 2p − d(k−1) − 1)/s⌋ + 1` on the sizes of the DARTS baselines, and `None` where
    /// the kernel does not fit or a parameter is zero.
    #[test]
    fn output_size_follows_the_formula() {
        let cfg = |stride, padding, dilation| Conv2dConfig {
            stride,
            padding,
            dilation,
            groups: 1,
        };
        assert_eq!(cfg(1, 1, 1).output_size(20, 3), Some(20)); // sep_conv_3x3, normal cell
        assert_eq!(cfg(2, 1, 1).output_size(20, 3), Some(10)); // reduction cell
        assert_eq!(cfg(2, 1, 1).output_size(93, 3), Some(47));
        assert_eq!(cfg(1, 2, 2).output_size(20, 3), Some(20)); // dil_conv_3x3
        assert_eq!(cfg(2, 4, 2).output_size(93, 5), Some(47)); // dil_conv_5x5, reduction
        assert_eq!(cfg(2, 0, 1).output_size(7, 1), Some(4)); // FactorizedReduce, odd size
        assert_eq!(cfg(1, 0, 1).output_size(6, 5), Some(2));
        assert_eq!(cfg(1, 0, 2).output_size(4, 3), None); // dilated kernel spans 5 > 4
        assert_eq!(cfg(0, 0, 1).output_size(4, 3), None);
        assert_eq!(cfg(1, 0, 0).output_size(4, 3), None);
        assert_eq!(cfg(1, 0, 1).output_size(4, 0), None);
    }

    #[test]
    fn conv2d_rejects_mismatched_shapes() {
        let mut g = Graph::new();
        let x = g.constant(Tensor::zeros([2, 4, 5, 5]));
        let cfg = |groups| Conv2dConfig {
            groups,
            ..Conv2dConfig::default()
        };
        let w = g.constant(Tensor::zeros([6, 2, 3, 3]));
        assert!(conv2d(&mut g, x, w, None, cfg(2)).is_ok());
        assert!(
            conv2d(&mut g, x, w, None, cfg(1)).is_err(),
            "C_in/groups mismatch"
        );
        assert!(
            conv2d(&mut g, x, w, None, cfg(3)).is_err(),
            "groups do not divide C_in"
        );
        let rect = g.constant(Tensor::zeros([6, 2, 3, 2]));
        assert!(
            conv2d(&mut g, x, rect, None, cfg(2)).is_err(),
            "non-square kernel"
        );
        let big = g.constant(Tensor::zeros([6, 2, 7, 7]));
        assert!(
            conv2d(&mut g, x, big, None, cfg(2)).is_err(),
            "kernel larger than input"
        );
        let bias = g.constant(Tensor::zeros([1, 5, 1, 1]));
        assert!(
            conv2d(&mut g, x, w, Some(bias), cfg(2)).is_err(),
            "bias size"
        );
    }
}
