//! Input validation: finiteness, symmetry and positive definiteness with typed errors.

use faer::{MatRef, Side};

use crate::error::{LinalgError, Result};

/// Default relative symmetry tolerance of [`check_spd`]: `|a_ij − a_ji| ≤ tol · max|a|`.
pub const DEFAULT_SYMMETRY_TOLERANCE: f64 = 1e-10;

/// Returns the first non-finite entry (column-major order) as an error.
pub fn check_finite(a: MatRef<'_, f64>) -> Result<()> {
    for j in 0..a.ncols() {
        for i in 0..a.nrows() {
            let value = a[(i, j)];
            if !value.is_finite() {
                return Err(LinalgError::NotFinite {
                    row: i,
                    col: j,
                    value,
                });
            }
        }
    }
    Ok(())
}

/// Checks that `a` is square, finite and symmetric: `|a_ij − a_ji| ≤ rel_tol · max_kl |a_kl|`.
pub fn check_symmetric(a: MatRef<'_, f64>, rel_tol: f64) -> Result<()> {
    if a.nrows() != a.ncols() {
        return Err(LinalgError::DimensionMismatch {
            context: "square matrix (columns)",
            expected: a.nrows(),
            found: a.ncols(),
        });
    }
    check_finite(a)?;
    let n = a.nrows();
    let mut scale = 0.0f64;
    for j in 0..n {
        for i in 0..n {
            scale = scale.max(a[(i, j)].abs());
        }
    }
    let tolerance = rel_tol * scale;
    for j in 0..n {
        for i in (j + 1)..n {
            let (lower, upper) = (a[(i, j)], a[(j, i)]);
            let difference = (lower - upper).abs();
            if difference > tolerance {
                return Err(LinalgError::NotSymmetric {
                    row: j,
                    col: i,
                    upper,
                    lower,
                    difference,
                    tolerance,
                });
            }
        }
    }
    Ok(())
}

/// Checks that `a` is symmetric positive definite: finite, symmetric within
/// [`DEFAULT_SYMMETRY_TOLERANCE`] (relative) and with a Cholesky factorisation `a = L Lᵀ`.
/// A failure names the offending entry, or the failing pivot and the smallest eigenvalue.
pub fn check_spd(a: MatRef<'_, f64>) -> Result<()> {
    check_spd_with_tolerance(a, DEFAULT_SYMMETRY_TOLERANCE)
}

/// [`check_spd`] with an explicit relative symmetry tolerance.
pub fn check_spd_with_tolerance(a: MatRef<'_, f64>, rel_tol: f64) -> Result<()> {
    check_symmetric(a, rel_tol)?;
    match a.llt(Side::Lower) {
        Ok(_) => Ok(()),
        Err(faer::linalg::cholesky::llt::factor::LltError::NonPositivePivot { index }) => {
            let min_eigenvalue = a
                .self_adjoint_eigenvalues(Side::Lower)
                .ok()
                .and_then(|v| v.first().copied())
                .unwrap_or(f64::NAN);
            Err(LinalgError::NotPositiveDefinite {
                pivot: index,
                min_eigenvalue,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faer::Mat;

    #[test]
    fn accepts_spd() {
        let x = Mat::from_fn(3, 3, |i, j| if i == j { 2.0 } else { 0.5 });
        check_spd(x.as_ref()).unwrap();
    }

    #[test]
    fn names_the_non_finite_entry() {
        let mut x = Mat::<f64>::identity(3, 3);
        x[(0, 2)] = f64::INFINITY;
        let err = check_spd(x.as_ref()).unwrap_err();
        assert_eq!(
            err,
            LinalgError::NotFinite {
                row: 0,
                col: 2,
                value: f64::INFINITY
            }
        );
        assert!(err.to_string().contains("(0, 2)"));
    }

    #[test]
    fn names_the_asymmetric_pair() {
        let mut x = Mat::<f64>::identity(3, 3);
        x[(2, 1)] = 0.3;
        match check_spd(x.as_ref()) {
            Err(LinalgError::NotSymmetric {
                row: 1,
                col: 2,
                lower,
                upper,
                ..
            }) => {
                assert_eq!((lower, upper), (0.3, 0.0));
            }
            other => panic!("{other:?}"),
        }
        x[(1, 2)] = 0.3 * (1.0 + 1e-14);
        check_spd(x.as_ref()).unwrap();
    }

    #[test]
    fn reports_the_negative_eigenvalue() {
        let x = Mat::from_fn(2, 2, |i, j| if i == j { 1.0 } else { 2.0 });
        match check_spd(x.as_ref()) {
            Err(LinalgError::NotPositiveDefinite { min_eigenvalue, .. }) => {
                assert!((min_eigenvalue + 1.0).abs() < 1e-12)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rejects_non_square() {
        assert!(matches!(
            check_spd(Mat::<f64>::zeros(2, 3).as_ref()),
            Err(LinalgError::DimensionMismatch { .. })
        ));
    }
}
