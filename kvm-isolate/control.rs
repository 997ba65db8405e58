// SPDX-License-Identifier: GPL-2.0

//! `/dev/kvm-isolate`: the host administrator's control plane, the `KVM_ISOLATE_CTL_*` ioctls of
//! [`include/uapi/linux/kvm_isolate.h`](srctree/include/uapi/linux/kvm_isolate.h).
//!
//! The node is root-only (a misc device's default mode, 0600 root). Every ioctl checks all of
//! its input before it changes anything; data is gathered under the locks and copied to user
//! space after they are dropped.

use kernel::{
    fs::File,
    kvm_isolate::views::Vm,
    miscdevice::{
        MiscDevice,
        MiscDeviceRegistration, //
    },
    prelude::*,
    transmute::{
        AsBytes,
        FromBytes, //
    },
    uaccess::{
        UserPtr,
        UserSlice, //
    },
};

use crate::{
    abi,
    apply::{
        build_domain_view,
        domain_views,
        rebuild_lenses, //
    },
    ctl::{
        self,
        CtlArray,
        CtlCodeName,
        CtlDomain,
        CtlEntry,
        CtlLock,
        CtlMode,
        CtlRecord,
        CtlRegion,
        CtlRule,
        CtlVm, //
    },
    host_reports_gva,
    policy::{
        Deny,
        Mode, //
    },
    set_mode,
    KvmViews,
    VmEntry,
    VmViews,
    VMS, //
};

// SAFETY: `repr(C)` structs of `u32`/`u64` fields without padding (their sizes are the sums of
// their fields, which `cargo test` checks against the C header); any bit pattern is valid.
unsafe impl FromBytes for CtlArray {}
// SAFETY: as above.
unsafe impl AsBytes for CtlArray {}
// SAFETY: as above.
unsafe impl AsBytes for CtlVm {}
// SAFETY: as above.
unsafe impl AsBytes for CtlDomain {}
// SAFETY: as above.
unsafe impl FromBytes for CtlRule {}
// SAFETY: as above.
unsafe impl AsBytes for CtlRule {}
// SAFETY: as above.
unsafe impl FromBytes for CtlEntry {}
// SAFETY: as above.
unsafe impl AsBytes for CtlEntry {}
// SAFETY: as above.
unsafe impl AsBytes for CtlRecord {}
// SAFETY: as above.
unsafe impl AsBytes for CtlRegion {}
// SAFETY: as above.
unsafe impl AsBytes for CtlCodeName {}
// SAFETY: as above.
unsafe impl FromBytes for CtlMode {}
// SAFETY: as above.
unsafe impl FromBytes for CtlLock {}

/// The control device; it keeps no per-open state.
pub(crate) struct Control;

fn err(e: abi::Error) -> Error {
    match e {
        abi::Error::Perm => EPERM,
        abi::Error::NoEnt => ENOENT,
        abi::Error::NoMem => ENOMEM,
        abi::Error::Busy => EBUSY,
        abi::Error::Exist => EEXIST,
        abi::Error::NoSpc => ENOSPC,
        abi::Error::Range => ERANGE,
        abi::Error::Inval | abi::Error::OpNotSupp | abi::Error::NoSys => EINVAL,
    }
}

/// Runs `f` on VM `id` with its state locked. [`VMS`] is held only to find the VM and take a
/// counted reference to it (`ENOENT` once its destruction has begun), never while `f` runs.
fn with_vm<R>(id: u32, f: impl FnOnce(&Vm, &mut VmViews) -> Result<R>) -> Result<R> {
    let (state, vm) = {
        let vms = VMS.lock();
        let entry = vms.iter().find(|e| e.state.id == id).ok_or(ENOENT)?;
        // SAFETY: `entry` is in `VMS`, from which `vm_destroy` removes it, under `VMS`'s lock,
        // before it returns.
        let vm = unsafe { entry.vm.get() }.ok_or(ENOENT)?;
        (entry.state.clone(), vm)
    };
    let mut g = state.inner.lock();
    let r = f(&vm, &mut g);
    // The state's lock goes first: dropping `vm` may destroy the VM (`vm_destroy` takes `VMS`).
    drop(g);
    drop(vm);
    r
}

fn vm_info(entry: &VmEntry, g: &VmViews) -> CtlVm {
    let e = &g.engine;
    let l = e.limits();
    let mut c = CtlVm {
        id: entry.state.id,
        pid: entry.state.pid,
        mode: e.mode() as u32,
        deny: e.deny() as u32,
        locked: u32::from(e.locked()),
        // CAST: at most 255 domains.
        domains: e.domain_count() as u32,
        views: g.views.count(),
        // CAST: the tables hold at most their caps, which are `u32` module parameters.
        rules: e.rules().len() as u32,
        code_ranges: e.code().len() as u32,
        regions: e.regions().len() as u32,
        entries: e.entries().len() as u32,
        return_sites: e.return_sites() as u32,
        max_code_ranges: l.code as u32,
        max_regions: l.regions as u32,
        max_rules: l.rules as u32,
        max_entries: l.entries as u32,
        max_return_sites: l.returns as u32,
        violations: e.violations,
        logged: e.log.written,
        dropped: e.log.dropped,
        compressed: e.log.compressed,
        ..CtlVm::default()
    };
    for d in domain_views(e) {
        let k = e.counters(d);
        c.allowed += k.allowed;
        c.denied += k.denied;
        c.learned += k.learned;
    }
    c
}

/// Copies `items` to the user array `a` if it has room; returns `a` with `count` = `items.len()`.
fn put_array<T: AsBytes>(mut a: CtlArray, items: &[T]) -> Result<CtlArray> {
    let n = u32::try_from(items.len()).map_err(|_| EOVERFLOW)?;
    if n <= a.count {
        let len = items.len() * size_of::<T>();
        // CAST: user addresses fit in `usize` on x86-64, the only target of this module.
        let mut w = UserSlice::new(UserPtr::from_addr(a.ptr as usize), len).writer();
        for x in items {
            w.write(x)?;
        }
    }
    a.count = n;
    Ok(a)
}

/// Reads the `a.count` entries of an array from user memory; more than `max` is `E2BIG`.
fn get_array<T: FromBytes>(a: &CtlArray, max: usize) -> Result<KVVec<T>> {
    let n = a.count as usize;
    if n > max {
        return Err(E2BIG);
    }
    let mut items = KVVec::with_capacity(n, GFP_KERNEL)?;
    // CAST: user addresses fit in `usize` on x86-64, the only target of this module.
    let mut r = UserSlice::new(UserPtr::from_addr(a.ptr as usize), n * size_of::<T>()).reader();
    for _ in 0..n {
        items.push(r.read::<T>()?, GFP_KERNEL)?;
    }
    Ok(items)
}

impl Control {
    fn list(a: CtlArray) -> Result<CtlArray> {
        let mut out = KVVec::new();
        for entry in VMS.lock().iter() {
            let g = entry.state.inner.lock();
            out.push(vm_info(entry, &g), GFP_KERNEL)?;
        }
        put_array(a, &out)
    }

    fn domains(a: CtlArray) -> Result<CtlArray> {
        let out = with_vm(a.vm, |_, g| {
            let e = &g.engine;
            let mut out = KVVec::new();
            for d in domain_views(e) {
                let k = e.counters(d);
                out.push(
                    CtlDomain {
                        id: u32::from(d),
                        mode: e.own_mode(d).map_or(ctl::MODE_INHERIT, |m| m as u32),
                        // CAST: the tables hold at most their caps, `u32` module parameters.
                        code_ranges: e.code().iter().filter(|c| c.domain == d).count() as u32,
                        regions: e.regions().iter().filter(|r| r.domain == d).count() as u32,
                        rules: e.rule_count(d) as u32,
                        // CAST: at most `MAX_LENSES`, 32.
                        lenses: e.lenses().iter().filter(|l| l.domain == d).count() as u32,
                        allowed: k.allowed,
                        denied: k.denied,
                        learned: k.learned,
                        left: k.left,
                        flags: if e.switchable(d) {
                            ctl::DOMAIN_SWITCHABLE
                        } else {
                            0
                        },
                        pad: 0,
                        name: e.name(d),
                        code_start: e.code_span(d).map_or(0, |c| c.0),
                        code_end: e.code_span(d).map_or(0, |c| c.1),
                    },
                    GFP_KERNEL,
                )?;
            }
            Ok(out)
        })?;
        put_array(a, &out)
    }

    fn set_mode(m: CtlMode) -> Result {
        let mode = match (m.domain, m.mode) {
            (d, ctl::MODE_INHERIT) if d != 0 => None,
            (_, mode) => Some(Mode::from_u32(mode).ok_or(EINVAL)?),
        };
        let deny = match m.deny {
            ctl::DENY_KEEP => None,
            _ if m.domain != 0 => return Err(EINVAL),
            d => Some(Deny::from_u32(d).ok_or(EINVAL)?),
        };
        // A #PF needs the faulting linear address, which SVM does not report: CR2 would be 0.
        if deny == Some(Deny::Pf) && !host_reports_gva() {
            return Err(EOPNOTSUPP);
        }
        let d = u8::try_from(m.domain).map_err(|_| EINVAL)?;
        if u64::from(d) >= abi::MAX_VIEWS {
            return Err(EINVAL);
        }
        with_vm(m.vm, |vm, g| {
            set_mode(vm, g, d, mode, false).map_err(err)?;
            if let Some(deny) = deny {
                g.engine.set_deny(deny);
            }
            Ok(())
        })
    }

    fn lock(l: CtlLock) -> Result {
        let lock = match l.lock {
            0 => false,
            1 => true,
            _ => return Err(EINVAL),
        };
        with_vm(l.vm, |_, g| {
            g.engine.set_locked(lock);
            Ok(())
        })
    }

    fn profile_get(a: CtlArray) -> Result<CtlArray> {
        let out = with_vm(a.vm, |_, g| {
            let mut out = KVVec::with_capacity(g.engine.rules().len(), GFP_KERNEL)?;
            for r in g.engine.profile() {
                out.push(r, GFP_KERNEL)?;
            }
            Ok(out)
        })?;
        put_array(a, &out)
    }

    fn profile_set(a: CtlArray) -> Result {
        let max = with_vm(a.vm, |_, g| Ok(g.engine.limits().rules))?;
        let mut rules = get_array::<CtlRule>(&a, max)?;
        with_vm(a.vm, |vm, g| {
            g.engine.check_profile(&mut rules).map_err(err)?;
            g.engine.set_profile(&rules).map_err(err)?;
            // Code the old profile allowed must not keep running in the domains' views, nor
            // with the old rules' rights in their lenses.
            for d in domain_views(&g.engine) {
                build_domain_view(&mut KvmViews(vm), &g.engine, d).map_err(err)?;
            }
            rebuild_lenses(&mut KvmViews(vm), &g.engine, 0).map_err(err)
        })
    }

    fn entries_get(a: CtlArray) -> Result<CtlArray> {
        let out = with_vm(a.vm, |_, g| {
            let mut out = KVVec::with_capacity(g.engine.entries().len(), GFP_KERNEL)?;
            for x in g.engine.entry_list() {
                out.push(x, GFP_KERNEL)?;
            }
            Ok(out)
        })?;
        put_array(a, &out)
    }

    fn regions_get(a: CtlArray) -> Result<CtlArray> {
        let out = with_vm(a.vm, |_, g| {
            let n = g.engine.regions().len();
            let mut out = KVVec::with_capacity(n, GFP_KERNEL)?;
            for _ in 0..n {
                out.push(CtlRegion::default(), GFP_KERNEL)?;
            }
            // Fills all of `out`: it has room for every region.
            g.engine.region_list(&mut out);
            Ok(out)
        })?;
        put_array(a, &out)
    }

    fn code_names_get(a: CtlArray) -> Result<CtlArray> {
        let out = with_vm(a.vm, |_, g| {
            let n = g.engine.code_names();
            let mut out = KVVec::with_capacity(n, GFP_KERNEL)?;
            for _ in 0..n {
                out.push(CtlCodeName::default(), GFP_KERNEL)?;
            }
            // Fills all of `out`: it has room for every name.
            g.engine.code_name_list(&mut out);
            Ok(out)
        })?;
        put_array(a, &out)
    }

    fn entries_set(a: CtlArray) -> Result {
        let max = with_vm(a.vm, |_, g| Ok(g.engine.limits().entries))?;
        let mut entries = get_array::<CtlEntry>(&a, max)?;
        // Entry points only say where code outside may come in: no view changes.
        with_vm(a.vm, |_, g| {
            g.engine.check_entries(&mut entries).map_err(err)?;
            g.engine.set_entries(&entries).map_err(err)
        })
    }

    fn log_read(mut a: CtlArray) -> Result<CtlArray> {
        let max = (a.count as usize).min(ctl::LOG_RECORDS);
        // CAST: user addresses fit in `usize` on x86-64, the only target of this module.
        let mut w = UserSlice::new(UserPtr::from_addr(a.ptr as usize), max * size_of::<CtlRecord>())
            .writer();
        // A record leaves the log only once it is in user memory: a failed copy loses nothing
        // (it fails the call if nothing was copied, else ends it early with what was).
        let (n, dropped) = with_vm(a.vm, |_, g| {
            let mut n = 0u32;
            while (n as usize) < max {
                let Some(r) = g.engine.log.peek() else {
                    break;
                };
                if let Err(e) = w.write(&r) {
                    if n == 0 {
                        return Err(e);
                    }
                    break;
                }
                g.engine.log.pop();
                n += 1;
            }
            Ok((n, g.engine.log.dropped))
        })?;
        a.count = n;
        a.dropped = dropped;
        Ok(a)
    }
}

#[vtable]
impl MiscDevice for Control {
    type Ptr = ();

    fn open(_file: &File, _misc: &MiscDeviceRegistration<Self>) -> Result<Self::Ptr> {
        Ok(())
    }

    fn ioctl(_me: (), _file: &File, cmd: u32, arg: usize) -> Result<isize> {
        let user = |size: usize| UserSlice::new(UserPtr::from_addr(arg), size);
        let array = |f: fn(CtlArray) -> Result<CtlArray>| -> Result<isize> {
            let (mut r, mut w) = user(size_of::<CtlArray>()).reader_writer();
            let a = f(r.read::<CtlArray>()?)?;
            w.write(&a)?;
            Ok(0)
        };
        match cmd {
            ctl::CTL_VERSION => Ok(ctl::CTL_VERSION_NR as isize),
            ctl::CTL_LIST => array(Self::list),
            ctl::CTL_DOMAINS => array(Self::domains),
            ctl::CTL_PROFILE_GET => array(Self::profile_get),
            ctl::CTL_ENTRIES_GET => array(Self::entries_get),
            ctl::CTL_REGIONS_GET => array(Self::regions_get),
            ctl::CTL_CODE_NAMES_GET => array(Self::code_names_get),
            ctl::CTL_LOG_READ => array(Self::log_read),
            ctl::CTL_SET_MODE => {
                Self::set_mode(user(size_of::<CtlMode>()).reader().read::<CtlMode>()?)?;
                Ok(0)
            }
            ctl::CTL_LOCK => {
                Self::lock(user(size_of::<CtlLock>()).reader().read::<CtlLock>()?)?;
                Ok(0)
            }
            ctl::CTL_PROFILE_SET => {
                Self::profile_set(user(size_of::<CtlArray>()).reader().read::<CtlArray>()?)?;
                Ok(0)
            }
            ctl::CTL_ENTRIES_SET => {
                Self::entries_set(user(size_of::<CtlArray>()).reader().read::<CtlArray>()?)?;
                Ok(0)
            }
            _ => Err(ENOTTY),
        }
    }
}
