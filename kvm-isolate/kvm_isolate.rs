// SPDX-License-Identifier: GPL-2.0

//! kvm-isolate host module: memory views that hide a guest module's secrets from the rest of the
//! guest.
//!
//! C header: [`arch/x86/include/asm/kvm_isolate.h`](srctree/arch/x86/include/asm/kvm_isolate.h)
//!
//! On load it probes which memory-view paths the host offers (vendor, EPT/NPT and whether KVM
//! uses it, VMFUNC EPTP switching, EPT-violation #VE), logs them and serves them in
//! `/sys/kernel/debug/kvm_isolate/caps`. It then registers as KVM's memory-view policy and serves
//! hypercall ABI v1 (`include/uapi/linux/kvm_isolate.h`): views, per-page rights, switching, and
//! domains, whose accesses the policy engine ([`policy`]) learns, enforces by switching views
//! transparently, and logs. [`control`] gives the host's administrator `/dev/kvm-isolate`.
//! The decoding and the engine are in the `no_std` core crate, shared with `cargo test`.

use core::sync::atomic::{
    AtomicBool,
    AtomicU32,
    Ordering, //
};
use kernel::{
    debugfs,
    kvm_isolate::{
        hw::{
            self,
            Msr, //
        },
        kvm::{
            self,
            Paging, //
        },
        views::{
            self,
            Access,
            Gfn,
            Hypercall,
            Policy,
            Registration,
            Vcpu,
            Verdict,
            View,
            Violation,
            Vm,
            VmHandle, //
        },
    },
    miscdevice::{
        MiscDeviceOptions,
        MiscDeviceRegistration, //
    },
    new_mutex,
    prelude::*,
    sync::{
        Arc,
        Mutex, //
    },
};

// The core crate's items are `pub` for `cargo test`; here they are private to the module.
#[expect(unreachable_pub)]
#[path = "core/src/caps.rs"]
mod caps;

// The mirror also holds what only guests and user space use (exit flags, the range's end).
#[expect(unreachable_pub, dead_code)]
#[path = "core/src/abi.rs"]
mod abi;

// How views follow the engine, in an order `cargo test` checks with a recording fake.
#[expect(unreachable_pub)]
#[path = "core/src/apply.rs"]
mod apply;

// Shared with `kvm-isolatectl`, which uses the parts the module does not.
#[expect(unreachable_pub, dead_code)]
#[path = "core/src/ctl.rs"]
mod ctl;

// Also holds what only `cargo test` uses (the log's length).
#[expect(unreachable_pub, dead_code)]
#[path = "core/src/policy.rs"]
mod policy;

mod control;
mod list;

use abi::{
    Call,
    OnViolation,
    Views, //
};
use apply::ViewOps;
use caps::{
    HwCaps,
    KvmPaging,
    Raw,
    Report, //
};
use ctl::CtlRecord;
use policy::{
    Code,
    Decision,
    Deny,
    Engine,
    Event,
    Fault,
    Lens,
    Limits,
    Mode,
    Region,
    Stack, //
};

module! {
    type: KvmIsolate,
    name: "kvm_isolate",
    authors: ["kvm-isolate developers"],
    description: "Memory views for KVM guests (EPT/NPT)",
    license: "GPL",
    params: {
        max_code_ranges: u32 {
            default: 16384,
            description: "Code ranges per VM, all domains together (at most 1048576)",
        },
        max_regions: u32 {
            default: 16384,
            description: "Regions per VM, all domains together (at most 1048576)",
        },
        max_rules: u32 {
            default: 65536,
            description: "Profile rules per VM (at most 1048576)",
        },
        max_entry_points: u32 {
            default: 65536,
            description: "Entry points per VM, all domains together (at most 1048576)",
        },
        max_return_sites: u32 {
            default: 4096,
            description: "Pending return sites per VM; the oldest is forgotten beyond (at most 1048576)",
        },
    },
}

/// The caps the module parameters set, for VMs created from now on.
fn limits() -> Limits {
    use module_parameters::*;
    // CAST: `u32` fits in `usize` on x86-64, the only target of this module.
    Limits {
        code: max_code_ranges.value() as usize,
        regions: max_regions.value() as usize,
        rules: max_rules.value() as usize,
        entries: max_entry_points.value() as usize,
        returns: max_return_sites.value() as usize,
    }
}

/// Logs, once per VM and table, the tables of `e` that have reached their cap since `warned`.
fn warn_full(id: u32, e: &Engine, warned: &mut u8) {
    let new = e.full() & !*warned;
    if new == 0 {
        return;
    }
    *warned |= new;
    for (bit, name) in policy::full::NAMES {
        if new & bit != 0 {
            pr_warn!("VM {id}: {name} reached, more is refused (ENOSPC)\n");
        }
    }
}

/// Reads the raw `CPUID` leaves and VMX capability MSRs that [`HwCaps::decode`] needs.
fn read_raw() -> Raw {
    let leaf0 = hw::cpuid(0, 0);
    let ext_max = hw::cpuid(0x8000_0000, 0).eax;
    let ext = |leaf: u32| (ext_max >= leaf).then(|| hw::cpuid(leaf, 0));
    let leaf1_ecx = if leaf0.eax >= 1 {
        hw::cpuid(1, 0).ecx
    } else {
        0
    };
    Raw {
        vendor: [leaf0.ebx, leaf0.ecx, leaf0.edx],
        leaf1_ecx,
        ext1_ecx: ext(0x8000_0001).map_or(0, |r| r.ecx),
        svm_edx: ext(0x8000_000a).map_or(0, |r| r.edx),
        procbased_ctls: Msr::VMX_PROCBASED_CTLS.read().ok(),
        procbased_ctls2: Msr::VMX_PROCBASED_CTLS2.read().ok(),
        vmfunc: Msr::VMX_VMFUNC.read().ok(),
    }
}

/// Whether violations carry the guest's linear address: VMX reports it for EPT violations (patch
/// 0006), SVM's nested page faults do not.
pub(crate) fn host_reports_gva() -> bool {
    HwCaps::decode(&read_raw()).virt == caps::Virt::Vmx
}

fn kvm_paging() -> KvmPaging {
    match kvm::paging() {
        Paging::NoVendorModule => KvmPaging::NoVendorModule,
        Paging::Shadow => KvmPaging::Shadow,
        Paging::Tdp => KvmPaging::Tdp,
    }
}

/// Writes `caps`: the hardware facts probed at load, KVM's paging mode as of this read.
fn write_caps(hw: &HwCaps, f: &mut kernel::fmt::Formatter<'_>) -> kernel::fmt::Result {
    write!(
        f,
        "{}",
        Report {
            hw,
            kvm: kvm_paging()
        }
    )
}

/// What a VM has set up: its views, what a violation outside the domains does, and the policy
/// engine (domains, modes, profile, log).
struct VmViews {
    views: Views,
    on_violation: OnViolation,
    engine: KBox<Engine>,
    /// The engine's tables whose full cap was logged ([`policy::full`] bits).
    warned: u8,
    /// The #VE information pages registered, as (vCPU id, gfn): KVM keeps them writable in
    /// every view, so a domain's code or region cannot take them.
    ve_pages: KVVec<(u32, u64)>,
}

impl VmViews {
    /// `Busy` if a #VE information page lies in `[gfn, gfn + npages)`.
    fn check_ve(&self, gfn: u64, npages: u64) -> Result<(), abi::Error> {
        let inside = |&(_, p): &(u32, u64)| gfn <= p && p - gfn < npages;
        if self.ve_pages.iter().any(inside) {
            return Err(abi::Error::Busy);
        }
        Ok(())
    }
}

/// Per-VM state, created on the VM's first kvm-isolate hypercall.
#[pin_data]
struct VmState {
    /// Whether KVM maps this VM with the TDP MMU, which views need.
    tdp: bool,
    /// The id the control plane names the VM by.
    id: u32,
    /// The process that created the VM (the VMM).
    pid: u32,
    #[pin]
    inner: Mutex<VmViews>,
}

/// A VM the control plane can reach.
struct VmEntry {
    state: Arc<VmState>,
    /// INVARIANT: the VM's `struct kvm` is allocated while this entry is in [`VMS`]:
    /// `vm_destroy` removes it, taking `VMS`'s lock, before the VM goes. The control plane
    /// takes a counted reference ([`VmHandle::get`]) under that lock and works without it.
    vm: VmHandle,
}

kernel::sync::global_lock! {
    // SAFETY: `init` is called in the module initializer, before the policy is registered.
    unsafe(uninit) static VMS: Mutex<KVVec<VmEntry>> = KVVec::new();
}

/// Where the search for a free VM id starts; changed only under [`VMS`]'s lock.
static NEXT_VM_ID: AtomicU32 = AtomicU32::new(1);

/// Whether the CPU delivers EPT violations as #VE and KVM leaves #VE to us (neither of KVM's
/// own #VE checks is built in); set once at load.
static VE_HW: AtomicBool = AtomicBool::new(false);

/// Whether `vcpu` can take #VE for its views: with VMFUNC only (an EPTP list), where the guest
/// switches views itself.
fn ve_possible(vcpu: &Vcpu) -> bool {
    vcpu.vmfunc() && VE_HW.load(Ordering::Relaxed)
}

/// A VM id no live VM has (never 0), the first at or after [`NEXT_VM_ID`]: ids wrap after 2^32
/// VMs, but never onto a live one. The caller holds [`VMS`]'s lock and passes its VMs.
fn alloc_vm_id(vms: &[VmEntry]) -> u32 {
    let mut id = NEXT_VM_ID.load(Ordering::Relaxed);
    while id == 0 || vms.iter().any(|e| e.state.id == id) {
        id = id.wrapping_add(1);
    }
    NEXT_VM_ID.store(id.wrapping_add(1), Ordering::Relaxed);
    id
}

/// The memory-view policy: ABI v1 views, and domains protected by the policy engine.
struct Isolate;

/// A view index the decoder has checked to be below `MAX_VIEWS`.
fn view(index: u8) -> Result<View, abi::Error> {
    View::new(u64::from(index)).ok_or(abi::Error::Inval)
}

fn kernel_err(e: Error) -> abi::Error {
    if e == ENOMEM {
        abi::Error::NoMem
    } else if e == EOPNOTSUPP {
        // KVM keeps views and nested virtualization apart (the VM uses the latter).
        abi::Error::OpNotSupp
    } else if e == EBUSY {
        // A #VE information page keeps W in every view.
        abi::Error::Busy
    } else if e == EPERM {
        abi::Error::Perm
    } else {
        abi::Error::Inval
    }
}

/// KVM's operations on the views of a VM, for [`apply`].
struct KvmViews<'a>(&'a Vm);

impl ViewOps for KvmViews<'_> {
    /// Sets `rights` (R/W/X bits, rounded) on `npages` at `gfn` in view `v`.
    fn set(&mut self, v: u8, gfn: u64, npages: u64, rights: u8) -> Result<(), abi::Error> {
        let access = Access::from_bits(u64::from(rights))
            .ok_or(abi::Error::Inval)?
            .round();
        self.0
            .set_access(view(v)?, Gfn(gfn), npages, access)
            .map_err(kernel_err)
    }

    fn reset(&mut self, v: u8) -> Result<(), abi::Error> {
        self.0.reset_view(view(v)?).map_err(kernel_err)
    }

    fn set_default(&mut self, v: u8, rights: u8) -> Result<(), abi::Error> {
        let access = Access::from_bits(u64::from(rights)).ok_or(abi::Error::Inval)?;
        self.0
            .set_default_access(view(v)?, access)
            .map_err(kernel_err)
    }
}

/// Sets a mode (and for the VM, maybe the deny action), as the guest or the host.
fn set_mode(
    vm: &Vm,
    g: &mut VmViews,
    d: u8,
    mode: Option<Mode>,
    guest: bool,
) -> Result<u64, abi::Error> {
    apply::set_mode(&mut KvmViews(vm), &mut g.engine, g.views, d, mode, guest)
}

impl Isolate {
    fn handle(vcpu: &Vcpu, data: &VmState, call: Call) -> Result<u64, abi::Error> {
        // Discovery works everywhere; views need the TDP MMU.
        if !data.tdp && !matches!(call, Call::Probe | Call::Version) {
            return Err(abi::Error::OpNotSupp);
        }
        let vm: &Vm = vcpu.vm();
        let mut guard = data.inner.lock();
        let g = &mut *guard;
        let exists = |views: &Views, v: u8| {
            if views.exists(v) {
                Ok(())
            } else {
                Err(abi::Error::NoEnt)
            }
        };
        let locked = g.engine.locked();
        match call {
            Call::Probe => Ok(abi::MAGIC),
            Call::Version => Ok(abi::ABI_VERSION),
            Call::ViewCreate => {
                let v = g.views.free()?;
                // Domains' regions and code are hidden in it as in view 0 before the rest opens.
                apply::new_view(&mut KvmViews(vm), &g.engine, v)?;
                g.views.insert(v);
                Ok(u64::from(v))
            }
            Call::ViewDestroy(v) => {
                // Domains' views go with their domains; nothing is relaxed while locked.
                if g.engine.owns_view(v) || locked {
                    return Err(abi::Error::Perm);
                }
                g.views.check_destroy(v, vm.view_in_use(view(v)?))?;
                vm.reset_view(view(v)?).map_err(kernel_err)?;
                g.views.remove(v);
                Ok(0)
            }
            Call::SetAccess {
                view: v,
                gfn,
                npages,
                access,
            } => {
                exists(&g.views, v)?;
                if !vm.range_mapped(Gfn(gfn), npages) {
                    return Err(abi::Error::Range);
                }
                // Domains' views, code and regions are the engine's alone.
                let e = &g.engine;
                if e.owns_view(v)
                    || e.regions()
                        .iter()
                        .any(|r| r.gfn < gfn + npages && gfn < r.gfn + r.npages)
                    || e.code()
                        .iter()
                        .any(|c| c.gfn < gfn + npages && gfn < c.gfn + c.npages)
                {
                    return Err(abi::Error::Perm);
                }
                let access = Access::from_bits(u64::from(access)).ok_or(abi::Error::Inval)?;
                // Asked for, not only kept by the rounding.
                if access.contains(Access::VE) && !ve_possible(vcpu) {
                    return Err(abi::Error::OpNotSupp);
                }
                let access = access.round();
                let vv = view(v)?;
                // While locked only tightening: every page must grant the new rights already.
                if locked && !vm.range_access(vv, Gfn(gfn), npages).contains(access) {
                    return Err(abi::Error::Perm);
                }
                vm.set_access(view(v)?, Gfn(gfn), npages, access)
                    .map_err(kernel_err)?;
                Ok(u64::from(access.bits()))
            }
            Call::Switch(v) => {
                exists(&g.views, v)?;
                // A domain's view is entered only through its entry points and return sites
                // (for a switchable one, its page starts are all entry points, and the
                // instruction after the switch runs where the guest chose: only its code is
                // executable there), a lens only by the engine's decision.
                if g.engine.owns_view(v) && !g.engine.switchable(v) {
                    return Err(abi::Error::Perm);
                }
                let prev = vcpu.view();
                // What any guest code may SWITCH to, a VMFUNC may reach without an exit, until
                // a reset (destroy, under this lock too) unlists it. Listed first: a failed
                // switch leaves listed only a view this call was allowed to switch to.
                if vcpu.vmfunc() {
                    vm.list_view(view(v)?).map_err(kernel_err)?;
                }
                vcpu.switch_view(view(v)?).map_err(kernel_err)?;
                Ok(u64::from(prev.index()))
            }
            Call::QueryView => Ok(u64::from(vcpu.view().index())),
            Call::QueryAccess { view: v, gfn } => {
                exists(&g.views, v)?;
                Ok(u64::from(vm.access(view(v)?, Gfn(gfn)).bits()))
            }
            Call::QueryViews(w) => Ok(g.views.word(usize::from(w))),
            Call::QueryMaxViews => Ok(u64::from(views::MAX_VIEWS)),
            Call::QueryFeatures => Ok((u64::from(vcpu.vmfunc()) * abi::FEATURE_VMFUNC)
                | (u64::from(ve_possible(vcpu)) * abi::FEATURE_VE)),
            Call::VeInfo(page) => {
                if !ve_possible(vcpu) {
                    return Err(abi::Error::OpNotSupp);
                }
                // KVM checks (and keeps) W in every view; a new page after lock would pin its
                // rights against the host's later tightening.
                let gpa = match page {
                    Some(_) if locked => return Err(abi::Error::Perm),
                    Some(gfn) if !vm.range_mapped(Gfn(gfn), 1) => return Err(abi::Error::Range),
                    Some(gfn) => Some(Gfn(gfn)),
                    None => None,
                };
                // Room first: once KVM has the page, this cannot fail.
                g.ve_pages
                    .reserve(1, GFP_KERNEL_ACCOUNT)
                    .map_err(|_| abi::Error::NoMem)?;
                vcpu.set_ve_info(gpa).map_err(kernel_err)?;
                let id = vcpu.id();
                g.ve_pages.retain(|e| e.0 != id);
                if let Some(gfn) = gpa {
                    g.ve_pages
                        .push((id, gfn.0), GFP_KERNEL_ACCOUNT)
                        .map_err(|_| abi::Error::NoMem)?;
                }
                Ok(0)
            }
            Call::OnViolation(action) => {
                if locked && matches!(action, OnViolation::Grant | OnViolation::Switch(_)) {
                    return Err(abi::Error::Perm);
                }
                if let OnViolation::Switch(target) = action {
                    exists(&g.views, target)?;
                    if g.engine.owns_view(target) {
                        return Err(abi::Error::Perm);
                    }
                }
                g.on_violation = action;
                Ok(0)
            }
            Call::DomainCreate => {
                let d = g.views.free()?;
                apply::new_domain_view(&mut KvmViews(vm), &g.engine, d)?;
                g.engine.create_domain(d)?;
                g.views.insert(d);
                Ok(u64::from(d))
            }
            Call::DomainAddCode {
                domain,
                gva,
                gfn,
                npages,
            } => {
                let c = Code {
                    start: gva,
                    end: gva + npages * abi::PAGE_SIZE,
                    gfn,
                    npages,
                    domain,
                };
                g.engine.check_code(domain, &c, true)?;
                if !vm.range_mapped(Gfn(gfn), npages) {
                    return Err(abi::Error::Range);
                }
                g.check_ve(gfn, npages)?;
                apply::place_code(&mut KvmViews(vm), &g.engine, g.views, &c)?;
                g.engine.add_code(c)?;
                Ok(0)
            }
            Call::DomainAddEntry { domain, gva } => {
                let entry = g.engine.check_entry(domain, gva, true)?;
                g.engine.add_entry(entry)?;
                Ok(0)
            }
            Call::DomainName {
                domain,
                chunk,
                bytes,
            } => {
                g.engine.check_name(domain)?;
                g.engine.set_name(domain, chunk, bytes);
                Ok(0)
            }
            Call::CodeName {
                start,
                size,
                chunk,
                bytes,
            } => {
                g.engine
                    .name_code(start, size, chunk, bytes, views::now_ns())?;
                Ok(0)
            }
            Call::DomainSwitchable(d) => {
                g.engine.check_switchable(d, true)?;
                // Only its code may run in its view from now on: the pages made executable
                // there for profile code go (a failed rebuild leaves fewer rights, and the
                // domain as it was).
                apply::build_domain_view(&mut KvmViews(vm), &g.engine, d)?;
                g.engine.set_switchable(d);
                Ok(0)
            }
            Call::DomainAddRegion {
                domain,
                gfn,
                npages,
                access,
            } => {
                let rights = Access::from_bits(u64::from(access))
                    .ok_or(abi::Error::Inval)?
                    .round()
                    .bits() as u8;
                if rights == 0 {
                    return Err(abi::Error::Inval);
                }
                let r = Region {
                    index: 0,
                    gfn,
                    npages,
                    rights,
                    domain,
                };
                g.engine.check_region(&r)?;
                if !vm.range_mapped(Gfn(gfn), npages) {
                    return Err(abi::Error::Range);
                }
                g.check_ve(gfn, npages)?;
                // Profile code that had all of the owner's rights has none over the new region:
                // its pages stop being executable in the owner's view (rebuilt first, so that
                // no code runs there with the region mapped), and its next fetch there sends it
                // to a lens. Violations wait for this lock, so none decides in between.
                if g.engine.rule_count(domain) > 0 {
                    apply::build_domain_view(&mut KvmViews(vm), &g.engine, domain)?;
                }
                apply::place_region(&mut KvmViews(vm), &g.engine, g.views, &r)?;
                g.engine.add_region(r)?;
                Ok(u64::from(rights))
            }
            Call::DomainDestroy(d) => {
                g.engine.check_destroy(d, true)?;
                g.views.check_destroy(d, vm.view_in_use(view(d)?))?;
                for l in g.engine.lenses().iter().filter(|l| l.domain == d) {
                    if vm.view_in_use(view(l.view)?) {
                        return Err(abi::Error::Busy);
                    }
                }
                apply::release_domain(&mut KvmViews(vm), &g.engine, g.views, d)?;
                for v in g.engine.drop_lenses(d) {
                    g.views.remove(v);
                }
                g.engine.destroy_domain(d);
                g.views.remove(d);
                Ok(0)
            }
            Call::SetMode { domain, mode } => {
                let mode = match mode {
                    Some(m) => Some(Mode::from_u32(u32::from(m)).ok_or(abi::Error::Inval)?),
                    None => None,
                };
                set_mode(vm, g, domain, mode, true)
            }
            Call::Lock => {
                g.engine.set_locked(true);
                Ok(0)
            }
        }
    }

    /// The lens on domain `d` for the code at the violation's RIP (`trusted`: of its rules
    /// trusted on their own): found, or made in a free view and built. A lens the vCPU is in
    /// already is stale (a failed rebuild left it reset): it is built again, and the caller
    /// retries.
    fn lens(
        vm: &Vm,
        g: &mut VmViews,
        d: u8,
        v: &Violation,
        trusted: bool,
    ) -> Result<View, abi::Error> {
        if let Some(l) = g.engine.lens_for(d, v.rip, trusted) {
            let lv = view(l)?;
            if lv == v.view {
                if let Some(l) = g.engine.lens(l).copied() {
                    apply::build_lens(&mut KvmViews(vm), &g.engine, &l)?;
                }
            }
            return Ok(lv);
        }
        let l = Lens {
            view: g.views.free()?,
            domain: d,
            rep: v.rip,
            trusted,
        };
        // Built before the engine holds it: until then no change is applied to it.
        apply::build_lens(&mut KvmViews(vm), &g.engine, &l)?;
        if let Err(e) = g.engine.add_lens(l.view, d, l.rep, trusted) {
            let _ = vm.reset_view(view(l.view)?);
            return Err(e);
        }
        g.views.insert(l.view);
        view(l.view)
    }

    /// The ABI v1 answer to a violation outside every domain.
    fn on_violation(g: &VmViews, v: &Violation) -> Verdict {
        match g.on_violation {
            OnViolation::Exit => Verdict::Exit,
            OnViolation::InjectGp => Verdict::Inject {
                vector: 13,
                error_code: 0,
            },
            OnViolation::InjectUd => Verdict::Inject {
                vector: 6,
                error_code: 0,
            },
            OnViolation::Grant => Verdict::Grant,
            OnViolation::Switch(t) => match View::new(u64::from(t)) {
                Some(t) if g.views.exists(t.index() as u8) && t != v.view => Verdict::Switch(t),
                _ => Verdict::Exit,
            },
        }
    }
}

/// #PF error code bits.
const PFERR_PRESENT: u32 = 1;
const PFERR_WRITE: u32 = 2;
const PFERR_FETCH: u32 = 0x10;

#[vtable]
impl Policy for Isolate {
    type VmData = VmState;

    fn vm_init(vm: &Vm) -> Result<Arc<VmState>> {
        // Charged to the VMM, like KVM's own per-VM memory; its tables grow on first use.
        let mut engine = KBox::new(Engine::with_limits(limits()), GFP_KERNEL_ACCOUNT)?;
        // A VM protects its domains from the start; learning is the administrator's choice.
        engine.set_mode(0, Some(Mode::Enforce));
        let mut vms = VMS.lock();
        let id = alloc_vm_id(&vms);
        let state = Arc::pin_init(
            pin_init!(VmState {
                tdp: kvm::paging() == Paging::Tdp,
                id,
                // `Task::tgid()` reads the field through bindgen's layout of `task_struct`,
                // which reads garbage in this configuration; the C accessor does not.
                // CAST: a tgid is positive.
                pid: kernel::current!().tgid_nr_ns(None) as u32,
                inner <- new_mutex!(VmViews {
                    views: Views::default(),
                    on_violation: OnViolation::Exit,
                    engine,
                    warned: 0,
                    ve_pages: KVVec::new(),
                }),
            }),
            GFP_KERNEL_ACCOUNT,
        )?;
        vms.push(
            VmEntry {
                state: state.clone(),
                vm: VmHandle::new(vm),
            },
            GFP_KERNEL,
        )?;
        Ok(state)
    }

    fn vm_destroy(_vm: &Vm, data: &VmState) {
        VMS.lock().retain(|e| e.state.id != data.id);
    }

    fn hypercall(vcpu: &Vcpu, data: &VmState, call: Hypercall) -> u64 {
        let r = abi::decode(call.nr, call.args).and_then(|call| Self::handle(vcpu, data, call));
        if r == Err(abi::Error::NoSpc) {
            let mut g = data.inner.lock();
            let g = &mut *g;
            warn_full(data.id, &g.engine, &mut g.warned);
        }
        r.unwrap_or_else(abi::Error::to_ret)
    }

    fn violation(vcpu: &Vcpu, data: &VmState, v: &Violation) -> Verdict {
        let mut guard = data.inner.lock();
        let g = &mut *guard;
        // The view's rights changed while this waited for the lock (a domain's view rebuilt
        // under a running vCPU by a profile import, say): what they grant now decides, and if
        // that is the access, the fault is stale, not a violation.
        if !v.allowed.contains(v.access)
            && vcpu.vm().access(v.view, v.gpa.gfn()).contains(v.access)
        {
            return Verdict::Retry;
        }
        let access = v.access.bits() as u8;
        let f = Fault {
            view: v.view.index() as u8,
            gpa: v.gpa.0,
            rip: v.rip,
            access,
            stack: v.stack.map(|s| Stack {
                below: s.below,
                top: s.top,
                event: s.event.map(|e| Event {
                    at: s.rsp,
                    cs: e.cs,
                    rflags: e.rflags,
                    rsp: e.rsp,
                    ss: e.ss,
                    below: e.below,
                    top: e.top,
                }),
            }),
        };
        let e = &mut g.engine;
        let o = e.handle(&f);
        if o.learn.is_some() {
            // The domain's rules changed: so do its lenses' rights. A lens that cannot be
            // rebuilt is left with no rights (its code's next fault tries again).
            let _ = apply::rebuild_lenses(&mut KvmViews(vcpu.vm()), e, o.domain);
        }
        let e = &mut g.engine;
        if let Some(verdict) = o.log {
            let rec = CtlRecord {
                seq: 0,
                time_ns: views::now_ns(),
                rip: v.rip,
                gva: v.gva.unwrap_or(ctl::GVA_UNKNOWN),
                gpa: v.gpa.0,
                vm: data.id,
                vcpu: vcpu.id(),
                view: v.view.index(),
                domain: u32::from(o.domain),
                access: u32::from(access),
                verdict,
                // `Log::push` numbers the record and sets these.
                last_ns: 0,
                count: 0,
            };
            e.log.push(rec, rec.time_ns);
        }
        warn_full(data.id, e, &mut g.warned);
        let decision = match o.decision {
            Decision::Narrow(d) | Decision::Trusted(d) => match Self::lens(
                vcpu.vm(),
                g,
                d,
                v,
                matches!(o.decision, Decision::Trusted(_)),
            ) {
                Ok(l) if l == v.view => return Verdict::Retry,
                Ok(l) => return Verdict::Switch(l),
                // No lens can be made (no free view index, or memory short): denied.
                Err(_) => Decision::Deny(g.engine.deny()),
            },
            d => d,
        };
        match decision {
            Decision::NotOurs => Self::on_violation(g, v),
            Decision::Switch(d) => View::new(u64::from(d)).map_or(Verdict::Exit, Verdict::Switch),
            // Answered above.
            Decision::Narrow(_) | Decision::Trusted(_) => Verdict::Exit,
            Decision::GrantExec => Verdict::Grant,
            Decision::Leave => View::new(0).map_or(Verdict::Exit, Verdict::Switch),
            Decision::Deny(Deny::Exit) => Verdict::Exit,
            // A #PF needs CR2; a violation without a linear address (KVM's own access on VMX)
            // gets #GP instead. On SVM the control plane refuses `pf` altogether.
            Decision::Deny(Deny::Pf) if v.gva.is_none() => Verdict::Inject {
                vector: 13,
                error_code: 0,
            },
            Decision::Deny(Deny::Gp) => Verdict::Inject {
                vector: 13,
                error_code: 0,
            },
            Decision::Deny(Deny::Pf) => Verdict::Inject {
                vector: 14,
                error_code: PFERR_PRESENT
                    | if access == 2 { PFERR_WRITE } else { 0 }
                    | if access == 4 { PFERR_FETCH } else { 0 },
            },
        }
    }
}

#[pin_data(PinnedDrop)]
struct KvmIsolate {
    #[pin]
    _control: MiscDeviceRegistration<control::Control>,
    #[pin]
    _policy: Registration<Isolate>,
    #[pin]
    _caps: debugfs::File<HwCaps>,
    _debugfs: debugfs::Dir,
    _limits: Limits,
}

#[pinned_drop]
impl PinnedDrop for KvmIsolate {
    fn drop(self: Pin<&mut Self>) {
        // `VMS` is a static, never dropped: free its buffer, or unloading leaks it. No VM is
        // left (each holds a reference to this module), nor an open control file.
        drop(core::mem::replace(&mut *VMS.lock(), KVVec::new()));
    }
}

/// The module parameters' caps, if none is above [`Limits::CEILING`].
fn checked_limits() -> Result<Limits> {
    let l = limits();
    if !l.valid() {
        pr_err!("a max_* parameter is above {}\n", Limits::CEILING);
        return Err(EINVAL);
    }
    Ok(l)
}

impl kernel::InPlaceModule for KvmIsolate {
    fn init(module: &'static ThisModule) -> impl PinInit<Self, Error> {
        let hw = HwCaps::decode(&read_raw());
        VE_HW.store(
            hw.ept_violation_ve && !cfg!(CONFIG_KVM_INTEL_PROVE_VE) && !cfg!(CONFIG_KVM_PROVE_MMU),
            Ordering::Relaxed,
        );
        let report = Report {
            hw: &hw,
            kvm: kvm_paging(),
        };
        pr_info!(
            "host: {:?} {:?}, {} in hardware, KVM paging {:?}, VMFUNC EPTP switching {}, \
             EPT-violation #VE {}: memory views {}\n",
            hw.vendor,
            hw.virt,
            hw.tdp_name(),
            report.kvm,
            hw.vmfunc_eptp_switching,
            hw.ept_violation_ve,
            if report.views_possible() {
                "possible"
            } else {
                "unavailable"
            }
        );
        let debugfs = debugfs::Dir::new(c"kvm_isolate");
        // SAFETY: called once, before the policy that uses `VMS` is registered.
        unsafe { VMS.init() };
        try_pin_init!(Self {
            // First: a module that cannot serve VMs with these caps does not load.
            _limits: checked_limits()?,
            _control <- MiscDeviceRegistration::register(MiscDeviceOptions {
                name: c"kvm-isolate",
            }),
            _policy <- Registration::register(module),
            _caps <- debugfs.read_callback_file(c"caps", hw, &write_caps),
            _debugfs: debugfs,
        })
    }
}
