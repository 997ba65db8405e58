// SPDX-License-Identifier: GPL-2.0

//! Loaded kernel modules as the guest side protects them: found by name, pinned so that they
//! cannot be unloaded, and laid out (their memory's pages, guest-virtual and guest-physical,
//! and their symbols).
//!
//! C header: [`include/linux/module.h`](srctree/include/linux/module.h)

use crate::{
    bindings,
    error::to_result,
    page::{PAGE_SHIFT, PAGE_SIZE},
    prelude::*,
    str::CStrExt,
    sync::rcu,
};
use core::{cell::UnsafeCell, ffi::c_void, marker::PhantomData, ptr, ptr::NonNull};

/// One of a loaded module's memory areas (the module loader's `enum mod_mem_type`, the parts
/// that stay after its init).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Area {
    /// Its code (`.text` and the other executable sections).
    Text,
    /// Its writable data: `.data`, `.bss` and the loader's own data about the module.
    Data,
    /// Its read-only data (`.rodata`).
    Rodata,
    /// Its data that becomes read-only after its init (`.data..ro_after_init`).
    RoAfterInit,
}

impl Area {
    fn index(self) -> usize {
        // CAST: the `mod_mem_type` constants are small and non-negative.
        (match self {
            Area::Text => bindings::mod_mem_type_MOD_TEXT,
            Area::Data => bindings::mod_mem_type_MOD_DATA,
            Area::Rodata => bindings::mod_mem_type_MOD_RODATA,
            Area::RoAfterInit => bindings::mod_mem_type_MOD_RO_AFTER_INIT,
        }) as usize
    }
}

/// A symbol of a loaded module (from its kallsyms table).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Symbol {
    /// Its address.
    pub addr: usize,
    /// Its size in bytes (0 if the object file did not say).
    pub size: usize,
    /// Its kallsyms type: `t`/`T` for code, `d`/`D`, `b`/`B`, `r`/`R` for data (upper case:
    /// global).
    pub kind: u8,
}

impl Symbol {
    /// Whether it is a function.
    pub fn is_function(&self) -> bool {
        self.kind.eq_ignore_ascii_case(&b't')
    }
}

/// A page of a loaded module's memory: its guest-virtual and guest-physical addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModulePage {
    /// The page's address in the kernel's address space.
    pub va: u64,
    /// The physical address of the page backing it.
    pub pa: u64,
}

/// A loaded module, pinned: it cannot be unloaded while this exists.
///
/// # Invariants
///
/// `ptr` points to a module that was live, or running its init, when this took a reference on
/// it (`try_module_get`); the reference is dropped only by [`Drop`]. So the module's memory
/// outside its init sections and its layout stay while this exists, and its kallsyms table
/// (the loader's init-time table during its init, the core table after, each freed only after
/// an RCU grace period once replaced) can be read under the RCU read lock.
pub struct LoadedModule {
    ptr: NonNull<bindings::module>,
}

// SAFETY: a module reference may be dropped from any thread, and everything read through it
// is fixed while it is held.
unsafe impl Send for LoadedModule {}
// SAFETY: as above; no method mutates anything.
unsafe impl Sync for LoadedModule {}

impl LoadedModule {
    /// Finds the module called `name` and pins it. `ENOENT` if no module has that name,
    /// `EBUSY` if it is still in its init or being unloaded (its layout is not final then).
    pub fn get(name: &CStr) -> Result<Self> {
        let guard = rcu::read_lock();
        // SAFETY: `find_module()` walks the RCU-protected module list: the read lock is held,
        // and `name` is NUL-terminated.
        let ptr =
            NonNull::new(unsafe { bindings::find_module(name.as_char_ptr()) }).ok_or(ENOENT)?;
        // SAFETY: the RCU read lock keeps the module found above from being freed until it is
        // released; `try_module_get()` fails for a module being unloaded.
        if !unsafe { bindings::try_module_get(ptr.as_ptr()) } {
            return Err(EBUSY);
        }
        drop(guard);
        // INVARIANT: the reference was just taken; checked to be live below.
        let module = LoadedModule { ptr };
        // SAFETY: the reference keeps the module's `struct module` alive; `state` is a plain
        // word the loader stores.
        let state = unsafe { core::ptr::read_volatile(&raw const (*ptr.as_ptr()).state) };
        if state != bindings::module_state_MODULE_STATE_LIVE {
            return Err(EBUSY);
        }
        Ok(module)
    }

    /// Pins the module `ptr`, which is running its own code (its init, or later): the kernel
    /// API's way for a module to name itself. `EBUSY` if it is being unloaded.
    ///
    /// # Safety
    ///
    /// `ptr` points to a loaded module's `struct module` that stays allocated for the call:
    /// the module's own code is running and called this (directly or through a C API).
    pub unsafe fn pin_running(ptr: *mut bindings::module) -> Result<Self> {
        let ptr = NonNull::new(ptr).ok_or(EINVAL)?;
        // SAFETY: the caller guarantees `ptr` is a loaded module for the call;
        // `try_module_get()` fails only for a module being unloaded.
        if !unsafe { bindings::try_module_get(ptr.as_ptr()) } {
            return Err(EBUSY);
        }
        // INVARIANT: the reference was just taken, on a module that runs its code: live, or in
        // its init.
        Ok(LoadedModule { ptr })
    }

    /// The module's name.
    pub fn name(&self) -> &CStr {
        // SAFETY: by the type invariant the module is alive; its name is NUL-terminated and
        // never changes.
        unsafe { CStr::from_char_ptr((*self.ptr.as_ptr()).name.as_ptr()) }
    }

    /// An identity for the module while it is pinned: equal for two pins of one module.
    pub fn id(&self) -> usize {
        self.ptr.as_ptr() as usize
    }

    /// Whether this is `module`.
    pub fn is(&self, module: &ThisModule) -> bool {
        self.ptr.as_ptr() == module.as_ptr()
    }

    /// Where `area` is: its start and size in bytes (size 0 if the module has none).
    pub fn area(&self, area: Area) -> (usize, usize) {
        // SAFETY: by the type invariant the module is pinned; its layout was fixed
        // when it was loaded.
        let mem = unsafe { &(*self.ptr.as_ptr()).mem[area.index()] };
        // CAST: a pointer and a `u32` size into `usize` on 64-bit.
        (mem.base as usize, mem.size as usize)
    }

    /// The pages of `[start, start + len)` (which must lie in one of the module's areas), with
    /// the physical page backing each: module memory is mapped page by page, its physical pages
    /// scattered. `EINVAL` if the range is outside the module's memory.
    pub fn pages(&self, start: usize, len: usize) -> Result<KVec<ModulePage>> {
        let end = start.checked_add(len).ok_or(EINVAL)?;
        let inside = [Area::Text, Area::Data, Area::Rodata, Area::RoAfterInit]
            .into_iter()
            .map(|a| self.area(a))
            .any(|(base, size)| size != 0 && start >= base && end <= base + size);
        if !inside || len == 0 {
            return Err(EINVAL);
        }
        let page = PAGE_SIZE;
        let first = start & !(page - 1);
        let mut pages = KVec::with_capacity((end - first).div_ceil(page), GFP_KERNEL)?;
        for va in (first..end).step_by(page) {
            // SAFETY: `va` is in the module's memory, which the reference keeps mapped;
            // `vmalloc_to_pfn()` only walks the kernel's page tables.
            let pfn = unsafe { bindings::vmalloc_to_pfn(va as *const c_void) };
            if pfn == 0 {
                return Err(EFAULT);
            }
            // CAST: addresses are 64 bits.
            pages.push(
                ModulePage {
                    va: va as u64,
                    pa: (pfn as u64) << PAGE_SHIFT,
                },
                GFP_KERNEL,
            )?;
        }
        Ok(pages)
    }

    /// Calls `f` with each of the module's symbols (name and what kallsyms knows of it) until
    /// it returns `Some`; returns that. `f` runs in the RCU read-side critical section the
    /// module's symbol table is read in, so it must not sleep.
    pub fn find_symbol<T>(&self, mut f: impl FnMut(&CStr, Symbol) -> Option<T>) -> Option<T> {
        let _guard = rcu::read_lock();
        // SAFETY: the module is pinned (type invariant); its kallsyms pointer is read under
        // the RCU read lock, as the loader publishes it.
        let syms = unsafe { core::ptr::read_volatile(&raw const (*self.ptr.as_ptr()).kallsyms) };
        if syms.is_null() {
            return None;
        }
        // SAFETY: a module's kallsyms table (its init-time or its core table, both set up
        // before its init and freed only after a grace period once replaced) has `num_symtab`
        // entries, each naming an offset in `strtab`, and a type byte each in `typetab`.
        let (symtab, num, strtab, typetab) = unsafe {
            let s = &*syms;
            (s.symtab, s.num_symtab as usize, s.strtab, s.typetab)
        };
        for i in 0..num {
            // SAFETY: `i < num_symtab`.
            let (sym, kind) = unsafe { (&*symtab.add(i), *typetab.add(i)) };
            // SAFETY: `st_name` is an offset into `strtab` of a NUL-terminated name.
            let name = unsafe { CStr::from_char_ptr(strtab.add(sym.st_name as usize)) };
            let found = f(
                name,
                Symbol {
                    // CAST: ELF64 addresses and sizes are 64 bits, as `usize` here.
                    addr: sym.st_value as usize,
                    size: sym.st_size as usize,
                    kind: kind as u8,
                },
            );
            if found.is_some() {
                return found;
            }
        }
        None
    }

    /// The symbol called `name`, if the module has one.
    pub fn symbol(&self, name: &CStr) -> Option<Symbol> {
        self.find_symbol(|n, s| (n == name).then_some(s))
    }

    /// The addresses of the module's functions that start in its code, each once, in order:
    /// the entry points the module loader knows (its exported and static functions; the
    /// code-padding symbols `__pfx_*` and `__cfi_*` before each are not functions). A function
    /// of two names (during the module's init its table has aliases such as `cleanup_module`)
    /// is one address.
    pub fn functions(&self) -> Result<KVec<usize>> {
        let (base, size) = self.area(Area::Text);
        let mut count = 0usize;
        let is_entry = |n: &CStr, s: &Symbol| {
            let n = n.to_bytes();
            s.is_function()
                && s.addr >= base
                && s.addr < base + size
                && !n.starts_with(b"__pfx_")
                && !n.starts_with(b"__cfi_")
        };
        self.find_symbol(|n, s| {
            count += usize::from(is_entry(n, &s));
            None::<()>
        });
        let mut out = KVec::with_capacity(count, GFP_KERNEL)?;
        self.find_symbol(|n, s| {
            if is_entry(n, &s) && out.push_within_capacity(s.addr).is_err() {
                return Some(());
            }
            None
        });
        out.sort_unstable();
        let mut kept = 0;
        for i in 0..out.len() {
            if kept == 0 || out[i] != out[kept - 1] {
                out[kept] = out[i];
                kept += 1;
            }
        }
        out.truncate(kept);
        Ok(out)
    }
}

impl Drop for LoadedModule {
    fn drop(&mut self) {
        // SAFETY: by the type invariant this holds a reference on the module; dropped once.
        unsafe { bindings::module_put(self.ptr.as_ptr()) };
    }
}

/// The kernel's own code: from `_stext` (KASLR moves it) to the end of the kernel's image
/// (`__START_KERNEL_map + KERNEL_IMAGE_SIZE`, where modules begin). `_stext` is found through
/// kallsyms, which names the addresses of `[_stext, _etext)` and none below them in the image,
/// by a search between the image's start and a function of the kernel (`sprint_symbol()`
/// itself): about 30 lookups. `None` if kallsyms names no address there.
pub fn kernel_text() -> Option<(usize, usize)> {
    // `KSYM_SYMBOL_LEN` is below 1024 bytes.
    let mut buf = KVec::from_elem(0u8, 1024, GFP_KERNEL).ok()?;
    let mut named = |a: usize| {
        // SAFETY: `buf` has room for `KSYM_SYMBOL_LEN` bytes; `sprint_symbol()` only reads
        // kallsyms' tables and writes a NUL-terminated string there: a symbol's name and the
        // offset, or the address in hex if none names it.
        unsafe { bindings::sprint_symbol(buf.as_mut_ptr().cast(), a as crate::ffi::c_ulong) };
        !buf.starts_with(b"0x")
    };
    // The image starts at `__START_KERNEL_map` or above; `sprint_symbol()` is in its text.
    let map = 0xffff_ffff_8000_0000_usize;
    // CAST: a `u32` into `usize` on 64-bit.
    let end = map + bindings::KERNEL_IMAGE_SIZE as usize;
    let (mut lo, mut hi) = (map, bindings::sprint_symbol as usize);
    if named(lo) || !named(hi) {
        return None;
    }
    // Invariant: `lo` is not named, `hi` is.
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if named(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Some((hi, end))
}

/// What a module watcher hears of: a module whose code is in place, before its init runs.
pub trait ModuleWatcher {
    /// Called in process context with the module's name and its code (start, bytes).
    fn coming(name: &CStr, text: usize, text_len: usize);
}

/// `T` told of each module that comes (a module notifier); unregistered when dropped.
pub struct ModuleWatch<T: ModuleWatcher> {
    block: KBox<UnsafeCell<bindings::notifier_block>>,
    _watcher: PhantomData<T>,
}

// SAFETY: the block is only handed to the kernel's notifier chain, which locks it.
unsafe impl<T: ModuleWatcher> Send for ModuleWatch<T> {}
// SAFETY: as above; `&self` gives no access to the block.
unsafe impl<T: ModuleWatcher> Sync for ModuleWatch<T> {}

impl<T: ModuleWatcher> ModuleWatch<T> {
    /// Registers `T`.
    pub fn new() -> Result<Self> {
        let block = KBox::new(
            UnsafeCell::new(bindings::notifier_block {
                notifier_call: Some(Self::trampoline),
                next: ptr::null_mut(),
                priority: 0,
            }),
            GFP_KERNEL,
        )?;
        // SAFETY: the block is boxed, so it stays where it is, and stays registered until
        // `drop()` unregisters it; `trampoline::<T>` is valid as long.
        to_result(unsafe { bindings::register_module_notifier(block.get()) })?;
        Ok(ModuleWatch {
            block,
            _watcher: PhantomData,
        })
    }

    unsafe extern "C" fn trampoline(
        _block: *mut bindings::notifier_block,
        action: crate::ffi::c_ulong,
        data: *mut c_void,
    ) -> crate::ffi::c_int {
        // CAST: `enum module_state`'s values are small and non-negative.
        if action == bindings::module_state_MODULE_STATE_COMING as crate::ffi::c_ulong {
            let module = data.cast::<bindings::module>();
            // SAFETY: the module chain passes the `struct module` that comes; it stays, its
            // name and code in place, for the call (its init has not run, its load waits).
            let (name, mem) = unsafe {
                (
                    CStr::from_char_ptr((*module).name.as_ptr()),
                    &(*module).mem[Area::Text.index()],
                )
            };
            // CAST: a pointer and a `u32` size into `usize` on 64-bit.
            T::coming(name, mem.base as usize, mem.size as usize);
        }
        // CAST: `NOTIFY_DONE` is 0.
        bindings::NOTIFY_DONE as crate::ffi::c_int
    }
}

impl<T: ModuleWatcher> Drop for ModuleWatch<T> {
    fn drop(&mut self) {
        // SAFETY: unregistering the block `new()` registered; the chain's lock waits for a
        // call in progress.
        unsafe { bindings::unregister_module_notifier(self.block.get()) };
    }
}
