// SPDX-License-Identifier: GPL-2.0

//! The guest's side: hypercalls to a KVM host, `VMFUNC` view switches, the #VE handler, and
//! work at reboot.
//!
//! C headers: [`arch/x86/include/asm/kvm_para.h`](srctree/arch/x86/include/asm/kvm_para.h),
//! [`arch/x86/include/asm/kvm_isolate.h`](srctree/arch/x86/include/asm/kvm_isolate.h)

use crate::{alloc::KBox, bindings, error::to_result, prelude::*};
use core::{
    cell::UnsafeCell,
    marker::PhantomData,
    ptr,
    sync::atomic::{AtomicPtr, Ordering},
};

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

/// Switches the calling CPU to memory view `view` with `VMFUNC` leaf 0 (EPTP switching).
///
/// # Safety
///
/// The host offers `VMFUNC` to this CPU (kvm-isolate's `QUERY_FEATURES`), or the instruction
/// raises `#UD`; and the view grants what the code that runs next needs (its code, stack and
/// data), or that code faults.
pub unsafe fn vmfunc(view: u32) {
    // SAFETY: the caller guarantees that the CPU has `VMFUNC` and that the view fits.
    unsafe {
        core::arch::asm!(".byte 0x0f, 0x01, 0xd4", in("eax") 0u32, in("ecx") view,
                         options(nostack, preserves_flags))
    };
}

/// What the CPU wrote about the last #VE (the #VE information area's first 40 bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VeInfo {
    /// The exit reason: 48 for an EPT violation.
    pub reason: u32,
    /// The semaphore: not 0 while a #VE is being handled (no further #VE is delivered).
    pub busy: u32,
    /// The exit qualification (as for an EPT-violation exit).
    pub qualification: u64,
    /// The guest-linear address.
    pub gla: u64,
    /// The guest-physical address.
    pub gpa: u64,
    /// The EPTP index: the view (the host's view of it may lag, see `views.rst`).
    pub view: u16,
}

#[repr(C, align(4096))]
struct RawPage(UnsafeCell<[u64; 512]>);

/// A zeroed page of kernel memory with its guest-physical address, read and written only with
/// volatile accesses of whole 64-bit words: the CPU (#VE information) or the host may write it
/// behind the compiler's back, and its rights may differ between views.
pub struct GuestPage(KBox<RawPage>);

// SAFETY: the page is only accessed with volatile word accesses.
unsafe impl Sync for GuestPage {}
// SAFETY: as above; nothing in it is tied to a thread.
unsafe impl Send for GuestPage {}

impl GuestPage {
    /// A zeroed page.
    pub fn new() -> Result<Self> {
        Ok(GuestPage(KBox::new(
            RawPage(UnsafeCell::new([0; 512])),
            GFP_KERNEL,
        )?))
    }

    /// Its guest-physical address (it is in the kernel's direct map).
    pub fn gpa(&self) -> u64 {
        // SAFETY: `virt_to_phys()` only computes; the page is in the direct map (kmalloc).
        unsafe { bindings::kvm_isolate_virt_to_phys(self.0 .0.get().cast()) }
    }

    fn word(&self, index: usize) -> *mut u64 {
        // CAST: `index % 512` is within the array.
        // SAFETY: the index is within the page's 512 words.
        unsafe { self.0 .0.get().cast::<u64>().add(index % 512) }
    }

    /// Word `index` (modulo 512).
    pub fn read(&self, index: usize) -> u64 {
        // SAFETY: an aligned word of the page, accessed only as a whole.
        unsafe { ptr::read_volatile(self.word(index)) }
    }

    /// Writes word `index` (modulo 512). In a view that maps the page read-only, the write is a
    /// violation of the view (a #VE, or what the host decides).
    pub fn write(&self, index: usize, value: u64) {
        // SAFETY: an aligned word of the page, accessed only as a whole.
        unsafe { ptr::write_volatile(self.word(index), value) };
    }
}

/// A page for a CPU's #VE information (kvm-isolate's `VE_INFO` hypercall registers it), which
/// the CPU writes on every #VE.
pub struct VeInfoPage(pub GuestPage);

impl VeInfoPage {
    /// Reads what the CPU wrote about the last #VE.
    pub fn read(&self) -> VeInfo {
        let (w0, w4) = (self.0.read(0), self.0.read(4));
        // CAST: the area's fields, packed in little-endian words.
        VeInfo {
            reason: w0 as u32,
            busy: (w0 >> 32) as u32,
            qualification: self.0.read(1),
            gla: self.0.read(2),
            gpa: self.0.read(3),
            view: w4 as u16,
        }
    }

    /// Clears the semaphore (the high half of word 0): the CPU delivers the next #VE.
    pub fn release(&self) {
        let w0 = self.0.read(0);
        self.0.write(0, w0 & 0xffff_ffff);
    }
}

/// A guest module's #VE handler (outside TDX; `kvm_isolate_set_ve_handler()`).
pub trait VeHandler {
    /// Handles a #VE taken at `rip`, in exception context with interrupts off (so it must not
    /// sleep), with the page the CPU wrote; returns whether it handled it (the instruction then
    /// runs again) or the #VE is a fault.
    fn handle(rip: u64, info: &VeInfoPage) -> bool;
}

/// The page of the registered handler (one at a time).
static VE_PAGE: AtomicPtr<VeInfoPage> = AtomicPtr::new(ptr::null_mut());

/// `T` registered as the kernel's #VE handler, with `page`: unregistered when dropped, after
/// any call in progress returned.
pub struct VeRegistration<T: VeHandler> {
    page: KBox<VeInfoPage>,
    _handler: PhantomData<T>,
}

impl<T: VeHandler> VeRegistration<T> {
    /// Registers `T` with `page`; `EBUSY` if a handler is registered already, `ENODEV` in a TDX
    /// guest, whose #VE is the kernel's.
    pub fn new(page: VeInfoPage) -> Result<Self> {
        let page = KBox::new(page, GFP_KERNEL)?;
        let raw = ptr::from_ref::<VeInfoPage>(&page).cast_mut();
        if VE_PAGE
            .compare_exchange(ptr::null_mut(), raw, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Err(EBUSY);
        }
        // SAFETY: `trampoline::<T>` stays valid while registered: `drop()` unregisters it (and
        // waits for a running call) before `page` goes.
        let ret = unsafe { bindings::kvm_isolate_set_ve_handler(Some(Self::trampoline)) };
        if let Err(e) = to_result(ret) {
            VE_PAGE.store(ptr::null_mut(), Ordering::Release);
            return Err(e);
        }
        Ok(VeRegistration {
            page,
            _handler: PhantomData,
        })
    }

    /// The page the CPU writes.
    pub fn page(&self) -> &VeInfoPage {
        &self.page
    }

    unsafe extern "C" fn trampoline(regs: *mut bindings::pt_regs) -> bool {
        // SAFETY: the kernel passes the registers of the #VE being handled.
        let rip = unsafe { (*regs).ip } as u64;
        let page = VE_PAGE.load(Ordering::Acquire);
        if page.is_null() {
            return false;
        }
        // SAFETY: a non-null `VE_PAGE` is the page of the registration this trampoline belongs
        // to, freed only after `kvm_isolate_clear_ve_handler()` waited for this call.
        T::handle(rip, unsafe { &*page })
    }
}

impl<T: VeHandler> Drop for VeRegistration<T> {
    fn drop(&mut self) {
        // SAFETY: unregistering the handler this registration made; it returns after any call
        // of it in progress.
        unsafe { bindings::kvm_isolate_clear_ve_handler(Some(Self::trampoline)) };
        VE_PAGE.store(ptr::null_mut(), Ordering::Release);
    }
}

/// A guest module's work before the kernel restarts, halts or powers off (a reboot notifier),
/// or panics (a panic notifier: a panic restarts the guest with no reboot notifier): what it
/// asked of the host outlives the guest's kernel otherwise, since a reboot keeps the VM.
pub trait RebootHandler {
    /// Called once per reboot: in process context, with the other CPUs still running; or at a
    /// panic, in atomic context (it must not sleep), the other CPUs stopped.
    fn on_reboot();
}

/// `T` called at reboot and at a panic; unregistered when dropped.
pub struct RebootRegistration<T: RebootHandler> {
    block: KBox<UnsafeCell<bindings::notifier_block>>,
    panic: KBox<UnsafeCell<bindings::notifier_block>>,
    _handler: PhantomData<T>,
}

// SAFETY: the block is only handed to the kernel's notifier chain, which locks it.
unsafe impl<T: RebootHandler> Send for RebootRegistration<T> {}
// SAFETY: as above; `&self` gives no access to the block.
unsafe impl<T: RebootHandler> Sync for RebootRegistration<T> {}

impl<T: RebootHandler> RebootRegistration<T> {
    /// Registers `T`.
    pub fn new() -> Result<Self> {
        let new_block = || {
            KBox::new(
                UnsafeCell::new(bindings::notifier_block {
                    notifier_call: Some(Self::trampoline),
                    next: ptr::null_mut(),
                    priority: 0,
                }),
                GFP_KERNEL,
            )
        };
        let (block, panic) = (new_block()?, new_block()?);
        // SAFETY: the blocks are boxed, so they stay where they are, and stay registered until
        // `drop()` unregisters them; `trampoline::<T>` is valid as long.
        to_result(unsafe { bindings::kvm_isolate_register_reboot_notifier(block.get()) })?;
        // SAFETY: as above.
        if let Err(e) =
            to_result(unsafe { bindings::kvm_isolate_register_panic_notifier(panic.get()) })
        {
            // SAFETY: unregistering the block just registered.
            unsafe { bindings::kvm_isolate_unregister_reboot_notifier(block.get()) };
            return Err(e);
        }
        Ok(RebootRegistration {
            block,
            panic,
            _handler: PhantomData,
        })
    }

    unsafe extern "C" fn trampoline(
        _block: *mut bindings::notifier_block,
        _action: crate::ffi::c_ulong,
        _data: *mut crate::ffi::c_void,
    ) -> crate::ffi::c_int {
        T::on_reboot();
        // CAST: `NOTIFY_DONE` is 0.
        bindings::NOTIFY_DONE as crate::ffi::c_int
    }
}

impl<T: RebootHandler> Drop for RebootRegistration<T> {
    fn drop(&mut self) {
        // SAFETY: unregistering the blocks `new()` registered; the chains wait for a call in
        // progress (the reboot chain's lock, the panic chain's RCU grace period).
        unsafe {
            bindings::kvm_isolate_unregister_reboot_notifier(self.block.get());
            bindings::kvm_isolate_unregister_panic_notifier(self.panic.get());
        }
    }
}
