// SPDX-License-Identifier: GPL-2.0

//! The engine's growable array, backed by `alloc`'s `Vec` here.
//!
//! The `kvm_isolate` module compiles `policy.rs` against its own `list` module, with the same
//! interface over the kernel crate's `KVVec` and `GFP_KERNEL_ACCOUNT`: allocation can fail,
//! and every method that allocates says so with [`Error::NoMem`] and then has changed nothing.

extern crate alloc;

use crate::abi::Error;
use alloc::vec::Vec;

/// A growable array whose allocations can fail.
pub struct List<T>(Vec<T>);

impl<T> List<T> {
    /// An empty list; allocates nothing.
    pub const fn new() -> Self {
        List(Vec::new())
    }

    /// An empty list with room for `n` items.
    pub fn with_capacity(n: usize) -> Result<Self, Error> {
        let mut v = Vec::new();
        v.try_reserve_exact(n).map_err(|_| Error::NoMem)?;
        Ok(List(v))
    }

    /// The items.
    pub fn as_slice(&self) -> &[T] {
        &self.0
    }

    /// The items, mutable.
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        &mut self.0
    }

    /// Items held.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Inserts `item` at `at` (at most `len()`), shifting the rest.
    pub fn insert(&mut self, at: usize, item: T) -> Result<(), Error> {
        self.0.try_reserve(1).map_err(|_| Error::NoMem)?;
        self.0.insert(at, item);
        Ok(())
    }

    /// Makes room for `n` more items (nothing to do if there is).
    pub fn reserve(&mut self, n: usize) -> Result<(), Error> {
        self.0.try_reserve(n).map_err(|_| Error::NoMem)
    }

    /// Appends `item`.
    pub fn push(&mut self, item: T) -> Result<(), Error> {
        self.insert(self.0.len(), item)
    }

    /// Removes the item at `at` (less than `len()`).
    pub fn remove(&mut self, at: usize) {
        self.0.remove(at);
    }

    /// Keeps the items `keep` says yes to, in order.
    pub fn retain(&mut self, keep: impl FnMut(&T) -> bool) {
        self.0.retain(keep);
    }
}

impl<T> Default for List<T> {
    fn default() -> Self {
        Self::new()
    }
}
