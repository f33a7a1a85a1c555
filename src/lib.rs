//! `spdnas`: SPD manifold neural networks and the differentiable search of their architectures
//! (SPDNetNAS, Sukthanker et al., IJCAI 2021).
//!
//! This facade re-exports the workspace crates, lowest layer first:
//! [`linalg`] (faer-based SPD linear algebra), [`autograd`] (tape and Riemannian parameters),
//! [`data`] (loaders and generators) and [`nas`] (search space, supernet, search), and holds
//! the [`app`] layer that the `spdnas` command calls.

pub mod app;

pub use spd_autograd as autograd;
pub use spd_data as data;
pub use spd_linalg as linalg;
pub use spd_nas as nas;
