// SPDX-License-Identifier: GPL-2.0

//! The host control plane (`/dev/kvm-isolate` ioctls): the Rust mirror of the `kvm_isolate_ctl_*`
//! part of `include/uapi/linux/kvm_isolate.h`, shared by the `kvm_isolate` module and
//! `kvm-isolatectl`.
//!
//! `tests/abi.rs` compiles a C program against the header and fails if a size, an offset or an
//! ioctl number here differs from it.

/// `KVM_ISOLATE_CTL_TYPE`: the ioctl type byte.
pub const CTL_TYPE: u32 = 0xB7;
/// `KVM_ISOLATE_CTL_VERSION_NR`: what `KVM_ISOLATE_CTL_VERSION` returns.
///
/// 2: log records carry `last_ns` and `count` (repeats compressed), VMs `compressed`.
/// 3: entry gates (`ENTRIES_GET`/`SET`); a rule lets its accessor in from outside the owner's
/// view only with [`RULE_TRUSTED`].
/// 4: a VM's capacities are `kvm_isolate`'s module parameters when it was created, reported with
/// its usage in [`CtlVm`] (`code_ranges` .. `max_return_sites`); `MAX_RULES` and `MAX_ENTRIES`
/// are gone; up to 256 views, [`CtlVm::views`] is their number, not a bitmap.
/// 5: [`CtlDomain::flags`] ([`DOMAIN_SWITCHABLE`]).
/// 6: [`CtlDomain::name`] (`KVM_HC_ISOLATE_DOMAIN_NAME`).
/// 7: [`CtlDomain::code_start`] and `code_end`, `REGIONS_GET` ([`CtlRegion`]), and [`GPA_FROM_CODE`] in
/// `ENTRIES_SET`: what a profile names (module, offset) by.
/// 8: `CODE_NAMES_GET` ([`CtlCodeName`]): the guest's names of its code
/// (`KVM_HC_ISOLATE_CODE_NAME`).
pub const CTL_VERSION_NR: u32 = 8;
/// `KVM_ISOLATE_GPA_FROM_CODE`: an entry point's `gpa` in `ENTRIES_SET` meaning "what the
/// domain's code maps its `gva` to".
pub const GPA_FROM_CODE: u64 = !0;
/// `KVM_ISOLATE_DOMAIN_SWITCHABLE`: in [`CtlDomain::flags`].
pub const DOMAIN_SWITCHABLE: u32 = 1 << 0;
/// `KVM_ISOLATE_RULE_TRUSTED`: a rule's accessor is trusted on its own (in `CtlRule::access`).
pub const RULE_TRUSTED: u32 = 0x100;
/// `KVM_ISOLATE_LOG_RECORDS`: records a VM's log keeps.
pub const LOG_RECORDS: usize = 1024;
/// `KVM_ISOLATE_GVA_UNKNOWN`.
pub const GVA_UNKNOWN: u64 = !0;

/// `KVM_ISOLATE_MODE_OFF`.
pub const MODE_OFF: u32 = 0;
/// `KVM_ISOLATE_MODE_LEARN`.
pub const MODE_LEARN: u32 = 1;
/// `KVM_ISOLATE_MODE_ENFORCE`.
pub const MODE_ENFORCE: u32 = 2;
/// `KVM_ISOLATE_MODE_INHERIT`.
pub const MODE_INHERIT: u32 = 3;

/// `KVM_ISOLATE_DENY_EXIT`.
pub const DENY_EXIT: u32 = 0;
/// `KVM_ISOLATE_DENY_GP`.
pub const DENY_GP: u32 = 1;
/// `KVM_ISOLATE_DENY_PF`.
pub const DENY_PF: u32 = 2;
/// `kvm_isolate_ctl_mode.deny`: keep the VM's deny action.
pub const DENY_KEEP: u32 = !0;

/// `KVM_ISOLATE_LOG_ALLOWED`.
pub const LOG_ALLOWED: u32 = 0;
/// `KVM_ISOLATE_LOG_LEARNED`.
pub const LOG_LEARNED: u32 = 1;
/// `KVM_ISOLATE_LOG_DENIED`.
pub const LOG_DENIED: u32 = 2;

/// `struct kvm_isolate_ctl_array`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CtlArray {
    /// VM id (ignored by `LIST`).
    pub vm: u32,
    /// In: entries `ptr` has room for; out: see the header.
    pub count: u32,
    /// User address of the entries.
    pub ptr: u64,
    /// `LOG_READ`: records dropped so far.
    pub dropped: u64,
}

/// `struct kvm_isolate_ctl_vm`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CtlVm {
    /// VM id.
    pub id: u32,
    /// The VMM's process id.
    pub pid: u32,
    /// `MODE_*`.
    pub mode: u32,
    /// `DENY_*`.
    pub deny: u32,
    /// 1 if locked.
    pub locked: u32,
    /// Domains.
    pub domains: u32,
    /// Views that exist, view 0 included (before version 4: a bitmap of 16).
    pub views: u32,
    /// Profile rules, all domains.
    pub rules: u32,
    /// Violations in domains' regions or views.
    pub violations: u64,
    /// Allowed by switching into the owner's view.
    pub allowed: u64,
    /// Denied.
    pub denied: u64,
    /// Rules learned.
    pub learned: u64,
    /// Log records written.
    pub logged: u64,
    /// Log records dropped.
    pub dropped: u64,
    /// Repeats compressed into a log record (`count - 1` summed over the records written).
    pub compressed: u64,
    /// Code ranges, all domains together.
    pub code_ranges: u32,
    /// Regions, all domains together.
    pub regions: u32,
    /// Entry points, all domains together.
    pub entries: u32,
    /// Pending return sites.
    pub return_sites: u32,
    /// Capacity for code ranges: the module parameter `max_code_ranges` when the VM was created.
    pub max_code_ranges: u32,
    /// Capacity for regions (`max_regions`).
    pub max_regions: u32,
    /// Capacity for profile rules (`max_rules`): more in one `PROFILE_SET` is `E2BIG`.
    pub max_rules: u32,
    /// Capacity for entry points (`max_entry_points`): more in one `ENTRIES_SET` is `E2BIG`.
    pub max_entries: u32,
    /// Capacity for pending return sites (`max_return_sites`).
    pub max_return_sites: u32,
    /// Zero.
    pub pad: u32,
}

/// `struct kvm_isolate_ctl_domain`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CtlDomain {
    /// The domain's view.
    pub id: u32,
    /// Its own mode, `MODE_INHERIT` if none.
    pub mode: u32,
    /// Code ranges.
    pub code_ranges: u32,
    /// Regions.
    pub regions: u32,
    /// Profile rules.
    pub rules: u32,
    /// Lenses on it: views where its profile code with fewer rights than the owner's runs.
    pub lenses: u32,
    /// Accesses allowed by switching into the view.
    pub allowed: u64,
    /// Accesses denied.
    pub denied: u64,
    /// Rules and entry points learned.
    pub learned: u64,
    /// Switches back out of the view.
    pub left: u64,
    /// `DOMAIN_*`.
    pub flags: u32,
    /// Zero.
    pub pad: u32,
    /// The name the guest gave it (`KVM_HC_ISOLATE_DOMAIN_NAME`): printable ASCII, NUL-padded.
    pub name: [u8; crate::abi::NAME_LEN],
    /// Where its code lies (guest virtual): its lowest address and the end of its highest
    /// range, 0 and 0 if it has none. Offsets into the module are from `code_start`.
    pub code_start: u64,
    /// See `code_start`.
    pub code_end: u64,
}

impl Default for CtlDomain {
    fn default() -> Self {
        CtlDomain {
            id: 0,
            mode: 0,
            code_ranges: 0,
            regions: 0,
            rules: 0,
            lenses: 0,
            allowed: 0,
            denied: 0,
            learned: 0,
            left: 0,
            flags: 0,
            pad: 0,
            name: [0; crate::abi::NAME_LEN],
            code_start: 0,
            code_end: 0,
        }
    }
}

/// `struct kvm_isolate_ctl_rule`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CtlRule {
    /// The domain (its view).
    pub domain: u32,
    /// `ACCESS_*` bits.
    pub access: u32,
    /// The first byte of one of the domain's regions.
    pub region_gpa: u64,
    /// First accessor address (guest virtual, page aligned).
    pub accessor_start: u64,
    /// End of the accessor range (exclusive, page aligned).
    pub accessor_end: u64,
}

/// `struct kvm_isolate_ctl_entry`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CtlEntry {
    /// The domain (its view).
    pub domain: u32,
    /// Zero.
    pub pad: u32,
    /// The entry point (guest virtual).
    pub gva: u64,
    /// What the domain's code maps `gva` to.
    pub gpa: u64,
}

/// `struct kvm_isolate_ctl_region`: one of a domain's regions.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CtlRegion {
    /// The domain (its view).
    pub domain: u32,
    /// Its number among the domain's regions, in the order the guest gave them (from 0).
    pub index: u32,
    /// Its first byte (guest physical).
    pub gpa: u64,
    /// Its pages.
    pub npages: u64,
    /// The domain's rights on it, `ACCESS_*`.
    pub access: u32,
    /// Zero.
    pub pad: u32,
}

/// `struct kvm_isolate_ctl_code_name`: guest code the guest named (`KVM_HC_ISOLATE_CODE_NAME`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CtlCodeName {
    /// Its first byte (guest virtual).
    pub start: u64,
    /// Its bytes.
    pub size: u64,
    /// When it was named and when retired (`u64::MAX`: not yet), as [`CtlRecord::time_ns`]:
    /// it names a record's RIP in the range if the record is from that time.
    pub since_ns: u64,
    /// See `since_ns`.
    pub until_ns: u64,
    /// The guest's name for it: printable ASCII, NUL-padded.
    pub name: [u8; crate::abi::NAME_LEN],
}

impl Default for CtlCodeName {
    fn default() -> Self {
        CtlCodeName {
            start: 0,
            size: 0,
            since_ns: 0,
            until_ns: 0,
            name: [0; crate::abi::NAME_LEN],
        }
    }
}

/// `struct kvm_isolate_ctl_record`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CtlRecord {
    /// Sequence number in the VM's log: records offered before it that were not repeats, so the
    /// gap between two records is the number dropped between them.
    pub seq: u64,
    /// Host `CLOCK_MONOTONIC`, ns, of the first occurrence.
    pub time_ns: u64,
    /// Guest RIP.
    pub rip: u64,
    /// Guest linear address, or `GVA_UNKNOWN`.
    pub gva: u64,
    /// Guest physical address.
    pub gpa: u64,
    /// VM id.
    pub vm: u32,
    /// vCPU id.
    pub vcpu: u32,
    /// The vCPU's view.
    pub view: u32,
    /// The domain whose region or view it was.
    pub domain: u32,
    /// The right the access needed.
    pub access: u32,
    /// `LOG_*`.
    pub verdict: u32,
    /// Host `CLOCK_MONOTONIC`, ns, of the last occurrence (`time_ns` if `count` is 1).
    pub last_ns: u64,
    /// Occurrences: 1, plus the identical violations compressed into this record.
    pub count: u64,
}

/// `struct kvm_isolate_ctl_mode`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CtlMode {
    /// VM id.
    pub vm: u32,
    /// Domain, 0 for the VM.
    pub domain: u32,
    /// `MODE_*`.
    pub mode: u32,
    /// `DENY_*` or `DENY_KEEP`.
    pub deny: u32,
}

/// `struct kvm_isolate_ctl_lock`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CtlLock {
    /// VM id.
    pub vm: u32,
    /// 1: lock, 0: unlock.
    pub lock: u32,
}

const IOC_WRITE: u32 = 1;
const IOC_READ: u32 = 2;

const fn ioc(dir: u32, nr: u32, size: usize) -> u32 {
    (dir << 30) | ((size as u32) << 16) | (CTL_TYPE << 8) | nr
}

/// `KVM_ISOLATE_CTL_VERSION`.
pub const CTL_VERSION: u32 = ioc(0, 0, 0);
/// `KVM_ISOLATE_CTL_LIST`.
pub const CTL_LIST: u32 = ioc(IOC_READ | IOC_WRITE, 1, core::mem::size_of::<CtlArray>());
/// `KVM_ISOLATE_CTL_DOMAINS`.
pub const CTL_DOMAINS: u32 = ioc(IOC_READ | IOC_WRITE, 2, core::mem::size_of::<CtlArray>());
/// `KVM_ISOLATE_CTL_SET_MODE`.
pub const CTL_SET_MODE: u32 = ioc(IOC_WRITE, 3, core::mem::size_of::<CtlMode>());
/// `KVM_ISOLATE_CTL_LOCK`.
pub const CTL_LOCK: u32 = ioc(IOC_WRITE, 4, core::mem::size_of::<CtlLock>());
/// `KVM_ISOLATE_CTL_PROFILE_GET`.
pub const CTL_PROFILE_GET: u32 = ioc(IOC_READ | IOC_WRITE, 5, core::mem::size_of::<CtlArray>());
/// `KVM_ISOLATE_CTL_PROFILE_SET`.
pub const CTL_PROFILE_SET: u32 = ioc(IOC_WRITE, 6, core::mem::size_of::<CtlArray>());
/// `KVM_ISOLATE_CTL_LOG_READ`.
pub const CTL_LOG_READ: u32 = ioc(IOC_READ | IOC_WRITE, 7, core::mem::size_of::<CtlArray>());
/// `KVM_ISOLATE_CTL_ENTRIES_GET`.
pub const CTL_ENTRIES_GET: u32 = ioc(IOC_READ | IOC_WRITE, 8, core::mem::size_of::<CtlArray>());
/// `KVM_ISOLATE_CTL_ENTRIES_SET`.
pub const CTL_ENTRIES_SET: u32 = ioc(IOC_WRITE, 9, core::mem::size_of::<CtlArray>());
/// `KVM_ISOLATE_CTL_REGIONS_GET`.
pub const CTL_REGIONS_GET: u32 = ioc(IOC_READ | IOC_WRITE, 10, core::mem::size_of::<CtlArray>());
/// `KVM_ISOLATE_CTL_CODE_NAMES_GET`.
pub const CTL_CODE_NAMES_GET: u32 = ioc(IOC_READ | IOC_WRITE, 11, core::mem::size_of::<CtlArray>());
