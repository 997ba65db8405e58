// SPDX-License-Identifier: GPL-2.0

//! The guest's side: hypercalls to a KVM host.
//!
//! C header: [`arch/x86/include/asm/kvm_para.h`](srctree/arch/x86/include/asm/kvm_para.h)

use crate::{bindings, prelude::*};

/// Whether this kernel runs as a KVM guest (KVM's hypervisor `CPUID` leaves are there).
pub fn is_kvm_guest() -> bool {
    // SAFETY: `kvm_para_available()` only reads `CPUID`.
    unsafe { bindings::kvm_para_available() }
}

/// Makes KVM hypercall `nr` with `args` in `RBX`, `RCX`, `RDX` and `RSI` (`VMCALL` or `VMMCALL`,
/// whichever the CPU has) and returns `RAX`. Returns `ENODEV` outside a KVM guest, where the
/// instruction would fault.
///
/// # Safety
///
/// The call must not change what the guest's memory grants in a way the kernel does not expect:
/// a kvm-isolate call can take rights away from guest memory (which then faults for every access
/// that needs them) or switch the calling CPU's view of it. Calls that only ask (probe, version,
/// queries) have no such effect.
pub unsafe fn hypercall(nr: u32, args: [u64; 4]) -> Result<u64> {
    if !is_kvm_guest() {
        return Err(ENODEV);
    }
    // CAST: the arguments are the registers' 64 bits, `unsigned long` on x86-64; so is RAX.
    // SAFETY: this is a KVM guest, so the instruction traps to KVM instead of faulting; the
    // caller guarantees that the call's effect on guest memory is one the kernel expects.
    let ret = unsafe {
        bindings::kvm_hypercall4(
            nr,
            args[0] as usize,
            args[1] as usize,
            args[2] as usize,
            args[3] as usize,
        )
    };
    Ok(ret as u64)
}
