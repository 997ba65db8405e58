// SPDX-License-Identifier: GPL-2.0

//! `Engine::decide` and `Engine::handle` against an oracle written from the specification,
//! `Documentation/kvm-isolate/domains.rst` (and the `ADD_ENTRY` line of `abi.rst`), not from the
//! code: plain lists, linear scans, and one step per sentence of the text (quoted beside it). The
//! engine under test is built from the oracle's lists through its public interface, so both
//! describe the same VM.
//!
//! Two properties: single faults against a VM with entry points and pending return sites
//! (recorded by calls out of its domains, fed to `Engine::handle` while building it), and
//! sequences of instruction fetches fed to `Engine::handle`, where the oracle keeps its own
//! entry points and return sites as the text says each decision changes them (a return site is
//! good for one re-entry; learn mode learns entry points).
//!
//! Where the text leaves a case open, the oracle says how it reads it (`Reading:`).

use kvm_isolate_core::abi::Error;
use kvm_isolate_core::ctl::{self, CtlRule};
use kvm_isolate_core::policy::{
    Code, Decision, Deny, Engine, Fault, Gate, GateOp, Limits, Mode, Region, Rule, Stack,
};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

const PAGE: u64 = 4096;
const R: u8 = 1;
const W: u8 = 2;
const X: u8 = 4;

/// Offsets of instructions in a page that faults, entry points and return sites share, so that
/// they meet.
const OFFSETS: [u64; 4] = [0, 0x40, 0x123, 0xff0];
/// A page of no region and no code (regions are below gfn 52, code below 76).
const PLAIN_GFN: u64 = 0x90;
/// A kernel helper the VM's domains call: no code of theirs, named by no rule (rules name
/// addresses below 37 pages).
const HELPER: u64 = 0x4000_0000;

/// A VM as the text describes it.
#[derive(Clone, Debug)]
struct Spec {
    vm_mode: Mode,
    deny: Deny,
    /// Domains and their own modes (`None`: "a domain without its own mode follows its VM's").
    domains: Vec<(u8, Option<Mode>)>,
    /// Code ranges: (domain, first gva, end gva, first gfn).
    code: Vec<(u8, u64, u64, u64)>,
    /// Regions: (domain, first gfn, pages, rights).
    regions: Vec<(u8, u64, u64, u8)>,
    /// Profile rules: (domain, region's first gfn, accessor start, accessor end, rights, trusted
    /// on its own).
    rules: Vec<(u8, u64, u64, u64, u8, bool)>,
    /// Entry points the guest registers (`ADD_ENTRY`): (domain, gva).
    entries: Vec<(u8, u64)>,
    /// Calls out of a domain made before the faults: (domain, the return address on its stack).
    calls: Vec<(u8, u64)>,
    /// Entry points learned since (sequences).
    learned: Vec<Gate>,
    /// Pending return sites and the calls pending at each, from `calls` and the faults since.
    pending: Vec<(Gate, u32)>,
    /// Domains made switchable (`DOMAIN_SWITCHABLE`), after their entry points, before the
    /// calls out.
    switchable: Vec<u8>,
}

/// What the text says a fault leads to (the fields of `Outcome`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Want {
    decision: Decision,
    domain: u8,
    /// The rule learning adds: (region, accessor start, end, rights, trusted on its own).
    learn: Option<(u64, u64, u64, u8, bool)>,
    /// The entry point or return site recorded or used up.
    gate: Option<GateOp>,
    log: Option<u32>,
}

/// The oracle's answer about a fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Judgement {
    /// The view the text describes grants the access: the hardware raises no such fault.
    NoFault,
    /// What the text says happens.
    Want(Want),
}

impl Spec {
    fn is_domain(&self, v: u8) -> bool {
        self.domains.iter().any(|d| d.0 == v)
    }

    fn is_switchable(&self, d: u8) -> bool {
        self.switchable.contains(&d)
    }

    /// "Per VM and per domain (a domain without its own mode follows its VM's)".
    fn mode_of(&self, d: u8) -> Mode {
        let own = self.domains.iter().find(|x| x.0 == d).and_then(|x| x.1);
        own.unwrap_or(self.vm_mode)
    }

    /// "While a domain is protected (its mode is learn or enforce)".
    fn protected(&self, d: u8) -> bool {
        self.mode_of(d) != Mode::Off
    }

    fn region_at(&self, gfn: u64) -> Option<(u8, u64, u64, u8)> {
        self.regions
            .iter()
            .copied()
            .find(|r| r.1 <= gfn && gfn < r.1 + r.2)
    }

    /// "its code (guest-virtual ranges, with the guest-physical pages behind them)": the domain
    /// whose code pages hold `gfn`.
    fn code_page(&self, gfn: u64) -> Option<u8> {
        self.code
            .iter()
            .find(|c| c.3 <= gfn && gfn < c.3 + (c.2 - c.1) / PAGE)
            .map(|c| c.0)
    }

    /// "an address in d's code", as the location the text keys entry points and return sites
    /// by: "guest-physical locations with their virtual address", the physical one being what
    /// lies behind the address in the code range.
    fn in_code(&self, d: u8, gva: u64) -> Option<Gate> {
        self.code
            .iter()
            .find(|c| c.0 == d && c.1 <= gva && gva < c.2)
            .map(|c| Gate {
                gpa: c.3 * PAGE + (gva - c.1),
                gva,
                domain: d,
            })
    }

    /// "an entry point of d (registered by KVM_HC_ISOLATE_DOMAIN_ADD_ENTRY, or learned)".
    fn is_entry(&self, g: &Gate) -> bool {
        self.learned.contains(g)
            || self
                .entries
                .iter()
                .any(|&(d, gva)| self.in_code(d, gva).as_ref() == Some(g))
    }

    /// "a pending return site of d": how many calls are pending there.
    fn pending(&self, g: &Gate) -> u32 {
        self.pending.iter().find(|p| p.0 == *g).map_or(0, |p| p.1)
    }

    /// "code its profile names": a rule of one of `d`'s regions whose accessor range holds `rip`.
    fn profile_names(&self, d: u8, rip: u64) -> bool {
        self.rules
            .iter()
            .any(|x| x.0 == d && x.2 <= rip && rip < x.3)
    }

    /// "any rule that allows it": a rule of this region, for this accessor (the guest RIP), with
    /// this right; `trusted`: only "a rule trusted on its own".
    fn profile_allows(&self, region: u64, rip: u64, access: u8, trusted: bool) -> bool {
        self.rules.iter().any(|x| {
            x.1 == region && x.2 <= rip && rip < x.3 && x.4 & access != 0 && (x.5 || !trusted)
        })
    }

    /// "Learning records the accessor range as the domain code range containing the RIP if there
    /// is one, else the RIP's page". Reading: a page whose end is past the address space cannot
    /// be recorded (`None`).
    fn accessor(&self, rip: u64) -> Option<(u64, u64)> {
        if let Some(c) = self.code.iter().find(|c| c.1 <= rip && rip < c.2) {
            return Some((c.1, c.2));
        }
        let start = rip / PAGE * PAGE;
        Some((start, start.checked_add(PAGE)?))
    }

    /// Whether view `v` grants `access` to page `gfn` ("Views of a VM with domains", "Modes").
    fn view_grants(&self, v: u8, gfn: u64, access: u8) -> bool {
        if self.is_domain(v) {
            // "Each domain owns the view with its number".
            let d = v;
            if let Some(r) = self.region_at(gfn) {
                // "view d: Domain d's regions with d's rights; no other domain's regions".
                return r.0 == d && r.3 & access != 0;
            }
            if let Some(e) = self.code_page(gfn) {
                if e == d {
                    // "d's code readable and executable (never writable)".
                    return access != W;
                }
                if self.protected(e) {
                    // "other domains' code readable only".
                    return access == R;
                }
            }
            // "everything else readable and writable but not executable, except code d's
            // profile names" (which gets its page made executable on its first fetch: a fault).
            return access != X;
        }
        // "The guest's own (ABI v1) views are like view 0."
        if let Some(r) = self.region_at(gfn) {
            // "view 0: Everything, except every domain's regions"; "off: The domain's regions
            // are mapped in view 0".
            return !self.protected(r.0);
        }
        if let Some(e) = self.code_page(gfn) {
            // "every domain's code is readable only: not executable, not writable"; "off: ...
            // and its code is executable there".
            return !self.protected(e) || access == R;
        }
        // Reading: "Everything" else, except what the guest's own ABI v1 rights take away; a
        // fault there is the guest's (`NotOurs`), so it is judged below.
        false
    }

    fn deny(&self, d: u8) -> Want {
        // "anything else is denied: #GP, #PF ... or an exit to user space, as the host chose
        // ..., and logged." "A denied fetch gets the same".
        Want {
            decision: Decision::Deny(self.deny),
            domain: d,
            learn: None,
            gate: None,
            log: Some(ctl::LOG_DENIED),
        }
    }

    fn allow(&self, decision: Decision, d: u8, gate: Option<GateOp>) -> Want {
        Want {
            decision,
            domain: d,
            learn: None,
            gate,
            log: None,
        }
    }

    /// "An access to a domain's region from any other view faults (...), and the engine
    /// decides" (Transparent switching of data accesses, Modes).
    fn region_access(&self, r: (u8, u64, u64, u8), rip: u64, access: u8) -> Want {
        let (e, gfn, _, rights) = r;
        // "A region's rights bound every access, in every mode: the owner declared them".
        if rights & access == 0 {
            return self.deny(e);
        }
        // "The owner's own code never needs this path: it runs in its view, entered through its
        // gates" (so its RIP alone lets nothing in). "Nor does code the owner calls ...: its
        // fetch in the owner's view finds the rule and runs there" (so a rule that is not
        // trusted on its own lets nothing in from here either, enforcing).
        match self.mode_of(e) {
            // "off: The domain's regions are mapped in view 0 ...: no protection, nothing
            // recorded." Reading: a fault still comes from a view the region is not mapped in
            // (another domain's); with no protection, it is switched like an allowed one.
            Mode::Off => self.allow(Decision::Switch(e), e, None),
            // "In learn mode, any rule that allows it does" ("switch to the owner's view and
            // retry").
            // "learn mode lets an outside accessor at d's region into its lens, not d's view"
            // (Switchable domains).
            Mode::Learn if self.profile_allows(gfn, rip, access, false) => {
                self.allow(self.learn_to(e), e, None)
            }
            // "and an accessor without one is learned as a rule that is not trusted on its
            // own"; "learn: Every access is allowed; an accessor not yet in the profile is added
            // to it, ..., and a learned record is logged."
            Mode::Learn => match self.accessor(rip) {
                Some((start, end)) => Want {
                    decision: self.learn_to(e),
                    domain: e,
                    learn: Some((gfn, start, end, access, false)),
                    gate: None,
                    log: Some(ctl::LOG_LEARNED),
                },
                // Reading: an accessor that cannot be added cannot be allowed either (its code
                // could not run in the owner's view).
                None => self.deny(e),
            },
            // "in enforce mode, a rule trusted on its own allows the accessor (the guest RIP)
            // this access: switch to its lens of its trusted rules and retry."
            Mode::Enforce if self.profile_allows(gfn, rip, access, true) => {
                self.allow(Decision::Trusted(e), e, None)
            }
            // "enforce: Only the owner's code, entered through its gates, and the profile may
            // access a region; the rest is denied and logged"; "anything else is denied".
            Mode::Enforce => self.deny(e),
        }
    }

    /// Where learn mode lets an accessor at domain `e`'s region in: "switch to the owner's view",
    /// or for a switchable domain its lens.
    fn learn_to(&self, e: u8) -> Decision {
        if self.is_switchable(e) {
            Decision::Narrow(e)
        } else {
            Decision::Switch(e)
        }
    }

    /// "code outside the domain that calls, jumps or returns into it faults on that instruction
    /// fetch, and the engine decides on the physical location fetched (...) and the RIP
    /// together" (Entry gates).
    fn enter(&self, e: u8, f: &Fault) -> Judgement {
        let g = Gate {
            gpa: f.gpa,
            gva: f.rip,
            domain: e,
        };
        let switch = |gate| Judgement::Want(self.allow(Decision::Switch(e), e, gate));
        if self.is_entry(&g) {
            // "an entry point of d ...: switch to view d and retry. The entry's return address,
            // the word at RSP, must not lie in d's code, ...; unless it is a pending return site
            // of d (below), which the entry then uses up". Reading: a stack KVM could not read
            // shows no return address outside d, so the entry is not made this way.
            if let Some(s) = f.stack {
                match self.in_code(e, s.top) {
                    // "An entry from outside d uses up a return site pending at the entry point
                    // itself".
                    None if self.pending(&g) > 0 => return switch(Some(GateOp::Returned(g))),
                    None => return switch(None),
                    Some(site) if self.pending(&site) > 0 => {
                        return switch(Some(GateOp::Returned(site)))
                    }
                    Some(_) => {}
                }
            }
        }
        // "a pending return site of d: switch to view d and retry; the site is used up".
        if self.pending(&g) > 0 {
            return switch(Some(GateOp::Returned(g)));
        }
        match self.mode_of(e) {
            // "in learn mode, anything else: the location becomes a learned entry point (a
            // learned record is logged) and the vCPU switches to view d". An entry point that
            // is one already is "anything else" too here; "learn: Every access is allowed".
            Mode::Learn if self.is_entry(&g) => {
                Judgement::Want(self.allow(Decision::Switch(e), e, None))
            }
            Mode::Learn => Judgement::Want(Want {
                log: Some(ctl::LOG_LEARNED),
                ..self.allow(Decision::Switch(e), e, Some(GateOp::Learn(g)))
            }),
            // "in enforce mode, anything else is denied and logged with the RIP".
            Mode::Enforce => Judgement::Want(self.deny(e)),
            // "off: ... its code is executable there": no fault.
            Mode::Off => Judgement::NoFault,
        }
    }

    /// "Leaving. Code in view d that fetches from a page that is neither d's code nor code its
    /// profile names faults, and the vCPU switches back to view 0. If the word at RSP is an
    /// address in d's code, and the word just below RSP is not the fetched RIP, ...: that
    /// address becomes a pending return site of d". Reading: an unknown stack records nothing.
    fn leave(&self, d: u8, f: &Fault) -> Want {
        self.allow(Decision::Leave, d, self.call_site(d, f))
    }

    /// The return site a call out of `d` (or an event taken in it) leaves, as for leaving.
    /// Switchable domains: "leaving it records no return site".
    fn call_site(&self, d: u8, f: &Fault) -> Option<GateOp> {
        if self.is_switchable(d) {
            return None;
        }
        f.stack
            .filter(|s| s.below != f.rip)
            .and_then(|s| self.in_code(d, s.top))
            .map(GateOp::Called)
    }

    /// "code whose rules give it all of the owner's rights over every region of d": for each of
    /// `d`'s regions, the rights of the rule of that region whose accessor range holds `rip`
    /// (none without one), within the region's, are all of the region's.
    fn has_all_rights(&self, d: u8, rip: u64) -> bool {
        self.regions.iter().filter(|r| r.0 == d).all(|r| {
            let got = self
                .rules
                .iter()
                .find(|x| x.1 == r.1 && x.2 <= rip && rip < x.3)
                .map_or(0, |x| x.4 & r.3);
            got == r.3
        })
    }

    /// The decision about a fault.
    fn decide(&self, f: &Fault) -> Judgement {
        let gfn = f.gpa / PAGE;
        if self.view_grants(f.view, gfn, f.access) {
            return Judgement::NoFault;
        }
        let region = self.region_at(gfn);
        if !self.is_domain(f.view) {
            if let Some(r) = region {
                return Judgement::Want(self.region_access(r, f.rip, f.access));
            }
            if let Some(e) = self.code_page(gfn) {
                if f.access == X {
                    return self.enter(e, f);
                }
                // "A domain's code is writable in no view, so no alias of its pages can plant
                // instructions in it." Reading: the write is denied, and logged as the domain's.
                return Judgement::Want(self.deny(e));
            }
            // "Not about any domain: the VM's ABI v1 ON_VIOLATION setting applies."
            return Judgement::Want(self.allow(Decision::NotOurs, 0, None));
        }
        let d = f.view;
        if f.access == X {
            // d's own code pages never fault here (view_grants); the rest leaves unless the
            // profile names the code: by its RIP ("Profile code ... is still identified by its
            // virtual address only").
            // Switchable: "a fetch of anything but d's code leaves to view 0, profile code
            // included".
            if self.is_switchable(d) || !self.profile_names(d, f.rip) {
                return Judgement::Want(self.leave(d, f));
            }
            return Judgement::Want(match region {
                // "profile code that is not the owner's gets its code page made executable in
                // the owner's view on its first fetch there." Reading: another domain's code
                // page too, when the profile names the code running from it (the text also
                // says "other domains' code readable only" for view d: see the report).
                // "Profile code whose rules give it less ... runs in a lens on d instead: ... a
                // call from d's code leaves a return site as leaving does."
                None if !self.has_all_rights(d, f.rip) => {
                    self.allow(Decision::Narrow(d), d, self.call_site(d, f))
                }
                None => self.allow(Decision::GrantExec, d, None),
                // "A fetch from a region's page is an access to that region like any other:
                // within the region's rights, and for another domain's region, switched to that
                // domain or denied".
                Some(r) if r.0 == d => self.deny(d),
                Some(r) => self.region_access(r, f.rip, X),
            });
        }
        match region {
            // A fault on d's region is an access beyond its rights, which bound it "even for
            // the owner".
            Some(r) if r.0 == d => Judgement::Want(self.deny(d)),
            // "no other domain's regions".
            Some(r) => Judgement::Want(self.region_access(r, f.rip, f.access)),
            // Only a write to code faults here (view_grants): "never writable", "readable only".
            None => match self.code_page(gfn) {
                Some(e) => Judgement::Want(self.deny(e)),
                None => unreachable!("view {d} grants everything else at {gfn:#x}"),
            },
        }
    }

    /// What a decision does to the entry points and return sites the text keeps.
    fn apply(&mut self, w: &Want) {
        assert!(w.learn.is_none(), "the sequences learn no rule");
        match w.gate {
            Some(GateOp::Learn(g)) => self.learned.push(g),
            Some(GateOp::Called(g)) => match self.pending.iter_mut().find(|p| p.0 == g) {
                Some(p) => p.1 += 1,
                None => self.pending.push((g, 1)),
            },
            Some(GateOp::Returned(g)) => {
                let i = self.pending.iter().position(|p| p.0 == g).unwrap();
                self.pending[i].1 -= 1;
                if self.pending[i].1 == 0 {
                    self.pending.remove(i);
                }
            }
            None => {}
        }
        // "at most max_return_sites (4096 by default) sites per VM": never reached here.
        assert!(self.pending.len() < Limits::DEFAULT.returns);
    }

    /// The same VM in an engine, through the engine's interface; the parts the engine refuses
    /// are dropped from the oracle's lists too. Calls out of domains are made through
    /// `Engine::handle`, checked against the oracle, and recorded in both.
    fn build(&mut self) -> Box<Engine> {
        self.learned.clear();
        self.pending.clear();
        let mut e = Box::new(Engine::new());
        for &(d, _) in &self.domains {
            e.create_domain(d).unwrap();
        }
        self.code.retain(|&(d, start, end, gfn)| {
            let c = Code {
                start,
                end,
                gfn,
                npages: (end - start) / PAGE,
                domain: d,
            };
            e.check_code(d, &c, false).is_ok() && e.add_code(c).is_ok()
        });
        self.regions.retain(|&(d, gfn, npages, rights)| {
            let r = Region {
                index: 0,
                gfn,
                npages,
                rights,
                domain: d,
            };
            e.check_region(&r).is_ok() && e.add_region(r).is_ok()
        });
        // Rules of regions that exist, within their rights, not overlapping within a region.
        let regions = self.regions.clone();
        let mut kept: Vec<(u8, u64, u64, u64, u8, bool)> = Vec::new();
        for &(_, ri, start, end, rights, trusted) in &self.rules {
            let Some(r) = regions.get(ri as usize % regions.len().max(1)) else {
                break;
            };
            let rights = rights & r.3;
            if rights == 0 || kept.iter().any(|k| k.1 == r.1 && k.2 < end && start < k.3) {
                continue;
            }
            kept.push((r.0, r.1, start, end, rights, trusted));
        }
        self.rules = kept;
        let mut profile: Vec<CtlRule> = self
            .rules
            .iter()
            .map(|&(d, gfn, start, end, rights, trusted)| CtlRule {
                domain: u32::from(d),
                // "``"trusted": true`` in a profile": RULE_TRUSTED in the kernel's rule.
                access: u32::from(rights) | if trusted { ctl::RULE_TRUSTED } else { 0 },
                region_gpa: gfn * PAGE,
                accessor_start: start,
                accessor_end: end,
            })
            .collect();
        e.check_profile(&mut profile).unwrap();
        e.set_profile(&profile).unwrap();
        // "ADD_ENTRY: gva must lie in one of the domain's code ranges (ERANGE), which gives the
        // entry point's guest-physical address; an entry point already known is EEXIST".
        let mut known: Vec<Gate> = Vec::new();
        let mut entries = Vec::new();
        for &(d, gva) in &self.entries {
            let got = e.check_entry(d, gva, false);
            match self.in_code(d, gva) {
                None => assert_eq!(got, Err(Error::Range), "{d} {gva:#x}"),
                Some(g) if known.contains(&g) => {
                    assert_eq!(got, Err(Error::Exist))
                }
                Some(g) => {
                    assert_eq!(got, Ok(g));
                    e.add_entry(g).unwrap();
                    known.push(g);
                    entries.push((d, gva));
                }
            }
        }
        self.entries = entries;
        for &d in &self.switchable {
            e.set_switchable(d);
        }
        for &(d, ret) in &self.calls.clone() {
            // Domain d calls the helper: the helper's first fetch leaves d's view.
            let f = Fault {
                view: d,
                gpa: PLAIN_GFN * PAGE,
                rip: HELPER,
                access: X,
                stack: Some(Stack { event: None, below: 0, top: ret }),
            };
            let Judgement::Want(w) = self.decide(&f) else {
                panic!("a call out of {d} must leave: {f:?}");
            };
            assert_eq!(got(&mut e, &f, true), w, "{f:?}");
            self.apply(&w);
        }
        e.set_mode(0, Some(self.vm_mode));
        e.set_deny(self.deny);
        for &(d, m) in &self.domains {
            e.set_mode(d, m);
        }
        e
    }
}

/// An address, resolved against a VM's code.
#[derive(Clone, Copy, Debug)]
enum Addr {
    /// Instruction `OFFSETS[off]` of page `page` of code range `i` (both modulo); a slot
    /// address if there is no code.
    Code(usize, u64, usize),
    /// `slot * PAGE + off`: where code and rules' accessors are.
    Slot(u64, u64),
    /// `u64::MAX - off`: the last page.
    High(u64),
    Any(u64),
    /// The last return site recorded (sequences).
    Last,
    /// Like `Code`, in the code of the faulting view's domain if it has some.
    Own(usize, u64, usize),
}

/// The view a fault is in.
#[derive(Clone, Copy, Debug)]
enum ViewSel {
    Num(u8),
    /// One of the VM's domains (modulo).
    Domain(usize),
    /// The view the last decision left the vCPU in (sequences).
    Current,
}

/// The page a fault is on.
#[derive(Clone, Copy, Debug)]
enum PageSel {
    Gfn(u64, u64),
    /// The page behind the RIP: its code page if it is a code address, else a page of nothing.
    Behind,
    /// A code location's page (often not the RIP's).
    Code(usize, u64, usize),
}

/// A fault before it is resolved against a VM.
#[derive(Clone, Copy, Debug)]
struct Recipe {
    view: ViewSel,
    page: PageSel,
    rip: Addr,
    access: u8,
    /// (a `ret`: the word below RSP is the RIP, else this word; the word at RSP).
    stack: Option<(bool, Addr, Addr)>,
}

/// What a sequence remembers between faults: the vCPU's view, the last return site recorded.
#[derive(Clone, Copy, Debug, Default)]
struct Ctx {
    view: u8,
    last: u64,
}

impl Spec {
    /// `a`'s gva, and the gpa behind it if it is a code location, for a fault in `view`.
    fn addr(&self, a: Addr, ctx: &Ctx, view: u8) -> (u64, Option<u64>) {
        match a {
            Addr::Own(i, page, off) => {
                let own: Vec<usize> = (0..self.code.len())
                    .filter(|&j| self.code[j].0 == view)
                    .collect();
                let i = if own.is_empty() {
                    i
                } else {
                    own[i % own.len()]
                };
                self.addr(Addr::Code(i, page, off), ctx, view)
            }
            Addr::Code(i, page, off) if !self.code.is_empty() => {
                let c = self.code[i % self.code.len()];
                let page = page % ((c.2 - c.1) / PAGE);
                let off = page * PAGE + OFFSETS[off % OFFSETS.len()];
                (c.1 + off, Some(c.3 * PAGE + off))
            }
            Addr::Code(_, page, off) => (page * PAGE + OFFSETS[off % OFFSETS.len()], None),
            Addr::Slot(slot, off) => (slot * PAGE + off, None),
            Addr::High(off) => (u64::MAX - off, None),
            Addr::Any(x) => (x, None),
            Addr::Last => (ctx.last, None),
        }
    }

    fn resolve(&self, r: &Recipe, ctx: &mut Ctx) -> Fault {
        let view = match r.view {
            ViewSel::Num(v) => v,
            ViewSel::Domain(i) => self.domains[i % self.domains.len()].0,
            ViewSel::Current => ctx.view,
        };
        let (rip, behind) = self.addr(r.rip, ctx, view);
        let gpa = match r.page {
            PageSel::Gfn(gfn, off) => gfn * PAGE + off,
            PageSel::Behind => behind.unwrap_or(PLAIN_GFN * PAGE + rip % PAGE),
            PageSel::Code(i, page, off) => {
                let (gva, gpa) = self.addr(Addr::Code(i, page, off), ctx, view);
                gpa.unwrap_or(PLAIN_GFN * PAGE + gva % PAGE)
            }
        };
        let stack = r.stack.map(|(ret, below, top)| Stack { event: None,
            below: if ret {
                rip
            } else {
                self.addr(below, ctx, view).0
            },
            top: self.addr(top, ctx, view).0,
        });
        Fault {
            view,
            gpa,
            rip,
            access: r.access,
            stack,
        }
    }
}

fn mode() -> impl Strategy<Value = Mode> {
    prop_oneof![Just(Mode::Off), Just(Mode::Learn), Just(Mode::Enforce)]
}

fn code_addr() -> impl Strategy<Value = Addr> {
    (0usize..8, 0u64..3, 0usize..OFFSETS.len()).prop_map(|(i, p, o)| Addr::Code(i, p, o))
}

/// Addresses: often code locations, also where code and rules are, the last page, anything.
fn addr() -> impl Strategy<Value = Addr> {
    prop_oneof![
        4 => code_addr(),
        3 => (0u64..36, 0u64..PAGE).prop_map(|(s, o)| Addr::Slot(s, o)),
        1 => (0u64..PAGE).prop_map(Addr::High),
        1 => any::<u64>().prop_map(Addr::Any),
    ]
}

/// A stack: unknown, or a `ret`'s or a call's, whose top is often a code location.
fn stack(top: BoxedStrategy<Addr>) -> impl Strategy<Value = Option<(bool, Addr, Addr)>> {
    prop::option::weighted(0.75, (prop::bool::weighted(0.3), addr(), top))
}

/// A small VM: up to 5 domains with any view numbers, code and regions in a small space of
/// addresses and pages (so that faults often hit them), rules over the same addresses as code,
/// entry points and calls out at code locations.
fn spec() -> impl Strategy<Value = Spec> {
    (
        (
            mode(),
            prop_oneof![Just(Deny::Exit), Just(Deny::Gp), Just(Deny::Pf)],
            prop::collection::btree_map(1u8..=15, prop::option::of(mode()), 1..=5),
        ),
        prop::collection::vec((0usize..5, 0u64..32, 1u64..4, 48u64..72), 0..8),
        prop::collection::vec((0usize..5, 0u64..48, 1u64..5, 1u8..8), 1..14),
        prop::collection::vec((0u64..16, 0u64..34, 1u64..4, 1u8..8), 0..12),
        // Entry points: a code location, registered for its domain or (None) another one.
        prop::collection::vec((code_addr(), prop::option::weighted(0.8, Just(()))), 0..8),
        // Calls out: a return address, mostly in the calling domain's code.
        prop::collection::vec((code_addr(), prop::option::weighted(0.8, Just(()))), 0..6),
    )
        .prop_map(
            |((vm_mode, deny, domains), code, regions, rules, entries, calls)| {
                let domains: Vec<(u8, Option<Mode>)> = domains.into_iter().collect();
                let pick = |i: usize| domains[i % domains.len()].0;
                let mut s = Spec {
                    vm_mode,
                    deny,
                    code: code
                        .into_iter()
                        .map(|(i, slot, n, gfn)| (pick(i), slot * PAGE, (slot + n) * PAGE, gfn))
                        .collect(),
                    regions: regions
                        .into_iter()
                        .map(|(i, gfn, n, rights)| (pick(i), gfn, n, rights))
                        .collect(),
                    rules: rules
                        .into_iter()
                        .map(|(ri, slot, n, rights)| {
                            // Trusted on its own or not, as a function of the other fields
                            // rather than a draw of its own: the VMs and faults stay those
                            // drawn before trust existed (`the_oracle_judges_every_kind_of_
                            // decision` counts them on one deterministic stream).
                            let trusted = (ri ^ slot ^ n ^ u64::from(rights)) & 1 == 1;
                            (0, ri, slot * PAGE, (slot + n) * PAGE, rights, trusted)
                        })
                        .collect(),
                    domains: domains.clone(),
                    entries: Vec::new(),
                    calls: Vec::new(),
                    learned: Vec::new(),
                    pending: Vec::new(),
                    switchable: Vec::new(),
                };
                // Drop what the engine refuses, then place entry points and calls in the code
                // that is left.
                let _ = s.build();
                let owner = |s: &Spec, a: Addr, own: Option<()>| {
                    let (gva, _) = s.addr(a, &Ctx::default(), 0);
                    let d = match (own, a) {
                        (Some(()), Addr::Code(i, ..)) if !s.code.is_empty() => {
                            s.code[i % s.code.len()].0
                        }
                        (_, Addr::Code(i, ..)) => pick(i + 1),
                        _ => pick(0),
                    };
                    (d, gva)
                };
                s.entries = entries.iter().map(|&(a, own)| owner(&s, a, own)).collect();
                s.calls = calls.iter().map(|&(a, own)| owner(&s, a, own)).collect();
                let _ = s.build();
                s
            },
        )
}

/// Return addresses: code locations (often the faulting view's domain's), the kernel outside
/// every domain, anything.
fn top() -> BoxedStrategy<Addr> {
    prop_oneof![
        2 => code_addr(),
        2 => (0usize..8, 0u64..3, 0usize..OFFSETS.len()).prop_map(|(i, p, o)| Addr::Own(i, p, o)),
        2 => (0u64..PAGE).prop_map(|o| Addr::Any(0x7000_0000 + o)),
        1 => addr(),
    ]
    .boxed()
}

/// A single fault: a data access (any view, often a domain's; pages of regions mostly; RIPs
/// where the profile's accessors are), or an instruction fetch (views of no domain more often;
/// code locations, with a stack).
fn fault() -> impl Strategy<Value = Recipe> {
    let data = (
        prop_oneof![
            1 => (0u8..16).prop_map(ViewSel::Num),
            1 => Just(ViewSel::Num(0)),
            1 => (0usize..5).prop_map(ViewSel::Domain),
        ],
        prop_oneof![
            // Mostly where regions are (0..48), also code pages (48..76) and pages of neither.
            6 => (0u64..48, 0u64..PAGE).prop_map(|(g, o)| PageSel::Gfn(g, o)),
            1 => (0u64..96, 0u64..PAGE).prop_map(|(g, o)| PageSel::Gfn(g, o)),
        ],
        prop_oneof![
            5 => (0u64..36, 0u64..PAGE).prop_map(|(s, o)| Addr::Slot(s, o)),
            3 => addr(),
        ],
        prop_oneof![Just(R), Just(W), Just(X)],
    );
    let fetch = (
        prop_oneof![
            2 => Just(ViewSel::Num(0)),
            1 => (0u8..16).prop_map(ViewSel::Num),
            2 => (0usize..5).prop_map(ViewSel::Domain),
        ],
        prop_oneof![
            4 => Just(PageSel::Behind),
            1 => (0usize..8, 0u64..3, 0usize..4).prop_map(|(i, p, o)| PageSel::Code(i, p, o)),
            1 => (0u64..96, 0u64..PAGE).prop_map(|(g, o)| PageSel::Gfn(g, o)),
        ],
        prop_oneof![3 => code_addr(), 1 => addr()],
        Just(X),
    );
    (prop_oneof![5 => data, 4 => fetch], stack(top())).prop_map(
        |((view, page, rip, access), stack)| Recipe {
            view,
            page,
            rip,
            access,
            stack,
        },
    )
}

/// A step of a sequence: an instruction fetch, mostly in the view the last decision left the
/// vCPU in, of code locations (the last return address among them) and pages of no region.
fn step() -> impl Strategy<Value = Recipe> {
    let rip = prop_oneof![4 => addr(), 2 => Just(Addr::Last)];
    (
        prop_oneof![
            4 => Just(ViewSel::Current),
            1 => Just(ViewSel::Num(0)),
            1 => (0usize..5).prop_map(ViewSel::Domain),
        ],
        prop_oneof![
            6 => Just(PageSel::Behind),
            1 => (0usize..8, 0u64..3, 0usize..4).prop_map(|(i, p, o)| PageSel::Code(i, p, o)),
            1 => (76u64..96, 0u64..PAGE).prop_map(|(g, o)| PageSel::Gfn(g, o)),
        ],
        rip,
        stack(top()),
    )
        .prop_map(|(view, page, rip, stack)| Recipe {
            view,
            page,
            rip,
            access: X,
            stack,
        })
}

/// The engine's outcome as a `Want`: decided only, or handled (stored and counted).
fn got(e: &mut Engine, f: &Fault, handle: bool) -> Want {
    let o = if handle { e.handle(f) } else { e.decide(f) };
    Want {
        decision: o.decision,
        domain: o.domain,
        learn: o
            .learn
            .map(|r: Rule| (r.region, r.start, r.end, r.rights, r.trusted)),
        gate: o.gate,
        log: o.log,
    }
}

/// What a sequence saw.
#[derive(Debug, Default)]
struct Seen {
    judged: u32,
    called: u32,
    returned: u32,
    learned: u32,
    /// Denied fetches at a location that was a return site used earlier in the sequence.
    used_up: u32,
}

/// Feeds the faults of `steps` to `Engine::handle` one after the other, each judged by the
/// oracle with the entry points and return sites the decisions before it left.
fn run(s: &mut Spec, steps: &[Recipe]) -> Result<Seen, TestCaseError> {
    let mut e = s.build();
    let mut ctx = Ctx {
        view: 0,
        last: s.calls.first().map_or(0, |c| c.1),
    };
    let mut seen = Seen::default();
    let mut used: Vec<Gate> = Vec::new();
    for r in steps {
        let f = s.resolve(r, &mut ctx);
        // What the hardware would not raise, and what the engine decides otherwise, is not fed.
        let Judgement::Want(w) = s.decide(&f) else {
            continue;
        };
        prop_assert_eq!(got(&mut e, &f, true), w, "{:?}\n{:?}", f, s);
        seen.judged += 1;
        match w.gate {
            Some(GateOp::Called(_)) => seen.called += 1,
            Some(GateOp::Returned(g)) => {
                seen.returned += 1;
                used.push(g);
            }
            Some(GateOp::Learn(_)) => seen.learned += 1,
            None => {}
        }
        if matches!(w.decision, Decision::Deny(_))
            && used.iter().any(|g| (g.gpa, g.gva) == (f.gpa, f.rip))
        {
            seen.used_up += 1;
        }
        s.apply(&w);
        if let Some(GateOp::Called(g)) = w.gate {
            ctx.last = g.gva;
        }
        ctx.view = match w.decision {
            Decision::Switch(d) => d,
            Decision::Leave => 0,
            _ => f.view,
        };
        // The engine's sites are the oracle's.
        for &(g, n) in &s.pending {
            prop_assert_eq!(e.pending(&g), n, "{:?}", g);
        }
        prop_assert_eq!(e.return_sites(), s.pending.len());
    }
    Ok(seen)
}

/// Each fault decided by the engine as the text says, without handling (nothing changes).
fn decide_faults(mut s: Spec, faults: &[Recipe]) -> Result<(), TestCaseError> {
    let mut e = s.build();
    let mut ctx = Ctx::default();
    for r in faults {
        let f = s.resolve(r, &mut ctx);
        if let Judgement::Want(want) = s.decide(&f) {
            prop_assert_eq!(got(&mut e, &f, false), want, "{:?}\n{:?}", f, s);
            // What learning adds is the region's owner's, and known afterwards.
            if let Some((region, ..)) = want.learn {
                prop_assert!(s.region_at(region).is_some_and(|r| r.0 == want.domain));
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn decide_follows_the_specification(s in spec(), faults in prop::collection::vec(fault(), 1..64)) {
        decide_faults(s, &faults)?;
    }
}

/// `spec()` with some of its domains made switchable (the engine takes the flag as it is: which
/// entry points it needs is `check_switchable`'s, tested in `policy.rs`).
fn switchable_spec() -> impl Strategy<Value = Spec> {
    (spec(), 1u32..0x10000).prop_map(|(mut s, mask)| {
        s.switchable = s
            .domains
            .iter()
            .map(|d| d.0)
            .filter(|&d| mask & (1 << d) != 0)
            .collect();
        let _ = s.build();
        s
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn switchable_domains_follow_the_specification(
        s in switchable_spec(),
        faults in prop::collection::vec(fault(), 1..64),
    ) {
        decide_faults(s, &faults)?;
    }

    #[test]
    fn switchable_sequences_follow_the_specification(
        s in switchable_spec(),
        steps in prop::collection::vec(step(), 1..48),
    ) {
        let mut s = s;
        run(&mut s, &steps)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn handled_sequences_follow_the_specification(
        s in spec(),
        steps in prop::collection::vec(step(), 1..48),
    ) {
        let mut s = s;
        run(&mut s, &steps)?;
    }
}

/// A data access near one of the VM's rules (`fault()` reaches one rarely): to a page of the
/// rule's region, from the page before its accessor range, a page of it, or the page after it.
#[derive(Clone, Copy, Debug)]
struct Near {
    rule: usize,
    page: u64,
    gpage: u64,
    off: u64,
    view: ViewSel,
    access: u8,
}

fn near() -> impl Strategy<Value = Near> {
    (
        0usize..12,
        0u64..6,
        0u64..4,
        0u64..PAGE,
        prop_oneof![
            2 => Just(ViewSel::Num(0)),
            1 => (0u8..16).prop_map(ViewSel::Num),
            1 => (0usize..5).prop_map(ViewSel::Domain),
        ],
        prop_oneof![Just(R), Just(W), Just(X)],
    )
        .prop_map(|(rule, page, gpage, off, view, access)| Near {
            rule,
            page,
            gpage,
            off,
            view,
            access,
        })
}

impl Spec {
    /// The fault `n` describes, if the VM has a rule.
    fn near(&self, n: &Near) -> Option<Fault> {
        let x = *self.rules.get(n.rule % self.rules.len().max(1))?;
        let (_, gfn, npages, _) = self.region_at(x.1)?;
        let view = match n.view {
            ViewSel::Domain(i) => self.domains[i % self.domains.len()].0,
            ViewSel::Num(v) => v,
            ViewSel::Current => 0,
        };
        Some(Fault {
            view,
            gpa: (gfn + n.gpage % npages) * PAGE + n.off,
            rip: x.2.saturating_sub(PAGE) + n.page * PAGE + n.off,
            access: n.access,
            stack: None,
        })
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// Accesses to regions by rules' accessors and their neighbours, in every mode: "in enforce
    /// mode, a rule trusted on its own allows ..., In learn mode, any rule that allows it does".
    #[test]
    fn accesses_near_rules_follow_the_specification(
        s in spec(),
        near in prop::collection::vec(near(), 1..64),
    ) {
        let mut s = s;
        let mut e = s.build();
        for n in &near {
            let Some(f) = s.near(n) else {
                continue;
            };
            if let Judgement::Want(want) = s.decide(&f) {
                prop_assert_eq!(got(&mut e, &f, false), want, "{:?}\n{:?}", f, s);
            }
        }
    }
}

/// `accesses_near_rules_follow_the_specification` is no vacuous property either: enforcing, it
/// sees rules trusted on their own switch accessors in and others' accessors denied; learning,
/// both kinds of rule switch theirs in, and accessors without one are learned.
#[test]
fn accesses_near_rules_meet_both_kinds_of_rule() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    // (enforce: trusted to its lens, untrusted denied; learn: trusted, untrusted switched,
    // learned)
    let mut n = [0u32; 5];
    for _ in 0..300 {
        let mut s = spec().new_tree(&mut runner).unwrap().current();
        let _ = s.build();
        for _ in 0..64 {
            let r = near().new_tree(&mut runner).unwrap().current();
            let Some(f) = s.near(&r) else {
                continue;
            };
            let Judgement::Want(w) = s.decide(&f) else {
                continue;
            };
            let Some(region) = s.region_at(f.gpa / PAGE) else {
                continue;
            };
            let (gfn, switched) = (region.1, matches!(w.decision, Decision::Switch(_)));
            let lens = matches!(w.decision, Decision::Trusted(_));
            let trusted = s.profile_allows(gfn, f.rip, f.access, true);
            let any = s.profile_allows(gfn, f.rip, f.access, false);
            let slot = match (s.mode_of(region.0), trusted, any, switched) {
                (Mode::Enforce, true, _, false) if lens => 0,
                (Mode::Enforce, false, true, false) => 1,
                (Mode::Learn, true, _, true) => 2,
                (Mode::Learn, false, true, true) => 3,
                (Mode::Learn, _, false, true) if w.learn.is_some() => 4,
                _ => continue,
            };
            n[slot] += 1;
        }
    }
    assert!(n.iter().all(|&k| k > 100), "{n:?}");
}

/// Which kind of decision a judgement is.
fn kind(s: &Spec, f: &Fault, w: &Want) -> usize {
    let region = s.region_at(f.gpa / PAGE).is_some();
    match (w.decision, w.learn.is_some(), w.gate) {
        (Decision::NotOurs, ..) => 0,
        (Decision::Switch(_), false, None) if region => 1,
        (Decision::Switch(_), true, _) => 2,
        (Decision::GrantExec, ..) => 3,
        (Decision::Narrow(_) | Decision::Trusted(_), ..) => 14,
        (Decision::Leave, _, None) => 4,
        (Decision::Leave, _, Some(GateOp::Called(_))) => 5,
        (Decision::Deny(_), ..) if w.log != Some(ctl::LOG_DENIED) => 12,
        (Decision::Deny(_), ..) if region => 6,
        // An entry point.
        (Decision::Switch(_), false, None) => 7,
        (Decision::Switch(_), _, Some(GateOp::Returned(_))) => 8,
        (Decision::Switch(_), _, Some(GateOp::Learn(_))) => 9,
        // A denied fetch of a domain's code.
        (Decision::Deny(_), ..) if f.access == X => 10,
        // A denied write to a domain's code.
        (Decision::Deny(_), ..) if s.code_page(f.gpa / PAGE).is_some() => 11,
        _ => 13,
    }
}

/// The oracle is no vacuous one: on these VMs it judges most faults, and every kind of decision,
/// entry points, return sites, learned entry points and denied fetches included; the sequences
/// record return sites, use them, and find them used up.
#[test]
fn the_oracle_judges_every_kind_of_decision() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (mut judged, mut total) = (0, 0);
    let mut kinds = [0u32; 15];
    for _ in 0..300 {
        let mut s = spec().new_tree(&mut runner).unwrap().current();
        let _ = s.build();
        let mut ctx = Ctx::default();
        for _ in 0..64 {
            let r = fault().new_tree(&mut runner).unwrap().current();
            let f = s.resolve(&r, &mut ctx);
            total += 1;
            match s.decide(&f) {
                Judgement::NoFault => {}
                Judgement::Want(w) => {
                    judged += 1;
                    kinds[kind(&s, &f, &w)] += 1;
                }
            }
        }
    }
    assert!(judged * 3 > total * 2, "{judged} of {total} judged");
    // Most drawn rules give less than all of a region's rights: most profile code fetched in
    // a domain's view goes to a lens (14) rather than running there (3).
    assert!(
        kinds[..11]
            .iter()
            .enumerate()
            .all(|(i, &n)| n > if i == 3 { 10 } else { 50 }),
        "{kinds:?}"
    );
    assert!(kinds[11] > 0 && kinds[14] > 50, "{kinds:?}");
    assert_eq!(kinds[12..14], [0, 0], "{kinds:?}");
    let mut seen = Seen::default();
    for _ in 0..300 {
        let mut s = spec().new_tree(&mut runner).unwrap().current();
        let steps = prop::collection::vec(step(), 48)
            .new_tree(&mut runner)
            .unwrap()
            .current();
        let one = run(&mut s, &steps).unwrap();
        seen.judged += one.judged;
        seen.called += one.called;
        seen.returned += one.returned;
        seen.learned += one.learned;
        seen.used_up += one.used_up;
    }
    assert!(seen.judged > 300 * 48 / 2, "{seen:?}");
    assert!(
        seen.called > 300 && seen.returned > 150 && seen.learned > 300 && seen.used_up > 30,
        "{seen:?}"
    );
}

/// Found by the oracle: code that may run in a domain's view fetched from a region's page, and
/// `decide` made the page executable there (`GrantExec` adds X and R to the page in the view):
/// beyond the region's rights, and for another domain's region, a region that view must not map.
/// A guest reaches it by mapping the code's (or profile code's) linear address to the page.
#[test]
fn a_region_page_is_never_made_executable_in_a_domain_view() {
    let mut s = Spec {
        vm_mode: Mode::Enforce,
        deny: Deny::Gp,
        domains: vec![(1, None), (2, None)],
        // Domain 1's code at gva 0x10000 (gfn 0x50); domain 2's at 0x20000 (gfn 0x60).
        code: vec![(1, 0x10000, 0x11000, 0x50), (2, 0x20000, 0x21000, 0x60)],
        // Domain 1's write-only log page, domain 2's read-write secret.
        regions: vec![(1, 0x10, 1, W), (2, 0x20, 1, R | W)],
        // Profile code at 0x30000 may write domain 1's log.
        rules: vec![(0, 0, 0x30000, 0x31000, W, false)],
        entries: vec![],
        calls: vec![],
        learned: vec![],
        pending: vec![],
        switchable: vec![],
    };
    let mut e = s.build();
    let check = |e: &mut Engine, f: &Fault, want: Decision, domain: u8| {
        let Judgement::Want(w) = s.decide(f) else {
            panic!("{f:?}: not judged");
        };
        assert_eq!(got(e, f, false), w, "{f:?}");
        assert_eq!((w.decision, w.domain), (want, domain), "{f:?}");
    };
    // Profile code fetches domain 1's write-only page in view 1: denied (not X, not R).
    let own = Fault {
        view: 1,
        gpa: 0x10 * PAGE,
        rip: 0x30000,
        access: X,
        stack: None,
    };
    check(&mut e, &own, Decision::Deny(Deny::Gp), 1);
    // ... and domain 2's secret page from view 1: an access to domain 2's region, denied.
    let other = Fault {
        gpa: 0x20 * PAGE,
        ..own
    };
    check(&mut e, &other, Decision::Deny(Deny::Gp), 2);
    // A page of no region is still made executable for profile code.
    let plain = Fault {
        gpa: 0x30 * PAGE,
        ..own
    };
    check(&mut e, &plain, Decision::GrantExec, 1);
    // Domain 1's RIP on a page that is not domain 1's code: which code runs is decided by the
    // page ("identity is the physical page and the RIP together"), and this page is no code of
    // domain 1's, so the vCPU leaves view 1 (it used to be made executable for the RIP's sake).
    // The same on domain 1's log page: it is left, not run.
    for gpa in [0x30 * PAGE, 0x10 * PAGE] {
        let mapped = Fault {
            gpa,
            rip: 0x10000,
            ..own
        };
        check(&mut e, &mapped, Decision::Leave, 1);
    }
    // Foreign code leaves.
    let foreign = Fault {
        rip: 0x7000_0000,
        ..other
    };
    check(&mut e, &foreign, Decision::Leave, 1);
}

// ---- found by the oracle (the engine disagreed with the text until fixed) ----

/// A VM enforcing or learning, with domain 1's code at 0x10000 (gfn 0x50), an entry point at
/// 0x10040, and a region.
fn gated(mode: Mode) -> (Spec, Box<Engine>) {
    let mut s = Spec {
        vm_mode: mode,
        deny: Deny::Gp,
        domains: vec![(1, None)],
        code: vec![(1, 0x10000, 0x12000, 0x50)],
        regions: vec![(1, 0x10, 1, R | W)],
        rules: vec![],
        entries: vec![(1, 0x10040)],
        calls: vec![],
        learned: vec![],
        pending: vec![],
        switchable: vec![],
    };
    let e = s.build();
    (s, e)
}

/// "in learn mode, anything else: the location becomes a learned entry point (a learned record
/// is logged) and the vCPU switches to view d" and "learn: Every access is allowed": an entry
/// point whose return address lies in the domain's code (or could not be read) is "anything
/// else", so learn mode switches. The engine denied it: it learned only locations that were not
/// entry points yet, and the rest fell through to the denial.
#[test]
fn learn_mode_switches_at_an_entry_point_whatever_its_return_address() {
    let (s, mut e) = gated(Mode::Learn);
    for stack in [
        Some(Stack { event: None,
            below: 0,
            top: 0x11000,
        }),
        None,
    ] {
        let f = Fault {
            view: 0,
            gpa: 0x50 * PAGE + 0x40,
            rip: 0x10040,
            access: X,
            stack,
        };
        assert!(matches!(s.decide(&f), Judgement::Want(w) if w.decision == Decision::Switch(1)));
        assert_eq!(
            got(&mut e, &f, false).decision,
            Decision::Switch(1),
            "{f:?}"
        );
    }
}

/// "A domain's code is writable in no view, so no alias of its pages can plant instructions in
/// it" and, after lock, code outside d cannot start d's code "by planting code in d's pages
/// (writable nowhere)"; `abi.rst`: "ON_VIOLATION applies to pages outside every domain". The
/// engine decided a write to a protected domain's code page as `NotOurs` (only fetches looked
/// at the code's pages), and the module then applied the guest's ON_VIOLATION: with GRANT
/// (settable before the lock, and kept by it), the write was granted and the page became
/// writable in that view.
#[test]
fn a_write_to_a_domains_code_is_denied_as_the_domains() {
    let (s, mut e) = gated(Mode::Enforce);
    for view in [0, 1] {
        let f = Fault {
            view,
            gpa: 0x51 * PAGE + 8,
            rip: 0x7000_0000,
            access: W,
            stack: None,
        };
        assert!(
            matches!(s.decide(&f), Judgement::Want(w) if w.decision == Decision::Deny(Deny::Gp))
        );
        let o = got(&mut e, &f, false);
        assert_eq!(
            (o.decision, o.domain, o.log),
            (Decision::Deny(Deny::Gp), 1, Some(ctl::LOG_DENIED)),
            "view {view}"
        );
    }
}

/// "a learned rule that would merge with a trusted one is refused: trust never spreads"
/// (Profiles), and "rules of one region that touch and have the same rights and trust are
/// joined". Reading: learn mode then denies the access, as for an accessor it cannot add (its
/// code could not run in the owner's view), and the profile stays as it was.
#[test]
fn learn_mode_refuses_a_rule_that_would_merge_with_a_trusted_one() {
    let mut s = Spec {
        vm_mode: Mode::Learn,
        deny: Deny::Gp,
        domains: vec![(1, None)],
        code: vec![(1, 0x10000, 0x12000, 0x50)],
        regions: vec![(1, 0x10, 1, R | W)],
        // A helper at 0x30000 may read domain 1's region, trusted on its own.
        rules: vec![(0, 0, 0x30000, 0x31000, R, true)],
        entries: vec![],
        calls: vec![],
        learned: vec![],
        pending: vec![],
        switchable: vec![],
    };
    let mut e = s.build();
    let profile: Vec<CtlRule> = e.profile().collect();
    let at = |rip, access| Fault {
        view: 0,
        gpa: 0x10 * PAGE + 8,
        rip,
        access,
        stack: None,
    };
    let judged = |f: &Fault| match s.decide(f) {
        Judgement::Want(w) => w,
        Judgement::NoFault => panic!("{f:?}: not judged"),
    };
    // "In learn mode, any rule that allows it does".
    let read = at(0x30010, R);
    assert_eq!(got(&mut e, &read, true), judged(&read));
    assert_eq!(judged(&read).decision, Decision::Switch(1));
    // A write from the same page: the rule learning would add is inside the trusted one.
    let write = at(0x30010, W);
    let w = judged(&write);
    assert_eq!(w.learn, Some((0x10, 0x30000, 0x31000, W, false)));
    assert_eq!(got(&mut e, &write, false), w);
    assert_eq!(got(&mut e, &write, true), s.deny(1));
    assert_eq!(e.profile().collect::<Vec<_>>(), profile);
    // The page after it touches it with the same rights, but not the same trust: learned, not
    // joined.
    let next = at(0x31010, R);
    let w = judged(&next);
    assert_eq!(w.learn, Some((0x10, 0x31000, 0x32000, R, false)));
    assert_eq!(got(&mut e, &next, true), w);
    let now: Vec<(u64, u64, u32)> = e
        .profile()
        .map(|x| (x.accessor_start, x.accessor_end, x.access))
        .collect();
    assert_eq!(
        now,
        [
            (0x30000, 0x31000, u32::from(R) | ctl::RULE_TRUSTED),
            (0x31000, 0x32000, u32::from(R)),
        ]
    );
}
