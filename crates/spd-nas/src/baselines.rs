//! Baselines in the same framework: SPDNet and SPDNetBN (Huang & Van Gool 2017; Brooks et al.
//! 2019), a random architecture from the search space, and two non-deep references from
//! pyRiemann's toolbox: MDM and tangent-space logistic regression.

use rand::Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use spd_autograd::layers::{BatchNormSpd, BiMapLayer, ForwardCtx, LinearLayer};
use spd_autograd::ops::eig::reeig_default;
use spd_autograd::ops::flatten::{Vectorize, log_eig_flatten};
use spd_autograd::ops::loss::{argmax_rows, cross_entropy};
use spd_autograd::optim::Adam;
use spd_autograd::{Graph, ParamStore, Tensor, Var};
use spd_data::Dataset;
use spd_linalg::faer::Mat;
use spd_linalg::{KarcherOptions, SpdPoint, distance, karcher_mean};

use crate::error::{NasError, Result};
use crate::genotype::Genotype;
use crate::network_config::NetworkConfig;
use crate::space::EdgeKind;
use crate::train::Classifier;

/// An SPDNet: `BiMap → [BN →] ReEig` blocks through `dims`, the last block without ReEig, then
/// LogEig → flatten → linear.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SpdNet {
    blocks: Vec<(BiMapLayer, Option<BatchNormSpd>)>,
    head: LinearLayer,
    vectorize: Vectorize,
}

/// Layer sizes of an SPDNet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpdNetConfig {
    /// Matrix sizes, input first (e.g. `[20, 16, 8]`).
    pub dims: Vec<usize>,
    /// Riemannian batch norm after every BiMap (SPDNetBN).
    pub batch_norm: bool,
    /// Classes.
    pub num_classes: usize,
}

impl SpdNetConfig {
    /// Brooks et al.'s RADAR net: BiMap 20→16, ReEig, BiMap 16→8, LogEig, FC 64→3 (`docs/fidelity.md`, Model sizes).
    pub fn radar(batch_norm: bool) -> Self {
        Self {
            dims: vec![20, 16, 8],
            batch_norm,
            num_classes: 3,
        }
    }

    /// The HDM05 net: BiMap 93→30, LogEig, FC 900→117 (`docs/fidelity.md`, Model sizes).
    pub fn hdm05(batch_norm: bool) -> Self {
        Self {
            dims: vec![93, 30],
            batch_norm,
            num_classes: 117,
        }
    }

    /// The RADAR layout scaled to an input of size `n` (`n → ⌈4n/5⌉ → ⌈2n/5⌉`).
    pub fn scaled(n: usize, num_classes: usize, batch_norm: bool) -> Self {
        let a = (4 * n).div_ceil(5).max(1);
        let b = (2 * n).div_ceil(5).max(1);
        Self {
            dims: vec![n, a, b],
            batch_norm,
            num_classes,
        }
    }
}

impl SpdNet {
    /// Registers the layers.
    pub fn new<R: Rng + ?Sized>(
        config: &SpdNetConfig,
        store: &mut ParamStore,
        rng: &mut R,
    ) -> Result<Self> {
        if config.dims.len() < 2 {
            return Err(NasError::Config(
                "an SPDNet needs at least one BiMap".into(),
            ));
        }
        let mut blocks = Vec::new();
        for (i, w) in config.dims.windows(2).enumerate() {
            let bimap = BiMapLayer::new(
                store,
                &format!("spdnet.bimap{i}"),
                (1, 1),
                (w[0], w[1]),
                rng,
            )?;
            let bn = if config.batch_norm {
                Some(BatchNormSpd::new(store, &format!("spdnet.bn{i}"), w[1])?)
            } else {
                None
            };
            blocks.push((bimap, bn));
        }
        let last = *config.dims.last().expect("two dims");
        let vectorize = Vectorize::Full;
        let head = LinearLayer::new(
            store,
            "spdnet.classifier",
            vectorize.len(last),
            config.num_classes,
            rng,
        )?;
        Ok(Self {
            blocks,
            head,
            vectorize,
        })
    }
}

impl Classifier for SpdNet {
    fn logits(
        &self,
        g: &mut Graph,
        weights: &ParamStore,
        ctx: &mut ForwardCtx,
        x: Var,
    ) -> Result<Var> {
        let mut h = x;
        let n = self.blocks.len();
        for (i, (bimap, bn)) in self.blocks.iter().enumerate() {
            h = bimap.forward(g, weights, h)?;
            if let Some(bn) = bn {
                h = bn.forward(g, weights, ctx, h)?;
            }
            if i + 1 < n {
                h = reeig_default(g, h)?;
            }
        }
        let v = log_eig_flatten(g, h, self.vectorize)?;
        Ok(self.head.forward(g, weights, v)?)
    }
}

/// A uniformly random genotype of the configuration's space: for each node two distinct inputs
/// and, on each, a non-`none` op of the list that edge uses.
pub fn random_genotype<R: Rng + ?Sized>(config: &NetworkConfig, rng: &mut R) -> Genotype {
    let space = config.search_space();
    let mut cell = |reduction: bool| {
        let mut entries = Vec::new();
        for node in 0..config.spec.steps {
            let a = rng.random_range(0..2 + node);
            let mut b = rng.random_range(0..1 + node);
            if b >= a {
                b += 1;
            }
            for source in [a, b] {
                let list = space.list(EdgeKind::new(reduction, source));
                entries.push((
                    list[rng.random_range(1..list.len())].name.to_string(),
                    source,
                ));
            }
        }
        entries
    };
    let normal = cell(false);
    let reduce = cell(true);
    Genotype {
        normal,
        reduce,
        space: config.spec.space,
        naming: config.spec.naming,
    }
}

/// `f` of each item, in parallel and in input order; the error of the lowest index is the one
/// returned, so neither results nor errors depend on the thread count.
fn par_map<T: Sync, U: Send>(
    items: &[T],
    f: impl Fn(&T) -> Result<U> + Sync + Send,
) -> Result<Vec<U>> {
    items
        .par_iter()
        .map(f)
        .collect::<Vec<_>>()
        .into_iter()
        .collect()
}

/// Minimum distance to the Riemannian mean (Barachant et al. 2012): one Karcher mean per
/// class; a sample goes to the class whose mean is nearest in the affine-invariant distance.
/// Classes are fitted, and samples classified, in parallel.
#[derive(Debug, Clone)]
pub struct Mdm {
    means: Vec<Mat<f64>>,
}

impl Mdm {
    /// Class means of the samples `indices`.
    pub fn fit(data: &Dataset, indices: &[usize]) -> Result<Self> {
        let mut members = vec![Vec::new(); data.num_classes()];
        for &i in indices {
            members[data.labels()[i]].push(data.matrix(i));
        }
        if let Some(c) = members.iter().position(Vec::is_empty) {
            return Err(NasError::Config(format!(
                "class {} has no training sample",
                data.class_names()[c]
            )));
        }
        let means = par_map(&members, |mats| {
            Ok(karcher_mean(mats, None, KarcherOptions::default())
                .map_err(|e| NasError::Config(e.to_string()))?
                .mean)
        })?;
        Ok(Self { means })
    }

    /// The nearest class mean of each sample (the first on ties).
    pub fn predict(&self, data: &Dataset, indices: &[usize]) -> Result<Vec<usize>> {
        Ok(self
            .distances(data, indices)?
            .iter()
            .map(|d| {
                (0..d.len())
                    .min_by(|&a, &b| d[a].total_cmp(&d[b]))
                    .expect("classes")
            })
            .collect())
    }

    /// The affine-invariant distance of each sample to each class mean, one row per sample.
    pub fn distances(&self, data: &Dataset, indices: &[usize]) -> Result<Vec<Vec<f64>>> {
        par_map(indices, |&i| {
            self.means
                .iter()
                .map(|m| distance(m.as_ref(), data.matrix(i)))
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| NasError::Config(e.to_string()))
        })
    }
}

/// Tangent-space logistic regression (pyRiemann's `TangentSpace` + L2 logistic regression):
/// features `upper(log(M^{-1/2} X M^{-1/2}))` (off-diagonal entries ×√2) at the Karcher mean `M`
/// of the training set, standardised, then multinomial logistic regression minimising
/// `mean CE + (λ/2)‖W‖²` by full-batch Adam.
#[derive(Debug, Clone)]
pub struct Tslr {
    reference: SpdPoint,
    mean: Vec<f64>,
    scale: Vec<f64>,
    store: ParamStore,
    head: LinearLayer,
}

fn tangent_features(
    reference: &SpdPoint,
    data: &Dataset,
    indices: &[usize],
) -> Result<Vec<Vec<f64>>> {
    let n = data.n();
    par_map(indices, |&i| {
        let w = reference.whiten(data.matrix(i));
        let l = spd_linalg::logm(w.as_ref()).map_err(|e| NasError::Config(e.to_string()))?;
        Ok((0..n)
            .flat_map(|j| (0..=j).map(move |r| (r, j)))
            .map(|(r, j)| {
                if r == j {
                    l[(r, j)]
                } else {
                    std::f64::consts::SQRT_2 * l[(r, j)]
                }
            })
            .collect())
    })
}

impl Tslr {
    /// Fits on `indices` with L2 strength `lambda` and `iterations` Adam steps.
    pub fn fit(
        data: &Dataset,
        indices: &[usize],
        lambda: f64,
        iterations: usize,
        seed: u64,
    ) -> Result<Self> {
        let mats: Vec<_> = indices.iter().map(|&i| data.matrix(i)).collect();
        let m = karcher_mean(&mats, None, KarcherOptions::default())
            .map_err(|e| NasError::Config(e.to_string()))?;
        let reference =
            SpdPoint::new(m.mean.as_ref()).map_err(|e| NasError::Config(e.to_string()))?;
        let feats = tangent_features(&reference, data, indices)?;
        let d = feats[0].len();
        let mean: Vec<f64> = (0..d)
            .map(|j| feats.iter().map(|f| f[j]).sum::<f64>() / feats.len() as f64)
            .collect();
        let scale: Vec<f64> = (0..d)
            .map(|j| {
                (feats.iter().map(|f| (f[j] - mean[j]).powi(2)).sum::<f64>() / feats.len() as f64)
                    .sqrt()
                    .max(1e-12)
            })
            .collect();
        let x = standardized(&feats, &mean, &scale)?;
        let y: Vec<usize> = indices.iter().map(|&i| data.labels()[i]).collect();
        let mut store = ParamStore::new();
        let head = LinearLayer::new(
            &mut store,
            "tslr",
            d,
            data.num_classes(),
            &mut spd_linalg::random::seeded_rng(seed),
        )?;
        let mut adam = Adam::new(0.05);
        for _ in 0..iterations {
            let mut g = Graph::new();
            let xv = g.constant(x.clone());
            let logits = head.forward(&mut g, &store, xv)?;
            let loss = cross_entropy(&mut g, logits, &y)?;
            let w = g.param(&store, head.weight)?;
            let wv = g.value(w).clone();
            let penalty = spd_autograd::ops::arith::dot_const(&mut g, w, &wv.scaled(0.5 * lambda))?;
            let total = spd_autograd::ops::arith::add(&mut g, loss, penalty)?;
            adam.step(&mut store, &g.backward(total)?)?;
        }
        Ok(Self {
            reference,
            mean,
            scale,
            store,
            head,
        })
    }

    /// Predicted classes.
    pub fn predict(&self, data: &Dataset, indices: &[usize]) -> Result<Vec<usize>> {
        Ok(argmax_rows(&self.logits(data, indices)?))
    }

    /// Class logits, one row per sample.
    pub fn decision(&self, data: &Dataset, indices: &[usize]) -> Result<Vec<Vec<f64>>> {
        let logits = self.logits(data, indices)?;
        let k = logits.cols().max(1);
        Ok(logits.data().chunks(k).map(<[f64]>::to_vec).collect())
    }

    /// Trainable scalars: the weights and biases of the regression, `d·K + K` for `d` tangent
    /// features and `K` classes.
    pub fn params(&self) -> usize {
        self.store.trainable_values()
    }

    /// Class logits, one row per sample.
    fn logits(&self, data: &Dataset, indices: &[usize]) -> Result<Tensor> {
        let feats = tangent_features(&self.reference, data, indices)?;
        let mut g = Graph::new();
        let xv = g.constant(standardized(&feats, &self.mean, &self.scale)?);
        let logits = self.head.forward(&mut g, &self.store, xv)?;
        Ok(g.value(logits).clone())
    }
}

fn standardized(feats: &[Vec<f64>], mean: &[f64], scale: &[f64]) -> Result<Tensor> {
    let d = mean.len();
    let data: Vec<f64> = feats
        .iter()
        .flat_map(|f| (0..d).map(move |j| (f[j] - mean[j]) / scale[j]))
        .collect();
    Ok(Tensor::from_vec([feats.len(), 1, 1, d], data)?)
}

/// Fraction of `predicted` equal to the labels of `indices`.
pub fn accuracy(data: &Dataset, indices: &[usize], predicted: &[usize]) -> f64 {
    let hits = indices
        .iter()
        .zip(predicted)
        .filter(|(i, p)| data.labels()[**i] == **p)
        .count();
    hits as f64 / indices.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use spd_data::gaussian::{GaussianConfig, generate_gaussian};

    fn on_threads<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(f)
    }

    fn bits<'a>(values: impl IntoIterator<Item = &'a f64>) -> Vec<u64> {
        values.into_iter().map(|v| v.to_bits()).collect()
    }

    fn mat_bits(m: &Mat<f64>) -> Vec<u64> {
        bits((0..m.ncols()).flat_map(|j| m.col(j).iter()))
    }

    /// The bits of the fitted models (MDM class means; TSLR reference, standardisation, weights
    /// and test logits) and both models' test predictions.
    fn fingerprint(data: &Dataset, train: &[usize], test: &[usize]) -> (Vec<u64>, Vec<usize>) {
        let mdm = Mdm::fit(data, train).unwrap();
        let tslr = Tslr::fit(data, train, 1e-3, 20, 0).unwrap();
        let mut raw: Vec<u64> = mdm.means.iter().flat_map(mat_bits).collect();
        raw.extend(mat_bits(&tslr.reference.sqrt));
        raw.extend(bits(&tslr.mean));
        raw.extend(bits(&tslr.scale));
        for (_, p) in tslr.store.iter() {
            raw.extend(bits(p.value.data()));
        }
        raw.extend(bits(tslr.logits(data, test).unwrap().data()));
        let mut predicted = mdm.predict(data, test).unwrap();
        predicted.extend(tslr.predict(data, test).unwrap());
        (raw, predicted)
    }

    #[test]
    fn mdm_and_tslr_are_bit_identical_on_one_and_two_threads() {
        let data = generate_gaussian(
            &GaussianConfig {
                n: 6,
                classes: 4,
                per_class: 90,
                ..Default::default()
            },
            3,
        )
        .unwrap();
        // 300 training samples: the TSLR mean spans two chunks of log maps.
        let (train, test): (Vec<usize>, Vec<usize>) = (0..data.len()).partition(|&i| i < 300);
        let one = on_threads(1, || fingerprint(&data, &train, &test));
        let two = on_threads(2, || fingerprint(&data, &train, &test));
        assert_eq!(one.1, two.1, "predictions");
        assert!(one.0 == two.0, "raw model numbers differ");
        let hits = (0..test.len())
            .filter(|&k| one.1[k] == data.labels()[test[k]])
            .count();
        assert!(hits > test.len() / 2, "MDM hits {hits} of {}", test.len());
    }
}
