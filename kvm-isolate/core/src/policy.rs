// SPDX-License-Identifier: GPL-2.0

//! The policy engine: domains (a guest module's code and the regions it owns), modes, profiles,
//! the decision about each violation, and the bounded, rate-limited violation log that
//! compresses repeats.
//!
//! The engine's tables (code ranges, regions, rules, entry points, return sites, the log's ring)
//! are growable sorted arrays ([`List`]), allocated on first use and bounded by per-VM
//! [`Limits`] (the module's parameters); a full table refuses with [`Error::NoSpc`] and changes
//! nothing. [`Engine::decide`] only reads. Lookups and overlap checks are binary searches:
//! O(log n) in code ranges, regions and rules.
//!
//! Views are named by domain: domain `d` owns view `d` (1 ..= 255); view 0 belongs to no domain.
//! A [`Lens`] on a domain is a view of the engine's too, where profile code with fewer rights
//! than the owner's runs with its rules' rights.
//!
//! Entry gates: a protected domain's code is executable only in its own view, so code outside
//! starts running it with an instruction fetch violation, which [`Engine::decide`] allows only at
//! one of the domain's entry points or at a return site the domain left through (a call out of
//! it, or an event taken in it), once. Both are held as guest-physical locations with their
//! virtual address: the fetch violation names the physical page the code came from.

use crate::abi::{self, Error};
use crate::ctl::{self, CtlCodeName, CtlEntry, CtlRecord, CtlRegion, CtlRule};
use crate::list::List;

/// Domains per VM (views 1 ..= 255).
pub const MAX_DOMAINS: usize = abi::MAX_VIEWS as usize - 1;

/// A VM's capacities, all domains together: memory caps the host's administrator sets (the
/// `kvm_isolate` module's parameters, read when the VM is created).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Code ranges (`max_code_ranges`).
    pub code: usize,
    /// Regions (`max_regions`).
    pub regions: usize,
    /// Profile rules (`max_rules`).
    pub rules: usize,
    /// Entry points (`max_entry_points`).
    pub entries: usize,
    /// Return sites pending (`max_return_sites`): calls out of a domain (and events taken in it)
    /// not yet returned from. When full, the least recently recorded site is forgotten: a guest
    /// that never returns costs no more than this.
    pub returns: usize,
}

impl Limits {
    /// The module parameters' defaults: a guest with a few hundred protected modules, each of
    /// dozens of scattered code runs and several regions, fits; at most about 6 MiB per VM.
    pub const DEFAULT: Limits = Limits {
        code: 16384,
        regions: 16384,
        rules: 65536,
        entries: 65536,
        returns: 4096,
    };

    /// The largest value a cap may take (a table of this many items stays far below what one
    /// kernel allocation may be).
    pub const CEILING: usize = 1 << 20;

    /// Whether every cap is at most [`Limits::CEILING`].
    pub fn valid(&self) -> bool {
        [
            self.code,
            self.regions,
            self.rules,
            self.entries,
            self.returns,
        ]
        .iter()
        .all(|&n| n <= Self::CEILING)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Bits of [`Engine::full`]: which table is at its cap.
pub mod full {
    /// Code ranges.
    pub const CODE: u8 = 1;
    /// Regions.
    pub const REGIONS: u8 = 2;
    /// Rules.
    pub const RULES: u8 = 4;
    /// Entry points.
    pub const ENTRIES: u8 = 8;
    /// Return sites.
    pub const RETURNS: u8 = 16;
    /// Each bit with the name of the module parameter that sets its cap.
    pub const NAMES: [(u8, &str); 5] = [
        (CODE, "max_code_ranges"),
        (REGIONS, "max_regions"),
        (RULES, "max_rules"),
        (ENTRIES, "max_entry_points"),
        (RETURNS, "max_return_sites"),
    ];
}
/// Log records kept.
pub const LOG_RECORDS: usize = ctl::LOG_RECORDS;
/// Records the rate limiter lets through in a burst.
pub const LOG_BURST: u64 = 256;
/// Records per second the rate limiter lets through after a burst.
pub const LOG_RATE: u64 = 1000;
/// Unread records a new one is compared with to find a repeat (least recently used out).
///
/// At most [`LOG_BURST`], so that violations cycling through this many keys cannot, however often
/// they repeat, use more than the tokens of a burst.
pub const LOG_WINDOW: usize = 64;
const _: () = assert!(LOG_WINDOW as u64 <= LOG_BURST);

const PAGE: u64 = abi::PAGE_SIZE;
const R: u8 = 1;
const W: u8 = 2;
const X: u8 = 4;
const RW: u8 = R | W;

/// A mode. Ordered from loosest to tightest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Mode {
    /// Regions are not protected (mapped in view 0); nothing is recorded.
    Off = 0,
    /// Every access is allowed and added to the profile.
    Learn = 1,
    /// Only the owner's code and the profile may access a region.
    Enforce = 2,
}

impl Mode {
    /// Decodes `MODE_OFF` ..= `MODE_ENFORCE`.
    pub fn from_u32(m: u32) -> Option<Mode> {
        match m {
            ctl::MODE_OFF => Some(Mode::Off),
            ctl::MODE_LEARN => Some(Mode::Learn),
            ctl::MODE_ENFORCE => Some(Mode::Enforce),
            _ => None,
        }
    }
}

/// What a denied access does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Deny {
    /// Exit to user space with a memory fault.
    Exit = 0,
    /// Inject #GP(0).
    Gp = 1,
    /// Inject #PF.
    Pf = 2,
}

impl Deny {
    /// Decodes `DENY_*`.
    pub fn from_u32(d: u32) -> Option<Deny> {
        match d {
            ctl::DENY_EXIT => Some(Deny::Exit),
            ctl::DENY_GP => Some(Deny::Gp),
            ctl::DENY_PF => Some(Deny::Pf),
            _ => None,
        }
    }
}

/// The top of the guest's stack at an instruction fetch violation: a `call`, or an event without
/// error code, has just stored its return address in `top`; a `ret` has just taken its target
/// from `below`. Guest memory: code outside a domain can write it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stack {
    /// The word at RSP - 8.
    pub below: u64,
    /// The word at RSP.
    pub top: u64,
    /// The words above RSP as an event stores them, if KVM could read them.
    pub event: Option<Event>,
}

/// What an interrupt or exception delivered in 64-bit mode stores above the RIP it pushes (at
/// `at`), if the words there are one: read for every fetch, judged by [`Event::frame`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    /// The fetch's RSP: where the frame's RIP is ([`Stack::top`]), or its error code.
    pub at: u64,
    /// The interrupted CS (the word at `at + 8`); after an error code, the RIP.
    pub cs: u64,
    /// The interrupted RFLAGS (at `at + 16`); after an error code, CS.
    pub rflags: u64,
    /// The interrupted RSP (at `at + 24`); after an error code, RFLAGS.
    pub rsp: u64,
    /// The interrupted SS (at `at + 32`); after an error code, the interrupted RSP.
    pub ss: u64,
    /// The word at `rsp` - 8 (0 if KVM could not read it).
    pub below: u64,
    /// The word at `rsp` (0 if KVM could not read it).
    pub top: u64,
}

impl Event {
    /// Whether the words look like the frame an event taken in kernel mode pushed where it
    /// interrupted: a privileged CS and SS selector, RFLAGS with its always-one bit and no
    /// reserved high bit, and the interrupted RSP right above the frame (the CPU aligns RSP down
    /// to 16 bytes, then pushes five words). An event on another stack (IST) is not recognized.
    pub fn frame(&self) -> bool {
        let above = self.rsp.wrapping_sub(self.at.wrapping_add(40));
        kernel_selector(self.cs)
            && kernel_selector(self.ss)
            && flags(self.rflags)
            && above < 16
    }

    /// Whether the words look like the frame an exception with an error code (a page fault,
    /// say) pushed where it interrupted kernel code: after the error code at `at`, RIP (`cs`),
    /// a privileged CS, RFLAGS, and the interrupted RSP right above the six words (SS, above
    /// them, is not read). Then `cs` is where the handler returns.
    pub fn error_frame(&self) -> bool {
        let above = self.ss.wrapping_sub(self.at.wrapping_add(48));
        kernel_selector(self.rflags) && flags(self.rsp) && above < 16
    }
}

/// A privileged segment selector (RPL 0).
fn kernel_selector(s: u64) -> bool {
    s < 0x1_0000 && s & 3 == 0
}

/// RFLAGS as the CPU pushes it: its always-one bit set, no bit above ID.
fn flags(f: u64) -> bool {
    f & 2 != 0 && f >> 22 == 0
}

/// A denied access, as the hardware reported it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    /// The vCPU's view.
    pub view: u8,
    /// Guest physical address.
    pub gpa: u64,
    /// Guest RIP.
    pub rip: u64,
    /// The right the access needed: exactly one of R (1), W (2), X (4).
    pub access: u8,
    /// For a fetch, the guest's stack if KVM could read it.
    pub stack: Option<Stack>,
}

/// A place where code outside a domain may start running the domain's code.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Gate {
    /// Guest physical address of the instruction: what identifies it.
    pub gpa: u64,
    /// Its guest virtual address, which RIP must equal too.
    pub gva: u64,
    /// The domain.
    pub domain: u8,
}

/// What a decision does to the entry points and return sites.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GateOp {
    /// Learn mode: a new entry point.
    Learn(Gate),
    /// A call out of the domain (or an event in it): it may be resumed here once.
    Called(Gate),
    /// The domain was resumed at this return site: it is used up.
    Returned(Gate),
}

/// What to do about a fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Not about any domain: the VM's ABI v1 `ON_VIOLATION` setting applies.
    NotOurs,
    /// Allowed: switch to the owner's view and retry.
    Switch(u8),
    /// Allowed code runs in the domain's view: make the page executable there and retry.
    GrantExec,
    /// Code outside the domain ran in the domain's view: back to view 0 and retry.
    Leave,
    /// Profile code whose rules give it less than the owner's rights runs in domain `d`'s view:
    /// switch to the lens its rules make ([`Engine::lens_for`], built on first use) and retry.
    Narrow(u8),
    /// A rule trusted on its own lets its accessor at domain `d`'s region from outside: switch
    /// to the lens its trusted rules alone make (never the owner's view) and retry.
    Trusted(u8),
    /// Denied.
    Deny(Deny),
}

/// A decision and what goes with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// What to do.
    pub decision: Decision,
    /// The domain whose region or view it was (0: none).
    pub domain: u8,
    /// Learn mode: the rule to add to the profile before retrying.
    pub learn: Option<Rule>,
    /// The entry point or return site to record or use up.
    pub gate: Option<GateOp>,
    /// Whether to log a record, with this `LOG_*` verdict.
    pub log: Option<u32>,
}

/// A profile rule: code in `[start, end)` (guest virtual) may access a region with `rights`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rule {
    /// First gfn of the region.
    pub region: u64,
    /// Accessor range start.
    pub start: u64,
    /// Accessor range end (exclusive).
    pub end: u64,
    /// R/W/X bits.
    pub rights: u8,
    /// The region's domain.
    pub domain: u8,
    /// Trusted on its own: the accessor may access the region from outside the owner's view,
    /// not only while it runs there (called by the owner).
    pub trusted: bool,
}

/// A guest-virtual code range of a domain, backed by `npages` at `gfn`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Code {
    /// Start (guest virtual, page aligned).
    pub start: u64,
    /// End (exclusive).
    pub end: u64,
    /// First gfn.
    pub gfn: u64,
    /// Pages.
    pub npages: u64,
    /// Owner.
    pub domain: u8,
}

/// A region owned by a domain.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Region {
    /// First gfn.
    pub gfn: u64,
    /// Pages.
    pub npages: u64,
    /// The owner's rights.
    pub rights: u8,
    /// Owner.
    pub domain: u8,
    /// Its number among its domain's regions, in the order they were added (from 0): what a
    /// profile names it by, its address changing from boot to boot. [`Engine::add_region`]
    /// sets it.
    pub index: u32,
}

impl Region {
    fn contains(&self, gfn: u64) -> bool {
        gfn >= self.gfn && gfn - self.gfn < self.npages
    }
}

/// Per-domain counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Accesses allowed by switching into the view.
    pub allowed: u64,
    /// Accesses denied.
    pub denied: u64,
    /// Rules and entry points learned.
    pub learned: u64,
    /// Switches back out of the view.
    pub left: u64,
}

/// A domain. Inactive while `active == 0`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Domain {
    active: bool,
    /// How many regions it has.
    regions: usize,
    /// Own mode + 1, or 0 to inherit the VM's.
    mode: u8,
    /// Its view may be switched to without a check ([`Engine::check_switchable`]).
    switchable: bool,
    /// The name the guest gave it, as the hypercall's words (little-endian bytes): for the
    /// host's tools only, never for a decision.
    name: [u64; abi::NAME_LEN / 8],
    /// Counters.
    pub counters: Counters,
}

/// Guest code the guest named (`KVM_HC_ISOLATE_CODE_NAME`): its kernel's text, a module's. For
/// the host's tools only (a log record's RIP, a profile's accessors), never for a decision.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct CodeName {
    start: u64,
    size: u64,
    /// When it was named, and when retired (`u64::MAX`: not yet), a log record's clock.
    since_ns: u64,
    until_ns: u64,
    /// As the hypercall's words (little-endian bytes).
    name: [u64; abi::NAME_LEN / 8],
}

/// A return site not yet used: `count` calls out are pending there; `used` orders recording.
#[derive(Clone, Copy, Debug, Default)]
struct Pending {
    gate: Gate,
    count: u32,
    used: u64,
}

/// A rule's accessor range, indexed by domain: `reach` is the largest `end` of the domain's
/// entries up to this one, so the last entry starting at or below an address says whether any
/// of them contains it, and walking back from it while `reach` is above the address finds all
/// of them.
#[derive(Clone, Copy, Debug, Default)]
struct Accessor {
    domain: u8,
    start: u64,
    reach: u64,
    /// The rule's own end, region and rights (within the region's).
    end: u64,
    region: u64,
    rights: u8,
    /// Whether the rule gives all of the region's rights.
    full: bool,
    /// Whether the rule is trusted on its own.
    trusted: bool,
}

/// A *lens* on a domain: a view in which code the domain's profile names runs with its rules'
/// rights rather than the owner's. It maps the domain's regions with the rights the rules give
/// `rep` (only those), no other domain's region, no code writable, and executes only profile
/// code with exactly those rights ([`Engine::decide`] grants it page by page). Accessors whose
/// rules give them the same rights over the domain's regions share one lens.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lens {
    /// Its view: an index the VM's guest did not create (the module takes it from the free ones).
    pub view: u8,
    /// The domain it is a lens on.
    pub domain: u8,
    /// An accessor address whose rules are its rights.
    pub rep: u64,
    /// Entered from outside, by a rule trusted on its own: its rights are those of `rep`'s
    /// trusted rules only.
    pub trusted: bool,
}

/// Lenses per VM, all domains together.
pub const MAX_LENSES: usize = 32;

/// Whether `[lo, lo + n)` overlaps an item of `items`, which are sorted by start and disjoint,
/// each spanning `span(item) = (start, length)`. Only the neighbours of `lo` can: O(log n).
fn overlaps<T>(items: &[T], lo: u64, n: u64, span: impl Fn(&T) -> (u64, u64)) -> bool {
    let i = items.partition_point(|x| span(x).0 < lo);
    let hit = |x: &T| {
        let (start, len) = span(x);
        overlap(start, len, lo, n)
    };
    (i > 0 && hit(&items[i - 1])) || items.get(i).is_some_and(hit)
}

/// What a guest-physical page is, each looked up once and only if asked. Regions and code pages
/// are disjoint (an [`Engine`] invariant), so finding one answers the other.
struct Page<'a> {
    e: &'a Engine,
    gfn: u64,
    region: Option<Option<&'a Region>>,
    code: Option<Option<&'a Code>>,
}

impl<'a> Page<'a> {
    fn new(e: &'a Engine, gfn: u64) -> Self {
        Page {
            e,
            gfn,
            region: None,
            code: None,
        }
    }

    /// The region holding the page.
    fn region(&mut self) -> Option<&'a Region> {
        let (e, gfn, code) = (self.e, self.gfn, self.code);
        *self.region.get_or_insert_with(|| match code {
            Some(Some(_)) => None,
            _ => e.region_at(gfn),
        })
    }

    /// The code range whose pages hold the page.
    fn code(&mut self) -> Option<&'a Code> {
        let (e, gfn, region) = (self.e, self.gfn, self.region);
        *self.code.get_or_insert_with(|| match region {
            Some(Some(_)) => None,
            _ => e.code_at_gfn(gfn),
        })
    }
}

/// The per-VM policy state.
///
/// # Invariants
///
/// `code` is sorted by `start` and its ranges are disjoint; `code_by_gfn` holds the same ranges
/// sorted by `gfn`, disjoint in their pages; `regions` is sorted by `gfn` and disjoint, and no
/// region overlaps any code range's pages; `rules` is sorted by `(region, start)`, and the rules
/// of one region are disjoint; `entries` is sorted and each lies in its domain's code, as does
/// each of `returns`, sorted by gate, with `count >= 1`; every code range, region, rule, entry
/// and return site belongs to an active domain, every rule to a region; `lenses` is sorted by
/// view, and each is a lens on an active domain, in a view no domain has. No table holds more
/// than its cap in `limits` (`lenses`: [`MAX_LENSES`]).
pub struct Engine {
    mode: Mode,
    deny: Deny,
    locked: bool,
    limits: Limits,
    /// Indexed by domain (view): grown to the highest domain created.
    domains: List<Domain>,
    code: List<Code>,
    code_by_gfn: List<Code>,
    regions: List<Region>,
    rules: List<Rule>,
    /// `rules`' accessor ranges by domain and start, one per rule.
    accessors: List<Accessor>,
    entries: List<Gate>,
    returns: List<Pending>,
    /// Lenses, sorted by view.
    lenses: List<Lens>,
    /// Named guest code, sorted by start: at most `abi::MAX_CODE_NAMES`, the live ones not
    /// overlapping.
    names: List<CodeName>,
    /// The clock of `Pending::used`.
    calls: u64,
    /// Return sites forgotten because `returns` was full.
    pub returns_dropped: u64,
    /// Violations about domains.
    pub violations: u64,
    /// The log.
    pub log: Log,
}

impl core::fmt::Debug for Engine {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Engine")
            .field("mode", &self.mode)
            .field("deny", &self.deny)
            .field("locked", &self.locked)
            .field("domains", &self.domain_count())
            .field("code", &self.code())
            .field("regions", &self.regions())
            .field("rules", &self.rules())
            .finish()
    }
}

impl Default for Engine {
    fn default() -> Self {
        Self::new()
    }
}

/// `(hi, lo)` as one number, ordered as the pair is: a binary search comparing it needs no
/// branch on the first field, whose outcome the CPU could not predict.
fn wide(hi: u64, lo: u64) -> u128 {
    (u128::from(hi) << 64) | u128::from(lo)
}

fn overlap(a: u64, alen: u64, b: u64, blen: u64) -> bool {
    a < b.saturating_add(blen) && b < a.saturating_add(alen)
}

impl Engine {
    /// An empty engine with the default [`Limits`]: mode off, deny by exit, unlocked.
    pub const fn new() -> Self {
        Self::with_limits(Limits::DEFAULT)
    }

    /// An empty engine with these caps; allocates nothing.
    pub const fn with_limits(limits: Limits) -> Self {
        Engine {
            mode: Mode::Off,
            deny: Deny::Exit,
            locked: false,
            limits,
            domains: List::new(),
            code: List::new(),
            code_by_gfn: List::new(),
            regions: List::new(),
            rules: List::new(),
            accessors: List::new(),
            entries: List::new(),
            returns: List::new(),
            lenses: List::new(),
            names: List::new(),
            calls: 0,
            returns_dropped: 0,
            violations: 0,
            log: Log::new(),
        }
    }

    // ---- state queries ----

    /// The VM's mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The VM's deny action.
    pub fn deny(&self) -> Deny {
        self.deny
    }

    /// Whether the guest can only tighten.
    pub fn locked(&self) -> bool {
        self.locked
    }

    /// The VM's caps.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The tables at their cap, as [`full`] bits.
    pub fn full(&self) -> u8 {
        let l = &self.limits;
        [
            (self.code.len() >= l.code, full::CODE),
            (self.regions.len() >= l.regions, full::REGIONS),
            (self.rules.len() >= l.rules, full::RULES),
            (self.entries.len() >= l.entries, full::ENTRIES),
            (self.returns.len() >= l.returns, full::RETURNS),
        ]
        .iter()
        .filter(|x| x.0)
        .fold(0, |b, x| b | x.1)
    }

    /// Whether domain `d` exists.
    pub fn is_domain(&self, d: u8) -> bool {
        d >= 1
            && self
                .domains
                .as_slice()
                .get(usize::from(d))
                .is_some_and(|x| x.active)
    }

    /// Domain `d`'s own mode (`None`: inherits the VM's).
    pub fn own_mode(&self, d: u8) -> Option<Mode> {
        match self.domains.as_slice().get(usize::from(d))?.mode {
            0 => None,
            m => Mode::from_u32(u32::from(m) - 1),
        }
    }

    /// The mode that applies to domain `d`.
    pub fn effective_mode(&self, d: u8) -> Mode {
        self.own_mode(d).unwrap_or(self.mode)
    }

    /// Whether domain `d`'s view may be switched to by `SWITCH` or `VMFUNC`
    /// ([`Engine::check_switchable`]).
    pub fn switchable(&self, d: u8) -> bool {
        self.domains
            .as_slice()
            .get(usize::from(d))
            .is_some_and(|x| x.active && x.switchable)
    }

    /// Domain `d`'s name (NUL-padded; all NUL if the guest gave none).
    pub fn name(&self, d: u8) -> [u8; abi::NAME_LEN] {
        let mut out = [0; abi::NAME_LEN];
        if let Some(x) = self.domains.as_slice().get(usize::from(d)) {
            for (o, w) in out.chunks_exact_mut(8).zip(x.name) {
                o.copy_from_slice(&w.to_le_bytes());
            }
        }
        out
    }

    /// Checks that the guest may set domain `d`'s name: it exists and the VM is not locked.
    pub fn check_name(&self, d: u8) -> Result<(), Error> {
        if !self.is_domain(d) {
            return Err(Error::NoEnt);
        }
        if self.locked {
            return Err(Error::Perm);
        }
        Ok(())
    }

    /// Sets 16 bytes (`chunk` 0 .. `NAME_LEN / 16`) of domain `d`'s name.
    pub fn set_name(&mut self, d: u8, chunk: u8, bytes: [u64; 2]) {
        let i = usize::from(chunk) * 2;
        if let Some(x) = self.domains.as_mut_slice().get_mut(usize::from(d)) {
            if let Some(w) = x.name.get_mut(i..i + 2) {
                w.copy_from_slice(&bytes);
            }
        }
    }

    /// Domain `d`'s counters.
    pub fn counters(&self, d: u8) -> Counters {
        self.domains
            .as_slice()
            .get(usize::from(d))
            .map(|x| x.counters)
            .unwrap_or_default()
    }

    /// Domains that exist, in order.
    pub fn domain_ids(&self) -> impl Iterator<Item = u8> + '_ {
        (1..=MAX_DOMAINS)
            .take(self.domains.len().saturating_sub(1))
            // CAST: at most `MAX_DOMAINS`, 255.
            .map(|d| d as u8)
            .filter(|&d| self.is_domain(d))
    }

    /// How many domains exist.
    pub fn domain_count(&self) -> usize {
        self.domain_ids().count()
    }

    /// Code ranges of all domains, sorted.
    pub fn code(&self) -> &[Code] {
        self.code.as_slice()
    }

    /// Regions of all domains, sorted.
    pub fn regions(&self) -> &[Region] {
        self.regions.as_slice()
    }

    /// The profile, sorted by region and accessor.
    pub fn rules(&self) -> &[Rule] {
        self.rules.as_slice()
    }

    /// The region containing `gfn`. O(log n).
    pub fn region_at(&self, gfn: u64) -> Option<&Region> {
        let r = self.regions.as_slice();
        let i = r.partition_point(|x| x.gfn <= gfn);
        r[..i].last().filter(|x| x.contains(gfn))
    }

    /// The code range containing `rip`. O(log n).
    pub fn code_at(&self, rip: u64) -> Option<&Code> {
        let c = self.code.as_slice();
        let i = c.partition_point(|x| x.start <= rip);
        c[..i].last().filter(|x| rip < x.end)
    }

    /// The code range whose pages hold `gfn`. O(log n).
    pub fn code_at_gfn(&self, gfn: u64) -> Option<&Code> {
        let c = self.code_by_gfn.as_slice();
        let i = c.partition_point(|x| x.gfn <= gfn);
        c[..i].last().filter(|x| gfn - x.gfn < x.npages)
    }

    /// Entry points of all domains, sorted.
    pub fn entries(&self) -> &[Gate] {
        self.entries.as_slice()
    }

    /// Whether `g` is an entry point. O(log n).
    pub fn is_entry(&self, g: &Gate) -> bool {
        self.entries.as_slice().binary_search(g).is_ok()
    }

    /// The entry point at guest-physical `gpa` and virtual `gva`, of whichever domain. O(log n).
    fn entry_at(&self, gpa: u64, gva: u64) -> Option<&Gate> {
        let e = self.entries.as_slice();
        let key = wide(gpa, gva);
        let i = e.partition_point(|x| wide(x.gpa, x.gva) < key);
        e.get(i).filter(|x| (x.gpa, x.gva) == (gpa, gva))
    }

    /// Return sites pending at `g` (calls out not yet returned from). O(log n).
    pub fn pending(&self, g: &Gate) -> u32 {
        self.return_at(g).map_or(0, |i| self.returns.as_slice()[i].count)
    }

    /// Where return site `g` is in `returns` (`Ok`), or would be inserted (`Err`). O(log n),
    /// comparing `(gpa, gva)` as one number: a location belongs to one domain's code, so that
    /// orders the sites as `Gate` does.
    fn return_at(&self, g: &Gate) -> Result<usize, usize> {
        let r = self.returns.as_slice();
        let key = wide(g.gpa, g.gva);
        let i = r.partition_point(|p| wide(p.gate.gpa, p.gate.gva) < key);
        match r.get(i) {
            Some(p) if p.gate == *g => Ok(i),
            _ => Err(i),
        }
    }

    /// Return sites pending, all domains together, counted once per site.
    pub fn return_sites(&self) -> usize {
        self.returns.len()
    }

    /// The gate at `gva` in domain `d`'s code: its physical location through the code range.
    pub fn gate_at(&self, d: u8, gva: u64) -> Option<Gate> {
        let c = self.code_at(gva).filter(|c| c.domain == d)?;
        Some(Gate {
            gpa: c.gfn * PAGE + (gva - c.start),
            gva,
            domain: d,
        })
    }

    /// The rule of region `region` whose accessor range contains `rip`. O(log n).
    pub fn rule_at(&self, region: u64, rip: u64) -> Option<&Rule> {
        let r = self.rules.as_slice();
        let key = wide(region, rip);
        let i = r.partition_point(|x| wide(x.region, x.start) <= key);
        r[..i].last().filter(|x| x.region == region && rip < x.end)
    }

    // ---- lenses ----

    /// The rules of domain `d` whose accessor ranges hold `rip`, from the accessor index: at most
    /// one per region (a region's rules are disjoint). O(log n + the entries walked).
    /// With `trusted`, only rules trusted on their own.
    fn rules_holding(
        &self,
        d: u8,
        rip: u64,
        trusted: bool,
    ) -> impl Iterator<Item = &Accessor> + Clone + '_ {
        let a = self.accessors.as_slice();
        let key = wide(d.into(), rip);
        let i = a.partition_point(|x| wide(x.domain.into(), x.start) <= key);
        a[..i]
            .iter()
            .rev()
            .take_while(move |x| x.domain == d && x.reach > rip)
            .filter(move |x| x.end > rip && (x.trusted || !trusted))
    }

    /// Whether the rules give code at `rip` all of the owner's rights over every region of
    /// domain `d`: such code may run in `d`'s view.
    pub fn covers(&self, d: u8, rip: u64) -> bool {
        let regions = self
            .domains
            .as_slice()
            .get(usize::from(d))
            .map_or(0, |x| x.regions);
        self.rules_holding(d, rip, false).filter(|x| x.full).count() == regions
    }

    /// Whether the rules give code at `a` and at `b` the same rights over domain `d`'s regions:
    /// rules of the same regions with the same rights hold both (a region without one gives
    /// none). O(k^2) in the rules holding them. With `trusted`, of the rules trusted on their
    /// own only.
    fn same_rights(&self, d: u8, a: u64, b: u64, trusted: bool) -> bool {
        let (ra, rb) = (
            self.rules_holding(d, a, trusted),
            self.rules_holding(d, b, trusted),
        );
        ra.clone().count() == rb.clone().count()
            && ra.clone().all(|x| {
                rb.clone()
                    .any(|y| (y.region, y.rights) == (x.region, x.rights))
            })
    }

    /// The rights the rules (with `trusted`, those trusted on their own) give code at `rip` over
    /// region `r`, within the region's own.
    fn rights_at(&self, r: &Region, rip: u64, trusted: bool) -> u8 {
        self.rule_at(r.gfn, rip)
            .filter(|x| x.trusted || !trusted)
            .map_or(0, |x| x.rights & r.rights)
    }

    /// The lens in view `v`, if it is one.
    pub fn lens(&self, v: u8) -> Option<&Lens> {
        let l = self.lenses.as_slice();
        l.binary_search_by_key(&v, |x| x.view).ok().map(|i| &l[i])
    }

    /// Lenses, by view.
    pub fn lenses(&self) -> &[Lens] {
        self.lenses.as_slice()
    }

    /// The view of the lens on domain `d` whose rights are those of code at `rip` (with
    /// `trusted`, of its rules trusted on their own), if there is one yet. O(lenses x k^2) in the
    /// rules holding the two addresses compared.
    pub fn lens_for(&self, d: u8, rip: u64, trusted: bool) -> Option<u8> {
        self.lenses
            .as_slice()
            .iter()
            .find(|l| {
                l.domain == d && l.trusted == trusted && self.same_rights(d, rip, l.rep, trusted)
            })
            .map(|l| l.view)
    }

    /// Whether view `v` is the engine's (a domain's or a lens): the guest's ABI v1 calls may not
    /// destroy, change, list or switch to it.
    pub fn owns_view(&self, v: u8) -> bool {
        self.is_domain(v) || self.lens(v).is_some()
    }

    /// Adds a lens on domain `d` in view `v`, for code at `rep` (`trusted`: entered from outside
    /// by its rules trusted on their own). Fails (changing nothing) if `v` is the engine's
    /// already, `d` is no domain, there are [`MAX_LENSES`], or memory is short.
    pub fn add_lens(&mut self, v: u8, d: u8, rep: u64, trusted: bool) -> Result<(), Error> {
        if v == 0 || self.owns_view(v) || !self.is_domain(d) {
            return Err(Error::Inval);
        }
        if self.lenses.len() >= MAX_LENSES {
            return Err(Error::NoSpc);
        }
        let i = self.lenses.as_slice().partition_point(|x| x.view < v);
        self.lenses.insert(
            i,
            Lens {
                view: v,
                domain: d,
                rep,
                trusted,
            },
        )
    }

    /// Forgets domain `d`'s lenses (all lenses if `d == 0`); returns their views, which the
    /// caller resets and frees.
    pub fn drop_lenses(&mut self, d: u8) -> impl Iterator<Item = u8> + use<> {
        let mut gone = [false; abi::MAX_VIEWS as usize];
        for l in self.lenses.as_slice() {
            if d == 0 || l.domain == d {
                gone[usize::from(l.view)] = true;
            }
        }
        self.lenses.retain(|l| !(d == 0 || l.domain == d));
        // CAST: below `MAX_VIEWS`, 256.
        (0..gone.len()).filter(move |&v| gone[v]).map(|v| v as u8)
    }

    /// The rights lens `l` gives region `r`: its rules' for its domain's regions, none for
    /// other domains' (as in a domain's view).
    pub fn lens_rights(&self, l: &Lens, r: &Region) -> u8 {
        if r.domain == l.domain {
            self.rights_at(r, l.rep, l.trusted)
        } else {
            0
        }
    }

    /// The decision for profile code of domain `d` that runs in `d`'s view or a lens on it but
    /// has less than the owner's rights: its lens, recording a return site if `d` called it.
    fn narrow(&self, f: &Fault, d: u8) -> Outcome {
        Outcome {
            decision: Decision::Narrow(d),
            domain: d,
            learn: None,
            gate: self.called_out(d, f).map(GateOp::Called),
            log: None,
        }
    }

    // ---- the decision ----

    /// Decides about a fault. Reads only; allocates nothing.
    pub fn decide(&self, f: &Fault) -> Outcome {
        let out = |decision, domain, log| Outcome {
            decision,
            domain,
            learn: None,
            gate: None,
            log,
        };
        let deny = |d| out(Decision::Deny(self.deny), d, Some(ctl::LOG_DENIED));
        let gfn = f.gpa / PAGE;
        let in_domain = self.is_domain(f.view);

        // Each lookup is a binary search, the decision's whole cost: each case makes at most two
        // for what the fault names (plus one for a rule or the return address), and none twice.
        // An entry point lies in its domain's code, so a fetch there from outside needs no other
        // lookup to find the domain.
        if f.access == X && !in_domain {
            if let Some(g) = self.entry_at(f.gpa, f.rip) {
                return self.enter(f, g.domain, true);
            }
        }
        let mut page = Page::new(self, gfn);
        // In a lens on a domain, profile code runs with its rules' rights: at most those.
        let lens = if in_domain || self.lenses.is_empty() {
            None
        } else {
            self.lens(f.view)
        };

        if f.access != X && page.region().is_none() {
            if let Some(c) = page.code() {
                // A domain's code is readable everywhere and writable nowhere: no alias may
                // plant instructions in it, whatever the guest's own violation policy says.
                return deny(c.domain);
            }
        }
        if in_domain {
            let d = f.view;
            if f.access == X {
                // Running in d's view: only d's code and code its profile names may. Which code
                // runs is decided by the page it comes from, whatever address the guest mapped
                // it at (d's code is executable here, so a fault on it is a rebuild's race).
                // In a switchable domain's view, only its code: any code may switch there and
                // land on a page start of profile code, which would then run with the rule's
                // rights for it, in the owner's view or a lens alike.
                let mine = page.code().is_some_and(|c| c.domain == d);
                if !mine && (self.switchable(d) || !self.names_accessor(d, f.rip)) {
                    let mut o = out(Decision::Leave, d, None);
                    o.gate = self.called_out(d, f).map(GateOp::Called);
                    return o;
                }
                // Only a page of no region is made executable (`GrantExec` adds X and R to it in
                // this view). A region's page is the region's whoever fetches it: its rights bound
                // the access, and another domain's region is not mapped here. The guest can map
                // any page at the code's address, so this is decided as a region access below.
                // Profile code with less than the owner's rights runs in its lens instead.
                if page.region().is_none() {
                    if !mine && !self.covers(d, f.rip) {
                        return self.narrow(f, d);
                    }
                    return out(Decision::GrantExec, d, None);
                }
            }
            if page.region().is_some_and(|r| r.domain == d) {
                // The owner's own rights are the limit, in every mode.
                return deny(d);
            }
        }

        if let Some(l) = lens {
            let d = l.domain;
            // A lens entered from outside runs only code its trusted rules name.
            let again = if l.trusted {
                Decision::Trusted(d)
            } else {
                Decision::Narrow(d)
            };
            if f.access == X && page.code().is_none() && page.region().is_none() {
                // Profile code of `d` with this lens's rights runs here; other profile code of
                // `d` in its own lens, even with all of the owner's rights: `d`'s view would let
                // it return into `d`'s code unchecked (only a call from `d`'s view runs it
                // there); the rest in view 0, with nothing to record (the lens runs no code of
                // `d`'s).
                let named = if l.trusted {
                    self.rules_holding(d, f.rip, true).next().is_some()
                } else {
                    self.names_accessor(d, f.rip)
                };
                if !named {
                    return out(Decision::Leave, d, None);
                }
                if self.same_rights(d, f.rip, l.rep, l.trusted) {
                    return out(Decision::GrantExec, d, None);
                }
                return out(again, d, None);
            }
            if let Some(r) = page.region().filter(|r| r.domain == d && f.access != X) {
                return self.in_lens(f, r, l.trusted);
            }
            if f.access != X && page.code().is_none() && page.region().is_none() {
                // A lens grants every page of no domain: this one is stale (a rebuild failed
                // and left it reset), and the code running in it has its rights.
                return out(again, d, None);
            }
        }

        if f.access == X {
            if let Some(c) = page.code() {
                // Outside a domain's view the entry point lookup above missed.
                let entry = in_domain && self.entry_at(f.gpa, f.rip).is_some();
                return self.enter(f, c.domain, entry);
            }
        }

        let Some(r) = page.region() else {
            return out(Decision::NotOurs, 0, None);
        };
        let d = r.domain;
        if r.rights & f.access == 0 {
            return deny(d);
        }
        // Only the profile lets code outside the owner's view in: the owner's own code runs in
        // its view, entered through its gates, whatever address a faulting RIP claims. Enforcing,
        // only a rule trusted on its own does: other rules' code runs in the owner's view when the
        // owner calls it (`GrantExec`), and letting it in from anywhere would make it a gadget
        // any code can call with the owner's data as its source.
        let rule = self
            .rule_at(r.gfn, f.rip)
            .filter(|x| x.rights & f.access != 0);
        let known = rule.is_some();
        match self.effective_mode(d) {
            // Unprotected: regions are mapped in view 0; a fault here comes from another view.
            Mode::Off => out(Decision::Switch(d), d, None),
            // Into the owner's view; for a switchable domain, whose view runs nothing but its
            // own code, into the lens of the accessor's rules.
            Mode::Learn => {
                let to = if self.switchable(d) {
                    Decision::Narrow(d)
                } else {
                    Decision::Switch(d)
                };
                let mut o = out(to, d, None);
                if !known {
                    // An accessor no rule can describe (the last page of the address space)
                    // must not be allowed: its code could never run in the domain's view, and
                    // the access would switch back and forth for ever.
                    let Some(rule) = self.rule_to_learn(f, r) else {
                        return deny(d);
                    };
                    o.learn = Some(rule);
                    o.log = Some(ctl::LOG_LEARNED);
                }
                o
            }
            // To the lens of its trusted rules: not the owner's view, where it could return into
            // the owner's code unchecked, nor with the rights of its other rules, which let it
            // in only when the owner calls it.
            Mode::Enforce => {
                if rule.is_some_and(|x| x.trusted) {
                    out(Decision::Trusted(d), d, None)
                } else {
                    deny(d)
                }
            }
        }
    }

    /// The rule learn mode records for the access `f` to region `r`: never trusted on its own;
    /// `None` for an accessor no rule can describe ([`Engine::accessor`]).
    fn rule_to_learn(&self, f: &Fault, r: &Region) -> Option<Rule> {
        let (start, end) = self.accessor(f.rip)?;
        Some(Rule {
            region: r.gfn,
            start,
            end,
            rights: f.access,
            domain: r.domain,
            trusted: false,
        })
    }

    /// An access to region `r` in a lens on its domain beyond the lens's rights: within the
    /// rules of the faulting code, to its lens (this one, stale, or another); in learn mode, a
    /// rule learned (or widened) for it, then its lens; else denied.
    fn in_lens(&self, f: &Fault, r: &Region, trusted: bool) -> Outcome {
        let d = r.domain;
        let narrow = Outcome {
            decision: if trusted {
                Decision::Trusted(d)
            } else {
                Decision::Narrow(d)
            },
            domain: d,
            learn: None,
            gate: None,
            log: None,
        };
        let deny = Outcome {
            decision: Decision::Deny(self.deny),
            log: Some(ctl::LOG_DENIED),
            ..narrow
        };
        if r.rights & f.access == 0 {
            return deny;
        }
        let rule = self
            .rule_at(r.gfn, f.rip)
            .filter(|x| x.rights & f.access != 0);
        if rule.is_some_and(|x| x.trusted || !trusted) {
            return narrow;
        }
        match self.effective_mode(d) {
            Mode::Off => Outcome {
                decision: Decision::Switch(d),
                ..narrow
            },
            // Learning, any rule lets code in (the lens of all of its rules, then).
            Mode::Learn if rule.is_some() => Outcome {
                decision: Decision::Narrow(d),
                ..narrow
            },
            Mode::Learn => match self.rule_to_learn(f, r) {
                Some(rule) => Outcome {
                    decision: Decision::Narrow(d),
                    learn: Some(rule),
                    log: Some(ctl::LOG_LEARNED),
                    ..narrow
                },
                None => deny,
            },
            Mode::Enforce => deny,
        }
    }

    /// A fetch of domain `d`'s code outside its view: allowed (switching into the view) at an entry
    /// point, at a pending return site (using it up), or in learn mode (learning the entry point);
    /// else denied.
    ///
    /// An entry's return address must lie outside `d`'s code, or `d`'s own `ret` would resume it
    /// wherever the caller chose, in `d`'s view; or be a return site `d` left from, which it uses
    /// up: a call out that comes back in through an entry point (a callback, a retpoline thunk's
    /// `jmp`) returns there inside `d`'s view, without a violation.
    ///
    /// `entry`: whether the fetch is at an entry point of `d`, which the caller looked up.
    fn enter(&self, f: &Fault, d: u8, entry: bool) -> Outcome {
        let mut o = Outcome {
            decision: Decision::Switch(d),
            domain: d,
            learn: None,
            gate: None,
            log: None,
        };
        let mode = self.effective_mode(d);
        if mode == Mode::Off {
            // Unprotected: d's code is executable everywhere; this fetch raced the change.
            return o;
        }
        let g = Gate {
            gpa: f.gpa,
            gva: f.rip,
            domain: d,
        };
        if entry {
            match f.stack.map(|s| self.gate_at(d, s.top)) {
                Some(None) => {
                    // Called from outside `d`: an entry, whatever is pending. An interrupt taken
                    // at this very instruction (on the first one after the entry's switch, say)
                    // recorded it as a return site; its return is this fetch or an entry like
                    // it, so the site goes now rather than pile up until the cap evicts it.
                    if self.pending(&g) > 0 {
                        o.gate = Some(GateOp::Returned(g));
                    }
                    return o;
                }
                Some(Some(r)) if self.pending(&r) > 0 => {
                    o.gate = Some(GateOp::Returned(r));
                    return o;
                }
                _ => {}
            }
        }
        if self.pending(&g) > 0 {
            o.gate = Some(GateOp::Returned(g));
            return o;
        }
        if mode == Mode::Learn {
            if !entry {
                o.gate = Some(GateOp::Learn(g));
                o.log = Some(ctl::LOG_LEARNED);
            }
            return o;
        }
        o.decision = Decision::Deny(self.deny);
        o.log = Some(ctl::LOG_DENIED);
        o
    }

    /// Leaving domain `d`'s view for code outside it: the return site to record when this is a
    /// call out of `d` (or an event taken in it), whose return address at RSP lies in `d`'s code.
    /// A `ret` has just popped the address it jumps to: nothing to record.
    ///
    /// Never for a switchable domain: any code may have switched into its view without a check
    /// and be leaving it without having run any of `d`'s code, with a return address of its
    /// choice at RSP ([`Engine::check_switchable`]).
    fn called_out(&self, d: u8, f: &Fault) -> Option<Gate> {
        if self.switchable(d) {
            return None;
        }
        let s = f.stack?;
        if s.below == f.rip {
            return None;
        }
        if let Some(g) = self.gate_at(d, s.top) {
            return Some(g);
        }
        let e = s.event?;
        // An event taken before the first fetch after `d` transferred control out (its target's
        // first instruction never ran in `d`'s view): the frame holds that target as the RIP,
        // and the interrupted stack the return address a `call` stored, unless a `ret` had just
        // taken the target from there (then the word below it is the target) or it was a `jmp`
        // (then the top is `d`'s caller's return address, outside `d`).
        if e.frame() {
            if e.below == s.top {
                return None;
            }
            return self.gate_at(d, e.top);
        }
        // An exception with an error code taken in `d`'s code (a page fault on a buffer `d`
        // copies to): the handler returns to the frame's RIP, one word up.
        if e.error_frame() && s.top >> 32 == 0 {
            return self.gate_at(d, e.cs);
        }
        None
    }

    /// Whether a rule of domain `d`'s regions has an accessor range containing `rip`. O(log n).
    fn names_accessor(&self, d: u8, rip: u64) -> bool {
        let a = self.accessors.as_slice();
        let key = wide(d.into(), rip);
        let i = a.partition_point(|x| wide(x.domain.into(), x.start) <= key);
        i > 0 && a[i - 1].domain == d && a[i - 1].reach > rip
    }

    /// Rebuilds `accessors` from `rules`, in the room reserved for them (allocates nothing).
    fn index_accessors(&mut self) {
        self.accessors.retain(|_| false);
        for r in self.rules.as_slice() {
            let all = self.region_at(r.region).map_or(0, |x| x.rights);
            let a = Accessor {
                domain: r.domain,
                start: r.start,
                reach: r.end,
                end: r.end,
                region: r.region,
                rights: r.rights & all,
                full: r.rights & all == all,
                trusted: r.trusted,
            };
            // Cannot fail: there is room for every rule.
            let _ = self.accessors.push(a);
        }
        let a = self.accessors.as_mut_slice();
        a.sort_unstable_by_key(|x| (x.domain, x.start));
        for i in 1..a.len() {
            if a[i].domain == a[i - 1].domain {
                a[i].reach = a[i].reach.max(a[i - 1].reach);
            }
        }
    }

    /// The accessor range learning records for `rip`: its domain's code range, else its page;
    /// `None` for the last page of the address space, whose end does not fit in a `u64`.
    pub fn accessor(&self, rip: u64) -> Option<(u64, u64)> {
        match self.code_at(rip) {
            Some(c) => Some((c.start, c.end)),
            None => {
                let p = rip & !(PAGE - 1);
                Some((p, p.checked_add(PAGE)?))
            }
        }
    }

    /// Decides about a fault and records it: stores the rule learn mode asks for and counts the
    /// outcome. A rule that cannot be stored turns the outcome into a denial: its code could not
    /// run in the domain's view, and the access would switch back and forth for ever.
    pub fn handle(&mut self, f: &Fault) -> Outcome {
        let mut o = self.decide(f);
        let stored = match (o.learn, o.gate) {
            (Some(rule), _) => self.learn(rule).is_ok(),
            (None, Some(GateOp::Learn(g))) => self.add_entry(g).is_ok(),
            (None, Some(GateOp::Called(g))) => {
                self.push_return(g);
                true
            }
            (None, Some(GateOp::Returned(g))) => {
                self.pop_return(&g);
                true
            }
            (None, None) => true,
        };
        if !stored {
            o.decision = Decision::Deny(self.deny);
            o.learn = None;
            o.gate = None;
            o.log = Some(ctl::LOG_DENIED);
        }
        self.count(&o);
        o
    }

    /// Adds an entry point; fails (changing nothing) if it is one already, the table is at its
    /// cap or memory is short.
    pub fn add_entry(&mut self, g: Gate) -> Result<(), Error> {
        match self.entries.as_slice().binary_search(&g) {
            Ok(_) => Err(Error::Exist),
            Err(_) if self.entries.len() >= self.limits.entries => Err(Error::NoSpc),
            Err(at) => self.entries.insert(at, g),
        }
    }

    /// Checks `entries` as a whole set for this VM (sorting them by location): each names an
    /// existing domain, an address in its code, and the guest-physical address that code maps
    /// it to (a profile made for another layout does not fit: `NoEnt`), or
    /// [`ctl::GPA_FROM_CODE`], which becomes that address; none twice; every page start of a
    /// switchable domain's code among them (`Inval`).
    pub fn check_entries(&self, entries: &mut [CtlEntry]) -> Result<(), Error> {
        if entries.len() > self.limits.entries {
            return Err(Error::NoSpc);
        }
        for x in entries.iter_mut() {
            let d = u8::try_from(x.domain).map_err(|_| Error::Inval)?;
            if !self.is_domain(d) || x.pad != 0 {
                return Err(Error::Inval);
            }
            let gpa = self.gate_at(d, x.gva).map(|g| g.gpa);
            if x.gpa == ctl::GPA_FROM_CODE {
                x.gpa = gpa.ok_or(Error::NoEnt)?;
            } else if gpa != Some(x.gpa) {
                return Err(Error::NoEnt);
            }
        }
        entries.sort_unstable_by_key(|x| (x.gpa, x.gva));
        if entries
            .windows(2)
            .any(|w| (w[0].gpa, w[0].gva) == (w[1].gpa, w[1].gva))
        {
            return Err(Error::Exist);
        }
        // A switchable domain keeps an entry point at every page start of its code.
        let kept = |gpa: u64, gva: u64| {
            entries
                .binary_search_by_key(&(gpa, gva), |x| (x.gpa, x.gva))
                .is_ok()
        };
        let lost = self.code.as_slice().iter().any(|c| {
            self.switchable(c.domain)
                && (0..c.npages).any(|k| !kept((c.gfn + k) * PAGE, c.start + k * PAGE))
        });
        if lost {
            return Err(Error::Inval);
        }
        Ok(())
    }

    /// Replaces the entry points with `entries`, which [`Engine::check_entries`] accepted; fails
    /// (changing nothing) if memory is short.
    pub fn set_entries(&mut self, entries: &[CtlEntry]) -> Result<(), Error> {
        let mut new = List::with_capacity(entries.len())?;
        for x in entries {
            new.push(Gate {
                gpa: x.gpa,
                gva: x.gva,
                // CAST: checked to be a domain.
                domain: x.domain as u8,
            })?;
        }
        self.entries = new;
        Ok(())
    }

    /// The entry points as control-plane entries, sorted by location.
    pub fn entry_list(&self) -> impl Iterator<Item = CtlEntry> + '_ {
        self.entries.as_slice().iter().map(|g| CtlEntry {
            domain: u32::from(g.domain),
            pad: 0,
            gva: g.gva,
            gpa: g.gpa,
        })
    }

    /// Checks that the guest may make `gva` an entry point of `d`, and returns it.
    pub fn check_entry(&self, d: u8, gva: u64, guest: bool) -> Result<Gate, Error> {
        if !self.is_domain(d) {
            return Err(Error::NoEnt);
        }
        if guest && self.locked {
            return Err(Error::Perm);
        }
        let g = self.gate_at(d, gva).ok_or(Error::Range)?;
        if self.is_entry(&g) {
            return Err(Error::Exist);
        }
        if self.entries.len() >= self.limits.entries {
            return Err(Error::NoSpc);
        }
        Ok(g)
    }

    /// Records a call out at `g`; a table at its cap forgets its least recently recorded site
    /// (O(n): only a guest at the cap pays it). A site that finds no memory is forgotten too,
    /// and counted with them.
    fn push_return(&mut self, g: Gate) {
        self.calls += 1;
        let used = self.calls;
        let at = match self.return_at(&g) {
            Ok(i) => {
                let p = &mut self.returns.as_mut_slice()[i];
                p.count = p.count.saturating_add(1);
                p.used = used;
                return;
            }
            Err(at) => at,
        };
        let mut at = at;
        let r = self.returns.as_slice();
        if r.len() >= self.limits.returns {
            let Some(old) = (0..r.len()).min_by_key(|&i| r[i].used) else {
                // A cap of 0: nothing is kept.
                self.returns_dropped += 1;
                return;
            };
            self.returns_dropped += u64::from(r[old].count);
            self.returns.remove(old);
            if old < at {
                at -= 1;
            }
        }
        let p = Pending {
            gate: g,
            count: 1,
            used,
        };
        if self.returns.insert(at, p).is_err() {
            self.returns_dropped += 1;
        }
    }

    /// Uses up one pending return at `g`.
    fn pop_return(&mut self, g: &Gate) {
        if let Ok(i) = self.return_at(g) {
            let p = &mut self.returns.as_mut_slice()[i];
            p.count -= 1;
            if p.count == 0 {
                self.returns.remove(i);
            }
        }
    }

    /// Counts an outcome; `o.learn` is a rule that was stored.
    pub fn count(&mut self, o: &Outcome) {
        if o.decision == Decision::NotOurs {
            return;
        }
        self.violations += 1;
        let Some(dom) = self.domains.as_mut_slice().get_mut(usize::from(o.domain)) else {
            return;
        };
        let c = &mut dom.counters;
        match o.decision {
            Decision::Switch(_)
            | Decision::GrantExec
            | Decision::Narrow(_)
            | Decision::Trusted(_) => c.allowed += 1,
            Decision::Leave => c.left += 1,
            Decision::Deny(_) => c.denied += 1,
            Decision::NotOurs => {}
        }
        if o.learn.is_some() || matches!(o.gate, Some(GateOp::Learn(_))) {
            c.learned += 1;
        }
    }

    // ---- learning and profiles ----

    /// Adds a learned rule: rules of the region inside its range are merged into it, and a
    /// neighbour with the same rights that touches it is joined. Fails (changing nothing) when the
    /// profile is at its cap or memory is short, a rule overlaps it partially, or one it would
    /// merge with is trusted differently (trust must not spread to a range the administrator did
    /// not name).
    pub fn learn(&mut self, rule: Rule) -> Result<(), Error> {
        let mut rights = rule.rights;
        let (mut start, mut end) = (rule.start, rule.end);
        let rs = self.rules.as_slice();
        let lo = rs.partition_point(|x| (x.region, x.end) <= (rule.region, start));
        let hi = rs.partition_point(|x| (x.region, x.start) < (rule.region, end));
        for x in &rs[lo..hi] {
            if x.trusted != rule.trusted {
                return Err(Error::Exist);
            }
            if x.start < start || x.end > end {
                if x.start <= start && x.end >= end {
                    // Already covered by a wider rule: widen its rights.
                    rights |= x.rights;
                    start = x.start;
                    end = x.end;
                    continue;
                }
                return Err(Error::Exist);
            }
            rights |= x.rights;
        }
        // Join neighbours with equal rights that touch.
        let mut from = lo;
        let mut to = hi;
        if from > 0 {
            let l = rs[from - 1];
            if l.region == rule.region
                && l.end == start
                && l.rights == rights
                && l.trusted == rule.trusted
            {
                start = l.start;
                from -= 1;
            }
        }
        if to < rs.len() {
            let r = rs[to];
            if r.region == rule.region
                && r.start == end
                && r.rights == rights
                && r.trusted == rule.trusted
            {
                end = r.end;
                to += 1;
            }
        }
        if to == from && self.rules.len() >= self.limits.rules {
            return Err(Error::NoSpc);
        }
        let merged = Rule {
            region: rule.region,
            start,
            end,
            rights,
            domain: rule.domain,
            trusted: rule.trusted,
        };
        // Room first, then the new rule after the rules it replaces, then those go: a failed
        // allocation changes nothing.
        // (`accessors` holds as many entries as `rules`.)
        self.accessors.reserve(1)?;
        self.rules.insert(to, merged)?;
        for _ in from..to {
            self.rules.remove(from);
        }
        self.index_accessors();
        Ok(())
    }

    /// Checks `rules` as a whole profile for this VM (sorting them): each names an existing
    /// domain's region by its first byte, has rights within the region's, an aligned non-empty
    /// accessor range, and no two rules of a region overlap.
    pub fn check_profile(&self, rules: &mut [CtlRule]) -> Result<(), Error> {
        if rules.len() > self.limits.rules {
            return Err(Error::NoSpc);
        }
        for x in rules.iter() {
            let d = u8::try_from(x.domain).map_err(|_| Error::Inval)?;
            if !self.is_domain(d)
                || x.region_gpa % PAGE != 0
                || x.access & u32::from(X | RW) == 0
                || x.access & !(u32::from(X | RW) | ctl::RULE_TRUSTED) != 0
                || x.accessor_start % PAGE != 0
                || x.accessor_end % PAGE != 0
                || x.accessor_start >= x.accessor_end
            {
                return Err(Error::Inval);
            }
            let gfn = x.region_gpa / PAGE;
            match self.region_at(gfn) {
                Some(r) if r.gfn == gfn && u32::from(r.domain) == x.domain => {
                    if x.access & u32::from(X | RW) & !u32::from(r.rights) != 0 {
                        return Err(Error::Inval);
                    }
                }
                _ => return Err(Error::NoEnt),
            }
        }
        rules.sort_unstable_by_key(|x| (x.region_gpa, x.accessor_start));
        for w in rules.windows(2) {
            if w[0].region_gpa == w[1].region_gpa && w[1].accessor_start < w[0].accessor_end {
                return Err(Error::Exist);
            }
        }
        Ok(())
    }

    /// Replaces the profile with `rules`, which [`Engine::check_profile`] accepted; fails
    /// (changing nothing) if memory is short.
    pub fn set_profile(&mut self, rules: &[CtlRule]) -> Result<(), Error> {
        let mut new = List::with_capacity(rules.len())?;
        for x in rules {
            new.push(Rule {
                region: x.region_gpa / PAGE,
                start: x.accessor_start,
                end: x.accessor_end,
                // CAST: the rights are the low bits (checked).
                rights: (x.access & u32::from(X | RW)) as u8,
                domain: x.domain as u8,
                trusted: x.access & ctl::RULE_TRUSTED != 0,
            })?;
        }
        let mut accessors = List::with_capacity(rules.len())?;
        core::mem::swap(&mut self.accessors, &mut accessors);
        self.rules = new;
        self.index_accessors();
        Ok(())
    }

    /// The profile as control-plane rules.
    pub fn profile(&self) -> impl Iterator<Item = CtlRule> + '_ {
        self.rules.as_slice().iter().map(|x| CtlRule {
            domain: u32::from(x.domain),
            access: u32::from(x.rights) | if x.trusted { ctl::RULE_TRUSTED } else { 0 },
            region_gpa: x.region * PAGE,
            accessor_start: x.start,
            accessor_end: x.end,
        })
    }

    /// Rules of domain `d`.
    pub fn rule_count(&self, d: u8) -> usize {
        self.rules
            .as_slice()
            .iter()
            .filter(|x| x.domain == d)
            .count()
    }

    // ---- domains ----

    /// Creates domain `d` (its view was just created); fails (changing nothing) if memory is
    /// short.
    pub fn create_domain(&mut self, d: u8) -> Result<(), Error> {
        if d == 0 || self.owns_view(d) {
            return Err(Error::Inval);
        }
        let i = usize::from(d);
        if self.domains.len() <= i {
            let mut grown = List::with_capacity(i + 1)?;
            for x in self.domains.as_slice().iter().copied() {
                grown.push(x)?;
            }
            while grown.len() <= i {
                grown.push(Domain::default())?;
            }
            self.domains = grown;
        }
        self.domains.as_mut_slice()[i] = Domain {
            active: true,
            ..Domain::default()
        };
        Ok(())
    }

    /// Checks that `d` may gain a code range; the guest may not while locked.
    /// A switchable domain's code is complete.
    pub fn check_code(&self, d: u8, c: &Code, guest: bool) -> Result<(), Error> {
        if !self.is_domain(d) {
            return Err(Error::NoEnt);
        }
        if (guest && self.locked) || self.switchable(d) {
            return Err(Error::Perm);
        }
        if c.start % PAGE != 0
            || c.npages == 0
            || c.npages > abi::MAX_PAGES
            || c.end != c.start.wrapping_add(c.npages * PAGE)
            || c.end <= c.start
        {
            return Err(Error::Range);
        }
        let clash = overlaps(self.code.as_slice(), c.start, c.end - c.start, |x| {
            (x.start, x.end - x.start)
        }) || self.code_pages_overlap(c.gfn, c.npages)
            || self.region_overlap(c.gfn, c.npages);
        if clash {
            return Err(Error::Exist);
        }
        if self.code.len() >= self.limits.code {
            return Err(Error::NoSpc);
        }
        Ok(())
    }

    fn code_pages_overlap(&self, gfn: u64, npages: u64) -> bool {
        overlaps(self.code_by_gfn.as_slice(), gfn, npages, |x| {
            (x.gfn, x.npages)
        })
    }

    fn region_overlap(&self, gfn: u64, npages: u64) -> bool {
        overlaps(self.regions.as_slice(), gfn, npages, |x| (x.gfn, x.npages))
    }

    /// Adds a code range [`Engine::check_code`] accepted; fails (changing nothing) if memory is
    /// short.
    pub fn add_code(&mut self, c: Code) -> Result<(), Error> {
        let at = self.code.as_slice().partition_point(|x| x.start < c.start);
        let by_gfn = self
            .code_by_gfn
            .as_slice()
            .partition_point(|x| x.gfn < c.gfn);
        self.code.insert(at, c)?;
        if let Err(e) = self.code_by_gfn.insert(by_gfn, c) {
            self.code.remove(at);
            return Err(e);
        }
        Ok(())
    }

    /// Checks that `d` may own `r` (always a tightening, so allowed while locked). A switchable
    /// domain's regions are not executable.
    pub fn check_region(&self, r: &Region) -> Result<(), Error> {
        if !self.is_domain(r.domain) {
            return Err(Error::NoEnt);
        }
        if self.switchable(r.domain) && r.rights & X != 0 {
            return Err(Error::Perm);
        }
        if r.npages == 0 || r.npages > abi::MAX_PAGES {
            return Err(Error::Range);
        }
        if self.region_overlap(r.gfn, r.npages) || self.code_pages_overlap(r.gfn, r.npages) {
            return Err(Error::Exist);
        }
        if self.regions.len() >= self.limits.regions {
            return Err(Error::NoSpc);
        }
        Ok(())
    }

    /// Adds a region [`Engine::check_region`] accepted; fails (changing nothing) if memory is
    /// short.
    pub fn add_region(&mut self, r: Region) -> Result<(), Error> {
        let d = usize::from(r.domain);
        let count = self.domains.as_slice().get(d).map_or(0, |x| x.regions);
        let r = Region {
            // CAST: a domain's regions are at most `Limits::CEILING`, below 2^32.
            index: count as u32,
            ..r
        };
        let at = self.regions.as_slice().partition_point(|x| x.gfn < r.gfn);
        self.regions.insert(at, r)?;
        if let Some(x) = self.domains.as_mut_slice().get_mut(d) {
            x.regions += 1;
        }
        Ok(())
    }

    /// Where domain `d`'s code lies: its lowest address and the end of its highest range, if
    /// it has any. A profile's offsets into the module are from the first. O(code ranges).
    pub fn code_span(&self, d: u8) -> Option<(u64, u64)> {
        let c = self.code.as_slice().iter().filter(|c| c.domain == d);
        c.fold(None, |span, c| match span {
            None => Some((c.start, c.end)),
            Some((s, e)) => Some((s.min(c.start), e.max(c.end))),
        })
    }

    /// The regions as control-plane entries, by domain and index. Allocates nothing; O(n log n)
    /// in the caller's buffer.
    pub fn region_list(&self, out: &mut [CtlRegion]) -> usize {
        let n = self.regions.len().min(out.len());
        for (o, r) in out.iter_mut().zip(self.regions.as_slice()) {
            *o = CtlRegion {
                domain: u32::from(r.domain),
                index: r.index,
                gpa: r.gfn * PAGE,
                npages: r.npages,
                access: u32::from(r.rights),
                pad: 0,
            };
        }
        out[..n].sort_unstable_by_key(|x| (x.domain, x.index));
        n
    }

    /// Names guest code (`KVM_HC_ISOLATE_CODE_NAME`, decoded) at `now_ns` (a log record's
    /// clock). At `chunk` 0, `[start, start + size)` is named `bytes` (its first 8 bytes, the
    /// rest NUL) and the names of the ranges it overlaps are retired; with `size` 0 the range
    /// named at `start` is retired (`NoEnt` if none), and with `start` 0 too, every one. At
    /// `chunk` 1 .. the range named `[start, start + size)` gets 8 more bytes of its name
    /// (`NoEnt` if it is not one). A retired name stays, with when it was retired, so that the
    /// host's tools name older log records by what was there then; when `abi::MAX_CODE_NAMES`
    /// are kept the longest retired goes (`NoSpc` if none is retired). Names decide nothing, so
    /// the guest may name after `LOCK`. On error nothing changed.
    pub fn name_code(
        &mut self,
        start: u64,
        size: u64,
        chunk: u8,
        bytes: u64,
        now_ns: u64,
    ) -> Result<(), Error> {
        let live = |n: &CodeName| n.until_ns == u64::MAX;
        let names = self.names.as_mut_slice();
        if chunk != 0 {
            let word = names
                .iter_mut()
                .find(|n| live(n) && n.start == start && n.size == size)
                .and_then(|n| n.name.get_mut(usize::from(chunk)))
                .ok_or(Error::NoEnt)?;
            *word = bytes;
            return Ok(());
        }
        if size == 0 {
            let mut retired = false;
            for n in names.iter_mut().filter(|n| live(n) && (start == 0 || n.start == start)) {
                n.until_ns = now_ns;
                retired = true;
            }
            return if retired || start == 0 {
                Ok(())
            } else {
                Err(Error::NoEnt)
            };
        }
        let end = start.checked_add(size).ok_or(Error::Inval)?;
        // The longest retired goes if the table is full; none retired: full.
        let evict = if self.names.len() >= abi::MAX_CODE_NAMES {
            let oldest = (0..self.names.len())
                .filter(|&i| !live(&self.names.as_slice()[i]))
                .min_by_key(|&i| self.names.as_slice()[i].until_ns);
            Some(oldest.ok_or(Error::NoSpc)?)
        } else {
            self.names.reserve(1)?;
            None
        };
        if let Some(i) = evict {
            self.names.remove(i);
        }
        for n in self.names.as_mut_slice() {
            if live(n) && n.start < end && n.start.saturating_add(n.size) > start {
                n.until_ns = now_ns;
            }
        }
        let at = self.names.as_slice().partition_point(|n| n.start <= start);
        let mut name = [0; abi::NAME_LEN / 8];
        name[0] = bytes;
        // Room was made above (reserved, or an item removed): this cannot fail.
        self.names.insert(
            at,
            CodeName {
                start,
                size,
                since_ns: now_ns,
                until_ns: u64::MAX,
                name,
            },
        )
    }

    /// How many code names are kept, live and retired.
    pub fn code_names(&self) -> usize {
        self.names.len()
    }

    /// Fills `out` with the code names, by start; returns how many it filled.
    pub fn code_name_list(&self, out: &mut [CtlCodeName]) -> usize {
        let n = self.names.len().min(out.len());
        for (o, x) in out.iter_mut().zip(self.names.as_slice()) {
            let mut name = [0; abi::NAME_LEN];
            for (b, w) in name.chunks_exact_mut(8).zip(x.name) {
                b.copy_from_slice(&w.to_le_bytes());
            }
            *o = CtlCodeName {
                start: x.start,
                size: x.size,
                since_ns: x.since_ns,
                until_ns: x.until_ns,
                name,
            };
        }
        n
    }

    /// Checks that the guest may make domain `d` *switchable*: its view may then be entered by
    /// `SWITCH` and `VMFUNC` (listed in the EPTP list), without a check. After either, the
    /// first instruction runs at an address the guest chooses, but in `d`'s view the only
    /// executable pages are `d`'s code, so it runs either outside them (a fetch fault: back to
    /// view 0) or in them at a page start, as the instruction after the switch does when it is
    /// the last of its page and the guest mapped `d`'s code at the next one. So every page
    /// start of `d`'s code must be an entry point of `d` (`Inval` otherwise; the guest lays
    /// its code out so, with a trap there if it is no function's start), its code is complete
    /// from now on (no more may be added), no region of it is executable, no other code runs in
    /// its view (not even profile code, nor in a lens from there: a fetch of it leaves to view
    /// 0), and leaving its view records no return site: whatever leaves may not have run any of
    /// `d`'s code. So a call out of `d` cannot be resumed except at an entry point: such a
    /// domain calls nothing outside itself, and its guest runs it with interrupts off. Before
    /// lock only (`Perm`); twice is `Exist`.
    pub fn check_switchable(&self, d: u8, guest: bool) -> Result<(), Error> {
        if !self.is_domain(d) {
            return Err(Error::NoEnt);
        }
        if guest && self.locked {
            return Err(Error::Perm);
        }
        if self.switchable(d) {
            return Err(Error::Exist);
        }
        let mut code = self.code.as_slice().iter().filter(|c| c.domain == d);
        let every_start_an_entry = code.clone().all(|c| {
            (0..c.npages).all(|k| {
                self.is_entry(&Gate {
                    gpa: (c.gfn + k) * PAGE,
                    gva: c.start + k * PAGE,
                    domain: d,
                })
            })
        });
        let executable = self
            .regions
            .as_slice()
            .iter()
            .any(|r| r.domain == d && r.rights & X != 0);
        if code.next().is_none() || !every_start_an_entry || executable {
            return Err(Error::Inval);
        }
        Ok(())
    }

    /// Makes domain `d` switchable, as [`Engine::check_switchable`] accepted.
    pub fn set_switchable(&mut self, d: u8) {
        if let Some(x) = self.domains.as_mut_slice().get_mut(usize::from(d)) {
            x.switchable = x.active;
        }
    }

    /// Checks that domain `d` may be destroyed.
    pub fn check_destroy(&self, d: u8, guest: bool) -> Result<(), Error> {
        if !self.is_domain(d) {
            return Err(Error::NoEnt);
        }
        if guest && self.locked {
            return Err(Error::Perm);
        }
        Ok(())
    }

    /// Removes domain `d` with its code, regions and rules.
    pub fn destroy_domain(&mut self, d: u8) {
        self.code.retain(|x| x.domain != d);
        self.code_by_gfn.retain(|x| x.domain != d);
        self.regions.retain(|x| x.domain != d);
        self.rules.retain(|x| x.domain != d);
        self.index_accessors();
        self.entries.retain(|x| x.domain != d);
        self.returns.retain(|x| x.gate.domain != d);
        self.lenses.retain(|x| x.domain != d);
        if let Some(x) = self.domains.as_mut_slice().get_mut(usize::from(d)) {
            *x = Domain::default();
        }
    }

    // ---- modes and lock ----

    /// Checks a mode change of the VM (`d == 0`) or of domain `d` (`mode == None`: inherit).
    /// While locked the guest may only tighten: the new effective mode of every domain it affects
    /// must be at least the old one.
    pub fn check_mode(&self, d: u8, mode: Option<Mode>, guest: bool) -> Result<(), Error> {
        if d != 0 && !self.is_domain(d) {
            return Err(Error::NoEnt);
        }
        if d == 0 && mode.is_none() {
            return Err(Error::Inval);
        }
        if guest && self.locked {
            let looser = |dom: u8| {
                let new = if d == 0 {
                    self.own_mode(dom).or(mode).unwrap_or(self.mode)
                } else {
                    mode.unwrap_or(self.mode)
                };
                new < self.effective_mode(dom)
            };
            let vm_looser = d == 0 && mode.is_some_and(|m| m < self.mode);
            let any = if d == 0 {
                self.domain_ids().any(looser)
            } else {
                looser(d)
            };
            if vm_looser || any {
                return Err(Error::Perm);
            }
        }
        Ok(())
    }

    /// Sets a mode [`Engine::check_mode`] accepted.
    pub fn set_mode(&mut self, d: u8, mode: Option<Mode>) {
        if d == 0 {
            if let Some(m) = mode {
                self.mode = m;
            }
        } else if let Some(x) = self.domains.as_mut_slice().get_mut(usize::from(d)) {
            x.mode = mode.map_or(0, |m| m as u8 + 1);
        }
    }

    /// Sets the deny action (host only).
    pub fn set_deny(&mut self, deny: Deny) {
        self.deny = deny;
    }

    /// Locks (anyone) or unlocks (host only).
    pub fn set_locked(&mut self, locked: bool) {
        self.locked = locked;
    }

    /// The rights domain `d`'s view must give region `r` (mapped only in its owner's view).
    pub fn view_rights(r: &Region, d: u8) -> u8 {
        if r.domain == d {
            r.rights
        } else {
            0
        }
    }

    /// The rights view 0 (and every view of no domain) gives domain `d`'s regions: none while
    /// `d` is protected.
    pub fn view0_rights(&self, d: u8) -> u8 {
        if self.effective_mode(d) == Mode::Off {
            X | RW
        } else {
            0
        }
    }

    /// The rights view `v` gives code range `c`'s pages (`v_domain`: whether `v` is a domain's
    /// view): executable only in its own domain's view, so that code outside enters it through a
    /// fetch violation, and writable in none, so that no alias plants instructions in it. Off
    /// mode leaves them as pages of no domain.
    pub fn code_rights(&self, c: &Code, v: u8, v_domain: bool) -> u8 {
        if v_domain && c.domain == v {
            DOMAIN_CODE_RIGHTS
        } else if self.effective_mode(c.domain) != Mode::Off {
            R
        } else if v_domain {
            DOMAIN_VIEW_DEFAULT
        } else {
            X | RW
        }
    }
}

/// The default rights of a domain's view: everything readable and writable, nothing executable.
pub const DOMAIN_VIEW_DEFAULT: u8 = RW;
/// Rights of a domain's code pages in its view: never writable.
pub const DOMAIN_CODE_RIGHTS: u8 = X | R;

/// What [`Log::push`] did with a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pushed {
    /// Stored as a new record.
    Stored,
    /// A repeat: counted in the unread record with the same key.
    Compressed,
    /// Dropped: no token, or the ring is full.
    Dropped,
}

/// The key that makes two violations repeats of each other: everything but the time, the linear
/// address and the offset in the page.
fn same_key(a: &CtlRecord, b: &CtlRecord) -> bool {
    a.vm == b.vm
        && a.vcpu == b.vcpu
        && a.view == b.view
        && a.domain == b.domain
        && a.rip == b.rip
        && a.gpa / PAGE == b.gpa / PAGE
        && a.access == b.access
        && a.verdict == b.verdict
}

/// A fingerprint of [`same_key`]'s fields. Only a filter: a match is confirmed on the record, so
/// keys chosen to collide cost one comparison each, never a wrong merge.
fn key_hash(r: &CtlRecord) -> u32 {
    let words = [
        r.rip,
        r.gpa / PAGE,
        u64::from(r.vm) | u64::from(r.vcpu) << 32,
        u64::from(r.view) | u64::from(r.domain) << 32,
        u64::from(r.access) | u64::from(r.verdict) << 32,
    ];
    let mut h = 0u64;
    for w in words {
        h = (h ^ w).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        h ^= h >> 32;
    }
    // CAST: the low half of a mixed word.
    h as u32
}

/// The violation log: a bounded ring with a token-bucket rate limit that compresses repeats.
/// All-zero is empty.
///
/// A record offered while an unread record with the same key (`same_key`) is in the window
/// (the [`LOG_WINDOW`] records most recently stored or repeated, least recently used out) is a
/// repeat: that record's `count` and `last_ns` move, and nothing else; a repeat takes no token
/// and no slot, so it is never dropped. Any other record takes a token and a slot, or is dropped.
/// A push is two passes over the window at most; nothing is allocated.
///
/// Every record offered is counted exactly once: `written + dropped + compressed` equals the
/// number of [`Log::push`] calls, and the `count`s of the records written sum to
/// `written + compressed`.
///
/// # Invariants
///
/// `len <= LOG_RECORDS` and `len <= written`; the unread records are those numbered
/// `written - len .. written` in the order stored, record `n` in `buf[n % LOG_RECORDS]`; `buf`
/// holds `min(written, LOG_RECORDS)` records (it is allocated, whole, by the first one stored).
pub struct Log {
    buf: List<CtlRecord>,
    len: usize,
    /// Records stored so far.
    pub written: u64,
    /// Records dropped so far (rate limit or ring full).
    pub dropped: u64,
    /// Repeats compressed into a stored record so far.
    pub compressed: u64,
    /// Tokens, in millitokens.
    tokens: u64,
    /// The time the tokens were last counted up to.
    refill_ns: u64,
    started: bool,
    /// The window: per entry, the number of the record it names plus one (0: none), the
    /// fingerprint of that record's key, and when it was last used.
    win_rec: [u64; LOG_WINDOW],
    win_hash: [u32; LOG_WINDOW],
    win_used: [u64; LOG_WINDOW],
    /// The clock of `win_used`.
    uses: u64,
}

const MILLI: u64 = 1000;

impl Log {
    /// An empty log.
    pub const fn new() -> Self {
        Log {
            buf: List::new(),
            len: 0,
            written: 0,
            dropped: 0,
            compressed: 0,
            tokens: 0,
            refill_ns: 0,
            started: false,
            win_rec: [0; LOG_WINDOW],
            win_hash: [0; LOG_WINDOW],
            win_used: [0; LOG_WINDOW],
            uses: 0,
        }
    }

    /// Records waiting to be read.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no record waits.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The slot of record `n` (numbered from 0 in the order stored), if it is unread.
    fn unread(&self, n: u64) -> Option<usize> {
        let oldest = self.written.saturating_sub(self.len as u64);
        // CAST: the remainder is below `LOG_RECORDS`.
        (oldest..self.written)
            .contains(&n)
            .then_some((n % LOG_RECORDS as u64) as usize)
    }

    /// The slot of the entry's record, if it names an unread one.
    fn entry(&self, i: usize) -> Option<usize> {
        self.unread(self.win_rec[i].checked_sub(1)?)
    }

    fn touch(&mut self, i: usize) {
        self.uses += 1;
        self.win_used[i] = self.uses;
    }

    /// Counts tokens up to `now_ns`.
    fn refill(&mut self, now_ns: u64) {
        if !self.started {
            self.started = true;
            self.tokens = LOG_BURST * MILLI;
            self.refill_ns = now_ns;
        } else if now_ns > self.refill_ns {
            // LOG_RATE tokens per second are LOG_RATE millitokens per whole millisecond; the
            // remainder of a millisecond counts towards the next call.
            let ms = (now_ns - self.refill_ns) / 1_000_000;
            self.tokens = self
                .tokens
                .saturating_add(ms.saturating_mul(LOG_RATE))
                .min(LOG_BURST * MILLI);
            self.refill_ns += ms * 1_000_000;
        }
    }

    /// Offers a record at `now_ns`: compresses it into the unread record with its key in the
    /// window, or stores it (numbering it), or counts it dropped.
    pub fn push(&mut self, mut rec: CtlRecord, now_ns: u64) -> Pushed {
        self.refill(now_ns);
        let hash = key_hash(&rec);
        for i in 0..LOG_WINDOW {
            if self.win_hash[i] != hash {
                continue;
            }
            let Some(slot) = self.entry(i) else {
                continue;
            };
            let Some(r) = self.buf.as_mut_slice().get_mut(slot) else {
                continue;
            };
            if same_key(r, &rec) {
                r.count = r.count.saturating_add(1);
                r.last_ns = r.last_ns.max(rec.time_ns);
                self.compressed += 1;
                self.touch(i);
                return Pushed::Compressed;
            }
        }
        if self.tokens < MILLI || self.len == LOG_RECORDS {
            self.dropped += 1;
            return Pushed::Dropped;
        }
        if self.buf.is_empty() {
            match List::with_capacity(LOG_RECORDS) {
                Ok(b) => self.buf = b,
                Err(_) => {
                    self.dropped += 1;
                    return Pushed::Dropped;
                }
            }
        }
        self.tokens -= MILLI;
        rec.seq = self.written + self.dropped;
        rec.last_ns = rec.time_ns;
        rec.count = 1;
        let n = self.written;
        // CAST: the remainder is below `LOG_RECORDS`.
        let slot = (n % LOG_RECORDS as u64) as usize;
        match self.buf.as_mut_slice().get_mut(slot) {
            Some(r) => *r = rec,
            // Record `n` is the first in its slot (`slot == buf.len()`), and there is room.
            None => {
                if self.buf.push(rec).is_err() {
                    self.dropped += 1;
                    return Pushed::Dropped;
                }
            }
        }
        self.written += 1;
        self.len += 1;
        // The new record takes a free entry, else the least recently used one.
        let mut victim = 0;
        for i in 0..LOG_WINDOW {
            if self.entry(i).is_none() {
                victim = i;
                break;
            }
            if self.win_used[i] < self.win_used[victim] {
                victim = i;
            }
        }
        self.win_rec[victim] = n + 1;
        self.win_hash[victim] = hash;
        self.touch(victim);
        Pushed::Stored
    }

    /// The oldest record, left in the log (a reader takes it with [`Log::pop`] once delivered).
    pub fn peek(&self) -> Option<CtlRecord> {
        if self.len == 0 {
            return None;
        }
        self.record(self.written.saturating_sub(self.len as u64))
    }

    /// Record `n`, if it is still in the ring.
    fn record(&self, n: u64) -> Option<CtlRecord> {
        // CAST: the remainder is below `LOG_RECORDS`.
        self.buf
            .as_slice()
            .get((n % LOG_RECORDS as u64) as usize)
            .copied()
    }

    /// Takes the oldest record. It leaves the window with it: a later repeat is a new record.
    pub fn pop(&mut self) -> Option<CtlRecord> {
        if self.len == 0 {
            return None;
        }
        let n = self.written.saturating_sub(self.len as u64);
        self.len -= 1;
        self.record(n)
    }
}

impl Default for Log {
    fn default() -> Self {
        Self::new()
    }
}
