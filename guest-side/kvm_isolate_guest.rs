// SPDX-License-Identifier: GPL-2.0

//! kvm-isolate guest module: asks the host to hide this guest's module secrets.
//!
//! This version checks that it runs under KVM (the hypervisor `CPUID` leaves carry KVM's
//! signature) and refuses to load elsewhere, then asks the host whether it runs kvm-isolate,
//! which ABI version, and what this CPU can use (VMFUNC, #VE), and logs it.

use kernel::{
    kvm_isolate::{
        guest,
        hw, //
    },
    prelude::*, //
};

// The hypercall ABI, defined once: the Rust mirror of the uapi header the host module uses too.
#[expect(unreachable_pub, dead_code)]
#[path = "../../../arch/x86/kvm/isolate/core/src/abi.rs"]
mod abi;

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

/// A kvm-isolate call that only asks (probe, version, queries): it changes nothing, so it
/// cannot take rights away from memory the kernel uses.
fn ask(nr: u64, args: [u64; 4]) -> Result<u64> {
    let nr = u32::try_from(nr).map_err(|_| EINVAL)?;
    // SAFETY: the callers pass only `PROBE`, `VERSION` and `QUERY`, which change no rights and
    // no view.
    unsafe { guest::hypercall(nr, args) }
}

/// What the host offers: `None` without kvm-isolate, else the ABI version and this CPU's
/// `KVM_ISOLATE_FEATURE_*` bits.
fn host_abi() -> Result<Option<(u64, u64)>> {
    if ask(abi::HC_PROBE, [0; 4])? != abi::MAGIC {
        return Ok(None);
    }
    let version = ask(abi::HC_VERSION, [0; 4])?;
    let features = ask(abi::HC_QUERY, [abi::QUERY_FEATURES, 0, 0, 0])?;
    Ok(Some((version, features)))
}

struct KvmIsolateGuest;

impl kernel::Module for KvmIsolateGuest {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let Some(base) = kvm_cpuid_base() else {
            pr_err!("not running under KVM (no KVM hypervisor CPUID leaf)\n");
            return Err(ENODEV);
        };
        pr_info!("running under KVM (CPUID base {base:#x})\n");
        match host_abi()? {
            None => pr_info!("the host does not run kvm-isolate\n"),
            Some((version, features)) => {
                let yes = |bit| if features & bit != 0 { "yes" } else { "no" };
                pr_info!(
                    "kvm-isolate ABI {version}, features {features:#x} (VMFUNC {}, #VE {})\n",
                    yes(abi::FEATURE_VMFUNC),
                    yes(abi::FEATURE_VE)
                );
            }
        }
        Ok(KvmIsolateGuest)
    }
}
