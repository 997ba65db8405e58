// SPDX-License-Identifier: GPL-2.0

//! The cargo-fuzz bodies (fuzz/fuzz_targets/bodies.rs), run here with random inputs so that every
//! `cargo test` exercises them.

#[path = "../fuzz/fuzz_targets/bodies.rs"]
mod bodies;

use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn abi_decode(data in prop::collection::vec(any::<u8>(), 0..400)) {
        bodies::abi_decode(&data);
    }

    #[test]
    fn decide(data in prop::collection::vec(any::<u8>(), 0..600)) {
        bodies::decide(&data);
    }
}
