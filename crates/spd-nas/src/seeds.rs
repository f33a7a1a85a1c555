//! The seed salts. Each initialisation of a run is drawn from `seed ^ SALT` with one of these
//! salts (the batch orders from the search's and the training's own seeds, the split from the
//! split seed), so every random stream is a function of the run's settings alone. Streams that
//! share a salt are the same stream on purpose: the supernets (SPDNetNAS's, DARTS's,
//! FairDARTS's) and TSLR start from the seed itself, and the deep baselines (SPDNet, SPDNetBN,
//! the random architecture, the networks DARTS and FairDARTS derive) each start a fresh
//! generator at `BASELINE_INIT`, so adding or dropping one baseline changes no other.
//! The salts decide reproducibility: changing one changes every result that depends on it, so
//! they change only with a note in the CHANGELOG.

/// The supernet's weights, then α, from one generator (`seed` itself).
pub const SUPERNET_INIT: u64 = 0;
/// The order of the validation batches of a search epoch (the training batches use the
/// search seed itself).
pub const SEARCH_VALIDATION_BATCHES: u64 = 0x5a5a;
/// The weights of the network derived from the searched genotype.
pub const DERIVED_INIT: u64 = 0xde71;
/// A deep baseline (SPDNet, SPDNetBN, the random architecture, the network DARTS or FairDARTS
/// derived): its genotype draw (random architecture), then its weights, from one generator.
pub const BASELINE_INIT: u64 = 0xba5e;
/// The initial weights of tangent-space logistic regression.
pub const TSLR_INIT: u64 = 0;

/// The generator of the stream `salt` of `seed`.
pub fn rng(seed: u64, salt: u64) -> impl rand::Rng {
    spd_linalg::random::seeded_rng(seed ^ salt)
}
