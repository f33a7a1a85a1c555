//! Softmax cross-entropy with class-index targets.

use crate::error::{Result, shape_err};
use crate::graph::{Backward, BackwardContext, Graph, Var};
use crate::ops::simplex::softmax_row;
use crate::tensor::Tensor;

struct CrossEntropy {
    targets: Vec<usize>,
}

/// `L = −(1/B) Σ_b log softmax(z_b)[y_b]` for logits `[B, 1, 1, K]` and targets `y_b < K`.
pub fn cross_entropy(g: &mut Graph, logits: Var, targets: &[usize]) -> Result<Var> {
    let z = g.value(logits);
    let [b, c, r, k] = z.shape();
    if c != 1 || r != 1 || targets.len() != b {
        return Err(shape_err(
            "cross entropy",
            format!("logits {:?} for {} targets", z.shape(), targets.len()),
        ));
    }
    if let Some(bad) = targets.iter().find(|&&t| t >= k) {
        return Err(shape_err(
            "cross entropy",
            format!("target {bad} with {k} classes"),
        ));
    }
    let mut total = 0.0;
    for (i, &t) in targets.iter().enumerate() {
        let row = &z.data()[i * k..(i + 1) * k];
        let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let lse = max + row.iter().map(|v| (v - max).exp()).sum::<f64>().ln();
        total += lse - row[t];
    }
    let rule = CrossEntropy {
        targets: targets.to_vec(),
    };
    Ok(g.push(
        Tensor::scalar(total / b as f64),
        vec![logits],
        Box::new(rule),
    ))
}

impl Backward for CrossEntropy {
    fn backward(&self, ctx: &BackwardContext<'_>, grad: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let z = ctx.inputs[0];
        let (b, k) = (z.batch(), z.cols());
        let scale = grad.data()[0] / b as f64;
        let mut d = Tensor::zeros(z.shape());
        for (i, &t) in self.targets.iter().enumerate() {
            let p = softmax_row(&z.data()[i * k..(i + 1) * k]);
            for (j, pj) in p.iter().enumerate() {
                d.data_mut()[i * k + j] = scale * (pj - if j == t { 1.0 } else { 0.0 });
            }
        }
        Ok(vec![Some(d)])
    }
}

/// How many rows of the logits `[B, 1, 1, K]` have their largest entry at the target class.
pub fn correct_count(logits: &Tensor, targets: &[usize]) -> usize {
    argmax_rows(logits)
        .iter()
        .zip(targets)
        .filter(|(p, t)| p == t)
        .count()
}

/// The index of the largest logit of each row of `[B, 1, 1, K]` (first one on ties).
pub fn argmax_rows(logits: &Tensor) -> Vec<usize> {
    logits
        .data()
        .chunks(logits.cols().max(1))
        .map(argmax)
        .collect()
}

/// The index of the largest value (the first one on ties; 0 when none is above −∞ or all are
/// NaN).
pub fn argmax(row: &[f64]) -> usize {
    row.iter()
        .enumerate()
        .fold((0, f64::NEG_INFINITY), |(bi, bv), (i, &v)| {
            if v > bv { (i, v) } else { (bi, bv) }
        })
        .0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{InputKind, check, config};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn cross_entropy_gradients(b in 1usize..6, k in 1usize..6, seed in any::<u64>()) {
            let x = [InputKind::General.sample([b, 1, 1, k], seed)];
            let targets: Vec<usize> = (0..b).map(|i| (i + seed as usize) % k).collect();
            check(&x, |g, v| { let l = cross_entropy(g, v[0], &targets)?; Ok(crate::ops::arith::scale(g, l, 1.0)) }, seed)?;
        }
    }

    #[test]
    fn bad_targets_are_errors() {
        let mut g = Graph::new();
        let z = g.constant(Tensor::zeros([2, 1, 1, 3]));
        assert!(cross_entropy(&mut g, z, &[0, 3]).is_err());
        assert!(cross_entropy(&mut g, z, &[0]).is_err());
    }
}
