// SPDX-License-Identifier: GPL-2.0

//! `Engine::decide` against an oracle written from the specification,
//! `Documentation/kvm-isolate/domains.rst`, not from the code: plain lists, linear scans, and one
//! step per sentence of the text (quoted beside it). The engine under test is built from the
//! oracle's lists through its public interface, so both describe the same VM.
//!
//! Where the text leaves a case open, the oracle says how it reads it (`Reading:`).

use kvm_isolate_core::ctl::{self, CtlRule};
use kvm_isolate_core::policy::{Code, Decision, Deny, Engine, Fault, Mode, Region, Rule};
use proptest::prelude::*;

const PAGE: u64 = 4096;
const R: u8 = 1;
const W: u8 = 2;
const X: u8 = 4;

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
    /// Profile rules: (domain, region's first gfn, accessor start, accessor end, rights).
    rules: Vec<(u8, u64, u64, u64, u8)>,
}

/// What the text says a fault leads to (the fields of `Outcome`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Want {
    decision: Decision,
    domain: u8,
    /// The rule learning adds: (region, accessor start, end, rights).
    learn: Option<(u64, u64, u64, u8)>,
    log: Option<u32>,
}

impl Spec {
    fn is_domain(&self, v: u8) -> bool {
        self.domains.iter().any(|d| d.0 == v)
    }

    /// "Per VM and per domain (a domain without its own mode follows its VM's)".
    fn mode_of(&self, d: u8) -> Mode {
        let own = self.domains.iter().find(|x| x.0 == d).and_then(|x| x.1);
        own.unwrap_or(self.vm_mode)
    }

    fn region_at(&self, gfn: u64) -> Option<(u8, u64, u64, u8)> {
        self.regions
            .iter()
            .copied()
            .find(|r| r.1 <= gfn && gfn < r.1 + r.2)
    }

    /// "its code (guest-virtual ranges, with the guest-physical pages behind them)": by address.
    fn code_of(&self, d: u8, rip: u64) -> bool {
        self.code
            .iter()
            .any(|c| c.0 == d && c.1 <= rip && rip < c.2)
    }

    /// ... and by page: the pages behind domain `d`'s code.
    fn code_page_of(&self, d: u8, gfn: u64) -> bool {
        self.code
            .iter()
            .any(|c| c.0 == d && c.3 <= gfn && gfn < c.3 + (c.2 - c.1) / PAGE)
    }

    /// "code its profile names": a rule of one of `d`'s regions whose accessor range holds `rip`.
    fn profile_names(&self, d: u8, rip: u64) -> bool {
        self.rules
            .iter()
            .any(|x| x.0 == d && x.2 <= rip && rip < x.3)
    }

    /// "the profile allows it": a rule of this region, for this accessor, with this right.
    fn profile_allows(&self, region: u64, rip: u64, access: u8) -> bool {
        self.rules
            .iter()
            .any(|x| x.1 == region && x.2 <= rip && rip < x.3 && x.4 & access != 0)
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

    fn deny(&self, d: u8) -> Want {
        // "anything else is denied: #GP, #PF ... or an exit to user space, as the host chose
        // ..., and logged."
        Want {
            decision: Decision::Deny(self.deny),
            domain: d,
            learn: None,
            log: Some(ctl::LOG_DENIED),
        }
    }

    fn allow(&self, decision: Decision, d: u8) -> Want {
        Want {
            decision,
            domain: d,
            learn: None,
            log: None,
        }
    }

    /// An access by the code at `rip` to a region that is not mapped in the faulting view
    /// (Transparent switching, Modes).
    fn region_access(&self, r: (u8, u64, u64, u8), rip: u64, access: u8) -> Want {
        let (e, gfn, _, rights) = r;
        // "A region's rights bound every access, in every mode: the owner declared them".
        if rights & access == 0 {
            return self.deny(e);
        }
        // "the accessor (the guest RIP) is in the owner's code, or the profile allows it:
        // switch to the owner's view and retry."
        if self.code_of(e, rip) || self.profile_allows(gfn, rip, access) {
            return self.allow(Decision::Switch(e), e);
        }
        match self.mode_of(e) {
            // "off: The domain's regions are mapped in view 0: no protection, nothing recorded."
            // Reading: a fault still comes from a view the region is not mapped in (another
            // domain's); with no protection, it is switched like an allowed one.
            Mode::Off => self.allow(Decision::Switch(e), e),
            // "learn: Every access is allowed; an accessor not yet in the profile is added to
            // it, and a learned record is logged."
            Mode::Learn => match self.accessor(rip) {
                Some((start, end)) => Want {
                    decision: Decision::Switch(e),
                    domain: e,
                    learn: Some((gfn, start, end, access)),
                    log: Some(ctl::LOG_LEARNED),
                },
                // Reading: an accessor that cannot be added cannot be allowed either (its code
                // could not run in the owner's view).
                None => self.deny(e),
            },
            // "enforce: Only the owner's code and the profile may access a region; the rest is
            // denied and logged."
            Mode::Enforce => self.deny(e),
        }
    }

    /// The decision about a fault; `None` if the view described by the text grants the access,
    /// so that the hardware raises no such fault.
    fn decide(&self, f: &Fault) -> Option<Want> {
        let gfn = f.gpa / PAGE;
        let region = self.region_at(gfn);
        if !self.is_domain(f.view) {
            // "view 0: Everything, except every domain's regions (while the domain is
            // protected)". Reading: the guest's own (ABI v1) views are like view 0.
            return match region {
                // "Not about any domain: the VM's ABI v1 ON_VIOLATION setting applies."
                None => Some(self.allow(Decision::NotOurs, 0)),
                Some(r) if self.mode_of(r.0) == Mode::Off => None,
                Some(r) => Some(self.region_access(r, f.rip, f.access)),
            };
        }
        // "Each domain owns the view with its number".
        let d = f.view;
        if f.access == X {
            // "Nothing but the domain's (and its profile's) code can run in a domain's view":
            // other code "faults on its next instruction fetch and is switched back to view 0".
            if !self.code_of(d, f.rip) && !self.profile_names(d, f.rip) {
                return Some(self.allow(Decision::Leave, d));
            }
            if region.is_none() {
                if self.code_page_of(d, gfn) {
                    // "view d: ... not executable, except d's code": its pages are.
                    return None;
                }
                // "profile code that is not the owner's gets its code page made executable in
                // the owner's view on its first fetch there".
                return Some(self.allow(Decision::GrantExec, d));
            }
            // Reading: a region's page is no code page, whoever runs: it is accessed as a
            // region, within the region's rights ("A region's rights bound every access").
        }
        match region {
            // "view d: Domain d's regions with d's rights": a fault is an access beyond them,
            // which the rights bound, "even for the owner".
            Some(r) if r.0 == d => {
                if r.3 & f.access != 0 {
                    None
                } else {
                    Some(self.deny(d))
                }
            }
            // "no other domain's regions".
            Some(r) => Some(self.region_access(r, f.rip, f.access)),
            // "everything else readable and writable" (fetches were decided above).
            None => None,
        }
    }

    /// The same VM in an engine, through the engine's interface; the parts the engine refuses
    /// are dropped from the oracle's lists too.
    fn build(&mut self) -> Box<Engine> {
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
                gfn,
                npages,
                rights,
                domain: d,
            };
            e.check_region(&r).is_ok() && e.add_region(r).is_ok()
        });
        // Rules of regions that exist, within their rights, not overlapping within a region.
        let regions = self.regions.clone();
        let mut kept: Vec<(u8, u64, u64, u64, u8)> = Vec::new();
        for &(_, ri, start, end, rights) in &self.rules {
            let Some(r) = regions.get(ri as usize % regions.len().max(1)) else {
                break;
            };
            let rights = rights & r.3;
            if rights == 0 || kept.iter().any(|k| k.1 == r.1 && k.2 < end && start < k.3) {
                continue;
            }
            kept.push((r.0, r.1, start, end, rights));
        }
        self.rules = kept;
        let mut profile: Vec<CtlRule> = self
            .rules
            .iter()
            .map(|&(d, gfn, start, end, rights)| CtlRule {
                domain: u32::from(d),
                access: u32::from(rights),
                region_gpa: gfn * PAGE,
                accessor_start: start,
                accessor_end: end,
            })
            .collect();
        e.check_profile(&mut profile).unwrap();
        e.set_profile(&profile);
        e.set_mode(0, Some(self.vm_mode));
        e.set_deny(self.deny);
        for &(d, m) in &self.domains {
            e.set_mode(d, m);
        }
        e
    }
}

fn mode() -> impl Strategy<Value = Mode> {
    prop_oneof![Just(Mode::Off), Just(Mode::Learn), Just(Mode::Enforce)]
}

/// A small VM: up to 5 domains with any view numbers, code and regions in a small space of
/// addresses and pages (so that faults often hit them), rules over the same addresses as code.
fn spec() -> impl Strategy<Value = Spec> {
    (
        mode(),
        prop_oneof![Just(Deny::Exit), Just(Deny::Gp), Just(Deny::Pf)],
        prop::collection::btree_map(1u8..=15, prop::option::of(mode()), 1..=5),
        prop::collection::vec((0usize..5, 0u64..32, 1u64..4, 48u64..72), 0..8),
        prop::collection::vec((0usize..5, 0u64..48, 1u64..5, 1u8..8), 1..14),
        prop::collection::vec((0u64..16, 0u64..34, 1u64..4, 1u8..8), 0..12),
    )
        .prop_map(|(vm_mode, deny, domains, code, regions, rules)| {
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
                    .map(|(ri, slot, n, rights)| (0, ri, slot * PAGE, (slot + n) * PAGE, rights))
                    .collect(),
                domains,
            };
            let _ = s.build();
            s
        })
}

fn fault() -> impl Strategy<Value = Fault> {
    (
        0u8..16,
        // Mostly where regions are (0..48), also code pages (48..72) and pages of neither.
        prop_oneof![3 => 0u64..48, 1 => 0u64..76],
        0u64..PAGE,
        prop_oneof![
            8 => (0u64..36, 0u64..PAGE).prop_map(|(slot, off)| slot * PAGE + off),
            1 => (0u64..PAGE).prop_map(|off| u64::MAX - off),
            1 => any::<u64>(),
        ],
        prop_oneof![Just(R), Just(W), Just(X)],
    )
        .prop_map(|(view, gfn, off, rip, access)| Fault {
            view,
            gpa: gfn * PAGE + off,
            rip,
            access,
        })
}

fn got(e: &Engine, f: &Fault) -> Want {
    let o = e.decide(f);
    Want {
        decision: o.decision,
        domain: o.domain,
        learn: o.learn.map(|r: Rule| (r.region, r.start, r.end, r.rights)),
        log: o.log,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn decide_follows_the_specification(s in spec(), faults in prop::collection::vec(fault(), 1..64)) {
        let mut s = s;
        let e = s.build();
        for f in &faults {
            if let Some(want) = s.decide(f) {
                prop_assert_eq!(got(&e, f), want, "{:?}\n{:?}", f, s);
                // What learning adds is the region's owner's, and known afterwards.
                if let Some((region, ..)) = want.learn {
                    prop_assert!(s.region_at(region).is_some_and(|r| r.0 == want.domain));
                }
            }
        }
    }
}

/// The oracle is no vacuous one: on these VMs it judges most faults, and every kind of decision.
#[test]
fn the_oracle_judges_every_kind_of_decision() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (mut judged, mut total) = (0, 0);
    let mut kinds = [0u32; 7];
    for _ in 0..300 {
        let mut s = spec().new_tree(&mut runner).unwrap().current();
        let _ = s.build();
        for _ in 0..64 {
            let f = fault().new_tree(&mut runner).unwrap().current();
            total += 1;
            let Some(w) = s.decide(&f) else {
                continue;
            };
            judged += 1;
            let k = match (w.decision, w.learn.is_some()) {
                (Decision::NotOurs, _) => 0,
                (Decision::Switch(_), false) => 1,
                (Decision::Switch(_), true) => 2,
                (Decision::GrantExec, _) => 3,
                (Decision::Leave, _) => 4,
                (Decision::Deny(_), _) if w.log == Some(ctl::LOG_DENIED) => 5,
                (Decision::Deny(_), _) => 6,
            };
            kinds[k] += 1;
        }
    }
    assert!(judged * 10 > total * 8, "{judged} of {total} judged");
    assert!(kinds[..6].iter().all(|&n| n > 50), "{kinds:?}");
    assert_eq!(kinds[6], 0);
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
        rules: vec![],
    };
    let e = s.build();
    // Domain 1's code fetches its own write-only page in its view: denied (not X, not R).
    let own = Fault {
        view: 1,
        gpa: 0x10 * PAGE,
        rip: 0x10000,
        access: X,
    };
    assert_eq!(e.decide(&own).decision, Decision::Deny(Deny::Gp));
    assert_eq!(got(&e, &own), s.decide(&own).unwrap());
    // ... and domain 2's secret page from view 1: an access to domain 2's region, denied.
    let other = Fault {
        gpa: 0x20 * PAGE,
        ..own
    };
    let o = e.decide(&other);
    assert_eq!((o.decision, o.domain), (Decision::Deny(Deny::Gp), 2));
    assert_eq!(got(&e, &other), s.decide(&other).unwrap());
    // A page of no region is still made executable for the domain's code; foreign code leaves.
    let plain = Fault {
        gpa: 0x30 * PAGE,
        ..own
    };
    assert_eq!(e.decide(&plain).decision, Decision::GrantExec);
    let foreign = Fault {
        rip: 0x7000_0000,
        ..other
    };
    assert_eq!(e.decide(&foreign).decision, Decision::Leave);
}
