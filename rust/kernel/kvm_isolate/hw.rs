// SPDX-License-Identifier: GPL-2.0

//! x86 host facts: `CPUID` leaves and model-specific registers.
//!
//! C headers: [`arch/x86/include/asm/cpuid/api.h`](srctree/arch/x86/include/asm/cpuid/api.h),
//! [`arch/x86/include/asm/msr.h`](srctree/arch/x86/include/asm/msr.h)
//!
//! Both read the CPU the caller runs on. The facts kvm-isolate reads (vendor, virtualization
//! extensions, VMX capabilities) are the same on every CPU of a host.

use crate::{bindings, prelude::*};

/// The four registers returned by `CPUID`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cpuid {
    /// `EAX`.
    pub eax: u32,
    /// `EBX`.
    pub ebx: u32,
    /// `ECX`.
    pub ecx: u32,
    /// `EDX`.
    pub edx: u32,
}

/// Executes `CPUID` with `leaf` in `EAX` and `subleaf` in `ECX` on the current CPU.
///
/// A leaf above the maximum the CPU reports returns unspecified data: callers check the maximum
/// (leaf `0` or `0x8000_0000`) first.
pub fn cpuid(leaf: u32, subleaf: u32) -> Cpuid {
    let mut r = Cpuid::default();
    // CAST: `cpuid_count()` takes the subleaf as `int`; `ECX` receives the same 32 bits.
    let subleaf = subleaf as i32;
    // SAFETY: `cpuid_count()` has no preconditions and only writes through the four pointers,
    // which point to distinct, live fields of `r`.
    unsafe {
        bindings::cpuid_count(
            leaf, subleaf, &mut r.eax, &mut r.ebx, &mut r.ecx, &mut r.edx,
        )
    };
    r
}

/// A model-specific register that is safe to read: reading it has no side effects.
///
/// # Invariants
///
/// `self.0` is the number of an MSR whose read has no side effects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Msr(u32);

impl Msr {
    // INVARIANT: the VMX capability MSRs are read-only reports of what VMX supports.
    /// `IA32_VMX_PROCBASED_CTLS`: allowed settings of the primary processor-based controls.
    pub const VMX_PROCBASED_CTLS: Msr = Msr(bindings::MSR_IA32_VMX_PROCBASED_CTLS);
    /// `IA32_VMX_PROCBASED_CTLS2`: allowed settings of the secondary processor-based controls.
    pub const VMX_PROCBASED_CTLS2: Msr = Msr(bindings::MSR_IA32_VMX_PROCBASED_CTLS2);
    /// `IA32_VMX_VMFUNC`: the VM functions `VMFUNC` may be allowed to call.
    pub const VMX_VMFUNC: Msr = Msr(bindings::MSR_IA32_VMX_VMFUNC);

    /// Returns the MSR's number.
    pub fn number(self) -> u32 {
        self.0
    }

    /// Reads the MSR on the current CPU.
    ///
    /// Returns `EIO` when the CPU does not implement it (the `#GP` is caught).
    pub fn read(self) -> Result<u64> {
        let mut val = 0u64;
        // SAFETY: `rdmsrq_safe()` catches the `#GP` of a missing MSR and writes only `val`; by
        // the type invariant, reading `self.0` has no side effects.
        let ret = unsafe { bindings::rdmsrq_safe(self.0, &mut val) };
        if ret != 0 {
            return Err(EIO);
        }
        Ok(val)
    }
}
