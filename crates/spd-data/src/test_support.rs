//! Proptest settings for this crate's parser fuzzing: 512 cases from a fixed seed, so CI is
//! reproducible; `SPDNAS_PROPTEST_RANDOM=1` explores new inputs and `SPDNAS_FUZZ_CASES=n`
//! raises the count.

use proptest::test_runner::{Config, RngSeed};

pub fn fuzz_config() -> Config {
    let cases = std::env::var("SPDNAS_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512);
    let mut config = Config::with_cases(cases);
    if std::env::var_os("SPDNAS_PROPTEST_RANDOM").is_none() {
        config.rng_seed = RngSeed::Fixed(0x5eed_da7a);
    }
    config
}
