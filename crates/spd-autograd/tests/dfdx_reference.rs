//! dfdx as an independent autodiff reference for the Euclidean head: linear + softmax
//! cross-entropy, same data, gradients equal to 1e-10. (dfdx needs its `cpu` feature: without
//! it, its fallback matrix product keeps only the last term of each dot product.)

use dfdx::prelude::*;
use spd_autograd::ops::{linear::linear, loss::cross_entropy};
use spd_autograd::{Graph, Tensor as SpdTensor};
use spd_linalg::random::{gaussian, seeded_rng};

const B: usize = 6;
const D: usize = 9;
const K: usize = 4;

fn values(rows: usize, cols: usize, seed: u64) -> Vec<f64> {
    let m = gaussian(rows, cols, &mut seeded_rng(seed));
    (0..rows)
        .flat_map(|i| (0..cols).map(move |j| (i, j)))
        .map(|(i, j)| m[(i, j)])
        .collect()
}

#[test]
fn linear_cross_entropy_gradients_match_dfdx() {
    for seed in 0..5u64 {
        let (x, w, b) = (
            values(B, D, seed),
            values(K, D, seed + 100),
            values(1, K, seed + 200),
        );
        let targets: Vec<usize> = (0..B).map(|i| (i * 3 + seed as usize) % K).collect();

        let mut g = Graph::new();
        let xv = g.leaf(SpdTensor::from_vec([B, 1, 1, D], x.clone()).unwrap());
        // W is K × D column-major in spdnas; `values` is row-major
        let w_cm: Vec<f64> = (0..D)
            .flat_map(|j| (0..K).map(move |i| (i, j)))
            .map(|(i, j)| w[i * D + j])
            .collect();
        let wv = g.leaf(SpdTensor::from_vec([1, 1, K, D], w_cm).unwrap());
        let bv = g.leaf(SpdTensor::from_vec([1, 1, 1, K], b.clone()).unwrap());
        let y = linear(&mut g, xv, wv, bv).unwrap();
        let loss = cross_entropy(&mut g, y, &targets).unwrap();
        let ours_loss = g.value(loss).data()[0];
        let grads = g.backward(loss).unwrap();

        let dev: Cpu = Default::default();
        let xt = dev.tensor_from_vec(x, (Const::<B>, Const::<D>));
        let wt = dev.tensor_from_vec(w, (Const::<K>, Const::<D>));
        let bt = dev.tensor_from_vec(b, (Const::<K>,));
        let onehot: Vec<f64> = targets
            .iter()
            .flat_map(|&t| (0..K).map(move |k| if k == t { 1.0 } else { 0.0 }))
            .collect();
        let tt = dev.tensor_from_vec(onehot, (Const::<B>, Const::<K>));
        let logits = xt
            .leaky_trace()
            .matmul(wt.clone().permute::<_, Axes2<1, 0>>())
            + bt.clone().broadcast::<Rank2<B, K>, Axis<0>>();
        let l = cross_entropy_with_logits_loss(logits, tt);
        let theirs_loss = l.array();
        let dg = l.backward();

        assert!(
            (ours_loss - theirs_loss).abs() < 1e-12,
            "loss {ours_loss} vs {theirs_loss}"
        );
        let dx = dg.get(&xt).as_vec();
        for (a, r) in grads.wrt(xv).unwrap().data().iter().zip(&dx) {
            assert!((a - r).abs() < 1e-10, "dx {a} vs {r}");
        }
        let dw = dg.get(&wt).as_vec();
        let ours_w = grads.wrt(wv).unwrap();
        for i in 0..K {
            for j in 0..D {
                let (a, r) = (ours_w.mat(0)[(i, j)], dw[i * D + j]);
                assert!((a - r).abs() < 1e-10, "dW {a} vs {r}");
            }
        }
        for (a, r) in grads
            .wrt(bv)
            .unwrap()
            .data()
            .iter()
            .zip(&dg.get(&bt).as_vec())
        {
            assert!((a - r).abs() < 1e-10, "db {a} vs {r}");
        }
    }
}
