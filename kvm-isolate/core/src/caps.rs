// SPDX-License-Identifier: GPL-2.0

//! Which memory-view paths a host offers, decoded from raw `CPUID` and VMX capability MSR values.

use core::fmt;

/// CPU vendor, from the `CPUID` leaf 0 vendor string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Vendor {
    /// `GenuineIntel`.
    Intel,
    /// `AuthenticAMD`.
    Amd,
    /// `HygonGenuine` (SVM, like AMD).
    Hygon,
    /// Anything else.
    Other,
}

impl Vendor {
    /// Decodes the vendor string that `CPUID` leaf 0 returns in `EBX`, `EDX`, `ECX`.
    pub fn from_cpuid0(ebx: u32, ecx: u32, edx: u32) -> Self {
        let mut s = [0u8; 12];
        s[0..4].copy_from_slice(&ebx.to_le_bytes());
        s[4..8].copy_from_slice(&edx.to_le_bytes());
        s[8..12].copy_from_slice(&ecx.to_le_bytes());
        match &s {
            b"GenuineIntel" => Vendor::Intel,
            b"AuthenticAMD" => Vendor::Amd,
            b"HygonGenuine" => Vendor::Hygon,
            _ => Vendor::Other,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Vendor::Intel => "intel",
            Vendor::Amd => "amd",
            Vendor::Hygon => "hygon",
            Vendor::Other => "other",
        }
    }
}

/// How KVM translates guest physical addresses, as KVM reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KvmPaging {
    /// No KVM vendor module is loaded.
    NoVendorModule,
    /// Shadow paging.
    Shadow,
    /// Two-dimensional paging (EPT or NPT).
    Tdp,
}

/// `CPUID.1:ECX.VMX`.
const CPUID1_ECX_VMX: u32 = 1 << 5;
/// `CPUID.80000001h:ECX.SVM`.
const CPUID_EXT1_ECX_SVM: u32 = 1 << 2;
/// `CPUID.8000000Ah:EDX.NP` (nested paging).
const CPUID_SVM_EDX_NPT: u32 = 1 << 0;
/// Primary processor-based control 31: activate secondary controls.
const PROCBASED_ACTIVATE_SECONDARY: u32 = 1 << 31;
/// Secondary processor-based control 1: enable EPT.
const PROCBASED2_EPT: u32 = 1 << 1;
/// Secondary processor-based control 13: enable VM functions.
const PROCBASED2_VMFUNC: u32 = 1 << 13;
/// Secondary processor-based control 18: EPT-violation #VE.
const PROCBASED2_EPT_VIOLATION_VE: u32 = 1 << 18;
/// `IA32_VMX_VMFUNC` bit 0: VM function 0, EPTP switching.
const VMFUNC_EPTP_SWITCHING: u64 = 1 << 0;

/// Raw register values read from the host.
///
/// Leaves or MSRs the CPU does not have are 0 or `None`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Raw {
    /// `CPUID.0:{EBX,ECX,EDX}`, the vendor string.
    pub vendor: [u32; 3],
    /// `CPUID.1:ECX`.
    pub leaf1_ecx: u32,
    /// `CPUID.80000001h:ECX` (0 if the leaf is absent).
    pub ext1_ecx: u32,
    /// `CPUID.8000000Ah:EDX` (0 if the leaf is absent).
    pub svm_edx: u32,
    /// `IA32_VMX_PROCBASED_CTLS`.
    pub procbased_ctls: Option<u64>,
    /// `IA32_VMX_PROCBASED_CTLS2`.
    pub procbased_ctls2: Option<u64>,
    /// `IA32_VMX_VMFUNC`.
    pub vmfunc: Option<u64>,
}

/// Hardware virtualization extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Virt {
    /// Intel VMX.
    Vmx,
    /// AMD SVM.
    Svm,
    /// Neither.
    None,
}

/// The memory-view paths the host's hardware offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HwCaps {
    /// CPU vendor.
    pub vendor: Vendor,
    /// Virtualization extension.
    pub virt: Virt,
    /// Second-level translation in hardware: EPT (VMX) or NPT (SVM).
    pub tdp: bool,
    /// VMFUNC leaf 0 (EPTP switching) can be enabled: exit-less view switches.
    pub vmfunc_eptp_switching: bool,
    /// EPT violations can be delivered to the guest as #VE.
    pub ept_violation_ve: bool,
}

/// The allowed-1 settings (high half) of a VMX capability MSR.
fn allowed1(msr: Option<u64>) -> u32 {
    // CAST: the high 32 bits of a VMX control capability MSR are the allowed-1 settings.
    msr.map_or(0, |v| (v >> 32) as u32)
}

impl HwCaps {
    /// Decodes the raw values.
    pub fn decode(raw: &Raw) -> Self {
        let vendor = Vendor::from_cpuid0(raw.vendor[0], raw.vendor[1], raw.vendor[2]);
        if raw.leaf1_ecx & CPUID1_ECX_VMX != 0 {
            let secondary = allowed1(raw.procbased_ctls) & PROCBASED_ACTIVATE_SECONDARY != 0;
            let ctls2 = if secondary {
                allowed1(raw.procbased_ctls2)
            } else {
                0
            };
            let ept = ctls2 & PROCBASED2_EPT != 0;
            let vmfunc = ctls2 & PROCBASED2_VMFUNC != 0;
            return HwCaps {
                vendor,
                virt: Virt::Vmx,
                tdp: ept,
                vmfunc_eptp_switching: ept
                    && vmfunc
                    && raw.vmfunc.unwrap_or(0) & VMFUNC_EPTP_SWITCHING != 0,
                ept_violation_ve: ept && ctls2 & PROCBASED2_EPT_VIOLATION_VE != 0,
            };
        }
        let svm = raw.ext1_ecx & CPUID_EXT1_ECX_SVM != 0;
        HwCaps {
            vendor,
            virt: if svm { Virt::Svm } else { Virt::None },
            tdp: svm && raw.svm_edx & CPUID_SVM_EDX_NPT != 0,
            vmfunc_eptp_switching: false,
            ept_violation_ve: false,
        }
    }

    /// The name of the second-level translation ("ept", "npt" or "none").
    pub fn tdp_name(&self) -> &'static str {
        match (self.tdp, self.virt) {
            (true, Virt::Vmx) => "ept",
            (true, Virt::Svm) => "npt",
            _ => "none",
        }
    }
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// The host report: hardware paths and what KVM uses, one `key: value` per line.
///
/// This is the format of `/sys/kernel/debug/kvm_isolate/caps`; tests parse it, so keys are only
/// ever added.
pub struct Report<'a> {
    /// Hardware facts.
    pub hw: &'a HwCaps,
    /// KVM's translation mode.
    pub kvm: KvmPaging,
}

impl Report<'_> {
    /// Whether memory views can be built: KVM runs on EPT or NPT.
    pub fn views_possible(&self) -> bool {
        self.hw.tdp && self.kvm == KvmPaging::Tdp
    }
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let virt = match self.hw.virt {
            Virt::Vmx => "vmx",
            Virt::Svm => "svm",
            Virt::None => "none",
        };
        let kvm = match self.kvm {
            KvmPaging::NoVendorModule => "no-vendor-module",
            KvmPaging::Shadow => "shadow",
            KvmPaging::Tdp => "tdp",
        };
        writeln!(f, "vendor: {}", self.hw.vendor.name())?;
        writeln!(f, "virtualization: {virt}")?;
        writeln!(f, "tdp: {}", self.hw.tdp_name())?;
        writeln!(f, "kvm_paging: {kvm}")?;
        writeln!(
            f,
            "vmfunc_eptp_switching: {}",
            yes_no(self.hw.vmfunc_eptp_switching)
        )?;
        writeln!(f, "ept_violation_ve: {}", yes_no(self.hw.ept_violation_ve))?;
        writeln!(
            f,
            "views: {}",
            if self.views_possible() {
                "possible"
            } else {
                "unavailable"
            }
        )
    }
}
