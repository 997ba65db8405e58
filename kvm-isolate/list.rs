// SPDX-License-Identifier: GPL-2.0

//! The policy engine's growable array in the kernel: the interface of the core crate's `list.rs`
//! (which `cargo test` exercises) over [`KVVec`], charged to the caller's memory cgroup.
//!
//! The engine is used under its VM's mutex, in process context, so allocating may sleep.

use crate::abi::Error;
use kernel::alloc::{flags::GFP_KERNEL_ACCOUNT, KVVec};

/// A growable array whose allocations can fail.
pub(crate) struct List<T>(KVVec<T>);

impl<T> List<T> {
    /// An empty list; allocates nothing.
    pub(crate) const fn new() -> Self {
        List(KVVec::new())
    }

    /// An empty list with room for `n` items.
    pub(crate) fn with_capacity(n: usize) -> Result<Self, Error> {
        KVVec::with_capacity(n, GFP_KERNEL_ACCOUNT)
            .map(List)
            .map_err(|_| Error::NoMem)
    }

    /// The items.
    pub(crate) fn as_slice(&self) -> &[T] {
        &self.0
    }

    /// The items, mutable.
    pub(crate) fn as_mut_slice(&mut self) -> &mut [T] {
        &mut self.0
    }

    /// Items held.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether it holds nothing.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Inserts `item` at `at` (at most `len()`), shifting the rest.
    pub(crate) fn insert(&mut self, at: usize, item: T) -> Result<(), Error> {
        self.0
            .reserve(1, GFP_KERNEL_ACCOUNT)
            .map_err(|_| Error::NoMem)?;
        // Cannot fail: there is room, and the engine inserts only at a position it found in the
        // list (at most `len()`).
        self.0
            .insert_within_capacity(at, item)
            .map_err(|_| Error::Inval)
    }

    /// Makes room for `n` more items (nothing to do if there is).
    pub(crate) fn reserve(&mut self, n: usize) -> Result<(), Error> {
        self.0
            .reserve(n, GFP_KERNEL_ACCOUNT)
            .map_err(|_| Error::NoMem)
    }

    /// Appends `item`.
    pub(crate) fn push(&mut self, item: T) -> Result<(), Error> {
        self.insert(self.0.len(), item)
    }

    /// Removes the item at `at` (less than `len()`; nothing happens otherwise).
    pub(crate) fn remove(&mut self, at: usize) {
        let _ = self.0.remove(at);
    }

    /// Keeps the items `keep` says yes to, in order.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        self.0.retain(|x| keep(x));
    }
}
