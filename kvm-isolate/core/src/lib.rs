// SPDX-License-Identifier: GPL-2.0

//! kvm-isolate's pure logic, with no kernel dependency.
//!
//! Kbuild links no external crates, so the `kvm_isolate` module includes these files by
//! `#[path]`; here they are a `no_std` crate that `cargo test` checks on the build host.

#![no_std]

pub mod abi;
pub mod apply;
pub mod caps;
pub mod ctl;
pub mod list;
pub mod policy;
