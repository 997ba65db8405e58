// SPDX-License-Identifier: GPL-2.0

//! kvm-isolate host module: memory views that hide a guest module's secrets from the rest of the
//! guest.
//!
//! C header: [`arch/x86/include/asm/kvm_isolate.h`](srctree/arch/x86/include/asm/kvm_isolate.h)
//!
//! On load it probes which memory-view paths the host offers (vendor, EPT/NPT and whether KVM
//! uses it, VMFUNC EPTP switching, EPT-violation #VE), logs them and serves them in
//! `/sys/kernel/debug/kvm_isolate/caps`. It then registers as KVM's memory-view policy and serves
//! hypercall ABI v1 (`include/uapi/linux/kvm_isolate.h`): views, per-page rights, switching.
//! The decoding is in [`caps`] and [`abi`], shared with `cargo test`.

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
            Vm, //
        },
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

use abi::{
    Call,
    OnViolation,
    Views, //
};
use caps::{
    HwCaps,
    KvmPaging,
    Raw,
    Report, //
};

module! {
    type: KvmIsolate,
    name: "kvm_isolate",
    authors: ["kvm-isolate developers"],
    description: "Memory views for KVM guests (EPT/NPT)",
    license: "GPL",
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

/// What a VM has set up: its views and what a violation does.
struct VmViews {
    views: Views,
    on_violation: OnViolation,
}

/// Per-VM state, created on the VM's first kvm-isolate hypercall.
#[pin_data]
struct VmState {
    /// Whether KVM maps this VM with the TDP MMU, which views need.
    tdp: bool,
    #[pin]
    inner: Mutex<VmViews>,
}

/// The memory-view policy of ABI v1: the guest sets views up; a violation does what the guest
/// chose with `KVM_HC_ISOLATE_ON_VIOLATION` (by default: exit to user space).
struct Isolate;

/// A view index the decoder has checked to be below `MAX_VIEWS`.
fn view(index: u8) -> Result<View, abi::Error> {
    View::new(u64::from(index)).ok_or(abi::Error::Inval)
}

fn kernel_err(e: Error) -> abi::Error {
    if e == ENOMEM {
        abi::Error::NoMem
    } else {
        abi::Error::Inval
    }
}

impl Isolate {
    fn handle(vcpu: &Vcpu, data: &VmState, call: Call) -> Result<u64, abi::Error> {
        // Discovery works everywhere; views need the TDP MMU.
        if !data.tdp && !matches!(call, Call::Probe | Call::Version) {
            return Err(abi::Error::OpNotSupp);
        }
        let vm: &Vm = vcpu.vm();
        let mut g = data.inner.lock();
        let exists = |views: &Views, v: u8| {
            if views.exists(v) {
                Ok(())
            } else {
                Err(abi::Error::NoEnt)
            }
        };
        match call {
            Call::Probe => Ok(abi::MAGIC),
            Call::Version => Ok(abi::ABI_VERSION),
            Call::ViewCreate => {
                let v = g.views.free()?;
                vm.reset_view(view(v)?).map_err(kernel_err)?;
                g.views.insert(v);
                Ok(u64::from(v))
            }
            Call::ViewDestroy(v) => {
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
                let access = Access::from_bits(u64::from(access))
                    .ok_or(abi::Error::Inval)?
                    .round();
                vm.set_access(view(v)?, Gfn(gfn), npages, access)
                    .map_err(kernel_err)?;
                Ok(u64::from(access.bits()))
            }
            Call::Switch(v) => {
                exists(&g.views, v)?;
                let prev = vcpu.view();
                vcpu.switch_view(view(v)?).map_err(kernel_err)?;
                Ok(u64::from(prev.index()))
            }
            Call::QueryView => Ok(u64::from(vcpu.view().index())),
            Call::QueryAccess { view: v, gfn } => {
                exists(&g.views, v)?;
                Ok(u64::from(vm.access(view(v)?, Gfn(gfn)).bits()))
            }
            Call::QueryViews => Ok(g.views.bits()),
            Call::QueryMaxViews => Ok(u64::from(views::MAX_VIEWS)),
            Call::OnViolation(action) => {
                if let OnViolation::Switch(target) = action {
                    exists(&g.views, target)?;
                }
                g.on_violation = action;
                Ok(0)
            }
        }
    }
}

#[vtable]
impl Policy for Isolate {
    type VmData = VmState;

    fn vm_init(_vm: &Vm) -> Result<Arc<VmState>> {
        Arc::pin_init(
            pin_init!(VmState {
                tdp: kvm::paging() == Paging::Tdp,
                inner <- new_mutex!(VmViews {
                    views: Views::default(),
                    on_violation: OnViolation::Exit,
                }),
            }),
            GFP_KERNEL,
        )
    }

    fn hypercall(vcpu: &Vcpu, data: &VmState, call: Hypercall) -> u64 {
        abi::decode(call.nr, call.args)
            .and_then(|call| Self::handle(vcpu, data, call))
            .unwrap_or_else(abi::Error::to_ret)
    }

    fn violation(_vcpu: &Vcpu, data: &VmState, v: &Violation) -> Verdict {
        let g = data.inner.lock();
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

#[pin_data]
struct KvmIsolate {
    #[pin]
    _policy: Registration<Isolate>,
    #[pin]
    _caps: debugfs::File<HwCaps>,
    _debugfs: debugfs::Dir,
}

impl kernel::InPlaceModule for KvmIsolate {
    fn init(module: &'static ThisModule) -> impl PinInit<Self, Error> {
        let hw = HwCaps::decode(&read_raw());
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
        try_pin_init!(Self {
            _policy <- Registration::register(module),
            _caps <- debugfs.read_callback_file(c"caps", hw, &write_caps),
            _debugfs: debugfs,
        })
    }
}
