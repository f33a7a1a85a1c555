//! Parameterised layers built from the ops: BiMap with a Stiefel weight, Riemannian batch norm
//! with an SPD bias and a running mean, and a Euclidean linear head. Each registers its
//! parameters in a [`ParamStore`] at construction and reads them on every forward.

use faer::Mat;
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};
use spd_linalg::SpdPoint;

use crate::error::{LinalgContext, Result, shape_err};
use crate::graph::{Graph, Var};
use crate::manifold::Manifold;
use crate::ops::{
    bimap::bimap, congruence::congruence, eig::sqrt_eig, frechet::batch_barycenter, linear::linear,
};
use crate::param::{ParamId, ParamStore};
use crate::tensor::Tensor;

/// Mode of a forward pass and the buffer updates it produced (applied by the caller with
/// [`ForwardCtx::commit`], so auxiliary forwards — validation, perturbed weights — can discard
/// them).
#[derive(Debug, Clone, Default)]
pub struct ForwardCtx {
    /// Training mode: batch statistics (and running-mean updates); otherwise running means.
    pub training: bool,
    /// Running-mean updates recorded during the forward.
    pub buffer_updates: Vec<(String, Tensor)>,
}

impl ForwardCtx {
    /// A training-mode context.
    pub fn train() -> Self {
        Self {
            training: true,
            buffer_updates: Vec::new(),
        }
    }

    /// An evaluation-mode context.
    pub fn eval() -> Self {
        Self::default()
    }

    /// Writes the recorded buffer updates into `store`.
    pub fn commit(self, store: &mut ParamStore) {
        for (name, value) in self.buffer_updates {
            store.set_buffer(name, value);
        }
    }
}

/// The SPDNet BiMap initialisation (spec §3.1): `V ~ U(0,1)^{n×n}`, `A = V Vᵀ + 1e-5 tr(V Vᵀ) I`,
/// `W` = the eigenvectors of the `m` largest eigenvalues of `A` (its leading left singular
/// vectors).
pub fn bimap_init<R: Rng + ?Sized>(n: usize, m: usize, rng: &mut R) -> Mat<f64> {
    let v = Mat::from_fn(n, n, |_, _| rng.random::<f64>());
    let mut a = spd_linalg::dense::mm(v.as_ref(), v.transpose());
    let shift = 1e-5 * (0..n).map(|i| a[(i, i)]).sum::<f64>();
    for i in 0..n {
        a[(i, i)] += shift;
    }
    let eig = spd_linalg::eigh(a.as_ref()).expect("V Vᵀ + shift is SPD");
    let w = Mat::from_fn(n, m, |i, j| eig.vectors[(i, n - 1 - j)]);
    spd_linalg::stiefel::orthonormalize_qr(w.as_ref())
}

/// `Y_o = Σ_i W_oiᵀ X_i W_oi` with Stiefel `W: [C_out, C_in, n_in, n_out]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BiMapLayer {
    /// The weight.
    pub weight: ParamId,
}

impl BiMapLayer {
    /// Registers `name.w`, initialised per slice by [`bimap_init`].
    pub fn new<R: Rng + ?Sized>(
        store: &mut ParamStore,
        name: &str,
        (c_in, c_out): (usize, usize),
        (n_in, n_out): (usize, usize),
        rng: &mut R,
    ) -> Result<Self> {
        if n_out > n_in || n_out == 0 {
            return Err(shape_err(
                "BiMap",
                format!("cannot map {n_in} to {n_out} (needs 0 < n_out ≤ n_in)"),
            ));
        }
        let mut w = Tensor::zeros([c_out, c_in, n_in, n_out]);
        for k in 0..c_out * c_in {
            w.mat_mut(k).copy_from(&bimap_init(n_in, n_out, rng));
        }
        let weight = store.add(format!("{name}.w"), Manifold::Stiefel, w)?;
        Ok(Self { weight })
    }

    /// Forward.
    pub fn forward(&self, g: &mut Graph, store: &ParamStore, x: Var) -> Result<Var> {
        let w = g.param(store, self.weight)?;
        bimap(g, x, w)
    }
}

/// Riemannian batch norm (Brooks et al. 2019; spec §3.2): one barycentre `G` of all `B·C`
/// matrices, centring `G^{-1/2} X G^{-1/2}`, biasing `B^{1/2} X̃ B^{1/2}` with an SPD bias `B`;
/// the running mean moves along the geodesic `G_r ← G_r #_η G` in training mode.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BatchNormSpd {
    /// The SPD bias (initialised to `I`).
    pub bias: ParamId,
    /// Name of the running-mean buffer.
    pub running_mean: String,
    /// Geodesic momentum `η` (0.1).
    pub momentum: f64,
    /// Karcher steps for the batch barycentre (1 in the paper).
    pub karcher_steps: usize,
}

impl BatchNormSpd {
    /// Registers `name.bias` (= I) and the buffer `name.running_mean` (= I) for `n × n` inputs.
    pub fn new(store: &mut ParamStore, name: &str, n: usize) -> Result<Self> {
        let bias = store.add(
            format!("{name}.bias"),
            Manifold::Spd,
            Tensor::identities(1, 1, n),
        )?;
        let running_mean = format!("{name}.running_mean");
        store.set_buffer(running_mean.clone(), Tensor::identities(1, 1, n));
        Ok(Self {
            bias,
            running_mean,
            momentum: 0.1,
            karcher_steps: 1,
        })
    }

    /// Forward in the mode of `ctx`; in training mode the running-mean update is recorded in
    /// `ctx` (not applied).
    pub fn forward(
        &self,
        g: &mut Graph,
        store: &ParamStore,
        ctx: &mut ForwardCtx,
        x: Var,
    ) -> Result<Var> {
        self.forward_with_steps(g, store, ctx, x, self.karcher_steps)
    }

    /// [`Self::forward`] with the batch barycentre taken by `karcher_steps` Karcher steps in
    /// place of the layer's own count (a network whose Fréchet means share one setting).
    pub fn forward_with_steps(
        &self,
        g: &mut Graph,
        store: &ParamStore,
        ctx: &mut ForwardCtx,
        x: Var,
        karcher_steps: usize,
    ) -> Result<Var> {
        let running = store
            .buffer(&self.running_mean)
            .ok_or_else(|| crate::AutogradError::UnknownParameter(self.running_mean.clone()))?;
        let whitener = if ctx.training {
            let mean = batch_barycenter(g, x, karcher_steps)?;
            let updated = SpdPoint::new(running.mat(0))
                .and_then(|p| p.geodesic(g.value(mean).mat(0), self.momentum))
                .op("batch norm running mean")?;
            ctx.buffer_updates.push((
                self.running_mean.clone(),
                Tensor::from_matrices(1, &[updated.as_ref()])?,
            ));
            crate::ops::eig::inv_sqrt_eig(g, mean)?
        } else {
            let w = spd_linalg::inv_sqrtm(running.mat(0)).op("batch norm running mean")?;
            g.constant(Tensor::from_matrices(1, &[w.as_ref()])?)
        };
        let centred = congruence(g, whitener, x)?;
        let b = g.param(store, self.bias)?;
        let sb = sqrt_eig(g, b)?;
        congruence(g, sb, centred)
    }
}

/// `y = W x + b` on vectors `[B, 1, 1, D]`; `W` Euclidean `[1, 1, K, D]`, `b` `[1, 1, 1, K]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LinearLayer {
    /// Weight.
    pub weight: ParamId,
    /// Bias.
    pub bias: ParamId,
}

impl LinearLayer {
    /// Registers `name.w` with entries `N(0, 1/D)` and `name.b = 0`.
    pub fn new<R: Rng + ?Sized>(
        store: &mut ParamStore,
        name: &str,
        d: usize,
        k: usize,
        rng: &mut R,
    ) -> Result<Self> {
        let scale = 1.0 / (d.max(1) as f64).sqrt();
        let mut w = Tensor::zeros([1, 1, k, d]);
        for v in w.data_mut() {
            let z: f64 = StandardNormal.sample(rng);
            *v = scale * z;
        }
        let weight = store.add(format!("{name}.w"), Manifold::Euclidean, w)?;
        let bias = store.add(
            format!("{name}.b"),
            Manifold::Euclidean,
            Tensor::zeros([1, 1, 1, k]),
        )?;
        Ok(Self { weight, bias })
    }

    /// Forward.
    pub fn forward(&self, g: &mut Graph, store: &ParamStore, x: Var) -> Result<Var> {
        let w = g.param(store, self.weight)?;
        let b = g.param(store, self.bias)?;
        linear(g, x, w, b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{InputKind, TOLERANCE, check, config};
    use proptest::prelude::*;
    use spd_linalg::random::seeded_rng;

    /// `⟨C, BatchNormSpd::forward(x)⟩` in training mode with the bias parameter set to `bias`.
    fn bn_loss(
        bn: &BatchNormSpd,
        store: &ParamStore,
        x: &Tensor,
        bias: &Tensor,
        c: &Tensor,
    ) -> f64 {
        let mut store = store.clone();
        store.get_mut(bn.bias).expect("registered").value = bias.clone();
        let mut g = Graph::new();
        let xv = g.constant(x.clone());
        let y = bn
            .forward(&mut g, &store, &mut ForwardCtx::train(), xv)
            .expect("SPD inputs");
        g.value(y).dot(c)
    }

    fn largest_condition(t: &Tensor) -> f64 {
        (0..t.count())
            .map(|k| {
                let v = spd_linalg::eigvalsh(t.mat(k)).expect("SPD");
                v[v.len() - 1] / v[0]
            })
            .fold(10.0, f64::max)
    }

    /// The finite-difference check of [`check`] for the bias *parameter*, which `check` cannot
    /// reach (it differentiates leaves it creates, while `forward` reads the bias from the
    /// store): the tape's `sym(∂L/∂B)` (reported under the parameter's id) against the
    /// fourth-order central difference of `t ↦ L(B + tE)` along a random symmetric unit `E`
    /// and along the gradient, with `check`'s step (`1e-3 λ_min(B)`) and tolerance
    /// (`TOLERANCE ‖∂L/∂B‖` plus the rounding floor `1e2 ε κ (1 + |L|)/h`).
    fn check_bias_gradient(
        bn: &BatchNormSpd,
        store: &ParamStore,
        x: &Tensor,
        seed: u64,
    ) -> Result<(), TestCaseError> {
        let bias = store.get(bn.bias).expect("registered").value.clone();
        let mut g = Graph::new();
        let xv = g.constant(x.clone());
        let y = bn
            .forward(&mut g, store, &mut ForwardCtx::train(), xv)
            .expect("SPD inputs");
        let c = InputKind::General
            .sample(g.value(y).shape(), seed ^ 0xc0ffee)
            .value;
        let loss = crate::ops::arith::dot_const(&mut g, y, &c).expect("same shape");
        let loss_value = g.value(loss).data()[0];
        let grads = g.backward(loss).expect("backward");
        let raw = grads
            .param(bn.bias)
            .ok_or_else(|| TestCaseError::fail("no gradient for the bias"))?;
        let grad = Tensor::from_matrices(1, &[spd_linalg::symmetrize(raw.mat(0)).as_ref()])
            .expect("one matrix");
        prop_assert!(grad.is_finite());
        let norm = grad.norm_sq().sqrt();
        let h = 1e-3 * spd_linalg::eigvalsh(bias.mat(0)).expect("SPD")[0];
        let kappa = largest_condition(x).max(largest_condition(&bias));
        let floor = 1e2 * f64::EPSILON * kappa * (1.0 + loss_value.abs()) / h;
        let fd = |dir: &Tensor| {
            let at = |t: f64| {
                let mut b = bias.clone();
                b.axpy(t, dir);
                bn_loss(bn, store, x, &b, &c)
            };
            (-at(2.0 * h) + 8.0 * at(h) - 8.0 * at(-h) + at(-2.0 * h)) / (12.0 * h)
        };
        let random = InputKind::Symmetric
            .sample(bias.shape(), seed.wrapping_add(2))
            .value;
        let random = random.scaled(1.0 / random.norm_sq().sqrt());
        let (f, a) = (fd(&random), grad.dot(&random));
        prop_assert!(
            (f - a).abs() <= TOLERANCE * norm + floor,
            "bias, random direction: finite difference {f:e}, backward {a:e}, ‖grad‖ {norm:e}"
        );
        if norm > 0.0 {
            let f = fd(&grad.scaled(1.0 / norm));
            prop_assert!(
                (f - norm).abs() <= TOLERANCE * norm + floor,
                "bias, gradient direction: finite difference {f:e}, backward {norm:e}"
            );
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(config())]

        /// Gradients of `BatchNormSpd::forward` itself (training mode: batch barycentre by
        /// `karcher_steps` ∈ {1, 2} Karcher steps, whitening, SPD bias) in its input and in
        /// its bias parameter, the bias at the identity (repeated eigenvalues) or random.
        #[test]
        fn batch_norm_forward_gradients_in_input_and_bias(b in 1usize..4, c in 1usize..3, n in 1usize..6, steps in 1usize..=2, identity_bias in any::<bool>(), seed in any::<u64>()) {
            let mut store = ParamStore::new();
            let mut bn = BatchNormSpd::new(&mut store, "bn", n).unwrap();
            bn.karcher_steps = steps;
            if !identity_bias {
                store.get_mut(bn.bias).unwrap().value = InputKind::Spd.sample([1, 1, n, n], seed ^ 2).value;
            }
            let x = InputKind::Spd.sample([b, c, n, n], seed);
            check_bias_gradient(&bn, &store, &x.value, seed)?;
            check(&[x], |g, v| bn.forward(g, &store, &mut ForwardCtx::train(), v[0]), seed)?;
        }
    }

    /// Training mode whitens by the `karcher_steps`-step Karcher barycentre of all `B·C`
    /// matrices and records the running mean `I #_η G` towards it: for k = 1, 2, 3 the output
    /// (bias `I`) is `G_k^{-1/2} X G_k^{-1/2}` and the recorded running mean `I #_{0.1} G_k`,
    /// with `G_k` spd-linalg's Karcher flow from the arithmetic mean stopped after k full
    /// steps (tolerance 0). Consecutive `G_k` differ by far more than the tolerance, so a
    /// forward that ignored the field would fail. The two sides differ only in rounding (order
    /// of sums, one EVD route or another): with κ ≤ 100 that is `≲ n ε κ ≈ 1e-13` relative
    /// (4e-15 measured), and the steps move the mean by 3e-2 and 7e-3 relative.
    #[test]
    fn batch_norm_barycentre_takes_karcher_steps() {
        let n = 4;
        let mut rng = seeded_rng(17);
        let mats: Vec<Mat<f64>> = (0..6)
            .map(|_| spd_linalg::random::random_spd(n, &mut rng))
            .collect();
        let views: Vec<_> = mats.iter().map(|m| m.as_ref()).collect();
        let x = Tensor::from_matrices(2, &views).unwrap();
        let mut previous: Option<Mat<f64>> = None;
        for k in 1..=3 {
            let options = spd_linalg::KarcherOptions {
                max_iterations: k,
                tolerance: 0.0,
                step: 1.0,
            };
            let reference = spd_linalg::karcher_mean(&views, None, options).unwrap();
            assert_eq!(reference.iterations, k);
            let mean = reference.mean;
            let scale = mean.norm_l2();
            if let Some(p) = &previous {
                let step = (&mean - p).norm_l2();
                assert!(
                    step > 1e-6 * scale,
                    "step {k} moved the mean by only {step:e}"
                );
            }
            let mut store = ParamStore::new();
            let mut bn = BatchNormSpd::new(&mut store, "bn", n).unwrap();
            bn.karcher_steps = k;
            let mut g = Graph::new();
            let xv = g.constant(x.clone());
            let mut ctx = ForwardCtx::train();
            let y = bn.forward(&mut g, &store, &mut ctx, xv).unwrap();
            let whitener = spd_linalg::inv_sqrtm(mean.as_ref()).unwrap();
            for (i, m) in mats.iter().enumerate() {
                let expected = spd_linalg::congruence(whitener.as_ref(), m.as_ref());
                let diff = (g.value(y).mat(i).to_owned() - &expected).norm_l2();
                assert!(
                    diff <= 1e-12 * expected.norm_l2(),
                    "k = {k}, matrix {i}: {diff:e}"
                );
            }
            let running = spd_linalg::geodesic(
                Mat::<f64>::identity(n, n).as_ref(),
                mean.as_ref(),
                bn.momentum,
            )
            .unwrap();
            let recorded = ctx.buffer_updates[0].1.mat(0).to_owned();
            let diff = (&recorded - &running).norm_l2();
            assert!(
                diff <= 1e-12 * running.norm_l2(),
                "k = {k}, running mean: {diff:e}"
            );
            previous = Some(mean);
        }
    }

    #[test]
    fn bimap_init_is_orthonormal_and_seeded() {
        let a = bimap_init(20, 10, &mut seeded_rng(1));
        assert!(spd_linalg::orthonormality_error(a.as_ref()) < 1e-12);
        assert_eq!(a, bimap_init(20, 10, &mut seeded_rng(1)));
    }

    #[test]
    fn batch_norm_train_records_running_mean_and_eval_uses_it() {
        let mut store = ParamStore::new();
        let bn = BatchNormSpd::new(&mut store, "bn", 3).unwrap();
        let x = InputKind::Spd.sample([4, 1, 3, 3], 5).value;
        let mut g = Graph::new();
        let xv = g.constant(x.clone());
        let mut ctx = ForwardCtx::train();
        let y = bn.forward(&mut g, &store, &mut ctx, xv).unwrap();
        assert_eq!(g.value(y).shape(), [4, 1, 3, 3]);
        assert_eq!(ctx.buffer_updates.len(), 1);
        let before = store.buffer("bn.running_mean").unwrap().clone();
        ctx.commit(&mut store);
        assert_ne!(store.buffer("bn.running_mean").unwrap(), &before);
        let mut ev = ForwardCtx::eval();
        let mut g2 = Graph::new();
        let xv2 = g2.constant(x);
        bn.forward(&mut g2, &store, &mut ev, xv2).unwrap();
        assert!(ev.buffer_updates.is_empty());
    }
}
