// SPDX-License-Identifier: GPL-2.0

//! Hypercall ABI v1: the Rust mirror of `include/uapi/linux/kvm_isolate.h`, the decoder that
//! validates every argument, and the per-VM view bookkeeping.
//!
//! `tests/abi.rs` parses the C header and fails if any value here differs from it.

/// `KVM_ISOLATE_ABI_VERSION`.
pub const ABI_VERSION: u64 = 1;
/// `KVM_ISOLATE_MAGIC`: what the probe returns.
pub const MAGIC: u64 = 0x4b56_4d49;
/// `KVM_HC_ISOLATE_FIRST`.
pub const HC_FIRST: u64 = 0x4b49_0000;
/// `KVM_HC_ISOLATE_LAST`.
pub const HC_LAST: u64 = 0x4b49_00ff;
/// `KVM_HC_ISOLATE_PROBE`.
pub const HC_PROBE: u64 = HC_FIRST;
/// `KVM_HC_ISOLATE_VERSION`.
pub const HC_VERSION: u64 = HC_FIRST + 1;
/// `KVM_HC_ISOLATE_VIEW_CREATE`.
pub const HC_VIEW_CREATE: u64 = HC_FIRST + 2;
/// `KVM_HC_ISOLATE_VIEW_DESTROY`.
pub const HC_VIEW_DESTROY: u64 = HC_FIRST + 3;
/// `KVM_HC_ISOLATE_SET_ACCESS`.
pub const HC_SET_ACCESS: u64 = HC_FIRST + 4;
/// `KVM_HC_ISOLATE_SWITCH`.
pub const HC_SWITCH: u64 = HC_FIRST + 5;
/// `KVM_HC_ISOLATE_QUERY`.
pub const HC_QUERY: u64 = HC_FIRST + 6;
/// `KVM_HC_ISOLATE_ON_VIOLATION`.
pub const HC_ON_VIOLATION: u64 = HC_FIRST + 7;

/// `KVM_HC_ISOLATE_DOMAIN_CREATE`.
pub const HC_DOMAIN_CREATE: u64 = HC_FIRST + 8;
/// `KVM_HC_ISOLATE_DOMAIN_ADD_CODE`.
pub const HC_DOMAIN_ADD_CODE: u64 = HC_FIRST + 9;
/// `KVM_HC_ISOLATE_DOMAIN_ADD_REGION`.
pub const HC_DOMAIN_ADD_REGION: u64 = HC_FIRST + 10;
/// `KVM_HC_ISOLATE_DOMAIN_DESTROY`.
pub const HC_DOMAIN_DESTROY: u64 = HC_FIRST + 11;
/// `KVM_HC_ISOLATE_SET_MODE`.
pub const HC_SET_MODE: u64 = HC_FIRST + 12;
/// `KVM_HC_ISOLATE_LOCK`.
pub const HC_LOCK: u64 = HC_FIRST + 13;
/// `KVM_HC_ISOLATE_DOMAIN_ADD_ENTRY`.
pub const HC_DOMAIN_ADD_ENTRY: u64 = HC_FIRST + 14;
/// `KVM_HC_ISOLATE_VE_INFO`.
pub const HC_VE_INFO: u64 = HC_FIRST + 15;
/// `KVM_HC_ISOLATE_DOMAIN_SWITCHABLE`.
pub const HC_DOMAIN_SWITCHABLE: u64 = HC_FIRST + 16;
/// `KVM_HC_ISOLATE_DOMAIN_NAME`.
pub const HC_DOMAIN_NAME: u64 = HC_FIRST + 17;
/// `KVM_ISOLATE_NAME_LEN`: a domain's name, NUL-padded.
pub const NAME_LEN: usize = 64;
/// `KVM_HC_ISOLATE_CODE_NAME`.
pub const HC_CODE_NAME: u64 = HC_FIRST + 18;
/// `KVM_ISOLATE_MAX_CODE_NAMES`: named code ranges a VM keeps.
pub const MAX_CODE_NAMES: usize = 1024;
/// `KVM_ISOLATE_CODE_NAME_MAX_SIZE`: the largest named code range.
pub const CODE_NAME_MAX_SIZE: u64 = 1 << 30;

/// `KVM_ISOLATE_QUERY_VIEW`.
pub const QUERY_VIEW: u64 = 0;
/// `KVM_ISOLATE_QUERY_ACCESS`.
pub const QUERY_ACCESS: u64 = 1;
/// `KVM_ISOLATE_QUERY_VIEWS`.
pub const QUERY_VIEWS: u64 = 2;
/// `KVM_ISOLATE_QUERY_MAX_VIEWS`.
pub const QUERY_MAX_VIEWS: u64 = 3;
/// `KVM_ISOLATE_QUERY_FEATURES`.
pub const QUERY_FEATURES: u64 = 4;
/// `KVM_ISOLATE_FEATURE_VMFUNC`.
pub const FEATURE_VMFUNC: u64 = 1 << 0;
/// `KVM_ISOLATE_FEATURE_VE`.
pub const FEATURE_VE: u64 = 1 << 1;

/// `KVM_ISOLATE_ON_VIOLATION_EXIT`.
pub const ON_VIOLATION_EXIT: u64 = 0;
/// `KVM_ISOLATE_ON_VIOLATION_GP`.
pub const ON_VIOLATION_GP: u64 = 1;
/// `KVM_ISOLATE_ON_VIOLATION_UD`.
pub const ON_VIOLATION_UD: u64 = 2;
/// `KVM_ISOLATE_ON_VIOLATION_GRANT`.
pub const ON_VIOLATION_GRANT: u64 = 3;
/// `KVM_ISOLATE_ON_VIOLATION_SWITCH`.
pub const ON_VIOLATION_SWITCH: u64 = 4;

/// `KVM_ISOLATE_MODE_OFF`.
pub const MODE_OFF: u64 = 0;
/// `KVM_ISOLATE_MODE_LEARN`.
pub const MODE_LEARN: u64 = 1;
/// `KVM_ISOLATE_MODE_ENFORCE`.
pub const MODE_ENFORCE: u64 = 2;
/// `KVM_ISOLATE_MODE_INHERIT`.
pub const MODE_INHERIT: u64 = 3;

/// `KVM_ISOLATE_MAX_VIEWS`.
pub const MAX_VIEWS: u64 = 256;
/// 32-bit words of a bitmap of every view, as `KVM_ISOLATE_QUERY_VIEWS` answers it one word at a
/// time: 32 bits, so that no answer reads as an error code.
pub const VIEW_WORDS: usize = (MAX_VIEWS as usize).div_ceil(32);
/// `KVM_ISOLATE_MAX_PAGES`.
pub const MAX_PAGES: u64 = 1 << 20;
/// Guest physical addresses above this are outside any x86 guest (52-bit MAXPHYADDR).
pub const GPA_LIMIT: u64 = 1 << 52;
/// The page size the ABI counts in.
pub const PAGE_SIZE: u64 = 4096;

/// `KVM_ISOLATE_EXIT_FLAG_VIEW`: in `memory_fault.flags` of a view's exit.
pub const EXIT_FLAG_VIEW: u64 = 1 << 4;
/// `KVM_ISOLATE_EXIT_FLAG_WRITE`.
pub const EXIT_FLAG_WRITE: u64 = 1 << 5;
/// `KVM_ISOLATE_EXIT_FLAG_EXEC`.
pub const EXIT_FLAG_EXEC: u64 = 1 << 6;

/// `KVM_ISOLATE_ACCESS_R`.
pub const ACCESS_R: u64 = 0x1;
/// `KVM_ISOLATE_ACCESS_W`.
pub const ACCESS_W: u64 = 0x2;
/// `KVM_ISOLATE_ACCESS_X`.
pub const ACCESS_X: u64 = 0x4;
/// `KVM_ISOLATE_ACCESS_RWX`.
pub const ACCESS_RWX: u64 = 0x7;
/// `KVM_ISOLATE_ACCESS_VE`: violations go to the guest as #VE.
pub const ACCESS_VE: u64 = 0x8;

/// An ABI error; the guest sees it negated in RAX.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum Error {
    /// `KVM_ISOLATE_EPERM`.
    Perm = 1,
    /// `KVM_ISOLATE_ENOENT`.
    NoEnt = 2,
    /// `KVM_ISOLATE_ENOMEM`.
    NoMem = 12,
    /// `KVM_ISOLATE_EEXIST`.
    Exist = 17,
    /// `KVM_ISOLATE_EBUSY`.
    Busy = 16,
    /// `KVM_ISOLATE_EINVAL`.
    Inval = 22,
    /// `KVM_ISOLATE_ENOSPC`.
    NoSpc = 28,
    /// `KVM_ISOLATE_ERANGE`.
    Range = 34,
    /// `KVM_ISOLATE_EOPNOTSUPP`.
    OpNotSupp = 95,
    /// `KVM_ISOLATE_ENOSYS`.
    NoSys = 1000,
}

impl Error {
    /// The value for RAX: the code, negated.
    pub fn to_ret(self) -> u64 {
        (self as u64).wrapping_neg()
    }
}

/// What to do when the current view denies an access (set by `KVM_HC_ISOLATE_ON_VIOLATION`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnViolation {
    /// Exit to user space with a memory fault naming the page (the default).
    Exit,
    /// Inject #GP(0).
    InjectGp,
    /// Inject #UD.
    InjectUd,
    /// Grant the access in the view and retry.
    Grant,
    /// Switch to this view and retry (if the view denies too, exit).
    Switch(u8),
}

/// A decoded, validated hypercall.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    /// Is kvm-isolate here?
    Probe,
    /// Which ABI version?
    Version,
    /// Create a view.
    ViewCreate,
    /// Destroy a view (1 ..).
    ViewDestroy(u8),
    /// Set the rights of a page range in a view.
    SetAccess {
        /// The view.
        view: u8,
        /// The first page.
        gfn: u64,
        /// Pages, 1 ..= `MAX_PAGES`.
        npages: u64,
        /// R/W/X bits, and `ACCESS_VE`.
        access: u8,
    },
    /// Switch the calling vCPU's view.
    Switch(u8),
    /// The calling vCPU's view.
    QueryView,
    /// The rights of a page in a view.
    QueryAccess {
        /// The view.
        view: u8,
        /// The page.
        gfn: u64,
    },
    /// Which views exist: 32-bit word `n` of the bitmap (views `32n` .. `32n + 31`).
    QueryViews(u8),
    /// `MAX_VIEWS`.
    QueryMaxViews,
    /// What the calling vCPU can use: `FEATURE_*` bits.
    QueryFeatures,
    /// Set what a violation does.
    OnViolation(OnViolation),
    /// Create a domain.
    DomainCreate,
    /// Add a code range to a domain.
    DomainAddCode {
        /// The domain (1 ..).
        domain: u8,
        /// First address (guest virtual, page aligned).
        gva: u64,
        /// First page backing it.
        gfn: u64,
        /// Pages.
        npages: u64,
    },
    /// Add a region to a domain.
    DomainAddRegion {
        /// The domain (1 ..).
        domain: u8,
        /// First page.
        gfn: u64,
        /// Pages.
        npages: u64,
        /// The owner's R/W/X rights.
        access: u8,
    },
    /// Destroy a domain.
    DomainDestroy(u8),
    /// Add an entry point to a domain.
    DomainAddEntry {
        /// The domain (1 ..).
        domain: u8,
        /// The instruction (guest virtual, inside one of the domain's code ranges).
        gva: u64,
    },
    /// Set the mode of the VM (domain 0) or of a domain; `None`: inherit the VM's.
    SetMode {
        /// 0 for the VM.
        domain: u8,
        /// `MODE_OFF` ..= `MODE_ENFORCE`, or `None` for `MODE_INHERIT`.
        mode: Option<u8>,
    },
    /// From now on the guest can only tighten.
    Lock,
    /// The calling vCPU's #VE information page (a gfn), or none.
    VeInfo(Option<u64>),
    /// Let `SWITCH` and `VMFUNC` enter a domain's view.
    DomainSwitchable(u8),
    /// Set 16 bytes of a domain's name.
    DomainName {
        /// The domain (1 ..).
        domain: u8,
        /// Which 16 bytes: 0 .. `NAME_LEN / 16`.
        chunk: u8,
        /// The bytes, little-endian in two words: printable ASCII or NUL.
        bytes: [u64; 2],
    },
    /// Name guest code, or set 8 more bytes of its name, or remove it (`size` 0 at `chunk` 0;
    /// every name with `start` 0 too).
    CodeName {
        /// Its first byte (guest virtual; 0 only to remove every name).
        start: u64,
        /// Its bytes (at most `CODE_NAME_MAX_SIZE`; `start + size` does not wrap).
        size: u64,
        /// Which 8 bytes of the name: 0 .. `NAME_LEN / 8`; 0 names the range afresh.
        chunk: u8,
        /// The bytes, little-endian: printable ASCII or NUL.
        bytes: u64,
    },
}

/// Whether a name's word is printable ASCII or NUL, byte by byte.
fn printable(w: u64) -> bool {
    w.to_le_bytes()
        .iter()
        .all(|&b| b == 0 || (0x20..0x7f).contains(&b))
}

fn view_arg(v: u64) -> Result<u8, Error> {
    if v < MAX_VIEWS {
        Ok(v as u8)
    } else {
        Err(Error::Inval)
    }
}

fn domain_arg(v: u64) -> Result<u8, Error> {
    match view_arg(v)? {
        0 => Err(Error::Inval),
        d => Ok(d),
    }
}

/// Checks a page range at `gpa`: aligned, 1 ..= `MAX_PAGES` pages, ending below 2^52.
fn gpa_range(gpa: u64, npages: u64) -> Result<u64, Error> {
    if gpa % PAGE_SIZE != 0 || npages == 0 || npages > MAX_PAGES {
        return Err(Error::Range);
    }
    // npages <= 2^20, so this cannot overflow; the end must stay below 2^52.
    if gpa >= GPA_LIMIT || npages * PAGE_SIZE > GPA_LIMIT - gpa {
        return Err(Error::Range);
    }
    Ok(gpa / PAGE_SIZE)
}

fn zero(args: &[u64]) -> Result<(), Error> {
    if args.iter().all(|&a| a == 0) {
        Ok(())
    } else {
        Err(Error::Inval)
    }
}

/// Decodes hypercall `nr` with arguments `a`; checks everything that needs no VM state.
/// Unused arguments must be zero, so that they can gain a meaning later.
pub fn decode(nr: u64, a: [u64; 4]) -> Result<Call, Error> {
    match nr {
        HC_PROBE => zero(&a).map(|()| Call::Probe),
        HC_VERSION => zero(&a).map(|()| Call::Version),
        HC_VIEW_CREATE => zero(&a).map(|()| Call::ViewCreate),
        HC_VIEW_DESTROY => {
            zero(&a[1..])?;
            match view_arg(a[0])? {
                0 => Err(Error::Perm),
                v => Ok(Call::ViewDestroy(v)),
            }
        }
        HC_SET_ACCESS => {
            let view = view_arg(a[0])?;
            let (gpa, npages, access) = (a[1], a[2], a[3]);
            if access & !(ACCESS_RWX | ACCESS_VE) != 0 {
                return Err(Error::Inval);
            }
            Ok(Call::SetAccess {
                view,
                gfn: gpa_range(gpa, npages)?,
                npages,
                access: access as u8,
            })
        }
        HC_SWITCH => {
            zero(&a[1..])?;
            Ok(Call::Switch(view_arg(a[0])?))
        }
        HC_QUERY => match a[0] {
            QUERY_VIEW => zero(&a[1..]).map(|()| Call::QueryView),
            QUERY_ACCESS => {
                zero(&a[3..])?;
                let view = view_arg(a[1])?;
                if a[2] >= GPA_LIMIT {
                    return Err(Error::Range);
                }
                Ok(Call::QueryAccess {
                    view,
                    gfn: a[2] / PAGE_SIZE,
                })
            }
            QUERY_VIEWS => {
                zero(&a[2..])?;
                match a[1] {
                    // CAST: below `VIEW_WORDS`, 8.
                    w if w < VIEW_WORDS as u64 => Ok(Call::QueryViews(w as u8)),
                    _ => Err(Error::Inval),
                }
            }
            QUERY_MAX_VIEWS => zero(&a[1..]).map(|()| Call::QueryMaxViews),
            QUERY_FEATURES => zero(&a[1..]).map(|()| Call::QueryFeatures),
            _ => Err(Error::Inval),
        },
        HC_ON_VIOLATION => {
            zero(&a[2..])?;
            let what = match a[0] {
                ON_VIOLATION_EXIT => OnViolation::Exit,
                ON_VIOLATION_GP => OnViolation::InjectGp,
                ON_VIOLATION_UD => OnViolation::InjectUd,
                ON_VIOLATION_GRANT => OnViolation::Grant,
                ON_VIOLATION_SWITCH => {
                    return Ok(Call::OnViolation(OnViolation::Switch(view_arg(a[1])?)))
                }
                _ => return Err(Error::Inval),
            };
            zero(&a[1..2])?;
            Ok(Call::OnViolation(what))
        }
        HC_VE_INFO => {
            zero(&a[1..])?;
            match a[0] {
                u64::MAX => Ok(Call::VeInfo(None)),
                gpa if gpa % PAGE_SIZE == 0 && gpa < GPA_LIMIT => {
                    Ok(Call::VeInfo(Some(gpa / PAGE_SIZE)))
                }
                _ => Err(Error::Range),
            }
        }
        HC_DOMAIN_CREATE => zero(&a).map(|()| Call::DomainCreate),
        HC_DOMAIN_ADD_CODE => {
            let domain = domain_arg(a[0])?;
            let (gva, gpa, npages) = (a[1], a[2], a[3]);
            let gfn = gpa_range(gpa, npages)?;
            if gva % PAGE_SIZE != 0 || gva.checked_add(npages * PAGE_SIZE).is_none() {
                return Err(Error::Range);
            }
            Ok(Call::DomainAddCode {
                domain,
                gva,
                gfn,
                npages,
            })
        }
        HC_DOMAIN_ADD_REGION => {
            let domain = domain_arg(a[0])?;
            let (gpa, npages, access) = (a[1], a[2], a[3]);
            if access == 0 || access & !ACCESS_RWX != 0 {
                return Err(Error::Inval);
            }
            Ok(Call::DomainAddRegion {
                domain,
                gfn: gpa_range(gpa, npages)?,
                npages,
                access: access as u8,
            })
        }
        HC_DOMAIN_DESTROY => {
            zero(&a[1..])?;
            Ok(Call::DomainDestroy(domain_arg(a[0])?))
        }
        HC_SET_MODE => {
            zero(&a[2..])?;
            let domain = view_arg(a[0])?;
            let mode = match a[1] {
                MODE_OFF | MODE_LEARN | MODE_ENFORCE => Some(a[1] as u8),
                MODE_INHERIT if domain != 0 => None,
                _ => return Err(Error::Inval),
            };
            Ok(Call::SetMode { domain, mode })
        }
        HC_LOCK => zero(&a).map(|()| Call::Lock),
        HC_DOMAIN_ADD_ENTRY => {
            zero(&a[2..])?;
            Ok(Call::DomainAddEntry {
                domain: domain_arg(a[0])?,
                gva: a[1],
            })
        }
        HC_DOMAIN_SWITCHABLE => {
            zero(&a[1..])?;
            Ok(Call::DomainSwitchable(domain_arg(a[0])?))
        }
        HC_DOMAIN_NAME => {
            let domain = domain_arg(a[0])?;
            let chunk = match a[1] {
                // CAST: below `NAME_LEN`.
                o if o % 16 == 0 && o < NAME_LEN as u64 => (o / 16) as u8,
                _ => return Err(Error::Inval),
            };
            if !printable(a[2]) || !printable(a[3]) {
                return Err(Error::Inval);
            }
            Ok(Call::DomainName {
                domain,
                chunk,
                bytes: [a[2], a[3]],
            })
        }
        HC_CODE_NAME => {
            let (start, size) = (a[0], a[1]);
            let chunk = match a[2] {
                // CAST: below `NAME_LEN`.
                o if o % 8 == 0 && o < NAME_LEN as u64 => (o / 8) as u8,
                _ => return Err(Error::Inval),
            };
            // `start` 0 only to remove every name: size, chunk and bytes 0.
            let fits = (start != 0 || size == 0 && a[3] == 0)
                && size <= CODE_NAME_MAX_SIZE
                && start.checked_add(size).is_some()
                && (size != 0 || chunk == 0);
            if !fits || !printable(a[3]) {
                return Err(Error::Inval);
            }
            Ok(Call::CodeName {
                start,
                size,
                chunk,
                bytes: a[3],
            })
        }
        _ => Err(Error::NoSys),
    }
}

/// Which views of a VM exist. View 0 always does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Views([u64; VIEW_WORDS / 2]);

impl Default for Views {
    fn default() -> Self {
        let mut w = [0; VIEW_WORDS / 2];
        w[0] = 1;
        Views(w)
    }
}

impl Views {
    /// Whether `view` exists.
    pub fn exists(self, view: u8) -> bool {
        let v = usize::from(view);
        u64::from(view) < MAX_VIEWS && self.0[v / 64] & (1 << (v % 64)) != 0
    }

    /// 32-bit word `n` of the bitmap, bit 0 of word 0 for view 0; 0 past the end.
    pub fn word(self, n: usize) -> u64 {
        self.0
            .get(n / 2)
            .map_or(0, |w| (w >> (32 * (n % 2))) & 0xffff_ffff)
    }

    /// How many views exist, view 0 included.
    pub fn count(self) -> u32 {
        self.0.iter().map(|w| w.count_ones()).sum()
    }

    /// The lowest free view, without creating it.
    pub fn free(self) -> Result<u8, Error> {
        for (i, w) in self.0.iter().enumerate() {
            let v = i * 64 + (!w).trailing_zeros() as usize;
            if (!w) != 0 && (v as u64) < MAX_VIEWS {
                // CAST: below `MAX_VIEWS`, 256.
                return Ok(v as u8);
            }
        }
        Err(Error::NoSpc)
    }

    /// Marks `view` created.
    pub fn insert(&mut self, view: u8) {
        let v = usize::from(view);
        if let Some(w) = self.0.get_mut(v / 64) {
            *w |= 1 << (v % 64);
        }
    }

    /// Checks that `view` can be destroyed: it exists, is not 0, is not in use.
    pub fn check_destroy(self, view: u8, in_use: bool) -> Result<(), Error> {
        if view == 0 {
            Err(Error::Perm)
        } else if !self.exists(view) {
            Err(Error::NoEnt)
        } else if in_use {
            Err(Error::Busy)
        } else {
            Ok(())
        }
    }

    /// Marks `view` destroyed.
    pub fn remove(&mut self, view: u8) {
        let v = usize::from(view);
        if let Some(w) = self.0.get_mut(v / 64).filter(|_| view != 0) {
            *w &= !(1 << (v % 64));
        }
    }
}
