//! Eigen-function layers `Y = U f(Λ) Uᵀ` (ReEig, LogEig, ExpEig, SqrtEig, InvSqrtEig, PowEig)
//! over every matrix of a tensor. The forward keeps `(U, λ)`; the backward is the
//! Daleckii–Krein rule of `spd_linalg::spectral`, exact at repeated eigenvalues.

use std::sync::Arc;

use spd_linalg::spectral::{
    Exp, InvSqrt, Log, Pow, REEIG_EPSILON, ReEig, SpectralFn, SpectralWorkspace, Sqrt,
};
use spd_linalg::{
    CappedExp, EighBatch, capped_exp_backward_batch, capped_exp_batch, spectral_backward_batch,
    spectral_batch,
};

use super::{check_square, par_fill_with};
use crate::error::{LinalgContext, Result};
use crate::graph::{Backward, BackwardContext, Graph, Var};
use crate::tensor::Tensor;

/// A spectral function usable on the tape.
pub trait EigFn: SpectralFn + Send + Sync + 'static {}
impl<T: SpectralFn + Send + Sync + 'static> EigFn for T {}

struct EigBackward<F> {
    f: F,
    eig: Arc<EighBatch>,
}

impl<F: EigFn> Backward for EigBackward<F> {
    fn backward(&self, _ctx: &BackwardContext<'_>, grad: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let d = spectral_backward_batch(&self.f, &self.eig, grad.data())
            .op("eigen-function backward")?;
        Ok(vec![Some(Tensor::from_vec(grad.shape(), d)?)])
    }
}

/// The decomposition of an input, kept so that several functions of one matrix share an EVD.
#[derive(Clone)]
pub struct Decomposition {
    input: Var,
    eig: Arc<EighBatch>,
}

/// `U f(Λ) Uᵀ` of every matrix of `x`; also returns the decomposition for reuse with
/// [`eig_fn_reuse`].
pub fn eig_fn_keep<F: EigFn>(g: &mut Graph, x: Var, f: F) -> Result<(Var, Decomposition)> {
    let xv = g.value(x);
    let n = check_square("eigen-function", xv)?;
    let (out, eig) = spectral_batch(&f, xv.data(), n).op(f.name())?;
    let out = Tensor::from_vec(xv.shape(), out)?;
    let eig = Arc::new(eig);
    let y = g.push(
        out,
        vec![x],
        Box::new(EigBackward {
            f,
            eig: eig.clone(),
        }),
    );
    Ok((y, Decomposition { input: x, eig }))
}

/// `U g(Λ) Uᵀ` from a decomposition already computed by [`eig_fn_keep`] (no new EVD); its
/// gradient flows to the same input.
pub fn eig_fn_reuse<F: EigFn>(g: &mut Graph, d: &Decomposition, f: F) -> Result<Var> {
    let n = d.eig.n;
    let shape = g.value(d.input).shape();
    for k in 0..d.eig.len() {
        spd_linalg::spectral::check_domain(&f, d.eig.values(k)).op(f.name())?;
    }
    let mut out = Tensor::zeros(shape);
    par_fill_with(
        &mut out,
        || SpectralWorkspace::new(n),
        |ws, k, y| ws.apply_into(&f, d.eig.values(k), d.eig.vectors(k), y),
    );
    Ok(g.push(
        out,
        vec![d.input],
        Box::new(EigBackward {
            f,
            eig: d.eig.clone(),
        }),
    ))
}

/// `U f(Λ) Uᵀ` of every matrix of `x`.
pub fn eig_fn<F: EigFn>(g: &mut Graph, x: Var, f: F) -> Result<Var> {
    Ok(eig_fn_keep(g, x, f)?.0)
}

/// ReEig: `U max(Λ, ε) Uᵀ`.
pub fn reeig(g: &mut Graph, x: Var, epsilon: f64) -> Result<Var> {
    eig_fn(g, x, ReEig(epsilon))
}

/// ReEig with the SPDNet threshold `ε = 1e-4`.
pub fn reeig_default(g: &mut Graph, x: Var) -> Result<Var> {
    reeig(g, x, REEIG_EPSILON)
}

/// LogEig: `log X`.
pub fn log_eig(g: &mut Graph, x: Var) -> Result<Var> {
    eig_fn(g, x, Log)
}

/// ExpEig: `exp S` (symmetric eigensolver, fixing D5 in `docs/fidelity.md`).
pub fn exp_eig(g: &mut Graph, x: Var) -> Result<Var> {
    eig_fn(g, x, Exp)
}

struct CappedExpBackward {
    cap: CappedExp,
    eig: Arc<EighBatch>,
}

impl Backward for CappedExpBackward {
    fn backward(&self, _ctx: &BackwardContext<'_>, grad: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let d = capped_exp_backward_batch(&self.cap, &self.eig, grad.data())
            .op("capped exp backward")?;
        Ok(vec![Some(Tensor::from_vec(grad.shape(), d)?)])
    }
}

/// ExpEig with a spectrum-relative floor: `U exp(max(Λ, μ_max − τ)) Uᵀ`, whose condition
/// number is at most `e^τ` ([`spd_linalg::capped_exp`]); equal to [`exp_eig`] where the
/// spread of `S` is below `τ`.
pub fn exp_eig_capped(g: &mut Graph, x: Var, cap: CappedExp) -> Result<Var> {
    let xv = g.value(x);
    let n = check_square("capped exp", xv)?;
    let (out, eig) = capped_exp_batch(&cap, xv.data(), n).op("capped exp")?;
    let out = Tensor::from_vec(xv.shape(), out)?;
    Ok(g.push(
        out,
        vec![x],
        Box::new(CappedExpBackward {
            cap,
            eig: Arc::new(eig),
        }),
    ))
}

/// SqrtEig: `X^{1/2}`.
pub fn sqrt_eig(g: &mut Graph, x: Var) -> Result<Var> {
    eig_fn(g, x, Sqrt)
}

/// InvSqrtEig: `X^{-1/2}`.
pub fn inv_sqrt_eig(g: &mut Graph, x: Var) -> Result<Var> {
    eig_fn(g, x, InvSqrt)
}

/// PowEig: `X^t`.
pub fn pow_eig(g: &mut Graph, x: Var, t: f64) -> Result<Var> {
    eig_fn(g, x, Pow(t))
}

/// `(X^{1/2}, X^{-1/2})` from one EVD per matrix.
pub fn sqrt_and_inv_sqrt(g: &mut Graph, x: Var) -> Result<(Var, Var)> {
    let (s, d) = eig_fn_keep(g, x, Sqrt)?;
    let is = eig_fn_reuse(g, &d, InvSqrt)?;
    Ok((s, is))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{InputKind, check, config};
    use proptest::prelude::*;

    fn spd(b: usize, c: usize, n: usize, seed: u64) -> [crate::gradcheck::Input; 1] {
        [InputKind::Spd.sample([b, c, n, n], seed)]
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn log_exp_sqrt_invsqrt_pow_gradients(b in 1usize..3, c in 1usize..3, n in 1usize..9, t in -1.5f64..1.5, seed in any::<u64>()) {
            let x = spd(b, c, n, seed);
            check(&x, |g, v| log_eig(g, v[0]), seed)?;
            check(&x, |g, v| sqrt_eig(g, v[0]), seed)?;
            check(&x, |g, v| inv_sqrt_eig(g, v[0]), seed)?;
            check(&x, |g, v| pow_eig(g, v[0], t), seed)?;
            let s = [InputKind::Symmetric.sample([b, c, n, n], seed)];
            check(&s, |g, v| exp_eig(g, v[0]), seed)?;
        }

        /// The capped exponential, with the floor active (a log-spectrum spread of 30 against a
        /// cap of 10) and inactive (a cap of 1e3). Eigenvalues closer than 0.05 to the floor are
        /// skipped: the finite-difference step would cross it.
        #[test]
        fn capped_exp_gradients(b in 1usize..3, n in 2usize..8, seed in any::<u64>()) {
            let s = InputKind::Symmetric.sample([b, 1, n, n], seed);
            let mut s = s;
            s.value = s.value.scaled(30.0 / s.value.norm_sq().sqrt());
            for k in 0..b {
                let l = spd_linalg::eigvalsh(s.value.mat(k)).unwrap();
                let floor = l[n - 1] - 10.0;
                prop_assume!(l.iter().all(|m| (m - floor).abs() > 0.05) && l[n - 1] - l[n - 2] > 0.05);
            }
            let x = [s];
            for log_condition in [10.0, 1e3] {
                check(&x, |g, v| exp_eig_capped(g, v[0], CappedExp { log_condition }), seed)?;
            }
        }

        /// Both outputs of one decomposition: the gradients of `X^{1/2}` and `X^{-1/2}` add up.
        #[test]
        fn shared_decomposition_gradients(n in 1usize..8, seed in any::<u64>()) {
            let x = spd(2, 1, n, seed);
            check(&x, |g, v| { let (s, is) = sqrt_and_inv_sqrt(g, v[0])?; crate::ops::arith::lincomb(g, s, 0.7, is, -1.3) }, seed)?;
        }

        /// ReEig with the threshold halfway (in log scale) between two eigenvalues that are at
        /// least a factor 3 apart, so no eigenvalue crosses it under the finite-difference step.
        #[test]
        fn reeig_gradients(n in 2usize..9, seed in any::<u64>()) {
            let x = spd(1, 1, n, seed);
            let l = spd_linalg::eigvalsh(x[0].value.mat(0)).unwrap();
            let gap = (1..n).max_by(|&a, &b| (l[a] / l[a - 1]).total_cmp(&(l[b] / l[b - 1]))).unwrap();
            prop_assume!(l[gap] > 3.0 * l[gap - 1]);
            let eps = (l[gap] * l[gap - 1]).sqrt();
            check(&x, |g, v| reeig(g, v[0], eps), seed)?;
        }
    }

    #[test]
    fn log_of_indefinite_input_is_an_error() {
        let mut g = Graph::new();
        let mut t = Tensor::identities(1, 1, 2);
        t.data_mut()[3] = -1.0;
        let x = g.constant(t);
        let e = log_eig(&mut g, x).unwrap_err();
        assert!(e.to_string().contains("log"), "{e}");
        assert!(reeig_default(&mut g, x).is_ok());
    }
}
