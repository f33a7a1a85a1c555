//! Channel concatenation and block-diagonal concatenation.

use super::par_fill;
use crate::error::{Result, shape_err};
use crate::graph::{Backward, BackwardContext, Graph, Var};
use crate::tensor::Tensor;

struct ConcatChannels {
    channels: Vec<usize>,
}

/// `[B, C_1, r, s], …, [B, C_k, r, s]` → `[B, ΣC_i, r, s]`, inputs in order.
pub fn concat_channels(g: &mut Graph, xs: &[Var]) -> Result<Var> {
    let first = g
        .value(
            *xs.first()
                .ok_or_else(|| shape_err("concat", "no operands"))?,
        )
        .shape();
    let mut channels = Vec::with_capacity(xs.len());
    for x in xs {
        let s = g.value(*x).shape();
        if (s[0], s[2], s[3]) != (first[0], first[2], first[3]) {
            return Err(shape_err("concat", format!("{first:?} and {s:?}")));
        }
        channels.push(s[1]);
    }
    let total: usize = channels.iter().sum();
    let [b, _, r, s] = first;
    let len = r * s;
    let mut data = Vec::with_capacity(b * total * len);
    for bi in 0..b {
        for (x, &c) in xs.iter().zip(&channels) {
            data.extend_from_slice(&g.value(*x).data()[bi * c * len..(bi + 1) * c * len]);
        }
    }
    let out = Tensor::from_vec([b, total, r, s], data)?;
    Ok(g.push(out, xs.to_vec(), Box::new(ConcatChannels { channels })))
}

impl Backward for ConcatChannels {
    fn backward(&self, ctx: &BackwardContext<'_>, grad: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let [b, total, r, s] = grad.shape();
        let len = r * s;
        let mut offset = 0;
        let mut out = Vec::with_capacity(self.channels.len());
        for (i, &c) in self.channels.iter().enumerate() {
            out.push(ctx.needs[i].then(|| {
                let mut data = Vec::with_capacity(b * c * len);
                for bi in 0..b {
                    let start = (bi * total + offset) * len;
                    data.extend_from_slice(&grad.data()[start..start + c * len]);
                }
                Tensor::from_vec([b, c, r, s], data).expect("sizes match by construction")
            }));
            offset += c;
        }
        Ok(out)
    }
}

struct BlockDiag {
    sizes: Vec<usize>,
}

/// `[B, C, n_1, n_1], …` → `[B, C, Σn_i, Σn_i]` with the inputs on the diagonal.
pub fn block_diag(g: &mut Graph, xs: &[Var]) -> Result<Var> {
    let first = g
        .value(
            *xs.first()
                .ok_or_else(|| shape_err("block diag", "no operands"))?,
        )
        .shape();
    let mut sizes = Vec::with_capacity(xs.len());
    for x in xs {
        let s = g.value(*x).shape();
        if (s[0], s[1]) != (first[0], first[1]) || s[2] != s[3] {
            return Err(shape_err("block diag", format!("{first:?} and {s:?}")));
        }
        sizes.push(s[2]);
    }
    let total: usize = sizes.iter().sum();
    let values: Vec<&Tensor> = xs.iter().map(|x| g.value(*x)).collect();
    let mut out = Tensor::zeros([first[0], first[1], total, total]);
    par_fill(&mut out, |k, mut y| {
        let mut at = 0;
        for (v, &n) in values.iter().zip(&sizes) {
            y.rb_mut_sub(at, n).copy_from(v.mat(k));
            at += n;
        }
    });
    Ok(g.push(out, xs.to_vec(), Box::new(BlockDiag { sizes })))
}

trait SubBlock<'a> {
    fn rb_mut_sub(&mut self, at: usize, n: usize) -> faer::MatMut<'_, f64>;
}

impl<'a> SubBlock<'a> for faer::MatMut<'a, f64> {
    fn rb_mut_sub(&mut self, at: usize, n: usize) -> faer::MatMut<'_, f64> {
        use faer::reborrow::ReborrowMut;
        self.rb_mut().submatrix_mut(at, at, n, n)
    }
}

impl Backward for BlockDiag {
    fn backward(&self, ctx: &BackwardContext<'_>, grad: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let [b, c, _, _] = grad.shape();
        let mut at = 0;
        let mut out = Vec::with_capacity(self.sizes.len());
        for (i, &n) in self.sizes.iter().enumerate() {
            out.push(ctx.needs[i].then(|| {
                let mut d = Tensor::zeros([b, c, n, n]);
                par_fill(&mut d, |k, mut y| {
                    y.copy_from(grad.mat(k).submatrix(at, at, n, n))
                });
                d
            }));
            at += n;
        }
        Ok(out)
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
        fn concat_gradients(b in 1usize..3, c1 in 1usize..3, c2 in 1usize..3, n in 1usize..4, seed in any::<u64>()) {
            let inputs = [InputKind::General.sample([b, c1, n, n], seed), InputKind::General.sample([b, c2, n, n], seed ^ 1)];
            check(&inputs, |g, v| concat_channels(g, &[v[0], v[1], v[0]]), seed)?;
        }

        #[test]
        fn block_diag_gradients(b in 1usize..3, c in 1usize..3, n1 in 1usize..4, n2 in 1usize..4, seed in any::<u64>()) {
            let inputs = [InputKind::Spd.sample([b, c, n1, n1], seed), InputKind::Spd.sample([b, c, n2, n2], seed ^ 1)];
            check(&inputs, |g, v| block_diag(g, &[v[0], v[1]]), seed)?;
        }
    }

    #[test]
    fn concat_layout() {
        let mut g = Graph::new();
        let a = g.constant(Tensor::from_vec([2, 1, 1, 1], vec![1.0, 2.0]).unwrap());
        let b = g.constant(Tensor::from_vec([2, 2, 1, 1], vec![3.0, 4.0, 5.0, 6.0]).unwrap());
        let y = concat_channels(&mut g, &[a, b]).unwrap();
        assert_eq!(g.value(y).data(), &[1.0, 3.0, 4.0, 2.0, 5.0, 6.0]);
    }
}
