// SPDX-License-Identifier: GPL-2.0

//! kvm-isolate: memory views for KVM guests.
//!
//! C header: [`arch/x86/include/asm/kvm_isolate.h`](srctree/arch/x86/include/asm/kvm_isolate.h)
//!
//! Safe abstractions for the `kvm_isolate` host module: the x86 facts it reads ([`hw`]) and
//! KVM's side of the memory-view interface ([`kvm`], [`views`]); and for the guest module: its
//! hypercalls, `VMFUNC` and #VE handler ([`guest`]) and the loaded modules it protects
//! ([`loaded_module`]). Module code uses these, never `bindings`.

pub mod guest;
pub mod hw;
pub mod kvm;
pub mod loaded_module;
pub mod views;
