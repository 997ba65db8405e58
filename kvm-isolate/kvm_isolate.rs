// SPDX-License-Identifier: GPL-2.0

//! kvm-isolate host module: memory views that hide a guest module's secrets from the rest of the
//! guest.
//!
//! C header: [`arch/x86/include/asm/kvm_isolate.h`](srctree/arch/x86/include/asm/kvm_isolate.h)
//!
//! On load it probes which memory-view paths the host offers (vendor, EPT/NPT and whether KVM
//! uses it, VMFUNC EPTP switching, EPT-violation #VE), logs them and serves them in
//! `/sys/kernel/debug/kvm_isolate/caps`. The decoding is in [`caps`], shared with `cargo test`.

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
    },
    prelude::*,
};

// The core crate's items are `pub` for `cargo test`; here they are private to the module.
#[expect(unreachable_pub)]
#[path = "core/src/caps.rs"]
mod caps;

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
    let leaf1_ecx = if leaf0.eax >= 1 { hw::cpuid(1, 0).ecx } else { 0 };
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
    write!(f, "{}", Report { hw, kvm: kvm_paging() })
}

#[pin_data]
struct KvmIsolate {
    #[pin]
    _caps: debugfs::File<HwCaps>,
    _debugfs: debugfs::Dir,
}

impl kernel::InPlaceModule for KvmIsolate {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        let hw = HwCaps::decode(&read_raw());
        let report = Report { hw: &hw, kvm: kvm_paging() };
        pr_info!(
            "host: {:?} {:?}, {} in hardware, KVM paging {:?}, VMFUNC EPTP switching {}, \
             EPT-violation #VE {}: memory views {}\n",
            hw.vendor,
            hw.virt,
            hw.tdp_name(),
            report.kvm,
            hw.vmfunc_eptp_switching,
            hw.ept_violation_ve,
            if report.views_possible() { "possible" } else { "unavailable" }
        );
        let debugfs = debugfs::Dir::new(c"kvm_isolate");
        try_pin_init!(Self {
            _caps <- debugfs.read_callback_file(c"caps", hw, &write_caps),
            _debugfs: debugfs,
        })
    }
}
