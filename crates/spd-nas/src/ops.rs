//! The candidate operations of a cell edge (spec §5), each mapping `[B, C, n_in, n_in]` to
//! `[B, C, n_out, n_out]`. Every op that pools (its name contains "Pool") ends with a batch
//! norm, as in the official wrapper.

use rand::Rng;
use serde::{Deserialize, Serialize};
use spd_autograd::layers::{BatchNormSpd, BiMapLayer, ForwardCtx};
use spd_autograd::ops::arith::{gather_channels, select_channel, select_entries};
use spd_autograd::ops::concat::{block_diag, concat_channels};
use spd_autograd::ops::eig::{log_eig, reeig_default};
use spd_autograd::ops::frechet::{frechet_mean, weighted_frechet_mean};
use spd_autograd::ops::pool::{PoolMode, Windows, log_pool_of_log, pooled_size};
use spd_autograd::ops::simplex::{Normalization, normalize_rows};
use spd_autograd::{Graph, Manifold, ParamId, ParamStore, Tensor, Var};

use crate::error::{NasError, Result};
use crate::space::OpKind;

/// The windows of a log-domain pooling from `n_in` to `n_out`. Where the paper's regular
/// geometry exists — the largest stride `≤ ⌊(n_in − 1)/(n_out − 1)⌋` with a kernel `≥ stride`
/// that lands exactly on `n_out`, the smallest such kernel (20→10: 2/2, 93→30: 4/3, 100→50:
/// 2/2, the paper's hard-coded values; spec D8) — and its kernel is no wider than adaptive
/// windows (`⌈n_in/n_out⌉ + 1`), it is used; otherwise adaptive windows. Without that bound, odd
/// sizes got a single-stride window over half the matrix (51→26: kernel 26, stride 1), which
/// pools far-apart entries together.
pub fn pool_geometry(n_in: usize, n_out: usize) -> Result<Windows> {
    if n_out == 0 || n_out > n_in {
        return Err(NasError::Config(format!("cannot pool {n_in} to {n_out}")));
    }
    if n_out == 1 {
        return Ok(Windows::Regular {
            kernel: n_in,
            stride: 1,
        });
    }
    let widest = n_in.div_ceil(n_out) + 1;
    let largest = ((n_in - 1) / (n_out - 1)).max(1);
    let regular = (1..=largest).rev().find_map(|stride| {
        (stride..=n_in)
            .find(|&k| pooled_size(n_in, k, stride) == Some(n_out))
            .map(|kernel| (kernel, stride))
    });
    Ok(match regular {
        Some((kernel, stride)) if kernel <= widest => Windows::Regular { kernel, stride },
        _ => Windows::Adaptive { output: n_out },
    })
}

/// The partner of every channel in the v1 channel-pair ops ([`Op::ChannelPairs`]): channel `c`
/// of `C` is paired with `(c + d) mod C`, where `d = offset mod C`, or `d = 1` when `C`
/// divides `offset`.
///
/// The official code's legacy v1 ops reduce channels: `DiMap_1_normal` averages consecutive
/// channels `(0,1), (2,3), …` and `DiMap_2_normal` channels two apart, `(0,2), (1,3), (4,6), …`.
/// Our cells keep `C` channels on every edge, so each channel gets a partner, cyclically
/// (`offset` 1 and 2). A plain cyclic rule would pair each channel with itself when `C` divides
/// `offset` (`DiMap_2` at `C = 2`, where the official op has no channel 2 and fails): the mean
/// of a matrix with itself, which reduces the op to BN → ReEig and gives `ω` no gradient. So
/// the partner is then the next channel: at `C = 2` both DiMaps pair `c` with `1 − c` (two
/// candidates of the same form with their own `ω` and BN); at `C = 3`, `DiMap_2` pairs `c` with
/// `c − 1` and `DiMap_1` with `c + 1`. A single channel has no partner, and every pair op
/// reduces to the mean of `X` with itself, `X`.
pub fn pair_partners(channels: usize, offset: usize) -> Vec<usize> {
    let c = channels.max(1);
    let d = match offset % c {
        0 => 1,
        d => d,
    };
    (0..channels).map(|k| (k + d) % c).collect()
}

/// Values computed once per forward and shared by the edges that need them: `ReEig(x)` and
/// `log(x)` of an edge input feed several candidates and several edges.
#[derive(Default)]
pub struct OpCache {
    reeig: std::collections::HashMap<Var, Var>,
    log: std::collections::HashMap<Var, Var>,
}

impl OpCache {
    /// `ReEig(x)`, computed once.
    pub fn reeig(&mut self, g: &mut Graph, x: Var) -> Result<Var> {
        if let Some(v) = self.reeig.get(&x) {
            return Ok(*v);
        }
        let v = reeig_default(g, x)?;
        self.reeig.insert(x, v);
        Ok(v)
    }

    /// `log x`, computed once.
    pub fn log(&mut self, g: &mut Graph, x: Var) -> Result<Var> {
        if let Some(v) = self.log.get(&x) {
            return Ok(*v);
        }
        let v = log_eig(g, x)?;
        self.log.insert(x, v);
        Ok(v)
    }
}

/// What every op of one forward shares: the tape, the weights, the batch-norm context (batch
/// statistics or running means, and the running-mean updates it records), the network's op
/// settings and the per-forward cache.
pub struct Pass<'a> {
    /// The tape.
    pub g: &'a mut Graph,
    /// The weights.
    pub store: &'a ParamStore,
    /// Mode and recorded running-mean updates.
    pub ctx: &'a mut ForwardCtx,
    /// Karcher steps and WeightedPooling normalisation.
    pub settings: &'a OpSettings,
    /// `ReEig(x)` and `log x` of the inputs seen so far.
    pub cache: OpCache,
}

/// Settings shared by all ops of a network.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OpSettings {
    /// Karcher steps of every Fréchet mean (1 in the paper).
    pub karcher_steps: usize,
    /// Row normalisation of WeightedPooling's channel weights (sparsemax in the paper's search).
    pub pooling_normalization: Normalization,
}

/// An instantiated candidate operation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Op {
    /// Identity matrices of size `n_out` (no input dependence).
    Zero {
        /// Output size.
        n_out: usize,
    },
    /// Identity map (size-preserving edges only).
    Skip,
    /// `[ReEig →] BiMap → BN [→ ReEig]`.
    BiMapBlock {
        /// ReEig before the BiMap.
        pre_reeig: bool,
        /// The BiMap.
        bimap: BiMapLayer,
        /// The batch norm.
        bn: BatchNormSpd,
        /// ReEig after the batch norm.
        post_reeig: bool,
    },
    /// Output channel `i` is the weighted Fréchet mean of all input channels with weights
    /// `normalise(Ω)[i, :]`, then BN.
    WeightedPooling {
        /// `Ω ∈ R^{C×C}` as `[1, C, 1, C]`.
        omega: ParamId,
        /// The batch norm.
        bn: BatchNormSpd,
    },
    /// LogEig → 2-D pool → ExpEig (condition-capped) → BN.
    LogPool {
        /// Windows.
        windows: Windows,
        /// Average or max.
        mode: PoolMode,
        /// The batch norm.
        bn: BatchNormSpd,
    },
    /// `blockdiag(BiMap_a(X), BiMap_b(X))` with two trained BiMaps to `⌈n_out/2⌉` and
    /// `⌊n_out/2⌋`.
    SkipReduced {
        /// First block.
        first: BiMapLayer,
        /// Second block.
        second: BiMapLayer,
    },
    /// v1 channel-pair means: output channel `c` is the Fréchet mean of the pair
    /// `(X_c, X_{p(c)})` with `p` = [`pair_partners`]`(C, offset)`, weighted by `softmax(ω)`
    /// when a weight is learnt, else unweighted; then BN, then ReEig if `reeig`.
    ChannelPairs {
        /// Partner channel offset (1, or 2 for the dilated variant); see [`pair_partners`] for
        /// channel counts that `offset` divides.
        offset: usize,
        /// Learnt 2-vector `ω` (`[1, 1, 1, 2]`), if any.
        weights: Option<ParamId>,
        /// The batch norm.
        bn: BatchNormSpd,
        /// ReEig at the end.
        reeig: bool,
    },
    /// v1 Skip: `blockdiag(X_c, X_{c+1})` (size `2n`) mapped back to `n` by a trained BiMap.
    SkipPairs {
        /// The BiMap `2n → n`.
        bimap: BiMapLayer,
    },
}

impl Op {
    /// Registers the parameters of `kind` for `channels` channels mapping `n_in` to `n_out`.
    pub fn build<R: Rng + ?Sized>(
        kind: OpKind,
        store: &mut ParamStore,
        name: &str,
        channels: usize,
        (n_in, n_out): (usize, usize),
        rng: &mut R,
    ) -> Result<Op> {
        let c = (channels, channels);
        let bn = |store: &mut ParamStore| BatchNormSpd::new(store, &format!("{name}.bn"), n_out);
        let needs_same = |what: &str| {
            if n_in != n_out {
                Err(NasError::Config(format!(
                    "{what} cannot change the size ({n_in} → {n_out})"
                )))
            } else {
                Ok(())
            }
        };
        Ok(match kind {
            OpKind::Zero => Op::Zero { n_out },
            OpKind::Skip => {
                needs_same("Skip")?;
                Op::Skip
            }
            OpKind::BiMapBn | OpKind::BiMapBnReEig | OpKind::ReEigBiMapBn => Op::BiMapBlock {
                pre_reeig: kind == OpKind::ReEigBiMapBn,
                bimap: BiMapLayer::new(store, &format!("{name}.bimap"), c, (n_in, n_out), rng)?,
                bn: bn(store)?,
                post_reeig: kind == OpKind::BiMapBnReEig,
            },
            OpKind::WeightedPooling => {
                needs_same("WeightedPooling")?;
                let mut omega = Tensor::zeros([1, channels, 1, channels]);
                omega
                    .data_mut()
                    .iter_mut()
                    .for_each(|v| *v = rng.random::<f64>());
                Op::WeightedPooling {
                    omega: store.add(format!("{name}.omega"), Manifold::Euclidean, omega)?,
                    bn: bn(store)?,
                }
            }
            OpKind::AvgPool | OpKind::MaxPool => {
                let windows = pool_geometry(n_in, n_out)?;
                let mode = if kind == OpKind::AvgPool {
                    PoolMode::Average
                } else {
                    PoolMode::Max
                };
                Op::LogPool {
                    windows,
                    mode,
                    bn: bn(store)?,
                }
            }
            OpKind::SkipReduced => Op::SkipReduced {
                first: BiMapLayer::new(
                    store,
                    &format!("{name}.a"),
                    c,
                    (n_in, n_out.div_ceil(2)),
                    rng,
                )?,
                second: BiMapLayer::new(store, &format!("{name}.b"), c, (n_in, n_out / 2), rng)?,
            },
            OpKind::ChannelPool | OpKind::DiMap1 | OpKind::DiMap2 => {
                needs_same("a channel-pair op")?;
                let weights = match kind {
                    OpKind::ChannelPool => None,
                    _ => Some(store.add(
                        format!("{name}.omega"),
                        Manifold::Euclidean,
                        Tensor::zeros([1, 1, 1, 2]),
                    )?),
                };
                Op::ChannelPairs {
                    offset: if kind == OpKind::DiMap2 { 2 } else { 1 },
                    weights,
                    bn: bn(store)?,
                    reeig: kind != OpKind::ChannelPool,
                }
            }
            OpKind::SkipPairs => {
                needs_same("Skip_1_normal")?;
                Op::SkipPairs {
                    bimap: BiMapLayer::new(
                        store,
                        &format!("{name}.bimap"),
                        c,
                        (2 * n_in, n_out),
                        rng,
                    )?,
                }
            }
        })
    }

    /// Applies the op.
    pub fn forward(&self, pass: &mut Pass, x: Var) -> Result<Var> {
        let (g, store, ctx, settings, cache) = (
            &mut *pass.g,
            pass.store,
            &mut *pass.ctx,
            pass.settings,
            &mut pass.cache,
        );
        let steps = settings.karcher_steps;
        Ok(match self {
            Op::Zero { n_out } => {
                let [b, c, _, _] = g.value(x).shape();
                g.constant(Tensor::identities(b, c, *n_out))
            }
            Op::Skip => x,
            Op::BiMapBlock {
                pre_reeig,
                bimap,
                bn,
                post_reeig,
            } => {
                let h = if *pre_reeig { cache.reeig(g, x)? } else { x };
                let h = bimap.forward(g, store, h)?;
                let h = bn.forward_with_steps(g, store, ctx, h, steps)?;
                if *post_reeig { reeig_default(g, h)? } else { h }
            }
            Op::WeightedPooling { omega, bn } => {
                // output channel i = wFM of the input channels in the support of row i (a
                // sparsemax zero contributes nothing and receives no gradient: exact)
                let c = g.value(x).channels();
                let w = g.param(store, *omega)?;
                let w = normalize_rows(g, w, settings.pooling_normalization)?;
                let values = g.value(w).data().to_vec();
                let mut channel = vec![None; c];
                let mut outs = Vec::with_capacity(c);
                for i in 0..c {
                    let support: Vec<usize> = (0..c).filter(|&k| values[i * c + k] > 0.0).collect();
                    let mut inputs = Vec::with_capacity(support.len());
                    for &k in &support {
                        let v = match channel[k] {
                            Some(v) => v,
                            None => *channel[k].insert(select_channel(g, x, k)?),
                        };
                        inputs.push(v);
                    }
                    let row = gather_channels(g, w, &[i])?;
                    let row = if support.len() == c {
                        row
                    } else {
                        select_entries(g, row, &support)?
                    };
                    outs.push(weighted_frechet_mean(g, &inputs, row, steps)?);
                }
                let m = concat_channels(g, &outs)?;
                bn.forward_with_steps(g, store, ctx, m, steps)?
            }
            Op::LogPool { windows, mode, bn } => {
                let l = cache.log(g, x)?;
                let e = log_pool_of_log(g, l, *windows, *mode)?;
                bn.forward_with_steps(g, store, ctx, e, steps)?
            }
            Op::SkipReduced { first, second } => {
                let a = first.forward(g, store, x)?;
                let b = second.forward(g, store, x)?;
                block_diag(g, &[a, b])?
            }
            Op::ChannelPairs {
                offset,
                weights,
                bn,
                reeig,
            } => {
                let c = g.value(x).channels();
                let partner = gather_channels(g, x, &pair_partners(c, *offset))?;
                let m = match weights {
                    None => frechet_mean(g, &[x, partner], steps)?,
                    Some(id) => {
                        let w = g.param(store, *id)?;
                        let w = normalize_rows(g, w, Normalization::Softmax)?;
                        weighted_frechet_mean(g, &[x, partner], w, steps)?
                    }
                };
                let h = bn.forward_with_steps(g, store, ctx, m, steps)?;
                if *reeig { reeig_default(g, h)? } else { h }
            }
            Op::SkipPairs { bimap } => {
                let c = g.value(x).channels();
                let partner =
                    gather_channels(g, x, &(0..c).map(|k| (k + 1) % c).collect::<Vec<_>>())?;
                let d = block_diag(g, &[x, partner])?;
                bimap.forward(g, store, d)?
            }
        })
    }

    /// Whether the op is the `none` candidate.
    pub fn is_zero(&self) -> bool {
        matches!(self, Op::Zero { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_geometry_reproduces_the_paper() {
        let regular = |kernel, stride| Windows::Regular { kernel, stride };
        assert_eq!(pool_geometry(20, 10).unwrap(), regular(2, 2));
        assert_eq!(pool_geometry(93, 30).unwrap(), regular(4, 3));
        assert_eq!(pool_geometry(100, 50).unwrap(), regular(2, 2));
    }

    /// Every size pair gets `n_out` windows, none wider than `⌈n_in/n_out⌉ + 1` (so odd sizes
    /// such as 51→26 pool neighbouring entries, not half the matrix).
    #[test]
    fn pool_windows_are_local_for_every_size() {
        for n_in in 2..120 {
            for n_out in 2..=n_in {
                let ranges = pool_geometry(n_in, n_out).unwrap().ranges(n_in).unwrap();
                assert_eq!(ranges.len(), n_out, "{n_in} → {n_out}");
                let widest = n_in.div_ceil(n_out) + 1;
                assert!(ranges.iter().all(|r| r.len() <= widest), "{n_in} → {n_out}");
            }
        }
    }
}
