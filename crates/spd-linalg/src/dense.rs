//! Small dense kernels on faer matrices, all sequential (`Par::Seq`): batches are parallelised
//! by the caller, one matrix per task.

use faer::linalg::matmul::matmul;
use faer::reborrow::{Reborrow, ReborrowMut};
use faer::{Accum, Mat, MatMut, MatRef, Par};

/// `A B`.
pub fn mm(a: MatRef<'_, f64>, b: MatRef<'_, f64>) -> Mat<f64> {
    let mut out = Mat::zeros(a.nrows(), b.ncols());
    matmul(out.as_mut(), Accum::Replace, a, b, 1.0, Par::Seq);
    out
}

/// `dst ← A B`.
pub fn mm_into(dst: MatMut<'_, f64>, a: MatRef<'_, f64>, b: MatRef<'_, f64>) {
    matmul(dst, Accum::Replace, a, b, 1.0, Par::Seq);
}

/// `G X Gᵀ`, symmetrised exactly.
pub fn congruence(g: MatRef<'_, f64>, x: MatRef<'_, f64>) -> Mat<f64> {
    let gx = mm(g, x);
    let mut out = mm(gx.as_ref(), g.transpose());
    symmetrize_in_place(out.as_mut());
    out
}

/// `sym(A) = (A + Aᵀ)/2`.
pub fn symmetrize(a: MatRef<'_, f64>) -> Mat<f64> {
    let mut out = a.to_owned();
    symmetrize_in_place(out.as_mut());
    out
}

/// `dst ← sym(A) = (A + Aᵀ)/2` for a square `A`, without allocating.
pub fn symmetrize_into(mut dst: MatMut<'_, f64>, a: MatRef<'_, f64>) {
    let n = a.nrows();
    for j in 0..n {
        for i in 0..n {
            dst[(i, j)] = 0.5 * (a[(i, j)] + a[(j, i)]);
        }
    }
}

/// `A ← (A + Aᵀ)/2` for a square `A`.
pub fn symmetrize_in_place(mut a: MatMut<'_, f64>) {
    let n = a.nrows();
    for j in 0..n {
        for i in (j + 1)..n {
            let v = 0.5 * (a[(i, j)] + a[(j, i)]);
            a[(i, j)] = v;
            a[(j, i)] = v;
        }
    }
}

/// `dst ← U diag(d) Uᵀ`, exactly symmetric; `scratch` is an `n × n` buffer.
pub fn sandwich_diag_into(
    mut dst: MatMut<'_, f64>,
    u: MatRef<'_, f64>,
    d: &[f64],
    mut scratch: MatMut<'_, f64>,
) {
    for (j, &dj) in d.iter().enumerate() {
        for i in 0..u.nrows() {
            scratch[(i, j)] = u[(i, j)] * dj;
        }
    }
    matmul(
        dst.rb_mut(),
        Accum::Replace,
        scratch.rb(),
        u.transpose(),
        1.0,
        Par::Seq,
    );
    symmetrize_in_place(dst);
}

/// `U diag(d) Uᵀ`, exactly symmetric.
pub fn sandwich_diag(u: MatRef<'_, f64>, d: &[f64]) -> Mat<f64> {
    let n = u.nrows();
    let mut out = Mat::zeros(n, n);
    let mut scratch = Mat::zeros(n, u.ncols());
    sandwich_diag_into(out.as_mut(), u, d, scratch.as_mut());
    out
}

/// Frobenius norm `‖A‖_F`.
pub fn frobenius(a: MatRef<'_, f64>) -> f64 {
    a.norm_l2()
}

/// `‖A − B‖_F`.
pub fn distance_frobenius(a: MatRef<'_, f64>, b: MatRef<'_, f64>) -> f64 {
    let mut s = 0.0;
    for j in 0..a.ncols() {
        for i in 0..a.nrows() {
            let d = a[(i, j)] - b[(i, j)];
            s += d * d;
        }
    }
    s.sqrt()
}

/// Frobenius inner product `⟨A, B⟩ = tr(Aᵀ B)`.
pub fn inner(a: MatRef<'_, f64>, b: MatRef<'_, f64>) -> f64 {
    let mut s = 0.0;
    for j in 0..a.ncols() {
        for i in 0..a.nrows() {
            s += a[(i, j)] * b[(i, j)];
        }
    }
    s
}
