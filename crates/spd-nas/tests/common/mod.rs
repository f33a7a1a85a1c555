//! Helpers shared by the spd-nas op and gradient tests: SPD inputs with chosen spectra, a
//! one-op forward, and a finite-difference checker for ops and networks that read parameters
//! from stores.
//!
//! The checker follows `spd_autograd::gradcheck` (same loss `⟨C, y⟩`, same fourth-order
//! central difference along a random unit direction and along the gradient, same tolerance
//! `TOLERANCE·‖∇‖` plus the rounding floor `1e2 ε κ (1 + |L|)/h`). It differs in two ways that
//! `gradcheck::check` cannot provide. First, it also differentiates parameters: the ops read
//! their weights through `g.param(store, id)`, which are not inputs of the checked function.
//! Second, it tells a wrong backward from an unreliable difference quotient, as when the
//! stencil meets a ReEig threshold, a sparsemax support change or a max-pool tie. A comparison
//! that misses the bound fails only if the loss is smooth on the stencil: the central quotients
//! at `h` and `h/2` agree, and so do the one-sided quotients from the right and from the left.
//! At a kink, the backward (the derivative of the piece the point lies on) must match the
//! one-sided quotient from the smooth side. If it matches neither side, the comparison is
//! redone once with a stencil 4 times narrower, then skipped and counted. Each test bounds the
//! share of skips.

#![allow(dead_code)]

use std::cell::RefCell;

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use rand::Rng;
use spd_autograd::gradcheck::{Input, InputKind, TOLERANCE};
use spd_autograd::layers::ForwardCtx;
use spd_autograd::ops::arith::dot_const;
use spd_autograd::{Graph, Manifold, ParamId, ParamStore, Tensor, Var};
use spd_linalg::random::{
    SpectrumKind, adversarial_spectrum, log_uniform_spectrum, seeded_rng, spd_with_spectrum,
};
use spd_nas::ArchParams;
use spd_nas::ops::{Op, OpCache, OpSettings, Pass};

/// The spectra an input is drawn from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spectra {
    /// Log-uniform in `[0.5, 5]`: condition number at most 10.
    Well,
    /// A few levels in `[0.1, 10]`, each a cluster with relative gaps `1e-12` to `1e-6`
    /// (spd-linalg's `NearRepeated`). With one level the matrix is within `1e-6` of a multiple
    /// of the identity.
    NearRepeated,
    /// Two or three levels, each 2 to 10 times the previous one from `[0.1, 1]`, each a
    /// cluster with relative gaps `1e-12` to `1e-6`: near-repeated eigenvalues, but never
    /// near a multiple of the identity. Near such a multiple, the logarithm's off-diagonal
    /// entries are all about `1e-6` and tie in a max-pooling window, where a network with
    /// MaxPooling_reduced is not differentiable.
    Clustered,
    /// Condition number log-uniform in `[1e3, 1e4]`, largest eigenvalue in `[1, 10]`, the
    /// smallest one repeated (from 3×3 on), the others log-uniform in between.
    Ill,
}

impl Spectra {
    /// The families for ops without max-pooling.
    pub const ALL: [Spectra; 3] = [Spectra::Well, Spectra::NearRepeated, Spectra::Ill];

    /// The families for networks (which have MaxPooling_reduced candidates): near-repeated
    /// spectra as clusters.
    pub const NETWORK: [Spectra; 3] = [Spectra::Well, Spectra::Clustered, Spectra::Ill];

    fn spectrum<R: Rng>(self, n: usize, rng: &mut R) -> Vec<f64> {
        match self {
            Spectra::Well => log_uniform_spectrum(n, 0.5, 5.0, rng),
            Spectra::NearRepeated => adversarial_spectrum(n, SpectrumKind::NearRepeated, rng),
            Spectra::Clustered => {
                let mut levels = vec![rng.random_range(0.1..1.0)];
                for _ in 0..rng.random_range(1..3) {
                    let last = levels[levels.len() - 1];
                    levels.push(last * rng.random_range(2.0..10.0));
                }
                let mut v: Vec<f64> = (0..n)
                    .map(|i| {
                        // every level is used once before any repeats
                        let base = levels[if i < levels.len() {
                            i
                        } else {
                            rng.random_range(0..levels.len())
                        }];
                        let gap = 10f64.powf(rng.random_range(-12.0..-6.0));
                        base * (1.0 + gap * rng.random_range(0.0..4.0))
                    })
                    .collect();
                v.sort_by(f64::total_cmp);
                v
            }
            Spectra::Ill => {
                let top = 10f64.powf(rng.random_range(0.0..1.0));
                let kappa = 10f64.powf(rng.random_range(3.0..4.0));
                let mut v = log_uniform_spectrum(n, top / kappa, top, rng);
                v[0] = top / kappa;
                if n > 1 {
                    v[n - 1] = top;
                }
                if n > 2 {
                    v[1] = v[0];
                }
                v
            }
        }
    }
}

/// A seeded `[B, C, n, n]` batch of SPD matrices, each with a spectrum of `spectra`.
pub fn spd_input(shape: [usize; 4], spectra: Spectra, seed: u64) -> Input {
    let mut rng = seeded_rng(seed);
    let mut value = Tensor::zeros(shape);
    for k in 0..value.count() {
        let s = spectra.spectrum(shape[2], &mut rng);
        value.mat_mut(k).copy_from(&spd_with_spectrum(&s, &mut rng));
    }
    Input {
        value,
        kind: InputKind::Spd,
    }
}

/// Largest condition number among the matrices of `t` (1 for an empty tensor).
pub fn condition(t: &Tensor) -> f64 {
    (0..t.count())
        .map(|k| {
            let v = spd_linalg::eigvalsh(t.mat(k)).expect("finite matrix");
            v[v.len() - 1] / v[0]
        })
        .fold(1.0, f64::max)
}

fn min_eigenvalue(t: &Tensor) -> f64 {
    (0..t.count())
        .map(|k| spd_linalg::eigvalsh(t.mat(k)).expect("finite matrix")[0])
        .fold(f64::INFINITY, f64::min)
}

/// One op's forward in training mode (batch statistics in its batch norm), as a network runs
/// it.
pub fn op_forward(
    op: &Op,
    g: &mut Graph,
    store: &ParamStore,
    settings: &OpSettings,
    x: Var,
) -> spd_nas::Result<Var> {
    let mut ctx = ForwardCtx::train();
    let mut pass = Pass {
        g,
        store,
        ctx: &mut ctx,
        settings,
        cache: OpCache::default(),
    };
    op.forward(&mut pass, x)
}

/// Whatever a checked function reads besides its inputs: network weights and, for a
/// supernet, the architecture parameters.
#[derive(Debug, Clone)]
pub struct Model {
    /// Network weights.
    pub weights: ParamStore,
    /// Architecture parameters α.
    pub arch: Option<ArchParams>,
}

impl Model {
    /// Weights only.
    pub fn new(weights: ParamStore) -> Self {
        Self {
            weights,
            arch: None,
        }
    }

    fn param(&self, id: ParamId) -> &spd_autograd::Param {
        self.weights
            .get(id)
            .or_else(|| self.arch.as_ref().and_then(|a| a.store.get(id)))
            .expect("parameter of this model")
    }

    fn param_mut(&mut self, id: ParamId) -> &mut Tensor {
        if self.weights.contains(id) {
            return &mut self.weights.get_mut(id).expect("contained").value;
        }
        &mut self
            .arch
            .as_mut()
            .and_then(|a| a.store.get_mut(id))
            .expect("parameter of this model")
            .value
    }

    /// The weights of `manifold` whose name starts with `prefix`.
    pub fn weight_ids(&self, manifold: Manifold, prefix: &str) -> Vec<ParamId> {
        self.weights
            .iter()
            .filter(|(_, p)| p.manifold == manifold && p.name.starts_with(prefix))
            .map(|(id, _)| id)
            .collect()
    }
}

/// One differentiated quantity: an input or a parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// Input `i`.
    Input(usize),
    /// A parameter of the model.
    Param(ParamId),
}

/// Quantities perturbed together along one direction of their product space (all SPD, or
/// none).
#[derive(Debug, Clone)]
pub struct Target {
    /// For messages.
    pub name: String,
    /// The quantities.
    pub slots: Vec<Slot>,
}

impl Target {
    /// A target of the given slots (skipped by the checker when empty).
    pub fn new(name: impl Into<String>, slots: Vec<Slot>) -> Self {
        Self {
            name: name.into(),
            slots,
        }
    }

    /// The parameters `ids`.
    pub fn params(name: impl Into<String>, ids: &[ParamId]) -> Self {
        Self::new(name, ids.iter().map(|&id| Slot::Param(id)).collect())
    }
}

/// Directional checks made and skipped over a property test.
#[derive(Debug, Default)]
pub struct Tally {
    /// Directional derivatives compared.
    pub checks: usize,
    /// Comparisons skipped because the difference quotient was unreliable.
    pub skips: usize,
    /// What was skipped.
    pub notes: Vec<String>,
    /// Comparisons that passed only with the narrower stencil, after the quotient at the
    /// default step was found not to be converged.
    pub refined: usize,
    /// Comparisons at a kink (the two one-sided differences disagree) where the backward
    /// matched the one-sided difference from the smooth side.
    pub one_sided: usize,
    /// Comparisons of a zero gradient (the difference quotient must vanish to the floor).
    pub zero: usize,
    /// Comparisons of a non-zero gradient that passed only thanks to the rounding floor
    /// (`|fd − backward| > TOLERANCE·‖∇‖`).
    pub floor_needed: usize,
    /// Largest `|fd − backward| / (TOLERANCE·‖∇‖)` among the other comparisons of a non-zero
    /// gradient: how close they came to the relative bound.
    pub worst_relative: f64,
}

impl Tally {
    /// Fails when more than `max_share` of the comparisons were skipped.
    pub fn assert_few_skips(&self, max_share: f64) {
        eprintln!(
            "{} directional derivatives compared ({} at a kink against a one-sided difference, \
             {} with a 4× narrower stencil, {} of a zero \
             gradient, {} within the rounding floor only, the others within {:.2e} × \
             1e-6‖∇‖), {} skipped{}",
            self.checks,
            self.one_sided,
            self.refined,
            self.zero,
            self.floor_needed,
            self.worst_relative,
            self.skips,
            if self.notes.is_empty() {
                String::new()
            } else {
                format!(": {}", self.notes.join("; "))
            }
        );
        assert!(self.checks > 0, "nothing was checked");
        assert!(
            self.skips as f64 <= max_share * self.checks as f64,
            "{} of {} comparisons skipped (more than {max_share}): {:?}",
            self.skips,
            self.checks,
            self.notes
        );
    }
}

/// The function checked: the output of `build` on the inputs and the model.
pub type Build<'a> = dyn Fn(&mut Graph, &[Var], &Model) -> spd_nas::Result<Var> + 'a;

fn symmetrized(t: &Tensor) -> Tensor {
    let mut out = t.clone();
    for k in 0..out.count() {
        out.mat_mut(k).copy_from(&spd_linalg::symmetrize(t.mat(k)));
    }
    out
}

fn unit(parts: Vec<Tensor>) -> Vec<Tensor> {
    let norm = parts.iter().map(Tensor::norm_sq).sum::<f64>().sqrt();
    if norm == 0.0 {
        return parts;
    }
    parts.iter().map(|t| t.scaled(1.0 / norm)).collect()
}

fn dot(a: &[Tensor], b: &[Tensor]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x.dot(y)).sum()
}

struct Problem<'a> {
    inputs: &'a [Input],
    model: &'a Model,
    build: &'a Build<'a>,
    c: Tensor,
}

impl Problem<'_> {
    fn loss_moved(&self, slots: &[Slot], dir: &[Tensor], t: f64) -> spd_nas::Result<f64> {
        let mut inputs = self.inputs.to_vec();
        let mut model = self.model.clone();
        for (slot, d) in slots.iter().zip(dir) {
            match slot {
                Slot::Input(i) => inputs[*i].value.axpy(t, d),
                Slot::Param(id) => model.param_mut(*id).axpy(t, d),
            }
        }
        let mut g = Graph::new();
        let vars: Vec<Var> = inputs.iter().map(|i| g.constant(i.value.clone())).collect();
        let y = (self.build)(&mut g, &vars, &model)?;
        Ok(g.value(y).dot(&self.c))
    }

    /// Fourth-order central difference `(−L(2h) + 8L(h) − 8L(−h) + L(−2h))/12h`.
    fn fd(&self, slots: &[Slot], dir: &[Tensor], h: f64) -> spd_nas::Result<f64> {
        let l = |t: f64| self.loss_moved(slots, dir, t);
        Ok((-l(2.0 * h)? + 8.0 * l(h)? - 8.0 * l(-h)? + l(-2.0 * h)?) / (12.0 * h))
    }

    /// Fourth-order one-sided differences from the right and from the left,
    /// `±(−25L(0) + 48L(±h) − 36L(±2h) + 16L(±3h) − 3L(±4h))/12h`.
    fn one_sided(&self, slots: &[Slot], dir: &[Tensor], h: f64) -> spd_nas::Result<(f64, f64)> {
        let l = |t: f64| self.loss_moved(slots, dir, t);
        let l0 = l(0.0)?;
        let side = |s: f64| -> spd_nas::Result<f64> {
            Ok(s * (-25.0 * l0 + 48.0 * l(s * h)? - 36.0 * l(2.0 * s * h)?
                + 16.0 * l(3.0 * s * h)?
                - 3.0 * l(4.0 * s * h)?)
                / (12.0 * h))
        };
        Ok((side(1.0)?, side(-1.0)?))
    }
}

/// How much more rounding error a one-sided difference carries than the central one: the
/// ratio of the sums of their coefficients' magnitudes, `(128/12)/(18/12)`.
const ONE_SIDED_ROUNDING: f64 = 128.0 / 18.0;

/// Checks the gradient of `⟨C, build(inputs, model)⟩` (random `C`) with respect to every
/// target against central differences, along a random unit direction and along the gradient.
///
/// Steps, chosen so that no matrix function downstream sees a relative change of its argument
/// above about `1e-3`. Then the fourth-order truncation error is of order `(1e-3)⁴` relative,
/// far below `TOLERANCE`:
/// - SPD targets: `1e-3 λ_min` (their smallest eigenvalue), as in `gradcheck`.
/// - Stiefel weights (perturbed in the ambient space): `1e-4 (10/κ)^{1/2}`, with κ ≥ 10 the
///   largest condition number among the SPD inputs and parameters. A change `δW` of a BiMap
///   changes `Y = WᵀXW` by `Y^{-1/2} δY Y^{-1/2} ~ 2 ‖δW‖ κ^{1/2}` relative (`X^{1/2} δW
///   X^{-1/2}` for square `W`). With κ = 10 this is gradcheck's `1e-4`.
/// - Euclidean weights (pair weights, `Ω`, α, the classifier): `1e-4 max(1, |θ|)`, as in
///   gradcheck. They act through mixing weights `w` of Fréchet means. Since
///   `M₀ = Σ w_k X_k ⪰ w_k X_k`, a change `δw` moves the whitened operands
///   `M₀^{-1/2} X_k M₀^{-1/2}` by at most `δw/w_k` relative, whatever the conditioning of the
///   `X_k`.
///
/// The rounding floor `1e2 ε κ (1 + |L|)/h` is gradcheck's: the loss is computed to about
/// `ε κ` relative accuracy, and the quotient divides that error by `h`.
///
/// A quotient that misses the bound is recomputed at `h/2`, together with the fourth-order
/// one-sided quotients over `[0, ±4h]`. If the two central quotients agree to the same bound
/// and the one-sided ones agree to their own rounding floor (`128/18` times the central one),
/// the loss is smooth there and the backward is wrong: error. Otherwise there is a kink within
/// `4h`. The comparison passes if the backward matches one of the one-sided quotients (to
/// `TOLERANCE·‖∇‖` plus their floor). If not, it is redone at `h/4` (same rule), then
/// skipped and counted in `tally`.
pub fn check_gradients(
    inputs: &[Input],
    model: &Model,
    targets: &[Target],
    build: &Build<'_>,
    seed: u64,
    tally: &mut Tally,
) -> Result<(), String> {
    let err = |what: &str, e: spd_nas::NasError| format!("{what}: {e}");
    let mut g = Graph::new();
    let vars: Vec<Var> = inputs.iter().map(|i| g.leaf(i.value.clone())).collect();
    let y = build(&mut g, &vars, model).map_err(|e| err("forward", e))?;
    let c = InputKind::General
        .sample(g.value(y).shape(), seed ^ 0xc0ffee)
        .value;
    let loss = dot_const(&mut g, y, &c).map_err(|e| err("loss", e.into()))?;
    let loss_value = g.value(loss).data()[0];
    let grads = g.backward(loss).map_err(|e| err("backward", e.into()))?;
    let spd_values: Vec<&Tensor> = inputs
        .iter()
        .filter(|i| i.kind == InputKind::Spd)
        .map(|i| &i.value)
        .chain(
            model
                .weights
                .iter()
                .chain(model.arch.iter().flat_map(|a| a.store.iter()))
                .filter(|(_, p)| p.manifold == Manifold::Spd)
                .map(|(_, p)| &p.value),
        )
        .collect();
    let kappa = spd_values.iter().map(|t| condition(t)).fold(10.0, f64::max);
    let problem = Problem {
        inputs,
        model,
        build,
        c,
    };
    let mut rng = seeded_rng(seed ^ 0xd1ec7);
    for target in targets.iter().filter(|t| !t.slots.is_empty()) {
        let mut spd = Vec::new();
        let mut grad = Vec::new();
        let mut values = Vec::new();
        for slot in &target.slots {
            let (value, is_spd, raw) = match *slot {
                Slot::Input(i) => (
                    &inputs[i].value,
                    matches!(inputs[i].kind, InputKind::Spd | InputKind::Symmetric),
                    grads.wrt(vars[i]),
                ),
                Slot::Param(id) => {
                    let p = model.param(id);
                    (&p.value, p.manifold == Manifold::Spd, grads.param(id))
                }
            };
            let gt = match raw {
                None => Tensor::zeros(value.shape()),
                Some(t) if is_spd => symmetrized(t),
                Some(t) => t.clone(),
            };
            if !gt.is_finite() {
                return Err(format!("{}: non-finite gradient", target.name));
            }
            spd.push(is_spd);
            grad.push(gt);
            values.push(value);
        }
        let all_spd = spd.iter().all(|s| *s);
        assert!(
            all_spd || spd.iter().all(|s| !*s),
            "{}: a target is all SPD or has no SPD quantity",
            target.name
        );
        let stiefel = target.slots.iter().any(
            |s| matches!(s, Slot::Param(id) if model.param(*id).manifold == Manifold::Stiefel),
        );
        let h = if all_spd {
            1e-3 * values
                .iter()
                .map(|v| min_eigenvalue(v))
                .fold(f64::INFINITY, f64::min)
        } else if stiefel {
            1e-4 * (10.0 / kappa).sqrt()
        } else {
            let scale = values
                .iter()
                .flat_map(|v| v.data())
                .fold(1.0f64, |a, x| a.max(x.abs()));
            1e-4 * scale
        };
        let floor = |h: f64| 1e2 * f64::EPSILON * kappa * (1.0 + loss_value.abs()) / h;
        let norm = dot(&grad, &grad).sqrt();
        let random: Vec<Tensor> = unit(
            values
                .iter()
                .zip(&spd)
                .map(|(v, &s)| {
                    let kind = if s {
                        InputKind::Symmetric
                    } else {
                        InputKind::General
                    };
                    kind.sample(v.shape(), rng.random()).value
                })
                .collect(),
        );
        let along_gradient = unit(grad.clone());
        let mut directions = vec![("random direction", random)];
        if norm > 0.0 {
            directions.push(("gradient direction", along_gradient));
        }
        for (which, dir) in directions {
            let an = dot(&grad, &dir);
            tally.checks += 1;
            let mut refined = false;
            let mut step = h;
            loop {
                let fd = problem
                    .fd(&target.slots, &dir, step)
                    .map_err(|e| err("perturbed forward", e))?;
                let tol = TOLERANCE * norm + floor(step);
                if (fd - an).abs() <= tol {
                    if refined {
                        tally.refined += 1;
                    } else if norm == 0.0 {
                        tally.zero += 1;
                    } else {
                        let relative = (fd - an).abs() / (TOLERANCE * norm);
                        if relative > 1.0 {
                            tally.floor_needed += 1;
                        } else {
                            tally.worst_relative = tally.worst_relative.max(relative);
                        }
                    }
                    break;
                }
                let fd_half = problem
                    .fd(&target.slots, &dir, step / 2.0)
                    .map_err(|e| err("perturbed forward", e))?;
                let (right, left) = problem
                    .one_sided(&target.slots, &dir, step)
                    .map_err(|e| err("perturbed forward", e))?;
                let message = format!(
                    "{}, {which}: finite difference {fd:e} (step {step:e}; {fd_half:e} at half \
                     the step; one-sided {right:e} from the right, {left:e} from the left), \
                     backward {an:e}, ‖grad‖ {norm:e}, tolerance {tol:e}",
                    target.name
                );
                let converged = (fd - fd_half).abs() <= TOLERANCE * norm + floor(step / 2.0);
                let sides_agree = (right - left).abs()
                    <= TOLERANCE * norm + 2.0 * ONE_SIDED_ROUNDING * floor(step);
                if converged && sides_agree {
                    // smooth on `[−4 step, 4 step]` and different from the backward
                    return Err(message);
                }
                // Not smooth on the stencil. If the kink is on one side, the backward (the
                // derivative of the piece the point is on) equals the one-sided difference
                // from the other side.
                let one_sided_tol = TOLERANCE * norm + ONE_SIDED_ROUNDING * floor(step);
                if (right - an).abs() <= one_sided_tol || (left - an).abs() <= one_sided_tol {
                    tally.one_sided += 1;
                    break;
                }
                // The quotient changes with the step, or the slopes from the two sides differ:
                // the loss is not smooth on the stencil (a ReEig threshold, a sparsemax support
                // change or a max-pool tie within `4·step`, possibly at the point itself).
                // Retry once with a stencil 4 times narrower, then skip.
                if refined {
                    tally.skips += 1;
                    tally.notes.push(message);
                    break;
                }
                refined = true;
                step /= 4.0;
            }
        }
    }
    Ok(())
}

/// Runs `test` on `cases` values of `strategy` (fixed seed, as the gradient checks of
/// spd-autograd), collecting the tally of every case; returns it for the skip bound.
pub fn run_cases<S: Strategy>(
    cases: u32,
    strategy: S,
    test: impl Fn(S::Value, &mut Tally) -> Result<(), String>,
) -> Tally {
    let config = Config {
        cases,
        failure_persistence: None,
        ..spd_autograd::gradcheck::config()
    };
    let tally = RefCell::new(Tally::default());
    let mut runner = TestRunner::new(config);
    let result = runner.run(&strategy, |value| {
        let label = format!("{value:?}");
        let mut local = Tally::default();
        let outcome = test(value, &mut local);
        let mut total = tally.borrow_mut();
        total.checks += local.checks;
        total.skips += local.skips;
        total
            .notes
            .extend(local.notes.iter().map(|n| format!("case {label}: {n}")));
        total.zero += local.zero;
        total.refined += local.refined;
        total.one_sided += local.one_sided;
        total.floor_needed += local.floor_needed;
        total.worst_relative = total.worst_relative.max(local.worst_relative);
        outcome.map_err(TestCaseError::fail)
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    tally.into_inner()
}
