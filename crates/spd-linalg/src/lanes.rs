//! Matrices of one size interleaved entry by entry, [`LANES`] at a time: entry `(i, j)` of the
//! group is one vector whose lane `l` belongs to matrix `l`, so a loop over entries runs the
//! same arithmetic on every matrix in one instruction per entry, and a matrix's bits never
//! depend on the other lanes. Used by the batched Jacobi solver ([`crate::jacobi`]) and by the
//! fused Daleckii–Krein backward below.

/// Matrices handled together: one AVX-512 register of `f64`.
pub const LANES: usize = 8;

/// One value per lane.
pub(crate) type Lane = [f64; LANES];

/// One entry of a lane group, aligned so a vector load never splits a cache line.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
pub(crate) struct Entry(pub(crate) Lane);

impl Entry {
    pub(crate) const ZERO: Entry = Entry([0.0; LANES]);
}

/// Writes the `count = src.len() / size ≤ LANES` matrices of `src` (each `size` values) into
/// the lanes of `dst` (`size` entries); lanes `count..` are zero.
pub(crate) fn interleave(src: &[f64], size: usize, dst: &mut [Entry]) {
    dst.fill(Entry::ZERO);
    for (l, m) in src.chunks_exact(size).enumerate() {
        for (e, &x) in dst.iter_mut().zip(m) {
            e.0[l] = x;
        }
    }
}

/// `U (K ∘ Uᵀ sym(G) U) Uᵀ` for up to [`LANES`] matrices at once, with reusable scratch.
pub(crate) struct DaleckiiKrein {
    n: usize,
    u: Vec<Entry>,
    k: Vec<Entry>,
    s: Vec<Entry>,
    t: Vec<Entry>,
    m: Vec<Entry>,
}

impl DaleckiiKrein {
    /// Scratch for `n × n` matrices.
    pub(crate) fn new(n: usize) -> Self {
        let group = || vec![Entry::ZERO; n * n];
        Self {
            n,
            u: group(),
            k: group(),
            s: group(),
            t: group(),
            m: group(),
        }
    }

    /// `out_l = U_l (K_l ∘ U_lᵀ sym(G_l) U_l) U_lᵀ` for the `count = u.len() / n²` matrices of
    /// `u`, `k` and `g` (column-major, contiguous), exactly symmetric: `M = Uᵀ sym(G) U` and the
    /// result are summed over `p` in order for their lower triangles and mirrored.
    pub(crate) fn apply(&mut self, u: &[f64], k: &[f64], g: &[f64], out: &mut [f64]) {
        let count = self.load(u, k, g);
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F, checked just above.
            unsafe { self.products_avx512(count, out) };
            return;
        }
        self.products_here(count, out);
    }

    /// Interleaves the operands (`G` into `t`); returns how many matrices there are.
    fn load(&mut self, u: &[f64], k: &[f64], g: &[f64]) -> usize {
        let nn = self.n * self.n;
        interleave(u, nn, &mut self.u);
        interleave(k, nn, &mut self.k);
        interleave(g, nn, &mut self.t);
        u.len() / nn.max(1)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn products_avx512(&mut self, count: usize, out: &mut [f64]) {
        self.products_here(count, out);
    }

    #[inline(always)]
    fn products_here(&mut self, count: usize, out: &mut [f64]) {
        let n = self.n;
        let nn = n * n;
        let (u, k, s, t, m) = (&self.u, &self.k, &mut self.s, &mut self.t, &mut self.m);
        // s = sym(G), from G held in t.
        fill(n, s, |i, j| {
            let (a, b) = (&t[j * n + i].0, &t[i * n + j].0);
            std::array::from_fn(|l| 0.5 * (a[l] + b[l]))
        });
        // t = Uᵀ s: t_ij = Σ_p u_pi s_pj.
        fill(n, t, |i, j| dot(n, |p| (&u[i * n + p].0, &s[j * n + p].0)));
        // m = K ∘ (t U), lower triangle mirrored: m_ij = k_ij Σ_p t_ip u_pj.
        for j in 0..n {
            for i in j..n {
                let x = dot(n, |p| (&t[p * n + i].0, &u[j * n + p].0));
                let kij = &k[j * n + i].0;
                let y = Entry(std::array::from_fn(|l| kij[l] * x[l]));
                m[j * n + i] = y;
                m[i * n + j] = y;
            }
        }
        // t = U m: t_ij = Σ_p u_ip m_pj.
        fill(n, t, |i, j| dot(n, |p| (&u[p * n + i].0, &m[j * n + p].0)));
        // out = t Uᵀ, lower triangle mirrored: out_ij = Σ_p t_ip u_jp.
        for j in 0..n {
            for i in j..n {
                let y = dot(n, |p| (&t[p * n + i].0, &u[p * n + j].0));
                for (l, &v) in y.iter().enumerate().take(count) {
                    out[l * nn + j * n + i] = v;
                    out[l * nn + i * n + j] = v;
                }
            }
        }
    }
}

/// `dst_ij = entry(i, j)` for every entry of an `n × n` lane group.
#[inline(always)]
fn fill(n: usize, dst: &mut [Entry], entry: impl Fn(usize, usize) -> Lane) {
    for j in 0..n {
        for i in 0..n {
            dst[j * n + i] = Entry(entry(i, j));
        }
    }
}

/// `Σ_p a_p b_p` lane by lane, summed in order of `p`, for the `n` pairs `pair(p)`.
#[inline(always)]
fn dot<'a>(n: usize, pair: impl Fn(usize) -> (&'a Lane, &'a Lane)) -> Lane {
    let mut acc = [0.0; LANES];
    for p in 0..n {
        let (a, b) = pair(p);
        for l in 0..LANES {
            acc[l] += a[l] * b[l];
        }
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::{random_symmetric, seeded_rng};
    use crate::test_support::config;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(config())]

        /// The AVX-512 and baseline builds of the Daleckii–Krein kernel give the same bits.
        #[test]
        fn daleckii_krein_builds_agree_bitwise(n in 1usize..=16, count in 1usize..=LANES, seed in any::<u64>()) {
            let mut rng = seeded_rng(seed);
            let nn = n * n;
            let mut random = || -> Vec<f64> {
                (0..count).flat_map(|_| {
                    let m = random_symmetric(n, &mut rng);
                    (0..nn).map(move |x| m[(x % n, x / n)]).collect::<Vec<_>>()
                }).collect()
            };
            let (u, k, g) = (random(), random(), random());
            let mut dk = DaleckiiKrein::new(n);
            let mut dispatched = vec![0.0; count * nn];
            dk.apply(&u, &k, &g, &mut dispatched);
            let mut baseline = vec![0.0; count * nn];
            dk.load(&u, &k, &g);
            dk.products_here(count, &mut baseline);
            prop_assert!(dispatched.iter().zip(&baseline).all(|(a, b)| a.to_bits() == b.to_bits()));
        }
    }
}
