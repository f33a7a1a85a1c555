//! A small SPDNet (BiMap 20→10, ReEig, BiMap 10→5, LogEig, linear) trained end to end with
//! Riemannian SGD on a seeded 3-class SPD problem; and bit-identical results on 1 and 2 threads.

use rand::Rng;
use spd_autograd::layers::{BatchNormSpd, BiMapLayer, ForwardCtx, LinearLayer};
use spd_autograd::ops::eig::reeig_default;
use spd_autograd::ops::flatten::{Vectorize, log_eig_flatten};
use spd_autograd::ops::loss::{argmax_rows, cross_entropy};
use spd_autograd::optim::{Sgd, clip_grad_norm};
use spd_autograd::{Gradients, Graph, ParamStore, Tensor, Var};
use spd_linalg::random::{random_spd, random_symmetric, seeded_rng};
use spd_linalg::{SpdPoint, faer::Mat};

struct SpdNet {
    bimap1: BiMapLayer,
    bn: Option<BatchNormSpd>,
    bimap2: BiMapLayer,
    head: LinearLayer,
}

impl SpdNet {
    fn new(store: &mut ParamStore, with_bn: bool, seed: u64) -> Self {
        let mut rng = seeded_rng(seed);
        Self {
            bimap1: BiMapLayer::new(store, "bimap1", (1, 1), (20, 10), &mut rng).unwrap(),
            bn: with_bn.then(|| BatchNormSpd::new(store, "bn", 10).unwrap()),
            bimap2: BiMapLayer::new(store, "bimap2", (1, 1), (10, 5), &mut rng).unwrap(),
            head: LinearLayer::new(store, "head", 15, 3, &mut rng).unwrap(),
        }
    }

    fn logits(&self, g: &mut Graph, store: &ParamStore, ctx: &mut ForwardCtx, x: Var) -> Var {
        let mut h = self.bimap1.forward(g, store, x).unwrap();
        if let Some(bn) = &self.bn {
            h = bn.forward(g, store, ctx, h).unwrap();
        }
        let h = reeig_default(g, h).unwrap();
        let h = self.bimap2.forward(g, store, h).unwrap();
        let v = log_eig_flatten(g, h, Vectorize::UpperTriangular).unwrap();
        self.head.forward(g, store, v).unwrap()
    }
}

/// Three classes around means `M_c = B^{1/2} exp(δ S_c) B^{1/2}` (a common random base `B`,
/// class offsets of size `δ`): `X = M_c^{1/2} exp(σ S) M_c^{1/2}` with `S` random symmetric,
/// i.e. Riemannian-Gaussian-like clouds that overlap when `σ` is large relative to `δ`.
fn dataset(per_class: usize, delta: f64, sigma: f64, seed: u64) -> (Vec<Mat<f64>>, Vec<usize>) {
    let mut rng = seeded_rng(seed);
    let base = SpdPoint::new(random_spd(20, &mut rng).as_ref()).unwrap();
    let means: Vec<SpdPoint> = (0..3)
        .map(|_| {
            let offset = faer::Scale(delta / (20f64).sqrt()) * random_symmetric(20, &mut rng);
            SpdPoint::new(
                base.exp_map(base.colour(offset.as_ref()).as_ref())
                    .unwrap()
                    .as_ref(),
            )
            .unwrap()
        })
        .collect();
    let mut xs = Vec::new();
    let mut ys = Vec::new();
    for _ in 0..3 * per_class {
        let c = rng.random_range(0..3);
        let s = random_symmetric(20, &mut rng);
        let v = faer::Scale(sigma / (20f64).sqrt()) * &s;
        xs.push(
            means[c]
                .exp_map(means[c].colour(v.as_ref()).as_ref())
                .unwrap(),
        );
        ys.push(c);
    }
    (xs, ys)
}

fn batch(xs: &[Mat<f64>]) -> Tensor {
    let views: Vec<_> = xs.iter().map(|m| m.as_ref()).collect();
    Tensor::from_matrices(1, &views).unwrap()
}

fn accuracy(net: &SpdNet, store: &ParamStore, xs: &[Mat<f64>], ys: &[usize]) -> f64 {
    let mut g = Graph::new();
    let x = g.constant(batch(xs));
    let logits = net.logits(&mut g, store, &mut ForwardCtx::eval(), x);
    let hits = argmax_rows(g.value(logits))
        .iter()
        .zip(ys)
        .filter(|(p, y)| p == y)
        .count();
    hits as f64 / ys.len() as f64
}

#[test]
fn spdnet_learns_a_three_class_spd_problem() {
    let (xs, ys) = dataset(150, 0.5, 1.2, 7);
    let (train_x, test_x) = xs.split_at(300);
    let (train_y, test_y) = ys.split_at(300);
    let mut store = ParamStore::new();
    let net = SpdNet::new(&mut store, false, 1);
    let before = accuracy(&net, &store, test_x, test_y);
    let mut sgd = Sgd::new(0.05).with_momentum(0.9);
    for _epoch in 0..15 {
        for start in (0..300).step_by(30) {
            let mut g = Graph::new();
            let x = g.constant(batch(&train_x[start..start + 30]));
            let mut ctx = ForwardCtx::train();
            let logits = net.logits(&mut g, &store, &mut ctx, x);
            let loss = cross_entropy(&mut g, logits, &train_y[start..start + 30]).unwrap();
            let mut grads = g.backward(loss).unwrap();
            clip_grad_norm(&mut grads, 5.0);
            sgd.step(&mut store, &grads).unwrap();
            ctx.commit(&mut store);
        }
    }
    let after = accuracy(&net, &store, test_x, test_y);
    eprintln!("held-out accuracy {before:.3} → {after:.3}");
    assert!(after >= 0.95, "held-out accuracy {before:.3} → {after:.3}");
    for (_, p) in store.iter() {
        if p.manifold == spd_autograd::Manifold::Stiefel {
            assert!(spd_linalg::orthonormality_error(p.value.mat(0)) < 1e-10);
        }
    }
}

/// Bits of the loss, of each parameter gradient (by id) and of the running-mean update.
type RunBits = (u64, Vec<(usize, Vec<u64>)>, Vec<u64>);

fn loss_and_grads(threads: usize) -> RunBits {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(|| {
            let (xs, ys) = dataset(10, 1.0, 1.0, 3);
            let mut store = ParamStore::new();
            let net = SpdNet::new(&mut store, true, 5);
            let mut g = Graph::new();
            let x = g.constant(batch(&xs));
            let mut ctx = ForwardCtx::train();
            let logits = net.logits(&mut g, &store, &mut ctx, x);
            let loss = cross_entropy(&mut g, logits, &ys).unwrap();
            let grads: Gradients = g.backward(loss).unwrap();
            let bits = |t: &Tensor| t.data().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            let running = bits(&ctx.buffer_updates[0].1);
            let per_param = grads
                .params()
                .iter()
                .map(|(id, t)| (id.0, bits(t)))
                .collect();
            (g.value(loss).data()[0].to_bits(), per_param, running)
        })
}

#[test]
fn one_and_two_threads_give_the_same_bits() {
    let one = loss_and_grads(1);
    let two = loss_and_grads(2);
    assert_eq!(one.0, two.0, "loss");
    assert_eq!(one.1, two.1, "gradients");
    assert_eq!(one.2, two.2, "running mean");
    assert_eq!(one.1.len(), 5, "every parameter has a gradient");
}
