// SPDX-License-Identifier: GPL-2.0

//! kvm-isolate guest module: asks the host to hide this guest's module secrets.
//!
//! At load it checks that it runs under KVM (the hypervisor `CPUID` leaves carry KVM's
//! signature) and refuses to load elsewhere, asks the host whether it runs kvm-isolate, which
//! ABI version and what this CPU can use (VMFUNC, #VE), and where #VE is offered checks it end
//! to end. Then the guest administrator protects loaded modules by name through configfs
//! (`/sys/kernel/config/kvm_isolate/`, see `Documentation/kvm-isolate/guest.rst`): a module's
//! code becomes a domain's, its functions the domain's entry points, and the sections or
//! symbols the administrator names its regions; the module is pinned while its domain lives.
//! A module can also protect itself: `kvm_isolate_protect_self()` (`<linux/kvm_isolate_guest.h>`,
//! exported by `kvm_isolate_guest_api.c`) does the same from its own code.

use core::{
    ffi::{c_int, c_uint, c_void},
    mem::ManuallyDrop,
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
};
use kernel::{
    configfs::{self, configfs_attrs},
    kvm_isolate::{
        guest::{
            self, GuestPage, RebootHandler, RebootRegistration, VeHandler, VeInfoPage,
            VeRegistration,
        },
        hw,
        loaded_module::{self, Area, LoadedModule, ModulePage, ModuleWatch, ModuleWatcher},
    },
    new_mutex,
    page::PAGE_SIZE,
    prelude::*,
    str::CString,
    sync::{global_lock, Mutex}, //
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
    abi_result(r)
}

/// The kernel error for a kvm-isolate call's return value: ABI errors are negative errno
/// values, but for `KVM_ENOSYS` (no such call).
fn abi_result(r: u64) -> Result<u64> {
    match r as i64 {
        0.. => Ok(r),
        -1000 => Err(ENOSYS),
        // CAST: ABI error codes are small.
        e => Err(Error::from_errno(e as i32)),
    }
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

/// The features the host offered at load (`FEATURE_*`), for `abi`.
static FEATURES: AtomicU64 = AtomicU64::new(0);
/// The host's ABI version, 0 without kvm-isolate.
static VERSION: AtomicU64 = AtomicU64::new(0);

#[pin_data]
struct KvmIsolateGuest {
    #[pin]
    config: configfs::Subsystem<Admin>,
    /// Destroys the live domains before a reboot.
    _reboot: RebootRegistration<DestroyAtReboot>,
    /// Names each module's code to the host as it loads.
    _names: ModuleWatch<NameModules>,
}

/// Whether the host refused a name already (said once).
static NAME_REFUSED: AtomicBool = AtomicBool::new(false);

/// Names guest code `[start, start + size)` `name` to the host (`KVM_HC_ISOLATE_CODE_NAME`,
/// 8 bytes a call), for its log and profiles: a log record's RIP then reads `ki_rogue+0x1b`.
/// Names decide nothing on the host, so a refusal (a full table) is only said, once.
fn name_code(name: &[u8], start: u64, size: u64) {
    if VERSION.load(Ordering::Relaxed) == 0 || size == 0 {
        return;
    }
    let named = (|| -> Result {
        for (i, chunk) in name.chunks(8).take(abi::NAME_LEN / 8).enumerate() {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            // CAST: at most `NAME_LEN`.
            let offset = (i * 8) as u64;
            // SAFETY: a name takes no right.
            unsafe {
                call(
                    abi::HC_CODE_NAME,
                    [start, size, offset, u64::from_le_bytes(w)],
                )
            }?;
        }
        Ok(())
    })();
    if let Err(e) = named {
        if !NAME_REFUSED.swap(true, Ordering::Relaxed) {
            pr_warn!(
                "the host refused a code name (errno {}): its log shows addresses only\n",
                -e.to_errno()
            );
        }
    }
}

/// Names each module's code as it comes, before its init runs (a rogue's attack from its init
/// is then logged under its name).
struct NameModules;

impl ModuleWatcher for NameModules {
    fn coming(name: &CStr, text: usize, text_len: usize) {
        // CAST: addresses and sizes are 64 bits.
        name_code(name.to_bytes(), text as u64, text_len as u64);
    }
}

/// The domains this module made and has not destroyed: bit `d` of word `d / 64`.
static LIVE: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];

fn set_live(d: u8, live: bool) {
    let (word, bit) = (usize::from(d) / 64, 1u64 << (d % 64));
    if live {
        LIVE[word].fetch_or(bit, Ordering::AcqRel);
    } else {
        LIVE[word].fetch_and(!bit, Ordering::AcqRel);
    }
}

/// A reboot keeps the VM, and with it the domains: the next boot's kernel would find its memory
/// carved up by the last one's modules. So before a reboot, and at a panic (which restarts the
/// guest with no reboot notifier), each live domain goes (unless the VM is locked: then they
/// stay, and the host's administrator must deal with the next boot).
struct DestroyAtReboot;

impl RebootHandler for DestroyAtReboot {
    fn on_reboot() {
        // The names go too: the next boot's code lies elsewhere.
        if VERSION.load(Ordering::Relaxed) != 0 {
            // SAFETY: removing names takes no right.
            let _ = unsafe { call(abi::HC_CODE_NAME, [0; 4]) };
        }
        for d in 1..=u8::MAX {
            if LIVE[usize::from(d) / 64].load(Ordering::Acquire) & (1 << (d % 64)) == 0 {
                continue;
            }
            // SAFETY: the kernel is going down; what the domain took goes back to it.
            match unsafe { call(abi::HC_DOMAIN_DESTROY, [u64::from(d), 0, 0, 0]) } {
                Ok(_) => {
                    set_live(d, false);
                    pr_info!("domain {d} destroyed before the reboot\n");
                }
                Err(e) => pr_warn!(
                    "domain {d} stays after the reboot (errno {}): the next boot runs under it\n",
                    -e.to_errno()
                ),
            }
        }
    }
}

/// The guest administrator's interface: `/sys/kernel/config/kvm_isolate/`. `mkdir NAME`
/// protects the loaded module NAME; `abi` says what the host offers; writing `1` to `lock`
/// locks the VM's kvm-isolate configuration (the guest can then only tighten it).
#[pin_data]
struct Admin {
    /// This module, which does not protect itself.
    this: &'static ThisModule,
}

/// A module this one protected: by the administrator (its directory holds the pin), or by
/// itself through the kernel API (then the pin is kept here, for good).
struct Known {
    /// Its `struct module`, as an identity ([`LoadedModule::id`]).
    module: usize,
    name: CString,
    domain: u8,
    own: Option<SelfProtected>,
}

/// A module that protected itself (`kvm_isolate_protect_self()`).
struct SelfProtected {
    /// The pin: a module that protects itself stays protected until the guest reboots. (So
    /// this module, whose API it called, cannot be unloaded before it: none is left at exit.)
    _module: LoadedModule,
    code_pages: usize,
    entries: usize,
    regions: KVec<Region>,
}

global_lock! {
    // SAFETY: initialized first thing in the module's init, before configfs or the API (whose
    // users cannot resolve its symbol before the init returns) can use it.
    unsafe(uninit) static PROTECTED: Mutex<KVec<Known>> = KVec::new();
}

impl kernel::InPlaceModule for KvmIsolateGuest {
    fn init(module: &'static ThisModule) -> impl PinInit<Self, Error> {
        // SAFETY: once, before anything else uses the lock.
        unsafe { PROTECTED.init() };
        let probed = (|| -> Result {
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
                    VERSION.store(version, Ordering::Relaxed);
                    FEATURES.store(features, Ordering::Relaxed);
                    // The kernel's image, for the host's tools: its code moves with KASLR.
                    match loaded_module::kernel_text() {
                        // CAST: addresses are 64 bits.
                        Some((t, end)) => name_code(b"vmlinux", t as u64, (end - t) as u64),
                        None => {
                            pr_info!("kallsyms names no kernel code: it is not named to the host\n")
                        }
                    }
                }
            }
            Ok(())
        })();
        let item_type = configfs_attrs! {
            container: configfs::Subsystem<Admin>,
            data: Admin,
            child: Protected,
            attributes: [
                abi: 0,
                lock: 1,
                modules: 2,
            ],
        };
        try_pin_init!(Self {
            config <- {
                probed?;
                configfs::Subsystem::new(
                    c"kvm_isolate",
                    item_type,
                    try_pin_init!(Admin { this: module }),
                )
            },
            _reboot: RebootRegistration::new()?,
            _names: ModuleWatch::new()?,
        })
    }
}

/// Skips ASCII white space around `s`.
fn trim(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &s[start..end]
}

/// Writes `args` into `page`; returns the length.
fn show_fmt(page: &mut [u8; PAGE_SIZE], args: core::fmt::Arguments<'_>) -> Result<usize> {
    let mut w = kernel::str::Formatter::new(&mut page[..]);
    core::fmt::Write::write_fmt(&mut w, args).map_err(|_| EFBIG)?;
    Ok(w.bytes_written())
}

#[vtable]
impl configfs::AttributeOperations<0> for Admin {
    type Data = Admin;

    /// `abi`: the host's kvm-isolate ABI version (0: none) and the features it offers here.
    fn show(_admin: &Admin, page: &mut [u8; PAGE_SIZE]) -> Result<usize> {
        let f = FEATURES.load(Ordering::Relaxed);
        let yes = |bit| if f & bit != 0 { "yes" } else { "no" };
        show_fmt(
            page,
            format_args!(
                "version {}\nvmfunc {}\nve {}\n",
                VERSION.load(Ordering::Relaxed),
                yes(abi::FEATURE_VMFUNC),
                yes(abi::FEATURE_VE)
            ),
        )
    }
}

/// Whether the administrator locked the VM through `lock`.
static LOCKED: AtomicU64 = AtomicU64::new(0);

#[vtable]
impl configfs::AttributeOperations<1> for Admin {
    type Data = Admin;

    /// `lock`: 1 once locked.
    fn show(_admin: &Admin, page: &mut [u8; PAGE_SIZE]) -> Result<usize> {
        show_fmt(page, format_args!("{}\n", LOCKED.load(Ordering::Relaxed)))
    }

    /// Writing `1` locks: from then on the guest can only tighten (no domain is destroyed, no
    /// module unpinned, no mode loosened). Nothing else is accepted.
    fn store(_admin: &Admin, page: &[u8]) -> Result {
        if trim(page) != b"1" {
            pr_err!("lock: write 1 to lock; nothing changed\n");
            return Err(EINVAL);
        }
        // Not between another request's hypercalls.
        let _known = PROTECTED.lock();
        // SAFETY: locking takes no right from any memory.
        unsafe { call(abi::HC_LOCK, [0; 4]) }.inspect_err(|e| {
            pr_err!("lock: the host refused (errno {})\n", -e.to_errno());
        })?;
        LOCKED.store(1, Ordering::Relaxed);
        pr_info!("kvm-isolate configuration locked\n");
        Ok(())
    }
}

#[vtable]
impl configfs::AttributeOperations<2> for Admin {
    type Data = Admin;

    /// `modules`: one line per protected module: its name, its domain, and who protected it
    /// (`admin` through this directory, `self` through the kernel API).
    fn show(_admin: &Admin, page: &mut [u8; PAGE_SIZE]) -> Result<usize> {
        let known = PROTECTED.lock();
        let mut w = kernel::str::Formatter::new(&mut page[..]);
        for k in known.iter() {
            let how = if k.own.is_some() { "self" } else { "admin" };
            core::fmt::Write::write_fmt(
                &mut w,
                format_args!("{} {} {how}\n", k.name.to_str().unwrap_or("?"), k.domain),
            )
            .map_err(|_| EFBIG)?;
        }
        Ok(w.bytes_written())
    }
}

/// A region the administrator gave a protected module.
struct Region {
    /// What the administrator named: a section or a symbol.
    name: CString,
    /// Its first byte.
    start: usize,
    /// Its pages.
    pages: usize,
    /// The module's rights on it, `ACCESS_*`.
    access: u64,
}

impl Region {
    fn try_clone(&self) -> Result<Region> {
        Ok(Region {
            name: (&*self.name).try_into()?,
            ..*self
        })
    }
}

/// A protected module: a directory `/sys/kernel/config/kvm_isolate/NAME`.
#[pin_data(PinnedDrop)]
struct Protected {
    /// The module, pinned while its domain lives: forgotten (pinned for good) if the host
    /// refuses to destroy the domain (a locked VM).
    module: ManuallyDrop<LoadedModule>,
    /// Its domain.
    domain: u8,
    /// Its code pages and entry points, as registered.
    code_pages: usize,
    entries: usize,
    /// The module protected itself: this directory only shows it, and `rmdir` leaves the
    /// domain (and the module's own pin) alone.
    adopted: bool,
    #[pin]
    state: Mutex<ProtectedState>,
}

/// What the administrator changed after `mkdir`.
struct ProtectedState {
    regions: KVec<Region>,
    /// `MODE_*`; `MODE_INHERIT` until set.
    mode: u64,
}

/// Adds `pages` to the domain as its code (`ADD_CODE`) or as a region with `access`
/// (`ADD_REGION`; `access` is unused for code), one call per run of pages that are contiguous
/// both virtually and physically.
fn add_runs(domain: u8, pages: &[ModulePage], code: bool, access: u64) -> Result {
    let page = PAGE_SIZE as u64;
    let mut i = 0;
    while i < pages.len() {
        let mut n = 1;
        while i + n < pages.len()
            && pages[i + n].va == pages[i].va + n as u64 * page
            && pages[i + n].pa == pages[i].pa + n as u64 * page
        {
            n += 1;
        }
        let d = u64::from(domain);
        // CAST: a run has at most the module's pages.
        let n64 = n as u64;
        // SAFETY: the pages are the module's own (its code, or data the administrator gave
        // it): what the domain takes from the rest of the guest is what the administrator
        // asked for.
        unsafe {
            if code {
                call(abi::HC_DOMAIN_ADD_CODE, [d, pages[i].va, pages[i].pa, n64])?;
            } else {
                call(abi::HC_DOMAIN_ADD_REGION, [d, pages[i].pa, n64, access])?;
            }
        }
        i += n;
    }
    Ok(())
}

/// Makes `module` a domain: its code, and its functions as entry points. Returns the domain
/// and how many code pages and entry points it registered; on error destroys the domain and
/// says so.
fn register(module: &LoadedModule, gate: Option<&Gate>) -> Result<(u8, usize, usize)> {
    register_domain(module, gate).inspect_err(|e| {
        pr_err!(
            "{}: the host refused its domain (errno {})\n",
            module.name(),
            -e.to_errno()
        );
    })
}

fn register_domain(module: &LoadedModule, gate: Option<&Gate>) -> Result<(u8, usize, usize)> {
    let (code, entries) = match gate {
        None => {
            let (text, len) = module.area(Area::Text);
            (module.pages(text, len)?, module.functions()?)
        }
        Some(g) => g.code_and_entries(module)?,
    };
    // SAFETY: a new domain takes nothing yet.
    let domain = unsafe { call(abi::HC_DOMAIN_CREATE, [0; 4]) }?;
    // CAST: domains are views, below 256.
    let domain = domain as u8;
    let d = u64::from(domain);
    let filled = (|| -> Result {
        // The domain's own mode is off while its code and entries go in, so that no call
        // into the module is denied half-way; `mode` sets it afterwards (inherit by default).
        // SAFETY: a mode change takes no right.
        unsafe { call(abi::HC_SET_MODE, [d, abi::MODE_OFF, 0, 0]) }?;
        // The module's name, for the host's tools (its log and `show`): 16 bytes a call.
        let name = module.name().to_bytes();
        for (i, chunk) in name.chunks(16).take(abi::NAME_LEN / 16).enumerate() {
            let mut b = [0u8; 16];
            b[..chunk.len()].copy_from_slice(chunk);
            let word = |k: usize| {
                let mut w = [0u8; 8];
                w.copy_from_slice(&b[k..k + 8]);
                u64::from_le_bytes(w)
            };
            // CAST: at most `NAME_LEN`.
            let offset = (i * 16) as u64;
            // SAFETY: a name takes no right.
            unsafe { call(abi::HC_DOMAIN_NAME, [d, offset, word(0), word(8)]) }?;
        }
        add_runs(domain, &code, true, 0)?;
        for &e in entries.iter() {
            // CAST: addresses are 64 bits.
            // SAFETY: an entry point takes no right.
            unsafe { call(abi::HC_DOMAIN_ADD_ENTRY, [d, e as u64, 0, 0]) }?;
        }
        // SAFETY: as above.
        unsafe { call(abi::HC_SET_MODE, [d, abi::MODE_INHERIT, 0, 0]) }?;
        Ok(())
    })();
    if let Err(e) = filled {
        // SAFETY: destroying the new domain gives back what it took.
        let _ = unsafe { call(abi::HC_DOMAIN_DESTROY, [d, 0, 0, 0]) };
        return Err(e);
    }
    set_live(domain, true);
    Ok((domain, code.len(), entries.len()))
}

#[vtable]
impl configfs::GroupOperations for Admin {
    type Child = Protected;

    /// `mkdir NAME`: protect the loaded module NAME; for a module that protected itself, show
    /// its domain here.
    fn make_group(&self, name: &CStr) -> Result<impl PinInit<configfs::Group<Protected>, Error>> {
        let mut known = PROTECTED.lock();
        if VERSION.load(Ordering::Relaxed) == 0 {
            pr_err!("{name}: the host does not run kvm-isolate\n");
            return Err(ENODEV);
        }
        let module = LoadedModule::get(name).inspect_err(|e| match *e {
            ENOENT => pr_err!("{name}: no such module is loaded\n"),
            _ => pr_err!("{name}: the module is loading or unloading; try again\n"),
        })?;
        if module.is(self.this) {
            pr_err!("{name}: kvm_isolate_guest does not protect itself\n");
            return Err(EINVAL);
        }
        let dir_name: CString = name.try_into()?;
        let (domain, code_pages, entries, regions, adopted) =
            match known.iter().find(|k| k.module == module.id()) {
                // configfs makes one directory of a name: only a module's own protection is
                // known without one.
                Some(Known { own: None, .. }) => return Err(EEXIST),
                Some(Known {
                    own: Some(own),
                    domain,
                    ..
                }) => {
                    let mut regions = KVec::with_capacity(own.regions.len(), GFP_KERNEL)?;
                    for r in own.regions.iter() {
                        regions.push(r.try_clone()?, GFP_KERNEL)?;
                    }
                    pr_info!(
                        "{name}: protects itself as domain {domain}; its directory shows it \
                         (rmdir leaves it protected)\n"
                    );
                    (*domain, own.code_pages, own.entries, regions, true)
                }
                None => {
                    let known_name: CString = name.try_into()?;
                    known.reserve(1, GFP_KERNEL)?;
                    let (domain, code_pages, entries) = register(&module, None)?;
                    pr_info!(
                        "{name}: protected as domain {domain}: {code_pages} code pages, \
                         {entries} entry points\n"
                    );
                    known
                        .push_within_capacity(Known {
                            module: module.id(),
                            name: known_name,
                            domain,
                            own: None,
                        })
                        .map_err(|_| ENOMEM)?;
                    (domain, code_pages, entries, KVec::new(), false)
                }
            };
        let item_type = configfs_attrs! {
            container: configfs::Group<Protected>,
            data: Protected,
            attributes: [
                domain: 0,
                regions: 1,
                mode: 2,
            ],
        };
        Ok(configfs::Group::new(
            dir_name,
            item_type,
            try_pin_init!(Protected {
                module: ManuallyDrop::new(module),
                domain,
                code_pages,
                entries,
                adopted,
                state <- new_mutex!(ProtectedState {
                    regions,
                    mode: abi::MODE_INHERIT,
                }),
            }),
        ))
    }
}

#[pinned_drop]
impl PinnedDrop for Protected {
    /// `rmdir NAME`: destroy the domain and unpin the module; if the host refuses (a locked
    /// VM), the domain stays and so does the pin.
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: nothing here is moved out of the pinned `self`; `module` is taken once.
        let this = unsafe { self.get_unchecked_mut() };
        let name = this.module.name();
        if this.adopted {
            pr_info!(
                "{name}: directory removed; the module protects itself, domain {} stays\n",
                this.domain
            );
            // SAFETY: dropped once, here; never used again.
            unsafe { ManuallyDrop::drop(&mut this.module) };
            return;
        }
        let mut known = PROTECTED.lock();
        // SAFETY: destroying the domain gives back what it took.
        match unsafe { call(abi::HC_DOMAIN_DESTROY, [u64::from(this.domain), 0, 0, 0]) } {
            Ok(_) => {
                set_live(this.domain, false);
                let id = this.module.id();
                known.retain(|k| k.module != id);
                pr_info!(
                    "{name}: domain {} destroyed, module unpinned\n",
                    this.domain
                );
                // SAFETY: dropped once, here; never used again.
                unsafe { ManuallyDrop::drop(&mut this.module) };
            }
            Err(e) => pr_warn!(
                "{name}: the host keeps domain {} (errno {}): the module stays pinned\n",
                this.domain,
                -e.to_errno()
            ),
        }
    }
}

/// Parses `r`, `rw`, `rx`, ... into `ACCESS_*` bits.
fn parse_access(s: &[u8]) -> Option<u64> {
    let mut a = 0;
    for &c in s {
        let bit = match c {
            b'r' => abi::ACCESS_R,
            b'w' => abi::ACCESS_W,
            b'x' => abi::ACCESS_X,
            _ => return None,
        };
        if a & bit != 0 {
            return None;
        }
        a |= bit;
    }
    (a != 0).then_some(a)
}

/// Where the section or symbol `what` of `module` is: its start and length. Sections are the
/// loader's areas: `.data` (with `.bss`), `.rodata`, `.data..ro_after_init`; anything else is a
/// data symbol, which must start on a page and fill whole pages (a region is pages: a smaller
/// one would take its neighbours with it).
fn locate(module: &LoadedModule, what: &CStr) -> Result<(usize, usize)> {
    let name = module.name();
    let area = match what.to_bytes() {
        b".data" => Some(Area::Data),
        b".rodata" => Some(Area::Rodata),
        b".data..ro_after_init" => Some(Area::RoAfterInit),
        b".bss" => {
            pr_err!("{name}: .bss is part of .data (the loader keeps them together): name .data or a symbol\n");
            return Err(EINVAL);
        }
        b".text" => {
            pr_err!("{name}: .text is the domain's code already, not a region\n");
            return Err(EINVAL);
        }
        _ => None,
    };
    if let Some(area) = area {
        let (start, len) = module.area(area);
        if len == 0 {
            pr_err!("{name}: has no {what} section\n");
            return Err(ENOENT);
        }
        return Ok((start, len));
    }
    let Some(sym) = module.symbol(what) else {
        pr_err!("{name}: no section or symbol {what}\n");
        return Err(ENOENT);
    };
    if sym.is_function() {
        pr_err!("{name}: {what} is a function, part of the domain's code already\n");
        return Err(EINVAL);
    }
    if sym.addr % PAGE_SIZE != 0 || sym.size == 0 || sym.size % PAGE_SIZE != 0 {
        pr_err!(
            "{name}: {what} ({:#x}, {} bytes) does not fill whole pages: align it to a page \
             and pad it to one (__aligned(PAGE_SIZE)), or name its section\n",
            sym.addr,
            sym.size
        );
        return Err(EINVAL);
    }
    Ok((sym.addr, sym.size))
}

#[vtable]
impl configfs::AttributeOperations<0> for Protected {
    type Data = Protected;

    /// `domain`: the module's domain, its code pages and entry points.
    fn show(p: &Protected, page: &mut [u8; PAGE_SIZE]) -> Result<usize> {
        show_fmt(
            page,
            format_args!(
                "{} code_pages {} entries {}\n",
                p.domain, p.code_pages, p.entries
            ),
        )
    }
}

#[vtable]
impl configfs::AttributeOperations<1> for Protected {
    type Data = Protected;

    /// `regions`: one line per region: name, rights, first address, pages.
    fn show(p: &Protected, page: &mut [u8; PAGE_SIZE]) -> Result<usize> {
        let state = p.state.lock();
        let mut w = kernel::str::Formatter::new(&mut page[..]);
        for r in state.regions.iter() {
            let bit = |b, c| if r.access & b != 0 { c } else { "-" };
            core::fmt::Write::write_fmt(
                &mut w,
                format_args!(
                    "{} {}{}{} {:#x} {}\n",
                    r.name.to_str().unwrap_or("?"),
                    bit(abi::ACCESS_R, "r"),
                    bit(abi::ACCESS_W, "w"),
                    bit(abi::ACCESS_X, "x"),
                    r.start,
                    r.pages
                ),
            )
            .map_err(|_| EFBIG)?;
        }
        Ok(w.bytes_written())
    }

    /// Writing `NAME RIGHTS` (a section or a data symbol; `r`, `rw`, ...) makes it one of the
    /// domain's regions: only the module's code has `RIGHTS` on it.
    fn store(p: &Protected, page: &[u8]) -> Result {
        let name = p.module.name();
        let line = trim(page);
        let mut words = line
            .split(|c| c.is_ascii_whitespace())
            .filter(|w| !w.is_empty());
        let (Some(what), Some(rights), None) = (words.next(), words.next(), words.next()) else {
            pr_err!("{name}: regions: write \"SECTION-OR-SYMBOL RIGHTS\", e.g. \".data rw\"\n");
            return Err(EINVAL);
        };
        let Some(access) = parse_access(rights) else {
            pr_err!("{name}: regions: rights are r, w and x, e.g. rw\n");
            return Err(EINVAL);
        };
        let mut owned = KVec::with_capacity(what.len() + 1, GFP_KERNEL)?;
        owned.extend_from_slice(what, GFP_KERNEL)?;
        owned.push(0, GFP_KERNEL)?;
        let what = CStr::from_bytes_with_nul(&owned).map_err(|_| EINVAL)?;
        let mut state = p.state.lock();
        if state.regions.iter().any(|r| &*r.name == what) {
            pr_err!("{name}: {what} is a region already\n");
            return Err(EEXIST);
        }
        let (start, len) = locate(&p.module, what)?;
        let pages = p.module.pages(start, len)?;
        // Everything that can fail here fails before the host is asked.
        let region_name: CString = what.try_into()?;
        state.regions.reserve(1, GFP_KERNEL)?;
        add_runs(p.domain, &pages, false, access).inspect_err(|e| {
            pr_err!(
                "{name}: the host refused region {what} (errno {})\n",
                -e.to_errno()
            );
        })?;
        pr_info!(
            "{name}: {what} ({} pages at {start:#x}) is domain {}'s\n",
            pages.len(),
            p.domain
        );
        state
            .regions
            .push_within_capacity(Region {
                name: region_name,
                start,
                pages: pages.len(),
                access,
            })
            .map_err(|_| ENOMEM)?;
        Ok(())
    }
}

const MODES: [(&[u8], u64); 4] = [
    (b"off", abi::MODE_OFF),
    (b"learn", abi::MODE_LEARN),
    (b"enforce", abi::MODE_ENFORCE),
    (b"inherit", abi::MODE_INHERIT),
];

#[vtable]
impl configfs::AttributeOperations<2> for Protected {
    type Data = Protected;

    /// `mode`: `off`, `learn`, `enforce`, or `inherit` (the VM's, which the host sets).
    fn show(p: &Protected, page: &mut [u8; PAGE_SIZE]) -> Result<usize> {
        let mode = p.state.lock().mode;
        let name = MODES
            .iter()
            .find(|m| m.1 == mode)
            .map_or(&b"?"[..], |m| m.0);
        let len = name.len();
        page[..len].copy_from_slice(name);
        page[len] = b'\n';
        Ok(len + 1)
    }

    fn store(p: &Protected, page: &[u8]) -> Result {
        let name = p.module.name();
        let word = trim(page);
        let Some(&(_, mode)) = MODES.iter().find(|m| m.0 == word) else {
            pr_err!("{name}: mode: off, learn, enforce or inherit\n");
            return Err(EINVAL);
        };
        let mut state = p.state.lock();
        // SAFETY: a mode changes what the host decides about the domain, no right of memory
        // the kernel relies on outside it.
        unsafe { call(abi::HC_SET_MODE, [u64::from(p.domain), mode, 0, 0]) }.inspect_err(|e| {
            pr_err!(
                "{name}: the host refused mode {} (errno {})\n",
                core::str::from_utf8(word).unwrap_or("?"),
                -e.to_errno()
            )
        })?;
        state.mode = mode;
        Ok(())
    }
}

/// `struct kvm_isolate_region` of `<linux/kvm_isolate_guest.h>` (whose C side checks the size).
#[repr(C)]
pub struct ApiRegion {
    start: *const c_void,
    size: usize,
    access: u32,
}

const _: () = assert!(core::mem::size_of::<ApiRegion>() == 24);

/// `struct kvm_isolate_gate` of `<linux/kvm_isolate_guest.h>` (whose C side checks the size).
#[repr(C)]
pub struct ApiGate {
    code: *const c_void,
    func: *const c_void,
    end: *const c_void,
    data: *mut c_void,
    domain: *mut c_int,
}

const _: () = assert!(core::mem::size_of::<ApiGate>() == 40);

/// A module's gate (`KVM_ISOLATE_GATE`), its layout checked: four pages in the module's code
/// (the caller's, the entry, the return, the function's page, which holds the function after
/// its first byte), and a data page.
struct Gate {
    code: usize,
    data: usize,
}

impl Gate {
    /// `api` as `module`'s gate, if `KVM_ISOLATE_GATE` laid it out.
    fn new(module: &LoadedModule, api: &ApiGate) -> Result<Gate> {
        let (text, text_len) = module.area(Area::Text);
        let (code, func, end) = (api.code as usize, api.func as usize, api.end as usize);
        let fn_page = code.wrapping_add(3 * PAGE_SIZE);
        let laid_out = code % PAGE_SIZE == 0
            && code >= text
            && code.checked_add(4 * PAGE_SIZE) == Some(end)
            && end <= text + text_len
            && func > fn_page
            && func < end;
        if !laid_out {
            pr_err!(
                "{}: its gate (code {code:#x}, function {func:#x}, end {end:#x}) is not four \
                 pages of its code with the function in the last, as KVM_ISOLATE_GATE lays \
                 it out\n",
                module.name()
            );
            return Err(EINVAL);
        }
        Ok(Gate {
            code,
            data: api.data as usize,
        })
    }

    /// The domain's code, the gate's entry page and its function's page, and its entry
    /// points, their starts (a switchable domain's page starts must all be entry points).
    fn code_and_entries(&self, module: &LoadedModule) -> Result<(KVec<ModulePage>, KVec<usize>)> {
        let mut code = KVec::with_capacity(2, GFP_KERNEL)?;
        let mut entries = KVec::with_capacity(2, GFP_KERNEL)?;
        for page in [self.code + PAGE_SIZE, self.code + 3 * PAGE_SIZE] {
            code.extend_from_slice(&module.pages(page, PAGE_SIZE)?, GFP_KERNEL)?;
            entries.push(page, GFP_KERNEL)?;
        }
        Ok((code, entries))
    }
}

/// The most regions one `kvm_isolate_protect_self()` takes (`KVM_ISOLATE_MAX_SELF_REGIONS`).
const MAX_SELF_REGIONS: usize = 16;

/// What `kvm_isolate_protect_self()` does once its C side checked that `module` is the
/// caller's own: the domain, or a negative errno.
///
/// # Safety
///
/// `module` is a loaded module whose code is running (it called the API); `regions` points to
/// `nr` regions if `nr` is not 0; `gate` is null or points to a gate.
#[no_mangle]
pub unsafe extern "C" fn kvm_isolate_guest_protect(
    module: *mut kernel::bindings::module,
    regions: *const ApiRegion,
    nr: c_uint,
    gate: *const ApiGate,
    vmmcall: bool,
) -> c_int {
    let protected = (|| -> Result<u8> {
        // SAFETY: the caller's module runs its code, so its `struct module` stays for the call.
        let module = unsafe { LoadedModule::pin_running(module) }?;
        // CAST: `c_uint` into `usize` on 64-bit.
        let nr = nr as usize;
        let regions: &[ApiRegion] = match nr {
            0 => &[],
            _ if regions.is_null() => return Err(EINVAL),
            n if n > MAX_SELF_REGIONS => {
                pr_err!(
                    "{}: {n} regions; at most {MAX_SELF_REGIONS}\n",
                    module.name()
                );
                return Err(E2BIG);
            }
            // SAFETY: the caller passes `nr` regions at `regions`.
            n => unsafe { core::slice::from_raw_parts(regions, n) },
        };
        // SAFETY: the caller passes a gate or null.
        protect_self(module, regions, unsafe { gate.as_ref() }, vmmcall)
    })();
    match protected {
        Ok(domain) => c_int::from(domain),
        Err(e) => e.to_errno(),
    }
}

/// A region's name for `regions`: the data symbol it starts with, else its address.
fn region_name(module: &LoadedModule, start: usize) -> Result<CString> {
    let mut buf = [0u8; 64];
    let mut len = 0;
    module.find_symbol(|n, s| {
        if s.addr != start || s.is_function() {
            return None;
        }
        let b = n.to_bytes();
        len = b.len().min(buf.len());
        buf[..len].copy_from_slice(&b[..len]);
        Some(())
    });
    match core::str::from_utf8(&buf[..len]) {
        Ok(sym) if len > 0 => CString::try_from_fmt(fmt!("{sym}")),
        _ => CString::try_from_fmt(fmt!("{start:#x}")),
    }
}

/// Makes `module` a domain with `api`'s regions, as the module asked for itself; with `gate`,
/// a switchable one whose code is the gate's (which switches with `VMMCALL` if `vmmcall`, else
/// `VMFUNC`). Everything that can fail is checked before the host is asked; if the host
/// refuses, the domain goes and nothing changed.
fn protect_self(
    module: LoadedModule,
    api: &[ApiRegion],
    gate: Option<&ApiGate>,
    vmmcall: bool,
) -> Result<u8> {
    let name = module.name();
    let mut known = PROTECTED.lock();
    if VERSION.load(Ordering::Relaxed) == 0 {
        pr_err!("{name}: the host does not run kvm-isolate\n");
        return Err(ENODEV);
    }
    if known.iter().any(|k| k.module == module.id()) {
        pr_err!("{name}: protected already\n");
        return Err(EEXIST);
    }
    let gate = match gate {
        None => None,
        Some(_) if !vmmcall && FEATURES.load(Ordering::Relaxed) & abi::FEATURE_VMFUNC == 0 => {
            pr_err!("{name}: its gate switches with VMFUNC here, which the host does not offer\n");
            return Err(EOPNOTSUPP);
        }
        Some(g) => Some(Gate::new(&module, g)?),
    };
    // The regions: the module's, and its gate's data page, which only the gate may use.
    let gate_data = gate.as_ref().map(|g| ApiRegion {
        start: g.data as *const c_void,
        size: PAGE_SIZE,
        access: (abi::ACCESS_R | abi::ACCESS_W) as u32,
    });
    let (text, text_len) = module.area(Area::Text);
    let rwx = abi::ACCESS_R | abi::ACCESS_W | abi::ACCESS_X;
    let mut regions = KVec::with_capacity(api.len() + 1, GFP_KERNEL)?;
    let mut pages = KVec::with_capacity(api.len() + 1, GFP_KERNEL)?;
    for (i, r) in Iterator::chain(api.iter(), gate_data.iter()).enumerate() {
        let (start, size, access) = (r.start as usize, r.size, u64::from(r.access));
        let whole = start % PAGE_SIZE == 0 && size != 0 && size % PAGE_SIZE == 0;
        let code = start < text + text_len && start.saturating_add(size) > text;
        let p = match module.pages(start, size) {
            Ok(p) if whole && !code && access != 0 && access & !rwx == 0 => p,
            _ => {
                pr_err!(
                    "{name}: region {i} ({start:#x}, {size} bytes, rights {access:#x}) is not \
                     whole pages of its data with rights r, w, x\n"
                );
                return Err(EINVAL);
            }
        };
        regions.push(
            Region {
                name: region_name(&module, start)?,
                start,
                pages: p.len(),
                access,
            },
            GFP_KERNEL,
        )?;
        pages.push(p, GFP_KERNEL)?;
    }
    let known_name: CString = name.try_into()?;
    known.reserve(1, GFP_KERNEL)?;
    let (domain, code_pages, entries) = register(&module, gate.as_ref())?;
    let d = u64::from(domain);
    let filled = (|| -> Result {
        for (r, p) in regions.iter().zip(pages.iter()) {
            add_runs(domain, p, false, r.access).inspect_err(|e| {
                pr_err!(
                    "{name}: the host refused region {} (errno {}); not protected\n",
                    r.name.to_str().unwrap_or("?"),
                    -e.to_errno()
                )
            })?;
        }
        if gate.is_some() {
            // SAFETY: the domain's code is its gate's, whose every page start is an entry
            // point that is safe to enter with any registers (`<linux/kvm_isolate_guest.h>`).
            unsafe { call(abi::HC_DOMAIN_SWITCHABLE, [d, 0, 0, 0]) }.inspect_err(|e| {
                pr_err!(
                    "{name}: the host refused its gate (errno {}); not protected\n",
                    -e.to_errno()
                )
            })?;
        }
        Ok(())
    })();
    if let Err(e) = filled {
        // SAFETY: destroying the new domain gives back what it took.
        let _ = unsafe { call(abi::HC_DOMAIN_DESTROY, [d, 0, 0, 0]) };
        set_live(domain, false);
        return Err(e);
    }
    pr_info!(
        "{name}: protects itself as domain {domain}: {code_pages} code pages, {entries} entry \
         points, {} regions{}\n",
        regions.len(),
        match gate {
            Some(_) if vmmcall => ", entered through its gate (SWITCH)",
            Some(_) => ", entered through its gate (VMFUNC)",
            None => "",
        }
    );
    known
        .push_within_capacity(Known {
            module: module.id(),
            name: known_name,
            domain,
            own: Some(SelfProtected {
                _module: module,
                code_pages,
                entries,
                regions,
            }),
        })
        .map_err(|_| ENOMEM)?;
    Ok(domain)
}
