// SPDX-License-Identifier: GPL-2.0

//! KVM memory views: the policy-module interface.
//!
//! C header: [`arch/x86/include/asm/kvm_isolate.h`](srctree/arch/x86/include/asm/kvm_isolate.h)
//!
//! KVM keeps up to [`MAX_VIEWS`] views per VM (TDP roots that differ only in their view index)
//! with per-page rights, and calls exactly one registered policy for hypercalls in the
//! kvm-isolate range and for accesses a view denies. A policy implements [`Policy`] and holds a
//! [`Registration`].
//!
//! The C functions live in `kvm.ko`, exported to the `kvm_isolate` module only: every non-generic
//! function here is `#[inline]` so that it is instantiated in that module, never in `vmlinux`.

use crate::{
    bindings,
    error::to_result,
    module::ThisModule,
    prelude::*,
    sync::{
        aref::{
            ARef,
            AlwaysRefCounted, //
        },
        Arc,
        ArcBorrow, //
    },
    types::{
        ForeignOwnable,
        Opaque, //
    },
};
use core::{
    ffi::c_void,
    marker::PhantomData,
    ptr::NonNull, //
};

/// Views per VM, view 0 included.
pub const MAX_VIEWS: u32 = bindings::KVM_ISOLATE_VIEWS;

/// A view index, below [`MAX_VIEWS`].
///
/// # Invariants
///
/// `self.0 < MAX_VIEWS`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct View(u32);

impl View {
    /// The view every vCPU starts in.
    pub const DEFAULT: View = View(0);

    /// Returns the view with index `index`, if there can be one.
    #[inline]
    pub fn new(index: u64) -> Option<View> {
        // INVARIANT: checked against `MAX_VIEWS`.
        (index < u64::from(MAX_VIEWS)).then(|| View(index as u32))
    }

    /// The view's index.
    #[inline]
    pub fn index(self) -> u32 {
        self.0
    }
}

/// A guest frame number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Gfn(pub u64);

/// A guest physical address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Gpa(pub u64);

impl Gpa {
    /// The frame that holds this address.
    #[inline]
    pub fn gfn(self) -> Gfn {
        Gfn(self.0 >> bindings::PAGE_SHIFT)
    }
}

/// Rights of a page in a view: any subset of read, write, execute; and whether violations of
/// them there go to the guest as #VE ([`Access::VE`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access(u32);

impl Access {
    /// No access.
    pub const NONE: Access = Access(0);
    /// Read.
    pub const R: Access = Access(bindings::KVM_ISOLATE_R);
    /// Write.
    pub const W: Access = Access(bindings::KVM_ISOLATE_W);
    /// Execute.
    pub const X: Access = Access(bindings::KVM_ISOLATE_X);
    /// Everything: what a page not restricted in a view has.
    pub const RWX: Access = Access(bindings::KVM_ISOLATE_RWX);
    /// Not a right: a violation of the others is a #VE in a vCPU that registered a #VE
    /// information page ([`Vcpu::set_ve_info`]), on EPT; [`Access::round`] keeps it only with R
    /// and without W.
    pub const VE: Access = Access(bindings::KVM_ISOLATE_VE);

    /// Returns the access with these bits, or `None` if other bits are set.
    #[inline]
    pub fn from_bits(bits: u64) -> Option<Access> {
        (bits & !u64::from(Self::RWX.0 | Self::VE.0) == 0).then(|| Access(bits as u32))
    }

    /// The bits, as in the ABI.
    #[inline]
    pub fn bits(self) -> u32 {
        self.0
    }

    /// Whether every right in `other` is in `self`.
    #[inline]
    pub fn contains(self, other: Access) -> bool {
        self.0 & other.0 == other.0
    }

    /// Rounds down to what both EPT and NPT can express (none, R, RW, RX, RWX).
    #[inline]
    pub fn round(self) -> Access {
        // SAFETY: `kvm_isolate_round_access` is a pure function of its argument.
        Access(unsafe { bindings::kvm_isolate_round_access(self.0) })
    }
}

/// A VM that uses kvm-isolate.
///
/// # Invariants
///
/// `self.0` is a `struct kvm` that is alive for the lifetime of the reference.
#[repr(transparent)]
pub struct Vm(Opaque<bindings::kvm>);

impl Vm {
    /// # Safety
    ///
    /// `ptr` is a live `struct kvm` for `'a`.
    #[inline]
    unsafe fn from_raw<'a>(ptr: *mut bindings::kvm) -> &'a Vm {
        // SAFETY: `Vm` is a transparent wrapper of `struct kvm`; the caller guarantees liveness.
        unsafe { &*ptr.cast() }
    }

    #[inline]
    fn as_raw(&self) -> *mut bindings::kvm {
        self.0.get()
    }

    /// Whether every page of `[gfn, gfn + npages)` is in a memslot.
    #[inline]
    pub fn range_mapped(&self, gfn: Gfn, npages: u64) -> bool {
        // SAFETY: `self` is a live VM by the type invariant.
        unsafe { bindings::kvm_isolate_gfn_range_mapped(self.as_raw(), gfn.0, npages) }
    }

    /// Sets the rights of `[gfn, gfn + npages)` in `view`, rounded as [`Access::round`] does.
    ///
    /// Tightening zaps the range in every root and flushes. Nothing changes on error.
    ///
    /// # Context
    ///
    /// Process context; sleeps. Must not be called under `kvm->slots_lock`.
    #[inline]
    pub fn set_access(&self, view: View, gfn: Gfn, npages: u64, access: Access) -> Result {
        // SAFETY: `self` is a live VM by the type invariant; `view` is in range by its invariant.
        to_result(unsafe {
            bindings::kvm_isolate_set_access(self.as_raw(), view.0, gfn.0, npages, access.0)
        })
    }

    /// Sets the rights of every page that has none of its own in `view` (rounded as
    /// [`Access::round`] does); pages set with [`Vm::set_access`] keep theirs.
    ///
    /// Tightening zaps every root and flushes. Nothing changes on error.
    ///
    /// # Context
    ///
    /// Process context; sleeps. Must not be called under `kvm->slots_lock`.
    #[inline]
    pub fn set_default_access(&self, view: View, access: Access) -> Result {
        // SAFETY: `self` is a live VM by the type invariant; `view` is in range by its invariant.
        to_result(unsafe {
            bindings::kvm_isolate_set_default_access(self.as_raw(), view.0, access.0)
        })
    }

    /// The rights `view` grants at `gfn`.
    #[inline]
    pub fn access(&self, view: View, gfn: Gfn) -> Access {
        self.range_access(view, gfn, 1)
    }

    /// The rights `view` grants every page of `[gfn, gfn + npages)`: the rights of its pages
    /// intersected, at a cost in the number of ranges of rights there, not of pages. All rights
    /// for an empty or wrapping range.
    #[inline]
    pub fn range_access(&self, view: View, gfn: Gfn, npages: u64) -> Access {
        // SAFETY: `self` is a live VM by the type invariant.
        Access(unsafe {
            bindings::kvm_isolate_get_range_access(self.as_raw(), view.0, gfn.0, npages)
        })
    }

    /// Takes every right in `view` away (view 0 cannot be reset), until the policy builds the
    /// view again with [`Vm::set_access`] and [`Vm::set_default_access`]: a vCPU that lands in
    /// a destroyed view can touch nothing.
    #[inline]
    pub fn reset_view(&self, view: View) -> Result {
        // SAFETY: `self` is a live VM by the type invariant.
        to_result(unsafe { bindings::kvm_isolate_reset_view(self.as_raw(), view.0) })
    }

    /// Lets vCPUs that switch views with VMFUNC ([`Vcpu::vmfunc`]) switch to `view` without an
    /// exit, until the view is reset: the policy's word that any guest code may enter it.
    #[inline]
    pub fn list_view(&self, view: View) -> Result {
        // SAFETY: `self` is a live VM by the type invariant.
        to_result(unsafe { bindings::kvm_isolate_list_view(self.as_raw(), view.0) })
    }

    /// Whether a vCPU is in `view` or about to switch to it.
    #[inline]
    pub fn view_in_use(&self, view: View) -> bool {
        // SAFETY: `self` is a live VM by the type invariant.
        unsafe { bindings::kvm_isolate_view_in_use(self.as_raw(), view.0) }
    }
}

// A VM's reference count. `kvm.ko` exports these (GPL); they are declared in
// `include/linux/kvm_host.h`, which bindgen does not read for this crate.
extern "C" {
    fn kvm_get_kvm(kvm: *mut bindings::kvm);
    fn kvm_get_kvm_safe(kvm: *mut bindings::kvm) -> bool;
    fn kvm_put_kvm(kvm: *mut bindings::kvm);
}

// SAFETY: `kvm_get_kvm()` and `kvm_put_kvm()` count the users of a `struct kvm`, which stays
// allocated while the count is above zero; a count is only ever taken on a VM that has users
// (`inc_ref` from a live `&Vm`, `VmHandle::get` with `kvm_get_kvm_safe()`).
unsafe impl AlwaysRefCounted for Vm {
    #[inline]
    fn inc_ref(&self) {
        // SAFETY: `self` is live by the type invariant, so its count is above zero.
        unsafe { kvm_get_kvm(self.as_raw()) };
    }

    #[inline]
    unsafe fn dec_ref(obj: NonNull<Self>) {
        // SAFETY: the caller owns a count of `obj`, which keeps it alive until this put.
        unsafe { kvm_put_kvm(obj.as_ref().as_raw()) };
    }
}

/// A VM named outside the policy's callbacks, e.g. by a control interface.
///
/// # Invariants
///
/// `self.0` points to a `struct kvm` that stays alive at least until the policy's
/// [`Policy::vm_destroy`] for it has begun.
pub struct VmHandle(NonNull<Vm>);

// SAFETY: a `struct kvm` may be used from any thread; the handle is only a pointer.
unsafe impl Send for VmHandle {}
// SAFETY: as for `Send`; `&VmHandle` gives no access without `unsafe`.
unsafe impl Sync for VmHandle {}

impl VmHandle {
    /// A handle to `vm`, which the policy's callbacks were given.
    #[inline]
    pub fn new(vm: &Vm) -> Self {
        // INVARIANT: a `Vm` given to a callback lives until its `vm_destroy`, which comes after.
        VmHandle(NonNull::from(vm))
    }

    /// A counted reference to the VM, or `None` once its destruction has begun (its count
    /// reached zero). The reference keeps the VM, and so its policy data, alive without any
    /// lock; dropping the last one may destroy the VM, which calls [`Policy::vm_destroy`].
    ///
    /// # Safety
    ///
    /// [`Policy::vm_destroy`] for this VM must not have returned, e.g. the caller holds a lock
    /// that `vm_destroy` takes to forget this handle and found the handle there.
    #[inline]
    pub unsafe fn get(&self) -> Option<ARef<Vm>> {
        // SAFETY: the `struct kvm` is freed only after `vm_destroy` returns (caller's guarantee).
        let kvm = unsafe { self.0.as_ref() }.as_raw();
        // SAFETY: `kvm` is allocated (above); `kvm_get_kvm_safe()` takes no count once it is 0.
        if unsafe { kvm_get_kvm_safe(kvm) } {
            // SAFETY: the count just taken is ours, and `self.0` points to that `struct kvm`.
            Some(unsafe { ARef::from_raw(self.0) })
        } else {
            None
        }
    }
}

/// The host's `CLOCK_MONOTONIC`, in nanoseconds.
#[inline]
pub fn now_ns() -> u64 {
    // SAFETY: `ktime_get()` may be called from any context once timekeeping runs.
    let t = unsafe { bindings::ktime_get() };
    // CAST: monotonic time since boot is never negative.
    t as u64
}

/// A vCPU, in its own thread (the only place KVM calls a policy for it).
///
/// # Invariants
///
/// `self.0` is a live `struct kvm_vcpu` whose `vcpu->mutex` is held by the current thread.
#[repr(transparent)]
pub struct Vcpu(Opaque<bindings::kvm_vcpu>);

impl Vcpu {
    /// # Safety
    ///
    /// `ptr` is a live `struct kvm_vcpu` for `'a` and the current thread holds its mutex.
    #[inline]
    unsafe fn from_raw<'a>(ptr: *mut bindings::kvm_vcpu) -> &'a Vcpu {
        // SAFETY: `Vcpu` is a transparent wrapper of `struct kvm_vcpu`.
        unsafe { &*ptr.cast() }
    }

    #[inline]
    fn as_raw(&self) -> *mut bindings::kvm_vcpu {
        self.0.get()
    }

    /// The VM this vCPU belongs to.
    #[inline]
    pub fn vm(&self) -> &Vm {
        // SAFETY: a live vCPU's VM outlives it.
        unsafe { Vm::from_raw(bindings::kvm_isolate_vcpu_vm(self.as_raw())) }
    }

    /// The vCPU's id.
    #[inline]
    pub fn id(&self) -> u32 {
        // SAFETY: `self` is live by the type invariant.
        unsafe { bindings::kvm_isolate_vcpu_id(self.as_raw()) }
    }

    /// The view this vCPU is in (or switches to at its next entry).
    #[inline]
    pub fn view(&self) -> View {
        // SAFETY: `self` is live by the type invariant.
        let v = unsafe { bindings::kvm_isolate_vcpu_view(self.as_raw()) };
        // INVARIANT: KVM only stores views below `MAX_VIEWS`.
        View(v.min(MAX_VIEWS - 1))
    }

    /// Whether this vCPU switches views with VMFUNC (an EPTP list, on VMX).
    #[inline]
    pub fn vmfunc(&self) -> bool {
        // SAFETY: `self` is live by the type invariant.
        unsafe { bindings::kvm_isolate_vcpu_vmfunc(self.as_raw()) }
    }

    /// Switches this vCPU to `view` before it next enters the guest.
    #[inline]
    pub fn switch_view(&self, view: View) -> Result {
        // SAFETY: `self` is live and its thread is the current one, by the type invariant.
        to_result(unsafe { bindings::kvm_isolate_switch_view(self.as_raw(), view.0) })
    }

    /// Registers the page the CPU writes #VE information to for this vCPU, or none, from its
    /// next entry on. `EPERM` if a view with rights denies W there; while registered, taking W
    /// from the page in any view is `EBUSY`.
    #[inline]
    pub fn set_ve_info(&self, page: Option<Gfn>) -> Result {
        // `INVALID_GPA`: none.
        let gpa = page.map_or(u64::MAX, |g| g.0 << bindings::PAGE_SHIFT);
        // SAFETY: `self` is live and its thread is the current one, by the type invariant.
        to_result(unsafe { bindings::kvm_isolate_set_ve_info(self.as_raw(), gpa) })
    }
}

/// An access the current view denied.
#[derive(Clone, Copy, Debug)]
pub struct Violation {
    /// The view the vCPU was in.
    pub view: View,
    /// The guest physical address accessed.
    pub gpa: Gpa,
    /// The guest virtual address, when the hardware reported it.
    pub gva: Option<u64>,
    /// The guest's instruction pointer.
    pub rip: u64,
    /// The right the access needed: [`Access::R`], [`Access::W`] or [`Access::X`].
    pub access: Access,
    /// The rights the view grants at `gpa`.
    pub allowed: Access,
    /// For an instruction fetch, the guest's stack where KVM could read it.
    pub stack: Option<Stack>,
}

/// The top of the guest's stack at an instruction fetch: how control got there.
///
/// A `call` or an event without error code has just stored its return address at `rsp`; a `ret`
/// has just taken the address it jumped to from `rsp - 8`. The words are guest memory: other
/// vCPUs can change them at any time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stack {
    /// The guest's RSP.
    pub rsp: u64,
    /// The word at `rsp - 8`.
    pub below: u64,
    /// The word at `rsp`.
    pub top: u64,
    /// The words above `rsp` as an event delivered in 64-bit mode stores them, and the words
    /// at the interrupted stack pointer among them, where KVM could read them all; whether
    /// they are an event's frame is the policy's to decide.
    pub event: Option<Event>,
}

/// What an interrupt or exception delivered in 64-bit mode stores above its RIP, if the words
/// above a fetch's RSP are one, and the top of the stack it interrupted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    /// The word at `rsp + 8`: the interrupted CS (after an error code at `rsp`: the RIP).
    pub cs: u64,
    /// At `rsp + 16`: the interrupted RFLAGS (after an error code: CS).
    pub rflags: u64,
    /// At `rsp + 24`: the interrupted RSP (after an error code: RFLAGS).
    pub rsp: u64,
    /// At `rsp + 32`: the interrupted SS (after an error code: the interrupted RSP).
    pub ss: u64,
    /// The word at [`Event::rsp`] - 8; 0 if KVM could not read it.
    pub below: u64,
    /// The word at [`Event::rsp`]; 0 if KVM could not read it.
    pub top: u64,
}

/// What KVM does about a [`Violation`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Add the needed right (and read) to the page in the view, and retry.
    Grant,
    /// Switch the vCPU to this view and retry.
    Switch(View),
    /// Inject an exception: #GP(error code), #UD, #DE or #PF(error code).
    Inject {
        /// The vector.
        vector: u8,
        /// The error code, for #GP and #PF.
        error_code: u32,
    },
    /// Stop the vCPU with a `KVM_EXIT_MEMORY_FAULT` naming the page.
    Exit,
    /// Retry as is: the view grants the access now (its rights changed after the fault, while
    /// the violation waited for the policy).
    Retry,
}

/// A hypercall in the kvm-isolate range: number and arguments, as the guest passed them.
#[derive(Clone, Copy, Debug)]
pub struct Hypercall {
    /// The function number (RAX).
    pub nr: u64,
    /// The arguments (RBX, RCX, RDX, RSI).
    pub args: [u64; 4],
}

/// A memory-view policy.
#[vtable]
pub trait Policy: Sized + 'static {
    /// Per-VM state, created on the VM's first kvm-isolate hypercall, dropped with the VM.
    type VmData: Send + Sync;

    /// Creates the state of a VM that starts using kvm-isolate.
    fn vm_init(vm: &Vm) -> Result<Arc<Self::VmData>>;

    /// Handles a hypercall; returns the value for the guest's RAX.
    fn hypercall(vcpu: &Vcpu, data: &Self::VmData, call: Hypercall) -> u64;

    /// Decides about an access the vCPU's view denied.
    fn violation(vcpu: &Vcpu, data: &Self::VmData, violation: &Violation) -> Verdict;

    /// The VM is going away: no callback runs for it afterwards, and its state is dropped
    /// after this returns. No vCPU exists any more.
    fn vm_destroy(_vm: &Vm, _data: &Self::VmData) {}
}

/// The registration of a [`Policy`] with KVM; there can be one at a time.
///
/// # Invariants
///
/// `ops` holds a `struct kvm_isolate_ops` registered with `kvm_isolate_register()` for the
/// lifetime of this value, and unregistered exactly once, in `drop`.
#[pin_data(PinnedDrop)]
pub struct Registration<T: Policy> {
    #[pin]
    ops: Opaque<bindings::kvm_isolate_ops>,
    _t: PhantomData<T>,
}

// SAFETY: the ops table is immutable once registered, and unregistering may happen on any thread.
unsafe impl<T: Policy> Send for Registration<T> {}
// SAFETY: `&self` gives no access to the ops table.
unsafe impl<T: Policy> Sync for Registration<T> {}

impl<T: Policy> Registration<T> {
    /// Registers `T` as KVM's memory-view policy. Fails with `EBUSY` if another is registered.
    ///
    /// Every VM that uses views holds a reference to `module`, so the module cannot be unloaded
    /// (and this registration dropped) while one does.
    pub fn register(module: &'static ThisModule) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            ops <- Opaque::try_ffi_init(move |slot: *mut bindings::kvm_isolate_ops| {
                // SAFETY: the initializer may write to `slot`.
                unsafe {
                    slot.write(bindings::kvm_isolate_ops {
                        owner: module.as_ptr(),
                        vm_init: Some(Self::vm_init),
                        vm_destroy: Some(Self::vm_destroy),
                        hypercall: Some(Self::hypercall),
                        violation: Some(Self::violation),
                    })
                };
                // SAFETY: `slot` is pinned and unregistered in `drop` before it is freed.
                // INVARIANT: registered if this returns `Ok`.
                to_result(unsafe { bindings::kvm_isolate_register(slot) })
            }),
            _t: PhantomData,
        })
    }

    /// # Safety
    ///
    /// `data` was returned by `vm_init` and not yet passed to `vm_destroy`.
    unsafe fn data<'a>(data: *mut c_void) -> ArcBorrow<'a, T::VmData> {
        // SAFETY: by the function's safety requirement.
        unsafe { <Arc<T::VmData> as ForeignOwnable>::borrow(data) }
    }

    /// # Safety
    ///
    /// Called by KVM with a live `struct kvm`, in process context.
    unsafe extern "C" fn vm_init(kvm: *mut bindings::kvm) -> *mut c_void {
        // SAFETY: KVM passes a live VM.
        let vm = unsafe { Vm::from_raw(kvm) };
        match T::vm_init(vm) {
            Ok(data) => data.into_foreign(),
            Err(_) => core::ptr::null_mut(),
        }
    }

    /// # Safety
    ///
    /// Called by KVM once per VM, with what `vm_init` returned, after the last other callback.
    unsafe extern "C" fn vm_destroy(kvm: *mut bindings::kvm, data: *mut c_void) {
        // SAFETY: `data` came from `into_foreign` in `vm_init` and is not used again.
        let data = unsafe { <Arc<T::VmData> as ForeignOwnable>::from_foreign(data) };
        // SAFETY: KVM passes the live VM that is being destroyed.
        T::vm_destroy(unsafe { Vm::from_raw(kvm) }, &data);
    }

    /// # Safety
    ///
    /// Called by KVM in the vCPU's thread with `vcpu->mutex` held and `data` from `vm_init`.
    unsafe extern "C" fn hypercall(
        vcpu: *mut bindings::kvm_vcpu,
        data: *mut c_void,
        nr: usize,
        a0: usize,
        a1: usize,
        a2: usize,
        a3: usize,
    ) -> usize {
        // SAFETY: by the function's safety requirement.
        let (vcpu, data) = unsafe { (Vcpu::from_raw(vcpu), Self::data(data)) };
        let call = Hypercall {
            nr: nr as u64,
            args: [a0 as u64, a1 as u64, a2 as u64, a3 as u64],
        };
        // CAST: `unsigned long` is 64 bits on x86-64, the only target of this module.
        T::hypercall(vcpu, &data, call) as usize
    }

    /// # Safety
    ///
    /// As for `hypercall`; `v` and `out` are valid for the call.
    unsafe extern "C" fn violation(
        vcpu: *mut bindings::kvm_vcpu,
        data: *mut c_void,
        v: *const bindings::kvm_isolate_violation,
        out: *mut bindings::kvm_isolate_verdict,
    ) {
        // SAFETY: by the function's safety requirement.
        let (vcpu, data, v) = unsafe { (Vcpu::from_raw(vcpu), Self::data(data), &*v) };
        let violation = Violation {
            view: View(v.view.min(MAX_VIEWS - 1)),
            gpa: Gpa(v.gpa),
            gva: (v.flags & bindings::KVM_ISOLATE_VIOLATION_GVA_VALID != 0).then_some(v.gva),
            rip: v.rip,
            access: Access(v.access & bindings::KVM_ISOLATE_RWX),
            allowed: Access(v.allowed & bindings::KVM_ISOLATE_RWX),
            stack: (v.flags & bindings::KVM_ISOLATE_VIOLATION_STACK_VALID != 0).then_some(Stack {
                rsp: v.rsp,
                below: v.stack[0],
                top: v.stack[1],
                event: (v.flags & bindings::KVM_ISOLATE_VIOLATION_EVENT_VALID != 0).then_some({
                    let read = v.flags & bindings::KVM_ISOLATE_VIOLATION_EVENT_STACK_VALID;
                    let word = |w: u64| if read != 0 { w } else { 0 };
                    Event {
                        cs: v.event[0],
                        rflags: v.event[1],
                        rsp: v.event[2],
                        ss: v.event[3],
                        below: word(v.event_stack[0]),
                        top: word(v.event_stack[1]),
                    }
                }),
            }),
        };
        let (kind, view, vector, error_code) = match T::violation(vcpu, &data, &violation) {
            Verdict::Grant => (bindings::KVM_ISOLATE_VERDICT_GRANT, 0, 0, 0),
            Verdict::Switch(view) => (bindings::KVM_ISOLATE_VERDICT_SWITCH, view.0, 0, 0),
            Verdict::Inject { vector, error_code } => (
                bindings::KVM_ISOLATE_VERDICT_INJECT,
                0,
                u32::from(vector),
                error_code,
            ),
            Verdict::Exit => (bindings::KVM_ISOLATE_VERDICT_EXIT, 0, 0, 0),
            Verdict::Retry => (bindings::KVM_ISOLATE_VERDICT_RETRY, 0, 0, 0),
        };
        // SAFETY: KVM passes a verdict to fill in.
        unsafe {
            out.write(bindings::kvm_isolate_verdict {
                kind,
                view,
                vector,
                error_code,
            })
        };
    }
}

#[pinned_drop]
impl<T: Policy> PinnedDrop for Registration<T> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: registered by the type invariant; no VM holds the module any more.
        unsafe { bindings::kvm_isolate_unregister(self.ops.get()) };
    }
}
