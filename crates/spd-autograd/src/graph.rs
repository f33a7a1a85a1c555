//! The define-by-run tape: every op appends a node holding its output value, its parents and
//! a backward rule with whatever the rule needs saved (eigenvectors, masks, ...).

use std::collections::BTreeMap;

use crate::error::{AutogradError, Result};
use crate::param::{ParamId, ParamStore};
use crate::tensor::Tensor;

/// A value on the tape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Var(pub(crate) usize);

/// What a backward rule sees: the parents' values, the op's own output, and which parents need
/// a gradient (rules skip the others).
pub struct BackwardContext<'a> {
    /// Values of the parents, in the order the op listed them.
    pub inputs: Vec<&'a Tensor>,
    /// The op's output value.
    pub output: &'a Tensor,
    /// `needs[i]`: parent `i` wants a gradient.
    pub needs: Vec<bool>,
}

/// The vector–Jacobian product of one op: gradients with respect to each parent (or `None` where
/// not needed) given the upstream gradient of the output.
pub trait Backward: Send + Sync {
    /// `∂L/∂input_i` for every parent `i`.
    fn backward(&self, ctx: &BackwardContext<'_>, grad: &Tensor) -> Result<Vec<Option<Tensor>>>;
}

struct Node {
    value: Tensor,
    parents: Vec<Var>,
    rule: Option<Box<dyn Backward>>,
    requires_grad: bool,
    param: Option<ParamId>,
}

/// A tape. Build a forward pass by calling ops on it, then call [`Graph::backward`].
#[derive(Default)]
pub struct Graph {
    nodes: Vec<Node>,
    frozen: Vec<std::ops::Range<usize>>,
}

impl Graph {
    /// An empty tape.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of recorded values.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// A value that needs no gradient (data, fixed buffers).
    pub fn constant(&mut self, value: Tensor) -> Var {
        self.push_leaf(value, false, None)
    }

    /// An input whose gradient [`Graph::backward`] reports.
    pub fn leaf(&mut self, value: Tensor) -> Var {
        self.push_leaf(value, true, None)
    }

    /// The current value of parameter `id`; its gradient is reported under `id` (and summed
    /// over every use of the parameter on this tape). Parameters that are not trainable, or
    /// whose store was [frozen](Graph::freeze) on this tape, are constants.
    pub fn param(&mut self, store: &ParamStore, id: ParamId) -> Result<Var> {
        let p = store
            .get(id)
            .ok_or_else(|| AutogradError::UnknownParameter(format!("{id:?}")))?;
        let frozen = self.frozen.iter().any(|r| r.contains(&id.0));
        Ok(self.push_leaf(p.value.clone(), p.trainable && !frozen, Some(id)))
    }

    /// Treats every parameter of `store` as a constant on this tape (e.g. the architecture
    /// weights during a network step), so no gradient is computed for them.
    pub fn freeze(&mut self, store: &ParamStore) {
        let ids = store.ids();
        if let (Some(first), Some(last)) = (ids.first(), ids.last()) {
            self.frozen.push(first.0..last.0 + 1);
        }
    }

    fn push_leaf(&mut self, value: Tensor, requires_grad: bool, param: Option<ParamId>) -> Var {
        self.nodes.push(Node {
            value,
            parents: Vec::new(),
            rule: None,
            requires_grad,
            param,
        });
        Var(self.nodes.len() - 1)
    }

    /// Records an op: its output, its parents and its backward rule. The output requires a
    /// gradient when any parent does; otherwise the rule is dropped.
    pub fn push(&mut self, value: Tensor, parents: Vec<Var>, rule: Box<dyn Backward>) -> Var {
        let requires_grad = parents.iter().any(|p| self.nodes[p.0].requires_grad);
        self.nodes.push(Node {
            value,
            parents,
            rule: requires_grad.then_some(rule),
            requires_grad,
            param: None,
        });
        Var(self.nodes.len() - 1)
    }

    /// The value of `v`.
    pub fn value(&self, v: Var) -> &Tensor {
        &self.nodes[v.0].value
    }

    /// Whether a gradient flows to `v`.
    pub fn requires_grad(&self, v: Var) -> bool {
        self.nodes[v.0].requires_grad
    }

    /// Reverse-mode differentiation of the scalar `loss`: nodes are visited in reverse order of
    /// creation (a fixed order, so results do not depend on threads), gradients of values used
    /// several times are summed.
    pub fn backward(&self, loss: Var) -> Result<Gradients> {
        let shape = self.value(loss).shape();
        if shape != [1, 1, 1, 1] {
            return Err(AutogradError::NotScalar(shape));
        }
        let mut grads: Vec<Option<Tensor>> = vec![None; loss.0 + 1];
        grads[loss.0] = Some(Tensor::scalar(1.0));
        let mut leaves = BTreeMap::new();
        let mut params: BTreeMap<ParamId, Tensor> = BTreeMap::new();
        for i in (0..=loss.0).rev() {
            let Some(grad) = grads[i].take() else {
                continue;
            };
            let node = &self.nodes[i];
            if !node.requires_grad {
                continue;
            }
            let Some(rule) = &node.rule else {
                if let Some(id) = node.param {
                    match params.get_mut(&id) {
                        Some(acc) => acc.add_assign(&grad),
                        None => {
                            params.insert(id, grad.clone());
                        }
                    }
                }
                leaves.insert(i, grad);
                continue;
            };
            let ctx = BackwardContext {
                inputs: node
                    .parents
                    .iter()
                    .map(|p| &self.nodes[p.0].value)
                    .collect(),
                output: &node.value,
                needs: node
                    .parents
                    .iter()
                    .map(|p| self.nodes[p.0].requires_grad)
                    .collect(),
            };
            let parent_grads = rule.backward(&ctx, &grad)?;
            for (p, g) in node.parents.iter().zip(parent_grads) {
                let (Some(g), true) = (g, self.nodes[p.0].requires_grad) else {
                    continue;
                };
                debug_assert_eq!(g.shape(), self.nodes[p.0].value.shape());
                match &mut grads[p.0] {
                    Some(acc) => acc.add_assign(&g),
                    slot => *slot = Some(g),
                }
            }
        }
        Ok(Gradients { leaves, params })
    }
}

/// Gradients from [`Graph::backward`]: for every leaf that needed one, and summed per parameter.
#[derive(Debug, Clone, Default)]
pub struct Gradients {
    leaves: BTreeMap<usize, Tensor>,
    params: BTreeMap<ParamId, Tensor>,
}

impl Gradients {
    /// `∂L/∂v` for a leaf `v` (`None` when `L` does not depend on it).
    pub fn wrt(&self, v: Var) -> Option<&Tensor> {
        self.leaves.get(&v.0)
    }

    /// `∂L/∂θ` (Euclidean) for parameter `id`.
    pub fn param(&self, id: ParamId) -> Option<&Tensor> {
        self.params.get(&id)
    }

    /// All parameter gradients, by id.
    pub fn params(&self) -> &BTreeMap<ParamId, Tensor> {
        &self.params
    }

    /// Mutable parameter gradients (for clipping).
    pub fn params_mut(&mut self) -> &mut BTreeMap<ParamId, Tensor> {
        &mut self.params
    }
}
