//! Central finite-difference checks of backward rules, for this crate's ops and for composite
//! layers built on them (spd-nas uses it too).
//!
//! For an op `y = f(x_1, …, x_m)` and a random `C`, the loss `L = ⟨C, y⟩` is differentiated by
//! the tape, and for every input `⟨∂L/∂x_i, E⟩` is compared with the fourth-order central
//! difference of `t ↦ L(x_i + tE)` along a random unit direction `E` (symmetric for SPD and
//! symmetric inputs) and along the gradient itself. The error must stay below
//! `1e-6 ‖∂L/∂x_i‖` plus the rounding floor of the difference quotient,
//! `1e2 ε κ (1 + |L|)/h` with κ the largest condition number among SPD inputs (the relative
//! accuracy to which `L` itself is computed); the floor only matters where the gradient is
//! (near) zero. For symmetric inputs only symmetric
//! perturbations exist, so the gradient compared is `sym(∂L/∂x_i)`.

use rand::Rng;
use spd_linalg::random::{
    SpectrumKind, adversarial_spectrum, gaussian, random_stiefel, seeded_rng, spd_with_spectrum,
};

use crate::error::Result;
use crate::graph::{Graph, Var};
use crate::ops::arith::dot_const;
use crate::tensor::Tensor;

/// Relative tolerance of [`check`].
pub const TOLERANCE: f64 = 1e-6;

/// What an input is, which decides how it is sampled, perturbed and stepped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    /// SPD matrices, including repeated, near-repeated and graded (κ ≤ 1e4) spectra and
    /// multiples of the identity; perturbed symmetrically, with a step of `1e-3 λ_min`.
    Spd,
    /// Symmetric matrices.
    Symmetric,
    /// Matrices with orthonormal columns (perturbed in the ambient space).
    Stiefel,
    /// Unstructured real values.
    General,
    /// Values in `[0.1, 1]` (mixing weights).
    Positive,
}

/// A sampled input: its value and kind.
#[derive(Debug, Clone)]
pub struct Input {
    /// The value.
    pub value: Tensor,
    /// Its kind.
    pub kind: InputKind,
}

const SPD_KINDS: [SpectrumKind; 5] = [
    SpectrumKind::WellSeparated,
    SpectrumKind::Repeated,
    SpectrumKind::NearRepeated,
    SpectrumKind::Graded,
    SpectrumKind::Scalar,
];

impl InputKind {
    /// A seeded random tensor of this kind.
    pub fn sample(self, shape: [usize; 4], seed: u64) -> Input {
        let mut rng = seeded_rng(seed);
        let mut value = Tensor::zeros(shape);
        for k in 0..value.count() {
            let m = match self {
                InputKind::Spd => {
                    let kind = SPD_KINDS[rng.random_range(0..SPD_KINDS.len())];
                    let spectrum = adversarial_spectrum(shape[2], kind, &mut rng);
                    spd_with_spectrum(&spectrum, &mut rng)
                }
                InputKind::Symmetric => spd_linalg::random::random_symmetric(shape[2], &mut rng),
                InputKind::Stiefel => random_stiefel(shape[2], shape[3], &mut rng),
                InputKind::General => gaussian(shape[2], shape[3], &mut rng),
                InputKind::Positive => {
                    faer::Mat::from_fn(shape[2], shape[3], |_, _| rng.random_range(0.1..1.0))
                }
            };
            value.mat_mut(k).copy_from(&m);
        }
        Input { value, kind: self }
    }

    fn direction(self, shape: [usize; 4], seed: u64) -> Tensor {
        let mut t = match self {
            InputKind::Spd | InputKind::Symmetric => InputKind::Symmetric.sample(shape, seed).value,
            _ => InputKind::General.sample(shape, seed).value,
        };
        let norm = t.norm_sq().sqrt();
        if norm > 0.0 {
            t = t.scaled(1.0 / norm);
        }
        t
    }

    fn step(self, x: &Tensor) -> f64 {
        match self {
            InputKind::Spd => {
                let lmin = (0..x.count())
                    .filter_map(|k| {
                        spd_linalg::eigvalsh(x.mat(k))
                            .ok()
                            .and_then(|v| v.first().copied())
                    })
                    .fold(1.0f64, f64::min);
                1e-3 * lmin
            }
            InputKind::Positive => 1e-4,
            _ => 1e-4 * x.data().iter().fold(1.0f64, |a, v| a.max(v.abs())),
        }
    }
}

/// Largest condition number of the matrices of `x`.
fn condition(x: &Tensor) -> f64 {
    (0..x.count())
        .filter_map(|k| spd_linalg::eigvalsh(x.mat(k)).ok())
        .map(|v| v.last().copied().unwrap_or(1.0) / v.first().copied().unwrap_or(1.0))
        .fold(1.0, f64::max)
}

/// A failed check, with the numbers.
#[derive(Debug, Clone)]
pub struct GradCheckError(pub String);

impl std::fmt::Display for GradCheckError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for GradCheckError {}

fn symmetrized(t: &Tensor) -> Tensor {
    let mut out = t.clone();
    for k in 0..out.count() {
        let s = spd_linalg::symmetrize(t.mat(k));
        out.mat_mut(k).copy_from(&s);
    }
    out
}

fn loss_at(
    inputs: &[Input],
    build: &dyn Fn(&mut Graph, &[Var]) -> Result<Var>,
    c: &Tensor,
) -> Result<f64> {
    let mut g = Graph::new();
    let vars: Vec<Var> = inputs.iter().map(|i| g.constant(i.value.clone())).collect();
    let y = build(&mut g, &vars)?;
    Ok(g.value(y).dot(c))
}

fn directional_fd(
    inputs: &[Input],
    which: usize,
    dir: &Tensor,
    h: f64,
    build: &dyn Fn(&mut Graph, &[Var]) -> Result<Var>,
    c: &Tensor,
) -> Result<f64> {
    let at = |t: f64| -> Result<f64> {
        let mut moved = inputs.to_vec();
        moved[which].value.axpy(t, dir);
        loss_at(&moved, build, c)
    };
    Ok((-at(2.0 * h)? + 8.0 * at(h)? - 8.0 * at(-h)? + at(-2.0 * h)?) / (12.0 * h))
}

/// Checks every input's gradient of `⟨C, build(inputs)⟩` against finite differences.
pub fn check(
    inputs: &[Input],
    build: impl Fn(&mut Graph, &[Var]) -> Result<Var>,
    seed: u64,
) -> std::result::Result<(), GradCheckError> {
    let err = |e: crate::AutogradError| GradCheckError(format!("op failed: {e}"));
    let mut g = Graph::new();
    let vars: Vec<Var> = inputs.iter().map(|i| g.leaf(i.value.clone())).collect();
    let y = build(&mut g, &vars).map_err(err)?;
    let c = InputKind::General
        .sample(g.value(y).shape(), seed ^ 0xc0ffee)
        .value;
    let loss = dot_const(&mut g, y, &c).map_err(err)?;
    let loss_value = g.value(loss).data()[0];
    let kappa = inputs
        .iter()
        .filter(|i| i.kind == InputKind::Spd)
        .fold(10.0f64, |k, i| k.max(condition(&i.value)));
    let grads = g.backward(loss).map_err(err)?;
    for (i, (input, var)) in inputs.iter().zip(&vars).enumerate() {
        let grad = match grads.wrt(*var) {
            None => Tensor::zeros(input.value.shape()),
            Some(t) if matches!(input.kind, InputKind::Spd | InputKind::Symmetric) => {
                symmetrized(t)
            }
            Some(t) => t.clone(),
        };
        if !grad.is_finite() {
            return Err(GradCheckError(format!("input {i}: non-finite gradient")));
        }
        let norm = grad.norm_sq().sqrt();
        let h = input.kind.step(&input.value);
        let floor = 1e2 * f64::EPSILON * kappa * (1.0 + loss_value.abs()) / h;
        let dir = input
            .kind
            .direction(input.value.shape(), seed.wrapping_add(i as u64 + 1));
        let fd = directional_fd(inputs, i, &dir, h, &build, &c).map_err(err)?;
        let an = grad.dot(&dir);
        if (fd - an).abs() > TOLERANCE * norm + floor {
            return Err(GradCheckError(format!(
                "input {i} ({:?}), random direction: finite difference {fd:e}, backward {an:e}, ‖grad‖ {norm:e}",
                input.kind
            )));
        }
        if norm > 0.0 {
            let unit = grad.scaled(1.0 / norm);
            let fd = directional_fd(inputs, i, &unit, h, &build, &c).map_err(err)?;
            if (fd - norm).abs() > TOLERANCE * norm + floor {
                return Err(GradCheckError(format!(
                    "input {i} ({:?}), gradient direction: finite difference {fd:e}, backward {norm:e}",
                    input.kind
                )));
            }
        }
    }
    Ok(())
}

/// Proptest settings for gradient checks: 64 cases from a fixed seed (set
/// `SPDNAS_PROPTEST_RANDOM=1` to explore).
#[cfg(any(test, feature = "proptest"))]
pub fn config() -> proptest::test_runner::Config {
    let mut config = proptest::test_runner::Config::with_cases(64);
    if std::env::var_os("SPDNAS_PROPTEST_RANDOM").is_none()
        && std::env::var_os("PROPTEST_RNG_SEED").is_none()
    {
        config.rng_seed = proptest::test_runner::RngSeed::Fixed(0x5eed_a9d0);
    }
    config
}
