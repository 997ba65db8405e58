// SPDX-License-Identifier: GPL-2.0

//! kvm-isolate guest module: asks the host to hide this guest's module secrets.
//!
//! This version only checks that it runs under KVM (the hypervisor `CPUID` leaves carry KVM's
//! signature) and refuses to load elsewhere; the hypercall layer builds on it.

use kernel::{
    kvm_isolate::hw,
    prelude::*, //
};

module! {
    type: KvmIsolateGuest,
    name: "kvm_isolate_guest",
    authors: ["kvm-isolate developers"],
    description: "kvm-isolate guest side",
    license: "GPL",
}

/// `CPUID.1:ECX.HYPERVISOR`.
const CPUID1_ECX_HYPERVISOR: u32 = 1 << 31;
/// KVM's signature in the hypervisor leaf, as `EBX`, `ECX`, `EDX`.
const KVM_SIGNATURE: &[u8; 12] = b"KVMKVMKVM\0\0\0";

/// Returns the base of KVM's hypervisor `CPUID` leaves, if this guest runs under KVM.
///
/// Hypervisors put their leaves at 0x4000_0000 or, next to another hypervisor's, a multiple of
/// 0x100 above.
fn kvm_cpuid_base() -> Option<u32> {
    if hw::cpuid(1, 0).ecx & CPUID1_ECX_HYPERVISOR == 0 {
        return None;
    }
    (0x4000_0000..0x4001_0000).step_by(0x100).find(|&base| {
        let r = hw::cpuid(base, 0);
        let mut sig = [0u8; 12];
        sig[0..4].copy_from_slice(&r.ebx.to_le_bytes());
        sig[4..8].copy_from_slice(&r.ecx.to_le_bytes());
        sig[8..12].copy_from_slice(&r.edx.to_le_bytes());
        &sig == KVM_SIGNATURE
    })
}

struct KvmIsolateGuest;

impl kernel::Module for KvmIsolateGuest {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let Some(base) = kvm_cpuid_base() else {
            pr_err!("not running under KVM (no KVM hypervisor CPUID leaf)\n");
            return Err(ENODEV);
        };
        pr_info!("running under KVM (CPUID base {base:#x})\n");
        Ok(KvmIsolateGuest)
    }
}
