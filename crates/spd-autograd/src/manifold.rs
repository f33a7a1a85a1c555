//! The manifold of a parameter: Riemannian gradient, retraction, vector transport and metric.
//! Stiefel and SPD act on every matrix slice of the tensor independently (a product manifold).

use faer::Mat;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use spd_linalg::dense::{mm, symmetrize};
use spd_linalg::{
    LinalgError, SpdPoint, canonical_gradient, orthonormality_error, project_tangent, retract_qr,
};

use crate::tensor::Tensor;

/// Where a parameter lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Manifold {
    /// `R^d` with the Euclidean metric.
    Euclidean,
    /// `St(n, p)` per slice: gradient `G − W sym(WᵀG)` (embedded metric) or `G − W Gᵀ W`
    /// (canonical, [`StiefelMetric`]), QR retraction.
    Stiefel,
    /// The SPD cone per slice, affine-invariant metric: gradient `X sym(G) X`,
    /// retraction `Exp_X`.
    Spd,
}

/// The metric whose Riemannian gradient a step on a Stiefel parameter follows (the retraction
/// is QR for both). On a square `W` the canonical gradient is exactly twice the embedded one,
/// so under SGD it is the embedded step at twice the learning rate; Adam, whose second moment
/// is one number per matrix, takes the same step under both there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum StiefelMetric {
    /// The metric inherited from `R^{n×p}`: `G − W sym(WᵀG)`, the orthogonal projection.
    #[default]
    Embedded,
    /// The canonical metric: `G − W Gᵀ W`, the official SPDNetNAS optimiser's direction
    /// (`docs/fidelity.md`).
    Canonical,
}

/// Tolerance on `‖WᵀW − I‖` and symmetry when a value is declared on a manifold.
pub const MANIFOLD_TOLERANCE: f64 = 1e-8;

fn map_slices(
    x: &Tensor,
    f: impl Fn(usize) -> Result<Mat<f64>, LinalgError> + Sync,
) -> Result<Tensor, LinalgError> {
    let mats: Vec<Mat<f64>> = (0..x.count())
        .into_par_iter()
        .map(&f)
        .collect::<Result<_, _>>()?;
    let mut out = Tensor::zeros(x.shape());
    for (k, m) in mats.iter().enumerate() {
        out.mat_mut(k).copy_from(m);
    }
    Ok(out)
}

impl Manifold {
    /// Checks that `x` lies on the manifold.
    pub fn check(&self, x: &Tensor) -> Result<(), String> {
        if !x.is_finite() {
            return Err("value is not finite".into());
        }
        for k in 0..x.count() {
            match self {
                Manifold::Euclidean => {}
                Manifold::Stiefel => {
                    let e = orthonormality_error(x.mat(k));
                    if e > MANIFOLD_TOLERANCE {
                        return Err(format!("slice {k} is not orthonormal (‖WᵀW − I‖ = {e:e})"));
                    }
                }
                Manifold::Spd => {
                    spd_linalg::check_spd(x.mat(k)).map_err(|e| format!("slice {k}: {e}"))?;
                }
            }
        }
        Ok(())
    }

    /// Riemannian gradient from the Euclidean gradient `g` at `x`, with the embedded metric on
    /// Stiefel slices.
    pub fn riemannian_gradient(&self, x: &Tensor, g: &Tensor) -> Result<Tensor, LinalgError> {
        self.riemannian_gradient_in(StiefelMetric::Embedded, x, g)
    }

    /// Riemannian gradient from the Euclidean gradient `g` at `x`, with `metric` on Stiefel
    /// slices.
    pub fn riemannian_gradient_in(
        &self,
        metric: StiefelMetric,
        x: &Tensor,
        g: &Tensor,
    ) -> Result<Tensor, LinalgError> {
        match self {
            Manifold::Euclidean => Ok(g.clone()),
            Manifold::Stiefel => map_slices(x, |k| {
                Ok(match metric {
                    StiefelMetric::Embedded => project_tangent(x.mat(k), g.mat(k)),
                    StiefelMetric::Canonical => canonical_gradient(x.mat(k), g.mat(k)),
                })
            }),
            Manifold::Spd => map_slices(x, |k| {
                let s = symmetrize(g.mat(k));
                Ok(symmetrize(
                    mm(mm(x.mat(k), s.as_ref()).as_ref(), x.mat(k)).as_ref(),
                ))
            }),
        }
    }

    /// Retraction `R_x(v)`: `x + v`, `qf(W + ξ)`, or `Exp_X(V)`.
    pub fn retract(&self, x: &Tensor, v: &Tensor) -> Result<Tensor, LinalgError> {
        match self {
            Manifold::Euclidean => {
                let mut out = x.clone();
                out.add_assign(v);
                Ok(out)
            }
            Manifold::Stiefel => map_slices(x, |k| Ok(retract_qr(x.mat(k), v.mat(k)))),
            Manifold::Spd => map_slices(x, |k| {
                SpdPoint::new(x.mat(k))?.exp_map(symmetrize(v.mat(k)).as_ref())
            }),
        }
    }

    /// Vector transport of the tangent vector `v` to the point `to` by projection onto its
    /// tangent space (identity on Euclidean space and on the SPD cone, whose tangent spaces are
    /// all the symmetric matrices).
    pub fn transport(&self, to: &Tensor, v: &Tensor) -> Result<Tensor, LinalgError> {
        match self {
            Manifold::Euclidean => Ok(v.clone()),
            Manifold::Stiefel => map_slices(to, |k| Ok(project_tangent(to.mat(k), v.mat(k)))),
            Manifold::Spd => map_slices(to, |k| Ok(symmetrize(v.mat(k)))),
        }
    }

    /// Squared norms `‖v_k‖²_{x_k}` of each slice (the Euclidean metric for Euclidean and
    /// Stiefel, `‖X^{-1/2} V X^{-1/2}‖²_F` for SPD).
    pub fn slice_norms_sq(&self, x: &Tensor, v: &Tensor) -> Result<Vec<f64>, LinalgError> {
        (0..x.count())
            .into_par_iter()
            .map(|k| match self {
                Manifold::Euclidean | Manifold::Stiefel => Ok(v.mat(k).squared_norm_l2()),
                Manifold::Spd => Ok(SpdPoint::new(x.mat(k))?.whiten(v.mat(k)).squared_norm_l2()),
            })
            .collect()
    }
}
