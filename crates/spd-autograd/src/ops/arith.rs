//! Linear ops: sums, scaling, weighted sums with differentiable weights, means over the batch,
//! channel selection and repetition, and the scalar contraction `⟨C, X⟩`.

use super::par_fill;
use crate::error::{Result, shape_err};
use crate::graph::{Backward, BackwardContext, Graph, Var};
use crate::tensor::Tensor;

struct Linear2 {
    a: f64,
    b: f64,
}

impl Backward for Linear2 {
    fn backward(&self, ctx: &BackwardContext<'_>, grad: &Tensor) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![
            ctx.needs[0].then(|| grad.scaled(self.a)),
            ctx.needs[1].then(|| grad.scaled(self.b)),
        ])
    }
}

/// `a·X + b·Y` for tensors of one shape.
pub fn lincomb(g: &mut Graph, x: Var, a: f64, y: Var, b: f64) -> Result<Var> {
    let (xv, yv) = (g.value(x), g.value(y));
    if xv.shape() != yv.shape() {
        return Err(shape_err(
            "add",
            format!("{:?} and {:?}", xv.shape(), yv.shape()),
        ));
    }
    let mut out = xv.scaled(a);
    out.axpy(b, yv);
    Ok(g.push(out, vec![x, y], Box::new(Linear2 { a, b })))
}

/// `X + Y`.
pub fn add(g: &mut Graph, x: Var, y: Var) -> Result<Var> {
    lincomb(g, x, 1.0, y, 1.0)
}

/// `X − Y`.
pub fn sub(g: &mut Graph, x: Var, y: Var) -> Result<Var> {
    lincomb(g, x, 1.0, y, -1.0)
}

struct Scale(f64);

impl Backward for Scale {
    fn backward(&self, _ctx: &BackwardContext<'_>, grad: &Tensor) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(grad.scaled(self.0))])
    }
}

/// `s·X` for a constant `s`.
pub fn scale(g: &mut Graph, x: Var, s: f64) -> Var {
    let out = g.value(x).scaled(s);
    g.push(out, vec![x], Box::new(Scale(s)))
}

struct DotConst(Tensor);

impl Backward for DotConst {
    fn backward(&self, _ctx: &BackwardContext<'_>, grad: &Tensor) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(self.0.scaled(grad.data()[0]))])
    }
}

/// The scalar `⟨C, X⟩ = Σ C_i X_i` for a constant `C` of the same shape.
pub fn dot_const(g: &mut Graph, x: Var, c: &Tensor) -> Result<Var> {
    let xv = g.value(x);
    if xv.shape() != c.shape() {
        return Err(shape_err(
            "dot",
            format!("{:?} and {:?}", xv.shape(), c.shape()),
        ));
    }
    let v = xv.dot(c);
    Ok(g.push(Tensor::scalar(v), vec![x], Box::new(DotConst(c.clone()))))
}

/// The scalar `Σ_i X_i`.
pub fn sum(g: &mut Graph, x: Var) -> Result<Var> {
    let mut ones = Tensor::zeros(g.value(x).shape());
    ones.data_mut().fill(1.0);
    dot_const(g, x, &ones)
}

struct WeightedSum {
    count: usize,
}

/// `Y_bc = Σ_k w_{c,k} X_k[b, c]`: tensors `X_k` of one shape `[B, C, r, s]`, weights
/// `w: [1, C_w, 1, K]` with `C_w ∈ {1, C}` (one row for all channels, or one per channel).
pub fn weighted_sum(g: &mut Graph, xs: &[Var], w: Var) -> Result<Var> {
    let first = xs
        .first()
        .ok_or_else(|| shape_err("weighted sum", "no operands"))?;
    let shape = g.value(*first).shape();
    for x in xs {
        if g.value(*x).shape() != shape {
            return Err(shape_err(
                "weighted sum",
                format!("{:?} and {:?}", shape, g.value(*x).shape()),
            ));
        }
    }
    let wv = g.value(w);
    let [wb, wc, wr, wk] = wv.shape();
    if wb != 1 || wr != 1 || wk != xs.len() || !(wc == 1 || wc == shape[1]) {
        return Err(shape_err(
            "weighted sum",
            format!(
                "weights {:?} for {} operands of {:?}",
                wv.shape(),
                xs.len(),
                shape
            ),
        ));
    }
    let channels = shape[1];
    let values: Vec<&Tensor> = xs.iter().map(|x| g.value(*x)).collect();
    let mut out = Tensor::zeros(shape);
    par_fill(&mut out, |k, mut y| {
        let c = k % channels;
        let row = if wc == 1 { 0 } else { c };
        for (i, x) in values.iter().enumerate() {
            let wi = wv.data()[row * wk + i];
            let xk = x.mat(k);
            for j in 0..y.ncols() {
                for r in 0..y.nrows() {
                    y[(r, j)] += wi * xk[(r, j)];
                }
            }
        }
    });
    let mut parents = xs.to_vec();
    parents.push(w);
    Ok(g.push(out, parents, Box::new(WeightedSum { count: xs.len() })))
}

impl Backward for WeightedSum {
    fn backward(&self, ctx: &BackwardContext<'_>, grad: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let wv = ctx.inputs[self.count];
        let wc = wv.channels();
        let channels = grad.channels();
        let mut out: Vec<Option<Tensor>> = (0..self.count)
            .map(|i| {
                ctx.needs[i].then(|| {
                    let mut d = Tensor::zeros(grad.shape());
                    par_fill(&mut d, |k, mut y| {
                        let row = if wc == 1 { 0 } else { k % channels };
                        let wi = wv.data()[row * self.count + i];
                        let gk = grad.mat(k);
                        for j in 0..y.ncols() {
                            for r in 0..y.nrows() {
                                y[(r, j)] = wi * gk[(r, j)];
                            }
                        }
                    });
                    d
                })
            })
            .collect();
        let dw = ctx.needs[self.count].then(|| {
            let mut dw = Tensor::zeros(wv.shape());
            for i in 0..self.count {
                let x = ctx.inputs[i];
                for k in 0..grad.count() {
                    let row = if wc == 1 { 0 } else { k % channels };
                    let len = grad.matrix_len();
                    let dot: f64 = grad.data()[k * len..(k + 1) * len]
                        .iter()
                        .zip(&x.data()[k * len..(k + 1) * len])
                        .map(|(a, b)| a * b)
                        .sum();
                    dw.data_mut()[row * self.count + i] += dot;
                }
            }
            dw
        });
        out.push(dw);
        Ok(out)
    }
}

struct MeanAll;

/// `(1/(B·C)) Σ_{b,c} X_bc`, shape `[1, 1, r, s]`.
pub fn mean_all(g: &mut Graph, x: Var) -> Result<Var> {
    let xv = g.value(x);
    let count = xv.count();
    if count == 0 {
        return Err(shape_err("mean", "empty tensor"));
    }
    let mut out = Tensor::zeros([1, 1, xv.rows(), xv.cols()]);
    let len = xv.matrix_len();
    for k in 0..count {
        for (o, v) in out
            .data_mut()
            .iter_mut()
            .zip(&xv.data()[k * len..(k + 1) * len])
        {
            *o += v;
        }
    }
    let out = out.scaled(1.0 / count as f64);
    Ok(g.push(out, vec![x], Box::new(MeanAll)))
}

impl Backward for MeanAll {
    fn backward(&self, ctx: &BackwardContext<'_>, grad: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let x = ctx.inputs[0];
        let scale = 1.0 / x.count() as f64;
        let mut d = Tensor::zeros(x.shape());
        for chunk in d.data_mut().chunks_mut(x.matrix_len()) {
            for (o, g) in chunk.iter_mut().zip(grad.data()) {
                *o = scale * g;
            }
        }
        Ok(vec![Some(d)])
    }
}

struct Channels {
    /// For each output channel, the input channel it copies.
    source: Vec<usize>,
    in_channels: usize,
}

/// Output channel `j` is input channel `source[j]`: selection, repetition and permutation.
pub fn gather_channels(g: &mut Graph, x: Var, source: &[usize]) -> Result<Var> {
    let xv = g.value(x);
    let [b, c, r, s] = xv.shape();
    if let Some(bad) = source.iter().find(|&&i| i >= c) {
        return Err(shape_err("channels", format!("channel {bad} of {c}")));
    }
    let co = source.len();
    let mut out = Tensor::zeros([b, co, r, s]);
    par_fill(&mut out, |k, mut y| {
        y.copy_from(xv.mat((k / co) * c + source[k % co]))
    });
    let rule = Channels {
        source: source.to_vec(),
        in_channels: c,
    };
    Ok(g.push(out, vec![x], Box::new(rule)))
}

/// Channel `c` of `x`, shape `[B, 1, r, s]`.
pub fn select_channel(g: &mut Graph, x: Var, c: usize) -> Result<Var> {
    gather_channels(g, x, &[c])
}

/// `x` (one channel) repeated into `channels` channels.
pub fn repeat_channels(g: &mut Graph, x: Var, channels: usize) -> Result<Var> {
    if g.value(x).channels() != 1 {
        return Err(shape_err("repeat channels", "input must have one channel"));
    }
    gather_channels(g, x, &vec![0; channels])
}

impl Backward for Channels {
    fn backward(&self, ctx: &BackwardContext<'_>, grad: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let x = ctx.inputs[0];
        let mut d = Tensor::zeros(x.shape());
        let co = self.source.len();
        let len = x.matrix_len();
        for k in 0..grad.count() {
            let (b, j) = (k / co, k % co);
            let dst = (b * self.in_channels + self.source[j]) * len;
            for (o, gv) in d.data_mut()[dst..dst + len]
                .iter_mut()
                .zip(&grad.data()[k * len..(k + 1) * len])
            {
                *o += gv;
            }
        }
        Ok(vec![Some(d)])
    }
}

struct SelectEntries {
    idx: Vec<usize>,
}

/// Entries `idx` of a row vector `[1, 1, 1, K]`, as `[1, 1, 1, idx.len()]`.
pub fn select_entries(g: &mut Graph, x: Var, idx: &[usize]) -> Result<Var> {
    let xv = g.value(x);
    let [a, b, r, k] = xv.shape();
    if (a, b, r) != (1, 1, 1) || idx.iter().any(|&i| i >= k) {
        return Err(shape_err(
            "select entries",
            format!("{idx:?} of {:?}", xv.shape()),
        ));
    }
    let out = Tensor::from_vec(
        [1, 1, 1, idx.len()],
        idx.iter().map(|&i| xv.data()[i]).collect(),
    )?;
    Ok(g.push(out, vec![x], Box::new(SelectEntries { idx: idx.to_vec() })))
}

impl Backward for SelectEntries {
    fn backward(&self, ctx: &BackwardContext<'_>, grad: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let mut d = Tensor::zeros(ctx.inputs[0].shape());
        for (&i, gv) in self.idx.iter().zip(grad.data()) {
            d.data_mut()[i] += gv;
        }
        Ok(vec![Some(d)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{InputKind, check, config};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn lincomb_gradients(shape in (1usize..3, 1usize..3, 1usize..4, 1usize..4), a in -2.0f64..2.0, seed in any::<u64>()) {
            let s = [shape.0, shape.1, shape.2, shape.3];
            let inputs = [InputKind::General.sample(s, seed), InputKind::General.sample(s, seed ^ 5)];
            check(&inputs, |g, v| { let y = lincomb(g, v[0], a, v[1], 0.5)?; Ok(scale(g, y, -1.5)) }, seed)?;
        }

        #[test]
        fn weighted_sum_gradients(b in 1usize..3, c in 1usize..4, n in 1usize..4, k in 1usize..5, per_channel in any::<bool>(), seed in any::<u64>()) {
            let mut inputs: Vec<_> = (0..k).map(|i| InputKind::General.sample([b, c, n, n], seed + i as u64)).collect();
            inputs.push(InputKind::General.sample([1, if per_channel { c } else { 1 }, 1, k], seed ^ 9));
            check(&inputs, |g, v| weighted_sum(g, &v[..k], v[k]), seed)?;
        }

        #[test]
        fn mean_and_channel_gradients(b in 1usize..3, c in 1usize..4, n in 1usize..4, seed in any::<u64>()) {
            let inputs = [InputKind::General.sample([b, c, n, n], seed)];
            check(&inputs, |g, v| mean_all(g, v[0]), seed)?;
            let source: Vec<usize> = (0..c + 2).map(|i| (i * 7 + seed as usize) % c).collect();
            check(&inputs, |g, v| gather_channels(g, v[0], &source), seed)?;
            check(&inputs, |g, v| { let s = select_channel(g, v[0], c - 1)?; repeat_channels(g, s, 3) }, seed)?;
            let row = [InputKind::General.sample([1, 1, 1, c + 2], seed ^ 3)];
            check(&row, |g, v| select_entries(g, v[0], &[c + 1, 0, c + 1]), seed)?;
        }
    }

    #[test]
    fn shape_errors_are_reported() {
        let mut g = Graph::new();
        let x = g.constant(Tensor::zeros([1, 2, 2, 2]));
        let y = g.constant(Tensor::zeros([1, 1, 2, 2]));
        assert!(add(&mut g, x, y).is_err());
        let w = g.constant(Tensor::zeros([1, 1, 1, 3]));
        assert!(weighted_sum(&mut g, &[x, x], w).is_err());
        assert!(select_channel(&mut g, x, 2).is_err());
    }
}
