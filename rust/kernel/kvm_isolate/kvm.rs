// SPDX-License-Identifier: GPL-2.0

//! KVM's side of the kvm-isolate interface.
//!
//! C header: [`arch/x86/include/asm/kvm_isolate.h`](srctree/arch/x86/include/asm/kvm_isolate.h)
//!
//! The C functions live in `kvm.ko` and are exported to the `kvm_isolate` module only, so every
//! function here is `#[inline]`: it is instantiated in the calling module, where the symbol can be
//! resolved, and never in `vmlinux`, where it cannot.

use crate::bindings;

/// How the loaded KVM vendor module translates guest physical addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Paging {
    /// No vendor module (`kvm_intel`, `kvm_amd`) is loaded.
    NoVendorModule,
    /// Shadow paging: memory views are not possible.
    Shadow,
    /// Two-dimensional paging (EPT or NPT).
    Tdp,
}

/// Returns how KVM translates guest physical addresses.
///
/// # Context
///
/// Process context; may sleep (it takes KVM's vendor module lock).
#[inline]
pub fn paging() -> Paging {
    // SAFETY: `kvm_x86_tdp_enabled()` has no preconditions; it is called in process context.
    let ret = unsafe { bindings::kvm_x86_tdp_enabled() };
    match ret {
        1 => Paging::Tdp,
        0 => Paging::Shadow,
        // `-ENODEV`, the only other value the C function returns.
        _ => Paging::NoVendorModule,
    }
}
