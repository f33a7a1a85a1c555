//! Saved models as data, not as internals: `{format, format_version, spdnas_version,
//! architecture, class_names, parameters by name, buffers by name, provenance}`. A model is
//! rebuilt from its architecture (a network configuration with its genotype, or an SPDNet's
//! sizes) and its parameters are then set by name, so refactoring the structs that hold a
//! network does not break the files already written. A file of another format or version is
//! refused with a message saying which.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use spd_autograd::{ParamStore, Tensor};
use spd_data::Dataset;

use crate::baselines::{SpdNet, SpdNetConfig};
use crate::darts::{DartsConfig, DartsGenotype, DartsNetwork};
use crate::error::{NasError, Result};
use crate::genotype::Genotype;
use crate::network::Network;
use crate::network_config::NetworkConfig;
use crate::train::{Classifier, logits};

/// The `format` field of every model file.
pub const MODEL_FORMAT: &str = "spdnas-model";
/// The version of the model format this build writes and reads.
pub const MODEL_FORMAT_VERSION: u32 = 1;

/// What a saved model computes, enough to rebuild it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Architecture {
    /// The network of a genotype (SPDNetNAS's derived network, or a random architecture).
    Genotype {
        /// Sizes and settings.
        network: NetworkConfig,
        /// The cells.
        genotype: Genotype,
    },
    /// An SPDNet or SPDNetBN.
    SpdNet(SpdNetConfig),
    /// The network derived by DARTS or FairDARTS, on the matrix logarithms of the samples.
    Darts {
        /// Layout.
        config: DartsConfig,
        /// The cells.
        genotype: DartsGenotype,
    },
}

impl Architecture {
    /// Input matrix size and class count.
    pub fn shape(&self) -> (usize, usize) {
        match self {
            Architecture::Genotype { network, .. } => (network.input_dim, network.num_classes),
            Architecture::SpdNet(c) => (c.dims[0], c.num_classes),
            Architecture::Darts { config, .. } => (config.input_size, config.classes),
        }
    }

    /// The network with fresh parameters registered in `store`.
    fn build(&self, store: &mut ParamStore) -> Result<Box<dyn Classifier + Send>> {
        let mut rng = spd_linalg::random::seeded_rng(0);
        Ok(match self {
            Architecture::Genotype { network, genotype } => {
                Box::new(Network::derived(network, genotype, store, &mut rng)?)
            }
            Architecture::SpdNet(c) => Box::new(SpdNet::new(c, store, &mut rng)?),
            Architecture::Darts { config, genotype } => {
                config.check()?;
                Box::new(DartsNetwork::derived(config, genotype, store, &mut rng)?)
            }
        })
    }
}

/// A model file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedModel {
    /// Always [`MODEL_FORMAT`].
    pub format: String,
    /// [`MODEL_FORMAT_VERSION`] of the build that wrote it.
    pub format_version: u32,
    /// The spdnas version that wrote it.
    pub spdnas_version: String,
    /// What the model computes.
    pub architecture: Architecture,
    /// The class names, in label order.
    pub class_names: Vec<String>,
    /// Every parameter's value by name.
    pub parameters: BTreeMap<String, Tensor>,
    /// Every buffer (batch-norm running means) by name.
    pub buffers: BTreeMap<String, Tensor>,
    /// Where the model came from (the CLI stores the run's configuration), if known.
    #[serde(default)]
    pub provenance: Option<serde_json::Value>,
}

/// A saved model rebuilt: the network and its weights.
pub struct LoadedModel {
    /// The network.
    pub network: Box<dyn Classifier + Send>,
    /// Its weights and running means.
    pub weights: ParamStore,
    /// What it was rebuilt from.
    pub architecture: Architecture,
    /// The class names, in label order.
    pub class_names: Vec<String>,
}

impl LoadedModel {
    /// Logits of the samples `indices`, one row each.
    pub fn decision_function(&self, data: &Dataset, indices: &[usize]) -> Result<Vec<Vec<f64>>> {
        logits(&*self.network, &self.weights, data, indices, 30)
    }
}

impl SavedModel {
    /// The file of a trained network.
    pub fn new(
        architecture: Architecture,
        class_names: Vec<String>,
        weights: &ParamStore,
        provenance: Option<serde_json::Value>,
    ) -> Self {
        Self {
            format: MODEL_FORMAT.into(),
            format_version: MODEL_FORMAT_VERSION,
            spdnas_version: env!("CARGO_PKG_VERSION").into(),
            architecture,
            class_names,
            parameters: weights
                .iter()
                .map(|(_, p)| (p.name.clone(), p.value.clone()))
                .collect(),
            buffers: weights.buffers().clone(),
            provenance,
        }
    }

    /// The file as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a model serialises")
    }

    /// Reads a model file, refusing another format or version with a message naming it.
    pub fn from_json(text: &str) -> Result<Self> {
        let bad = |m: String| NasError::Config(m);
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| bad(format!("not JSON ({e})")))?;
        if value.get("format").and_then(|f| f.as_str()) != Some(MODEL_FORMAT) {
            return Err(bad(format!(
                "not an spdnas model file (no \"format\": \"{MODEL_FORMAT}\"; files written \
                 before the model format existed cannot be read: train the model again)"
            )));
        }
        let version = value.get("format_version").and_then(|v| v.as_u64());
        if version != Some(u64::from(MODEL_FORMAT_VERSION)) {
            let writer = value
                .get("spdnas_version")
                .and_then(|v| v.as_str())
                .unwrap_or("unknown");
            return Err(bad(format!(
                "model format version {} (written by spdnas {writer}); this build reads version {MODEL_FORMAT_VERSION}",
                version.map_or("missing".to_string(), |v| v.to_string())
            )));
        }
        serde_json::from_value(value).map_err(|e| bad(format!("a malformed model file ({e})")))
    }

    /// Rebuilds the network and sets every parameter and buffer by name; a parameter missing,
    /// left over, of another shape or off its manifold is an error naming it.
    pub fn load(&self) -> Result<LoadedModel> {
        let bad = |m: String| NasError::Config(format!("model file: {m}"));
        let mut weights = ParamStore::new();
        let network = self.architecture.build(&mut weights)?;
        for id in weights.ids() {
            let param = weights.get_mut(id).expect("own id");
            let saved = self
                .parameters
                .get(&param.name)
                .ok_or_else(|| bad(format!("parameter {} is missing", param.name)))?;
            if saved.shape() != param.value.shape()
                || saved.data().len() != saved.shape().iter().product::<usize>()
            {
                return Err(bad(format!(
                    "parameter {} has shape {:?}, the architecture needs {:?}",
                    param.name,
                    saved.shape(),
                    param.value.shape()
                )));
            }
            param
                .manifold
                .check(saved)
                .map_err(|e| bad(format!("parameter {}: {e}", param.name)))?;
            param.value = saved.clone();
        }
        if let Some(extra) = self
            .parameters
            .keys()
            .find(|name| weights.id_of(name).is_none())
        {
            return Err(bad(format!(
                "parameter {extra} is not part of the architecture"
            )));
        }
        let expected: Vec<(String, [usize; 4])> = weights
            .buffers()
            .iter()
            .map(|(name, t)| (name.clone(), t.shape()))
            .collect();
        for (name, shape) in expected {
            let value = self
                .buffers
                .get(&name)
                .ok_or_else(|| bad(format!("buffer {name} is missing")))?;
            if value.shape() != shape
                || value.data().len() != shape.iter().product::<usize>()
                || !value.is_finite()
            {
                return Err(bad(format!(
                    "buffer {name} has shape {:?} or non-finite values, the architecture needs {shape:?}",
                    value.shape()
                )));
            }
            weights.set_buffer(name, value.clone());
        }
        if let Some(extra) = self
            .buffers
            .keys()
            .find(|name| weights.buffer(name).is_none())
        {
            return Err(bad(format!(
                "buffer {extra} is not part of the architecture"
            )));
        }
        Ok(LoadedModel {
            network,
            weights,
            architecture: self.architecture.clone(),
            class_names: self.class_names.clone(),
        })
    }
}
