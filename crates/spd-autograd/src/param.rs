//! Named parameters that know their manifold, and the non-trainable state (batch-norm running
//! means) that checkpoints must carry with them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{AutogradError, Result};
use crate::manifold::Manifold;
use crate::tensor::Tensor;

/// Index of a parameter in its [`ParamStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ParamId(pub usize);

/// A named tensor on a manifold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Param {
    /// Unique name, e.g. `cell0.edge2.BiMap_1.bimap.w`.
    pub name: String,
    /// Where the value lives: Euclidean, Stiefel (every matrix slice), SPD (every matrix slice).
    pub manifold: Manifold,
    /// The value.
    pub value: Tensor,
    /// Frozen parameters enter graphs as constants.
    pub trainable: bool,
}

/// All parameters of a model plus its named buffers; serialisable for checkpoints. Ids start
/// at the store's base, so stores with different bases (network weights, architecture weights)
/// can share one tape and one [`Gradients`](crate::Gradients) without their ids colliding.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ParamStore {
    base: usize,
    params: Vec<Param>,
    buffers: BTreeMap<String, Tensor>,
}

impl ParamStore {
    /// An empty store with ids from 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store whose ids start at `base`.
    pub fn with_base(base: usize) -> Self {
        Self {
            base,
            ..Self::default()
        }
    }

    /// Whether `id` belongs to this store.
    pub fn contains(&self, id: ParamId) -> bool {
        id.0 >= self.base && id.0 - self.base < self.params.len()
    }

    /// The ids of all parameters, in creation order.
    pub fn ids(&self) -> Vec<ParamId> {
        (0..self.params.len())
            .map(|i| ParamId(self.base + i))
            .collect()
    }

    /// Adds a trainable parameter after checking the value lies on its manifold.
    pub fn add(
        &mut self,
        name: impl Into<String>,
        manifold: Manifold,
        value: Tensor,
    ) -> Result<ParamId> {
        let name = name.into();
        if self.id_of(&name).is_some() {
            return Err(AutogradError::Invalid(format!(
                "parameter {name} already exists"
            )));
        }
        manifold
            .check(&value)
            .map_err(|e| AutogradError::Invalid(format!("parameter {name}: {e}")))?;
        self.params.push(Param {
            name,
            manifold,
            value,
            trainable: true,
        });
        Ok(ParamId(self.base + self.params.len() - 1))
    }

    /// The parameter `id`.
    pub fn get(&self, id: ParamId) -> Option<&Param> {
        self.params.get(id.0.checked_sub(self.base)?)
    }

    /// The parameter `id`, mutable.
    pub fn get_mut(&mut self, id: ParamId) -> Option<&mut Param> {
        self.params.get_mut(id.0.checked_sub(self.base)?)
    }

    /// The id of the parameter called `name`.
    pub fn id_of(&self, name: &str) -> Option<ParamId> {
        self.params
            .iter()
            .position(|p| p.name == name)
            .map(|i| ParamId(self.base + i))
    }

    /// All parameters with their ids, in creation order.
    pub fn iter(&self) -> impl Iterator<Item = (ParamId, &Param)> {
        self.params
            .iter()
            .enumerate()
            .map(|(i, p)| (ParamId(self.base + i), p))
    }

    /// Number of parameters.
    pub fn len(&self) -> usize {
        self.params.len()
    }

    /// Whether the store holds no parameter.
    pub fn is_empty(&self) -> bool {
        self.params.is_empty()
    }

    /// Total number of scalar values in trainable parameters.
    pub fn trainable_values(&self) -> usize {
        self.params
            .iter()
            .filter(|p| p.trainable)
            .map(|p| p.value.data().len())
            .sum()
    }

    /// The buffer `name` (e.g. a batch-norm running mean).
    pub fn buffer(&self, name: &str) -> Option<&Tensor> {
        self.buffers.get(name)
    }

    /// Sets the buffer `name`.
    pub fn set_buffer(&mut self, name: impl Into<String>, value: Tensor) {
        self.buffers.insert(name.into(), value);
    }

    /// All buffers by name.
    pub fn buffers(&self) -> &BTreeMap<String, Tensor> {
        &self.buffers
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::{BatchNormSpd, BiMapLayer};
    use spd_linalg::random::seeded_rng;

    /// A checkpoint of parameters and running means survives JSON bit for bit.
    #[test]
    fn store_round_trips_through_json_exactly() {
        let mut store = ParamStore::new();
        BiMapLayer::new(&mut store, "b", (2, 3), (6, 4), &mut seeded_rng(1)).unwrap();
        BatchNormSpd::new(&mut store, "bn", 4).unwrap();
        store.set_buffer(
            "bn.running_mean",
            crate::gradcheck::InputKind::Spd
                .sample([1, 1, 4, 4], 3)
                .value,
        );
        let json = serde_json::to_string(&store).unwrap();
        let back: ParamStore = serde_json::from_str(&json).unwrap();
        assert_eq!(back, store);
        assert_eq!(back.trainable_values(), 2 * 3 * 6 * 4 + 16);
    }

    #[test]
    fn rejects_off_manifold_values_and_duplicates() {
        let mut store = ParamStore::new();
        let not_orthonormal = Tensor::from_vec([1, 1, 2, 1], vec![1.0, 1.0]).unwrap();
        assert!(store.add("w", Manifold::Stiefel, not_orthonormal).is_err());
        let indefinite = Tensor::from_vec([1, 1, 2, 2], vec![1.0, 0.0, 0.0, -1.0]).unwrap();
        assert!(store.add("b", Manifold::Spd, indefinite).is_err());
        store
            .add("x", Manifold::Euclidean, Tensor::zeros([1, 1, 1, 2]))
            .unwrap();
        assert!(
            store
                .add("x", Manifold::Euclidean, Tensor::zeros([1, 1, 1, 2]))
                .is_err()
        );
    }
}
