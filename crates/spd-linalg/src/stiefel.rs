//! The Stiefel manifold `St(n, p) = {W ∈ R^{n×p} : WᵀW = I}`: tangent projection and three
//! retractions.

use faer::{Mat, MatRef};

use crate::dense::mm;
use crate::error::{LinalgError, Result};

fn sym(a: MatRef<'_, f64>) -> Mat<f64> {
    crate::dense::symmetrize(a)
}

/// Orthogonal projection onto the tangent space at `W`: `Z − W sym(Wᵀ Z)`.
pub fn project_tangent(w: MatRef<'_, f64>, z: MatRef<'_, f64>) -> Mat<f64> {
    let s = sym(mm(w.transpose(), z).as_ref());
    z.to_owned() - mm(w, s.as_ref())
}

/// The Riemannian gradient of the canonical metric `⟨ξ, ζ⟩_W = tr ξᵀ(I − ½WWᵀ)ζ` from the
/// Euclidean gradient `G`: `G − W Gᵀ W` (Edelman, Arias & Smith 1998). It lies in the tangent
/// space at `W` (`Wᵀξ = WᵀG − GᵀW` is skew); for square `W` it is exactly twice the embedded
/// metric's [`project_tangent`]`(W, G)`. The official SPDNetNAS optimiser steps along it.
pub fn canonical_gradient(w: MatRef<'_, f64>, g: MatRef<'_, f64>) -> Mat<f64> {
    g.to_owned() - mm(mm(w, g.transpose()).as_ref(), w)
}

/// `‖WᵀW − I‖_F`: how far `W` is from the Stiefel manifold.
pub fn orthonormality_error(w: MatRef<'_, f64>) -> f64 {
    let g = mm(w.transpose(), w);
    let p = g.nrows();
    (g - Mat::<f64>::identity(p, p)).norm_l2()
}

/// QR retraction `R_W(ξ) = qf(W + ξ)`: the Q factor of the thin QR, with signs chosen so `R`
/// has a positive diagonal (which makes it unique).
pub fn retract_qr(w: MatRef<'_, f64>, xi: MatRef<'_, f64>) -> Mat<f64> {
    orthonormalize_qr((w.to_owned() + xi).as_ref())
}

/// Thin Q factor of `A` with a non-negative diagonal of `R`.
pub fn orthonormalize_qr(a: MatRef<'_, f64>) -> Mat<f64> {
    let qr = a.qr();
    let mut q = qr.compute_thin_Q();
    let r = qr.thin_R();
    for j in 0..q.ncols() {
        if r[(j, j)] < 0.0 {
            for i in 0..q.nrows() {
                q[(i, j)] = -q[(i, j)];
            }
        }
    }
    q
}

/// Polar retraction `R_W(ξ) = U Vᵀ` where `W + ξ = U Σ Vᵀ` (thin SVD): the closest Stiefel
/// point to `W + ξ` in Frobenius norm.
pub fn retract_polar(w: MatRef<'_, f64>, xi: MatRef<'_, f64>) -> Result<Mat<f64>> {
    let a = w.to_owned() + xi;
    let svd = a
        .thin_svd()
        .map_err(|_| LinalgError::Decomposition("SVD"))?;
    Ok(mm(svd.U(), svd.V().transpose()))
}

/// Cayley retraction (Wen & Yin 2013): `R_W(ξ) = (I − A/2)⁻¹ (I + A/2) W` with the skew matrix
/// `A = P ξ Wᵀ − W ξᵀ Pᵀ`, `P = I − W Wᵀ/2`; for tangent `ξ`, `A W = ξ`, so
/// `d/dt R_W(tξ)|₀ = ξ`. `ξ` is projected onto the tangent space first.
pub fn retract_cayley(w: MatRef<'_, f64>, xi: MatRef<'_, f64>) -> Mat<f64> {
    let n = w.nrows();
    let xi = project_tangent(w, xi);
    let id = Mat::<f64>::identity(n, n);
    let p = &id - faer::Scale(0.5) * mm(w, w.transpose());
    let pxw = mm(mm(p.as_ref(), xi.as_ref()).as_ref(), w.transpose());
    let a = &pxw - pxw.transpose();
    let lhs = &id - faer::Scale(0.5) * &a;
    let rhs = mm((&id + faer::Scale(0.5) * &a).as_ref(), w);
    use faer::linalg::solvers::Solve;
    lhs.partial_piv_lu().solve(rhs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dense::distance_frobenius;
    use crate::random::{gaussian, random_stiefel, seeded_rng};
    use crate::test_support::config;
    use proptest::prelude::*;

    fn point(n: usize, p: usize, seed: u64, scale: f64) -> (Mat<f64>, Mat<f64>) {
        let mut rng = seeded_rng(seed);
        let w = random_stiefel(n, p, &mut rng);
        let z = faer::Scale(scale) * gaussian(n, p, &mut rng);
        (w, z)
    }

    fn dims() -> impl Strategy<Value = (usize, usize)> {
        (1usize..=40).prop_flat_map(|n| (Just(n), 1..=n))
    }

    proptest! {
        #![proptest_config(config())]

        /// QR, polar and Cayley retractions of any step land on `St(n, p)` to 1e-12.
        #[test]
        fn retractions_stay_on_the_manifold((n, p) in dims(), seed in any::<u64>(), scale in 1e-6f64..10.0) {
            let (w, z) = point(n, p, seed, scale);
            let xi = project_tangent(w.as_ref(), z.as_ref());
            prop_assert!(orthonormality_error(retract_qr(w.as_ref(), xi.as_ref()).as_ref()) <= 1e-12);
            prop_assert!(orthonormality_error(retract_polar(w.as_ref(), xi.as_ref()).unwrap().as_ref()) <= 1e-12);
            prop_assert!(orthonormality_error(retract_cayley(w.as_ref(), xi.as_ref()).as_ref()) <= 1e-12);
        }

        /// The projection is idempotent and its image satisfies `Wᵀξ + ξᵀW = 0`.
        #[test]
        fn projection_is_onto_the_tangent_space((n, p) in dims(), seed in any::<u64>()) {
            let (w, z) = point(n, p, seed, 1.0);
            let xi = project_tangent(w.as_ref(), z.as_ref());
            let s = crate::dense::mm(w.transpose(), xi.as_ref());
            prop_assert!(distance_frobenius(s.as_ref(), (-s.transpose().to_owned()).as_ref()) <= 1e-12 * z.norm_l2());
            let again = project_tangent(w.as_ref(), xi.as_ref());
            prop_assert!(distance_frobenius(again.as_ref(), xi.as_ref()) <= 1e-12 * z.norm_l2());
        }

        /// Retractions agree with the step to first order: `‖R_W(tξ) − W − tξ‖ = O(t²)`.
        #[test]
        fn retractions_are_first_order((n, p) in dims(), seed in any::<u64>()) {
            let (w, z) = point(n, p, seed, 1.0);
            let xi = project_tangent(w.as_ref(), z.as_ref());
            let t = 1e-4;
            let txi = faer::Scale(t) * &xi;
            let linear = &w + &txi;
            let budget = 10.0 * t * t * (1.0 + xi.norm_l2()).powi(2);
            for r in [retract_qr(w.as_ref(), txi.as_ref()), retract_polar(w.as_ref(), txi.as_ref()).unwrap(), retract_cayley(w.as_ref(), txi.as_ref())] {
                prop_assert!(distance_frobenius(r.as_ref(), linear.as_ref()) <= budget);
            }
        }
    }

    proptest! {
        #![proptest_config(config())]

        /// The canonical gradient is tangent (`Wᵀξ` skew), equals the embedded projection plus
        /// `½ W (WᵀG − GᵀW)`, and for square `W` is exactly twice the embedded projection.
        #[test]
        fn canonical_gradient_is_tangent_and_twice_the_embedded_one_when_square((n, p) in dims(), seed in any::<u64>()) {
            let (w, g) = point(n, p, seed, 1.0);
            let xi = canonical_gradient(w.as_ref(), g.as_ref());
            let s = crate::dense::mm(w.transpose(), xi.as_ref());
            let tol = 1e-12 * (1.0 + g.norm_l2());
            prop_assert!(distance_frobenius(s.as_ref(), (-s.transpose().to_owned()).as_ref()) <= tol);
            let wg = crate::dense::mm(w.transpose(), g.as_ref());
            let skew = faer::Scale(0.5) * (&wg - wg.transpose());
            let expected = project_tangent(w.as_ref(), g.as_ref()) + crate::dense::mm(w.as_ref(), skew.as_ref());
            prop_assert!(distance_frobenius(xi.as_ref(), expected.as_ref()) <= tol);
            let (sq, gs) = point(n, n, seed, 1.0);
            let twice = faer::Scale(2.0) * project_tangent(sq.as_ref(), gs.as_ref());
            prop_assert!(distance_frobenius(canonical_gradient(sq.as_ref(), gs.as_ref()).as_ref(), twice.as_ref()) <= 1e-12 * (1.0 + gs.norm_l2()));
        }
    }

    #[test]
    fn qr_retraction_of_zero_step_is_identity() {
        let (w, _) = point(7, 3, 1, 1.0);
        let r = retract_qr(w.as_ref(), Mat::<f64>::zeros(7, 3).as_ref());
        assert!(distance_frobenius(r.as_ref(), w.as_ref()) <= 1e-14);
    }
}
