// SPDX-License-Identifier: GPL-2.0

//! Host capability decoding, with register values seen on the two rigs and on edge cases.

use kvm_isolate_core::caps::{HwCaps, KvmPaging, Raw, Report, Vendor, Virt};

fn vendor(s: &[u8; 12]) -> [u32; 3] {
    let w = |i: usize| u32::from_le_bytes([s[i], s[i + 1], s[i + 2], s[i + 3]]);
    [w(0), w(8), w(4)] // EBX, ECX, EDX
}

/// Bochs `bx_generic`, `vmx=2`: secondary controls allowed-1 = 0x000467ff, IA32_VMX_VMFUNC = 1.
fn bochs() -> Raw {
    Raw {
        vendor: vendor(b"GenuineIntel"),
        leaf1_ecx: 1 << 5,
        procbased_ctls: Some(0xfff9_fffe_0401_e172),
        procbased_ctls2: Some(0x0004_67ff_0000_0000),
        vmfunc: Some(1),
        ..Raw::default()
    }
}

/// QEMU TCG `-cpu EPYC,+svm,+npt`.
fn qemu_epyc() -> Raw {
    Raw {
        vendor: vendor(b"AuthenticAMD"),
        ext1_ecx: 1 << 2,
        svm_edx: 1,
        ..Raw::default()
    }
}

#[test]
fn vendor_strings() {
    let v = |s| {
        let r = vendor(s);
        Vendor::from_cpuid0(r[0], r[1], r[2])
    };
    assert_eq!(v(b"GenuineIntel"), Vendor::Intel);
    assert_eq!(v(b"AuthenticAMD"), Vendor::Amd);
    assert_eq!(v(b"HygonGenuine"), Vendor::Hygon);
    assert_eq!(v(b"TCGTCGTCGTCG"), Vendor::Other);
}

#[test]
fn bochs_offers_everything() {
    let c = HwCaps::decode(&bochs());
    assert_eq!(c.vendor, Vendor::Intel);
    assert_eq!(c.virt, Virt::Vmx);
    assert_eq!(c.tdp_name(), "ept");
    assert!(c.vmfunc_eptp_switching);
    assert!(c.ept_violation_ve);
}

#[test]
fn qemu_offers_npt_only() {
    let c = HwCaps::decode(&qemu_epyc());
    assert_eq!(
        (c.vendor, c.virt, c.tdp_name()),
        (Vendor::Amd, Virt::Svm, "npt")
    );
    assert!(!c.vmfunc_eptp_switching);
    assert!(!c.ept_violation_ve);
}

#[test]
fn svm_without_npt() {
    let raw = Raw {
        svm_edx: 0,
        ..qemu_epyc()
    };
    assert_eq!(HwCaps::decode(&raw).tdp_name(), "none");
}

#[test]
fn vmfunc_needs_the_eptp_switching_leaf() {
    let raw = Raw {
        vmfunc: Some(0),
        ..bochs()
    };
    let c = HwCaps::decode(&raw);
    assert!(!c.vmfunc_eptp_switching);
    assert!(c.ept_violation_ve);
    // An unreadable IA32_VMX_VMFUNC is not a yes.
    let raw = Raw {
        vmfunc: None,
        ..bochs()
    };
    assert!(!HwCaps::decode(&raw).vmfunc_eptp_switching);
}

#[test]
fn secondary_controls_must_be_activatable() {
    // Without the "activate secondary controls" allowed-1 bit, CTLS2 says nothing.
    let raw = Raw {
        procbased_ctls: Some(0x7fff_ffff_0000_0000),
        ..bochs()
    };
    let c = HwCaps::decode(&raw);
    assert_eq!(c.tdp_name(), "none");
    assert!(!c.vmfunc_eptp_switching && !c.ept_violation_ve);
}

#[test]
fn allowed0_half_is_ignored() {
    // Only the allowed-1 (high) half enables a control.
    let raw = Raw {
        procbased_ctls2: Some(0x0000_0000_ffff_ffff),
        ..bochs()
    };
    let c = HwCaps::decode(&raw);
    assert_eq!(c.tdp_name(), "none");
    assert!(!c.vmfunc_eptp_switching);
}

#[test]
fn vmfunc_and_ve_need_ept() {
    // VMFUNC and #VE bits without EPT do not make views possible.
    let raw = Raw {
        procbased_ctls2: Some(0x0004_2000_0000_0000),
        ..bochs()
    };
    let c = HwCaps::decode(&raw);
    assert!(!c.tdp && !c.vmfunc_eptp_switching && !c.ept_violation_ve);
}

#[test]
fn no_virtualization() {
    let raw = Raw {
        vendor: vendor(b"GenuineIntel"),
        ..Raw::default()
    };
    let c = HwCaps::decode(&raw);
    assert_eq!((c.virt, c.tdp_name()), (Virt::None, "none"));
}

#[test]
fn report_format() {
    let hw = HwCaps::decode(&bochs());
    let r = Report {
        hw: &hw,
        kvm: KvmPaging::Tdp,
    };
    assert!(r.views_possible());
    assert_eq!(
        r.to_string(),
        "vendor: intel\nvirtualization: vmx\ntdp: ept\nkvm_paging: tdp\n\
         vmfunc_eptp_switching: yes\nept_violation_ve: yes\nviews: possible\n"
    );
    for kvm in [KvmPaging::Shadow, KvmPaging::NoVendorModule] {
        let r = Report { hw: &hw, kvm };
        assert!(!r.views_possible());
        assert!(r.to_string().ends_with("views: unavailable\n"));
    }
    let hw = HwCaps::decode(&qemu_epyc());
    let s = Report {
        hw: &hw,
        kvm: KvmPaging::NoVendorModule,
    }
    .to_string();
    let want = "tdp: npt\nkvm_paging: no-vendor-module\nvmfunc_eptp_switching: no\n";
    assert!(s.contains(want), "{s}");
}
