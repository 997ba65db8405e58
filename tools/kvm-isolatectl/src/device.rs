// SPDX-License-Identifier: GPL-2.0

//! Access to `/dev/kvm-isolate`: the [`Ctl`] trait and its ioctl implementation [`Device`].

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::io::AsRawFd;

use kvm_isolate_core::ctl::{
    CtlArray, CtlCodeName, CtlDomain, CtlEntry, CtlLock, CtlMode, CtlRecord, CtlRegion, CtlRule,
    CtlVm, CTL_CODE_NAMES_GET, CTL_DOMAINS, CTL_ENTRIES_GET, CTL_ENTRIES_SET, CTL_LIST, CTL_LOCK,
    CTL_LOG_READ, CTL_PROFILE_GET, CTL_PROFILE_SET, CTL_REGIONS_GET, CTL_SET_MODE, CTL_VERSION,
    CTL_VERSION_NR,
};

/// The control plane, one method per ioctl.  Errors carry the kernel's errno.
pub trait Ctl {
    /// `KVM_ISOLATE_CTL_LIST`: every VM.
    fn list(&self) -> io::Result<Vec<CtlVm>>;
    /// `KVM_ISOLATE_CTL_DOMAINS`: the domains of `vm`.
    fn domains(&self, vm: u32) -> io::Result<Vec<CtlDomain>>;
    /// `KVM_ISOLATE_CTL_SET_MODE`.
    fn set_mode(&self, mode: &CtlMode) -> io::Result<()>;
    /// `KVM_ISOLATE_CTL_LOCK`.
    fn lock(&self, lock: &CtlLock) -> io::Result<()>;
    /// `KVM_ISOLATE_CTL_PROFILE_GET`: the profile rules of `vm`.
    fn profile_get(&self, vm: u32) -> io::Result<Vec<CtlRule>>;
    /// `KVM_ISOLATE_CTL_PROFILE_SET`: replace the profile of `vm`.
    fn profile_set(&self, vm: u32, rules: &[CtlRule]) -> io::Result<()>;
    /// `KVM_ISOLATE_CTL_LOG_READ`: take up to `max` records; also returns the dropped count.
    fn log_read(&self, vm: u32, max: u32) -> io::Result<(Vec<CtlRecord>, u64)>;
    /// `KVM_ISOLATE_CTL_ENTRIES_GET`: the entry points of `vm`, sorted by gpa.
    fn entries_get(&self, vm: u32) -> io::Result<Vec<CtlEntry>>;
    /// `KVM_ISOLATE_CTL_ENTRIES_SET`: replace the entry points of `vm` (all checked first).
    fn entries_set(&self, vm: u32, entries: &[CtlEntry]) -> io::Result<()>;
    /// `KVM_ISOLATE_CTL_REGIONS_GET`: the regions of `vm`, by domain and index.
    fn regions_get(&self, vm: u32) -> io::Result<Vec<CtlRegion>>;
    /// `KVM_ISOLATE_CTL_CODE_NAMES_GET`: the code the guest of `vm` named, by start.
    fn code_names_get(&self, vm: u32) -> io::Result<Vec<CtlCodeName>>;
}

/// How often the count protocol retries when the array keeps growing between calls.
const COUNT_RETRIES: usize = 8;

/// The real device.
pub struct Device {
    file: File,
}

/// Why [`Device::open`] failed.
#[derive(Debug)]
pub enum OpenError {
    /// `open()` failed.
    Open(io::Error),
    /// `KVM_ISOLATE_CTL_VERSION` failed.
    Version(io::Error),
    /// The kernel speaks another control-plane version.
    Mismatch(i32),
}

impl Device {
    /// Opens `path` and checks the control-plane version.
    pub fn open(path: &str) -> Result<Self, OpenError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(OpenError::Open)?;
        let dev = Device { file };
        // SAFETY: KVM_ISOLATE_CTL_VERSION is _IO: it takes no argument and touches no user memory.
        let v = unsafe { libc::ioctl(dev.file.as_raw_fd(), CTL_VERSION as _) };
        if v < 0 {
            return Err(OpenError::Version(io::Error::last_os_error()));
        }
        if v as u32 != CTL_VERSION_NR {
            return Err(OpenError::Mismatch(v));
        }
        Ok(dev)
    }

    /// One ioctl whose argument is a `CtlArray`.
    fn array_ioctl(&self, nr: u32, arr: &mut CtlArray) -> io::Result<()> {
        // SAFETY: `arr` is a valid, exclusively borrowed `struct kvm_isolate_ctl_array` for the
        // duration of the call, and every caller makes `arr.ptr` point to at least `arr.count`
        // writable (or, for PROFILE_SET and ENTRIES_SET, readable) elements of the type that `nr`
        // transfers.
        let r = unsafe { libc::ioctl(self.file.as_raw_fd(), nr as _, arr as *mut CtlArray) };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    /// The count protocol of LIST, DOMAINS, PROFILE_GET and ENTRIES_GET: ask with `count = 0` to
    /// learn the number, allocate, ask again; the kernel copies nothing if it does not fit, so
    /// retry if it grew in between.
    fn get_array<T: Copy + Default>(&self, nr: u32, vm: u32) -> io::Result<Vec<T>> {
        let mut room = 0usize;
        for _ in 0..COUNT_RETRIES {
            let mut buf = vec![T::default(); room];
            let mut arr = CtlArray {
                vm,
                count: u32::try_from(room)
                    .map_err(|_| io::Error::from_raw_os_error(libc::E2BIG))?,
                ptr: buf.as_mut_ptr() as u64,
                dropped: 0,
            };
            self.array_ioctl(nr, &mut arr)?;
            let n = arr.count as usize;
            if n <= room {
                buf.truncate(n);
                return Ok(buf);
            }
            // A little slack so that one more VM/rule appearing does not cost another round.
            room = n + n / 8 + 1;
        }
        Err(io::Error::from_raw_os_error(libc::EAGAIN))
    }
}

impl Ctl for Device {
    fn list(&self) -> io::Result<Vec<CtlVm>> {
        self.get_array(CTL_LIST, 0)
    }

    fn domains(&self, vm: u32) -> io::Result<Vec<CtlDomain>> {
        self.get_array(CTL_DOMAINS, vm)
    }

    fn set_mode(&self, mode: &CtlMode) -> io::Result<()> {
        let mut m = *mode;
        // SAFETY: `m` is a valid `struct kvm_isolate_ctl_mode` living for the whole call; the
        // ioctl (_IOW) only reads it.
        let r = unsafe {
            libc::ioctl(
                self.file.as_raw_fd(),
                CTL_SET_MODE as _,
                &mut m as *mut CtlMode,
            )
        };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    fn lock(&self, lock: &CtlLock) -> io::Result<()> {
        let mut l = *lock;
        // SAFETY: `l` is a valid `struct kvm_isolate_ctl_lock` living for the whole call; the
        // ioctl (_IOW) only reads it.
        let r =
            unsafe { libc::ioctl(self.file.as_raw_fd(), CTL_LOCK as _, &mut l as *mut CtlLock) };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    fn profile_get(&self, vm: u32) -> io::Result<Vec<CtlRule>> {
        self.get_array(CTL_PROFILE_GET, vm)
    }

    fn profile_set(&self, vm: u32, rules: &[CtlRule]) -> io::Result<()> {
        let mut arr = CtlArray {
            vm,
            count: u32::try_from(rules.len())
                .map_err(|_| io::Error::from_raw_os_error(libc::E2BIG))?,
            ptr: rules.as_ptr() as u64,
            dropped: 0,
        };
        // `array_ioctl` holds: `ptr` points to `count` rules, which PROFILE_SET only reads.
        self.array_ioctl(CTL_PROFILE_SET, &mut arr)
    }

    fn log_read(&self, vm: u32, max: u32) -> io::Result<(Vec<CtlRecord>, u64)> {
        let mut buf = vec![CtlRecord::default(); max as usize];
        let mut arr = CtlArray {
            vm,
            count: max,
            ptr: buf.as_mut_ptr() as u64,
            dropped: 0,
        };
        self.array_ioctl(CTL_LOG_READ, &mut arr)?;
        buf.truncate((arr.count as usize).min(max as usize));
        Ok((buf, arr.dropped))
    }

    fn entries_get(&self, vm: u32) -> io::Result<Vec<CtlEntry>> {
        self.get_array(CTL_ENTRIES_GET, vm)
    }

    fn entries_set(&self, vm: u32, entries: &[CtlEntry]) -> io::Result<()> {
        let mut arr = CtlArray {
            vm,
            count: u32::try_from(entries.len())
                .map_err(|_| io::Error::from_raw_os_error(libc::E2BIG))?,
            ptr: entries.as_ptr() as u64,
            dropped: 0,
        };
        // `array_ioctl` holds: `ptr` points to `count` entries, which ENTRIES_SET only reads.
        self.array_ioctl(CTL_ENTRIES_SET, &mut arr)
    }

    fn regions_get(&self, vm: u32) -> io::Result<Vec<CtlRegion>> {
        self.get_array(CTL_REGIONS_GET, vm)
    }

    fn code_names_get(&self, vm: u32) -> io::Result<Vec<CtlCodeName>> {
        self.get_array(CTL_CODE_NAMES_GET, vm)
    }
}

impl<T: Ctl + ?Sized> Ctl for &T {
    fn list(&self) -> io::Result<Vec<CtlVm>> {
        (**self).list()
    }
    fn domains(&self, vm: u32) -> io::Result<Vec<CtlDomain>> {
        (**self).domains(vm)
    }
    fn set_mode(&self, mode: &CtlMode) -> io::Result<()> {
        (**self).set_mode(mode)
    }
    fn lock(&self, lock: &CtlLock) -> io::Result<()> {
        (**self).lock(lock)
    }
    fn profile_get(&self, vm: u32) -> io::Result<Vec<CtlRule>> {
        (**self).profile_get(vm)
    }
    fn profile_set(&self, vm: u32, rules: &[CtlRule]) -> io::Result<()> {
        (**self).profile_set(vm, rules)
    }
    fn log_read(&self, vm: u32, max: u32) -> io::Result<(Vec<CtlRecord>, u64)> {
        (**self).log_read(vm, max)
    }
    fn entries_get(&self, vm: u32) -> io::Result<Vec<CtlEntry>> {
        (**self).entries_get(vm)
    }
    fn entries_set(&self, vm: u32, entries: &[CtlEntry]) -> io::Result<()> {
        (**self).entries_set(vm, entries)
    }
    fn regions_get(&self, vm: u32) -> io::Result<Vec<CtlRegion>> {
        (**self).regions_get(vm)
    }
    fn code_names_get(&self, vm: u32) -> io::Result<Vec<CtlCodeName>> {
        (**self).code_names_get(vm)
    }
}

/// A fake device for the tests: a VM table and a record of the calls that change state.
#[cfg(test)]
pub mod fake {
    use super::*;
    use kvm_isolate_core::policy::Limits;
    use std::cell::RefCell;
    use std::collections::VecDeque;

    /// `vm` with the capacities `limits` in its `max_*` fields, as `LIST` reports a VM created
    /// with those module parameters.
    pub fn with_caps(vm: CtlVm, limits: &Limits) -> CtlVm {
        let cap = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        CtlVm {
            max_code_ranges: cap(limits.code),
            max_regions: cap(limits.regions),
            max_rules: cap(limits.rules),
            max_entries: cap(limits.entries),
            max_return_sites: cap(limits.returns),
            ..vm
        }
    }

    /// A code range of a domain of a fake VM: gvas `start .. end` at gpas from `gpa` on.
    #[derive(Default, Clone, Copy)]
    pub struct FakeCode {
        pub domain: u32,
        pub start: u64,
        pub end: u64,
        pub gpa: u64,
    }

    /// One VM of the fake. `vm` is what `LIST` reports; its capacities (`max_rules`,
    /// `max_entries`) bound PROFILE_SET and ENTRIES_SET as the kernel's do.
    #[derive(Clone)]
    pub struct FakeVm {
        pub vm: CtlVm,
        pub domains: Vec<CtlDomain>,
        pub rules: Vec<CtlRule>,
        pub log: VecDeque<CtlRecord>,
        pub dropped: u64,
        /// Its entry points, sorted by gpa as the kernel keeps them.
        pub entries: Vec<CtlEntry>,
        /// Its domains' code, which ENTRIES_SET checks entry points against.
        pub code: Vec<FakeCode>,
        /// Its regions, by domain and index.
        pub regions: Vec<CtlRegion>,
        /// The code its guest named, by start.
        pub code_names: Vec<CtlCodeName>,
    }

    /// A VM created with the module parameters' defaults ([`Limits::DEFAULT`]), empty.
    impl Default for FakeVm {
        fn default() -> Self {
            FakeVm {
                vm: with_caps(CtlVm::default(), &Limits::DEFAULT),
                domains: Vec::new(),
                rules: Vec::new(),
                log: VecDeque::new(),
                dropped: 0,
                entries: Vec::new(),
                code: Vec::new(),
                regions: Vec::new(),
                code_names: Vec::new(),
            }
        }
    }

    /// The fake device.
    #[derive(Default)]
    pub struct Fake {
        pub vms: RefCell<Vec<FakeVm>>,
        /// Every SET_MODE / LOCK / PROFILE_SET / ENTRIES_GET / ENTRIES_SET, by name, in order.
        pub calls: RefCell<Vec<String>>,
        /// Sizes asked of LOG_READ.
        pub log_reads: RefCell<Vec<u32>>,
        /// Errors to inject: the next PROFILE_SET, ENTRIES_GET or ENTRIES_SET (by name, as in
        /// `calls`) fails with the errno, before it changes anything; each is used once, in
        /// order, and errno 0 lets its call through (to fail a later one).
        pub fail: RefCell<Vec<(&'static str, i32)>>,
    }

    fn enoent() -> io::Error {
        io::Error::from_raw_os_error(libc::ENOENT)
    }

    fn einval() -> io::Error {
        io::Error::from_raw_os_error(libc::EINVAL)
    }

    fn e2big() -> io::Error {
        io::Error::from_raw_os_error(libc::E2BIG)
    }

    impl Fake {
        pub fn new(vms: Vec<FakeVm>) -> Self {
            Fake {
                vms: RefCell::new(vms),
                ..Default::default()
            }
        }

        /// Records a call to `name` (`calls`) and takes an error injected for it (`fail`).
        fn call(&self, name: &'static str, args: String) -> io::Result<()> {
            self.calls.borrow_mut().push(format!("{} {}", name, args));
            let mut fail = self.fail.borrow_mut();
            match fail
                .iter()
                .position(|(n, _)| *n == name)
                .map(|i| fail.remove(i).1)
            {
                Some(errno) if errno != 0 => Err(io::Error::from_raw_os_error(errno)),
                _ => Ok(()),
            }
        }

        fn with_vm<R>(
            &self,
            vm: u32,
            f: impl FnOnce(&mut FakeVm) -> io::Result<R>,
        ) -> io::Result<R> {
            let mut vms = self.vms.borrow_mut();
            let v = vms.iter_mut().find(|v| v.vm.id == vm).ok_or_else(enoent)?;
            f(v)
        }
    }

    impl Ctl for Fake {
        fn regions_get(&self, vm: u32) -> io::Result<Vec<CtlRegion>> {
            self.with_vm(vm, |v| Ok(v.regions.clone()))
        }

        fn code_names_get(&self, vm: u32) -> io::Result<Vec<CtlCodeName>> {
            self.with_vm(vm, |v| Ok(v.code_names.clone()))
        }

        fn list(&self) -> io::Result<Vec<CtlVm>> {
            Ok(self.vms.borrow().iter().map(|v| v.vm).collect())
        }

        fn domains(&self, vm: u32) -> io::Result<Vec<CtlDomain>> {
            self.with_vm(vm, |v| Ok(v.domains.clone()))
        }

        /// As `Control::set_mode` in `kvm-isolate/control.rs`: the arguments are checked first
        /// (EINVAL), then the VM and the domain (ENOENT). The lock binds only the guest
        /// (`Engine::check_mode` with `guest = false`): the host may relax a locked VM.
        fn set_mode(&self, m: &CtlMode) -> io::Result<()> {
            use kvm_isolate_core::ctl::{DENY_KEEP, DENY_PF, MODE_ENFORCE, MODE_INHERIT};
            self.calls.borrow_mut().push(format!("set_mode {:?}", m));
            let inherit = m.domain != 0 && m.mode == MODE_INHERIT;
            if !inherit && m.mode > MODE_ENFORCE {
                return Err(einval());
            }
            if m.deny != DENY_KEEP && (m.domain != 0 || m.deny > DENY_PF) {
                return Err(einval());
            }
            if u64::from(m.domain) >= kvm_isolate_core::abi::MAX_VIEWS {
                return Err(einval());
            }
            self.with_vm(m.vm, |v| {
                if m.domain == 0 {
                    v.vm.mode = m.mode;
                    if m.deny != DENY_KEEP {
                        v.vm.deny = m.deny;
                    }
                } else {
                    let d = v
                        .domains
                        .iter_mut()
                        .find(|d| d.id == m.domain)
                        .ok_or_else(enoent)?;
                    d.mode = m.mode;
                }
                Ok(())
            })
        }

        /// As `Control::lock`: 0 or 1, any VM state.
        fn lock(&self, l: &CtlLock) -> io::Result<()> {
            self.calls.borrow_mut().push(format!("lock {:?}", l));
            if l.lock > 1 {
                return Err(einval());
            }
            self.with_vm(l.vm, |v| {
                v.vm.locked = l.lock;
                Ok(())
            })
        }

        fn profile_get(&self, vm: u32) -> io::Result<Vec<CtlRule>> {
            self.with_vm(vm, |v| Ok(v.rules.clone()))
        }

        /// As `Control::profile_set`: the VM (ENOENT), then at most its `max_rules` (E2BIG). The
        /// rules themselves are the engine's to check (`cargo test` of the core crate).
        fn profile_set(&self, vm: u32, rules: &[CtlRule]) -> io::Result<()> {
            self.call("profile_set", format!("{} {}", vm, rules.len()))?;
            self.with_vm(vm, |v| {
                if rules.len() > v.vm.max_rules as usize {
                    return Err(e2big());
                }
                v.rules = rules.to_vec();
                v.vm.rules = rules.len() as u32;
                Ok(())
            })
        }

        fn log_read(&self, vm: u32, max: u32) -> io::Result<(Vec<CtlRecord>, u64)> {
            self.log_reads.borrow_mut().push(max);
            self.with_vm(vm, |v| {
                let n = v.log.len().min(max as usize);
                Ok((v.log.drain(..n).collect(), v.dropped))
            })
        }

        fn entries_get(&self, vm: u32) -> io::Result<Vec<CtlEntry>> {
            self.call("entries_get", vm.to_string())?;
            self.with_vm(vm, |v| Ok(v.entries.clone()))
        }

        /// As `Control::entries_set` and `Engine::check_entries`: the VM (ENOENT), at most its
        /// `max_entries` (E2BIG), each entry's domain and pad (EINVAL) and location in the
        /// domain's code (ENOENT; `GPA_FROM_CODE` takes the gpa from it), then duplicates
        /// (EEXIST); all checked before any is set.
        fn entries_set(&self, vm: u32, entries: &[CtlEntry]) -> io::Result<()> {
            use kvm_isolate_core::ctl::GPA_FROM_CODE;
            self.call("entries_set", format!("{} {}", vm, entries.len()))?;
            self.with_vm(vm, |v| {
                if entries.len() > v.vm.max_entries as usize {
                    return Err(e2big());
                }
                let mut entries = entries.to_vec();
                for x in entries.iter_mut() {
                    if x.pad != 0 || !v.domains.iter().any(|d| d.id == x.domain) {
                        return Err(einval());
                    }
                    let gpa = v
                        .code
                        .iter()
                        .find(|c| c.domain == x.domain && (c.start..c.end).contains(&x.gva))
                        .map(|c| c.gpa + (x.gva - c.start));
                    match gpa {
                        Some(gpa) if x.gpa == GPA_FROM_CODE || x.gpa == gpa => x.gpa = gpa,
                        _ => return Err(enoent()),
                    }
                }
                let mut sorted = entries;
                sorted.sort_by_key(|x| (x.gpa, x.gva));
                if sorted
                    .windows(2)
                    .any(|w| (w[0].gpa, w[0].gva) == (w[1].gpa, w[1].gva))
                {
                    return Err(io::Error::from_raw_os_error(libc::EEXIST));
                }
                v.vm.entries = sorted.len() as u32;
                v.entries = sorted;
                Ok(())
            })
        }
    }
}
