// SPDX-License-Identifier: GPL-2.0

//! kvm-isolate guest module: asks the host to hide this guest's module secrets.
//!
//! This version checks that it runs under KVM (the hypervisor `CPUID` leaves carry KVM's
//! signature) and refuses to load elsewhere, then asks the host whether it runs kvm-isolate,
//! which ABI version, and what this CPU can use (VMFUNC, #VE), and logs it.

use core::sync::atomic::{AtomicU64, Ordering};
use kernel::{
    kvm_isolate::{
        guest::{self, GuestPage, VeHandler, VeInfoPage, VeRegistration},
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

/// A kvm-isolate call that changes views.
///
/// # Safety
///
/// As for [`guest::hypercall`]: what the call takes away is used by nothing but its caller.
unsafe fn call(nr: u64, args: [u64; 4]) -> Result<u64> {
    let nr = u32::try_from(nr).map_err(|_| EINVAL)?;
    // SAFETY: the caller guarantees it.
    let r = unsafe { guest::hypercall(nr, args) }?;
    // An ABI error is a negative number.
    if (r as i64) < 0 {
        pr_err!(
            "kvm-isolate call {:#x} {:x?}: error {}\n",
            nr,
            args,
            -(r as i64)
        );
        return Err(EIO);
    }
    Ok(r)
}

/// What the self-test's handler saw: #VEs, and the last one's gpa and qualification.
static VE_SEEN: AtomicU64 = AtomicU64::new(0);
static VE_GPA: AtomicU64 = AtomicU64::new(0);
static VE_QUAL: AtomicU64 = AtomicU64::new(0);

/// The self-test's #VE handler: the violation is the view's (a write to a page it maps
/// read-only); back to view 0, where the write is allowed, and the instruction runs again.
struct BackToViewZero;

impl VeHandler for BackToViewZero {
    fn handle(_rip: u64, page: &VeInfoPage) -> bool {
        let info = page.read();
        if info.reason != 48 {
            return false;
        }
        VE_GPA.store(info.gpa, Ordering::Relaxed);
        VE_QUAL.store(info.qualification, Ordering::Relaxed);
        VE_SEEN.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the host offered VMFUNC (checked before registering), and view 0 grants
        // everything this kernel uses.
        unsafe { guest::vmfunc(0) };
        page.release();
        true
    }
}

/// #VE, end to end, before anything relies on it: in a view of its own that maps a page
/// read-only and asks for #VE, a write to the page is a #VE the handler takes, with no VM exit;
/// it switches back to view 0 and the write completes. The host's fallback, should the #VE not
/// come (another CPU, a busy semaphore), is a switch to view 0 too, which the count shows.
/// Returns the #VEs taken.
fn ve_selftest() -> Result<u64> {
    const MARK: u64 = 0x5e1f_7e57_0000_0001;
    let target = GuestPage::new()?;
    let registration = VeRegistration::<BackToViewZero>::new(VeInfoPage(GuestPage::new()?))?;
    let gpa = target.gpa();
    // The host's fallback first: a locked VM refuses it (and `VE_INFO`), and then the check is
    // skipped, with nothing changed, rather than failing the load.
    // SAFETY: `ON_VIOLATION` switches to view 0, which grants everything.
    let fallback = unsafe {
        guest::hypercall(
            // CAST: function numbers fit in 32 bits (`HC_LAST`).
            abi::HC_ON_VIOLATION as u32,
            [abi::ON_VIOLATION_SWITCH, 0, 0, 0],
        )
    }?;
    if (fallback as i64) < 0 {
        pr_info!(
            "#VE self-test skipped: the host refused it (error {})\n",
            -(fallback as i64)
        );
        return Ok(0);
    }
    // SAFETY: the new view takes W from the target page only, which only this function uses;
    // `VE_INFO` takes no right (its page must stay writable).
    let view = unsafe { call(abi::HC_VIEW_CREATE, [0; 4]) }?;
    let result = (|| -> Result<u64> {
        // SAFETY: as above.
        unsafe {
            call(
                abi::HC_SET_ACCESS,
                [view, gpa, 1, abi::ACCESS_R | abi::ACCESS_VE],
            )?;
            call(abi::HC_VE_INFO, [registration.page().0.gpa(), 0, 0, 0])?;
        }
        let before = VE_SEEN.load(Ordering::Relaxed);
        // CAST: a view number is below 256.
        // SAFETY: the host offers VMFUNC (checked by the caller); the view grants everything
        // but W on `target`, whose write the handler takes.
        unsafe { guest::vmfunc(view as u32) };
        target.write(0, MARK);
        let seen = VE_SEEN.load(Ordering::Relaxed) - before;
        let now = ask(abi::HC_QUERY, [abi::QUERY_VIEW, 0, 0, 0])?;
        let (got, qual) = (
            VE_GPA.load(Ordering::Relaxed),
            VE_QUAL.load(Ordering::Relaxed),
        );
        let written = target.read(0) == MARK;
        if !written || now != 0 || seen != 1 || got != gpa {
            pr_err!(
                "#VE self-test failed: {seen} #VE (gpa {got:#x}, want {gpa:#x}), the write \
                 done: {written}, now in view {now}\n"
            );
            return Err(EIO);
        }
        pr_info!(
            "#VE self-test: 1 #VE in view {view} at gpa {gpa:#x}, qualification {qual:#x}, \
             handled in the guest\n"
        );
        Ok(seen)
    })();
    // SAFETY: undoing the above: nothing restricted is left.
    unsafe {
        let _ = call(abi::HC_VE_INFO, [u64::MAX, 0, 0, 0]);
        let _ = call(abi::HC_VIEW_DESTROY, [view, 0, 0, 0]);
        let _ = call(abi::HC_ON_VIOLATION, [abi::ON_VIOLATION_EXIT, 0, 0, 0]);
    }
    drop(registration);
    result
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
                let both = abi::FEATURE_VMFUNC | abi::FEATURE_VE;
                if features & both == both {
                    ve_selftest()?;
                }
            }
        }
        Ok(KvmIsolateGuest)
    }
}
