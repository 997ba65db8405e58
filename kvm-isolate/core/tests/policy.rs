// SPDX-License-Identifier: GPL-2.0

//! The policy engine: decisions, entry gates (entry points, return sites), learning, profiles,
//! modes and the lock, the log; property tests against a naive model and of the return table.

use kvm_isolate_core::abi::{self, Error};
use kvm_isolate_core::ctl::{self, CtlCodeName, CtlEntry, CtlRecord, CtlRegion, CtlRule};
use kvm_isolate_core::policy::*;
use proptest::prelude::*;

const P: u64 = 4096;
const R: u8 = 1;
const W: u8 = 2;
const X: u8 = 4;

/// The caps the tests fill (small enough to fill quickly): an administrator's choice.
const LIMITS: Limits = Limits {
    code: 64,
    regions: 256,
    rules: 4096,
    entries: 1024,
    returns: 512,
};
const MAX_REGIONS: usize = LIMITS.regions;
const MAX_RULES: usize = LIMITS.rules;
const MAX_ENTRIES: usize = LIMITS.entries;
const MAX_RETURNS: usize = LIMITS.returns;

/// Domain 1: code at gva 0x1000_0000 (2 pages, gfn 0x100), region gfn 0x200 (4 pages, RW).
/// Domain 2: code at gva 0x2000_0000 (1 page, gfn 0x300), region gfn 0x400 (1 page, R).
fn engine() -> Box<Engine> {
    let mut e = Box::new(Engine::with_limits(LIMITS));
    for (d, gva, gfn, rgfn, rn, rights) in [
        (1u8, 0x1000_0000u64, 0x100u64, 0x200u64, 4u64, R | W),
        (2, 0x2000_0000, 0x300, 0x400, 1, R),
    ] {
        e.create_domain(d).unwrap();
        let c = Code {
            start: gva,
            end: gva + 2 * P,
            gfn,
            npages: 2,
            domain: d,
        };
        e.check_code(d, &c, true).unwrap();
        e.add_code(c).unwrap();
        let r = Region {
            index: 0,
            gfn: rgfn,
            npages: rn,
            rights,
            domain: d,
        };
        e.check_region(&r).unwrap();
        e.add_region(r).unwrap();
    }
    e
}

fn fault(view: u8, gpa: u64, rip: u64, access: u8) -> Fault {
    Fault {
        view,
        gpa,
        rip,
        access,
        stack: None,
    }
}

const FOREIGN: u64 = 0x7000_0123;

/// A new engine is empty, has the default caps, and no table is at its cap.
#[test]
fn new_engine_is_empty_with_the_default_caps() {
    let n = Engine::new();
    assert_eq!(
        (n.mode(), n.deny(), n.locked()),
        (Mode::Off, Deny::Exit, false)
    );
    assert_eq!(n.limits(), Limits::DEFAULT);
    assert!(Limits::DEFAULT.valid());
    assert_eq!(n.full(), 0);
    assert_eq!(n.domain_count(), 0);
    assert!(n.regions().is_empty() && n.code().is_empty() && n.rules().is_empty());
    assert_eq!(n.log.len(), 0);
    assert_eq!((n.log.written, n.log.dropped), (0, 0));
    let too_big = Limits {
        rules: Limits::CEILING + 1,
        ..Limits::DEFAULT
    };
    assert!(!too_big.valid());
}

#[test]
fn not_ours_outside_regions() {
    let e = engine();
    let o = e.decide(&fault(0, 0x500 * P, FOREIGN, R));
    assert_eq!(o.decision, Decision::NotOurs);
    assert_eq!(o.log, None);
}

/// Enforce mode: a rule trusted on its own lets code in, nothing else. The owner's RIP does not
/// count: the owner's code runs in its view, entered through its gates, so a fault from view 0
/// with a RIP in its code is code that did not come in through them (or another mapping of its
/// address).
#[test]
fn enforce_allows_the_profile_and_denies_others() {
    let mut e = engine();
    e.set_mode(0, Some(Mode::Enforce));
    let own = e.decide(&fault(0, 0x201 * P + 8, 0x1000_0010, W));
    assert_eq!(own.decision, Decision::Deny(Deny::Exit));
    assert_eq!((own.domain, own.log), (1, Some(ctl::LOG_DENIED)));
    e.learn(trusted(0x200, 0x7000_0000, 0x7000_1000, R | W))
        .unwrap();
    let named = e.decide(&fault(0, 0x201 * P + 8, FOREIGN, W));
    assert_eq!(named.decision, Decision::Trusted(1));
    assert_eq!((named.learn, named.gate, named.log), (None, None, None));
    let other = e.decide(&fault(0, 0x201 * P, FOREIGN + P, R));
    assert_eq!(other.decision, Decision::Deny(Deny::Exit));
    assert_eq!(other.domain, 1);
    assert_eq!(other.log, Some(ctl::LOG_DENIED));
    // Domain 2's code is no owner of domain 1's region either.
    let d2 = e.decide(&fault(0, 0x200 * P, 0x2000_0000, R));
    assert_eq!(d2.decision, Decision::Deny(Deny::Exit));
    e.set_deny(Deny::Gp);
    assert_eq!(
        e.decide(&fault(0, 0x200 * P, FOREIGN + P, R)).decision,
        Decision::Deny(Deny::Gp)
    );
}

#[test]
fn region_rights_bound_every_mode() {
    let mut e = engine();
    for m in [Mode::Off, Mode::Learn, Mode::Enforce] {
        e.set_mode(0, Some(m));
        // Domain 2's region is read-only, even for its owner, in its own view.
        let o = e.decide(&fault(0, 0x400 * P, 0x2000_0000, W));
        assert_eq!(o.decision, Decision::Deny(Deny::Exit), "{m:?}");
        let o = e.decide(&fault(2, 0x400 * P, 0x2000_0000, W));
        assert_eq!(o.decision, Decision::Deny(Deny::Exit), "{m:?}");
    }
}

#[test]
fn learn_then_enforce() {
    let mut e = engine();
    e.set_mode(0, Some(Mode::Learn));
    let f = fault(0, 0x202 * P, FOREIGN, R);
    let o = e.decide(&f);
    assert_eq!(o.decision, Decision::Switch(1));
    assert_eq!(o.log, Some(ctl::LOG_LEARNED));
    let rule = o.learn.unwrap();
    assert_eq!(
        (rule.region, rule.start, rule.end, rule.rights, rule.domain),
        (0x200, 0x7000_0000, 0x7000_1000, R, 1)
    );
    // Learning never trusts a rule on its own.
    assert!(!rule.trusted);
    assert_eq!(e.handle(&f), o);
    assert_eq!(e.rules().len(), 1);
    assert_eq!(e.counters(1).learned, 1);
    // Known now: no second rule, no log.
    let again = e.decide(&f);
    assert_eq!((again.learn, again.log), (None, None));
    e.set_mode(0, Some(Mode::Enforce));
    // Enforcing, the learned rule lets its code run where the owner calls it: in a lens, for
    // it gives only R over a region the owner may also write...
    assert_eq!(
        e.decide(&fault(1, 0x77 * P, FOREIGN, X)).decision,
        Decision::Narrow(1)
    );
    // ... but not in from view 0 on its own: that takes the administrator's trust.
    assert_eq!(e.decide(&f), denied(&e, 1));
    let mut p: Vec<CtlRule> = e.profile().collect();
    p[0].access |= ctl::RULE_TRUSTED;
    e.check_profile(&mut p).unwrap();
    e.set_profile(&p).unwrap();
    assert_eq!(e.decide(&f).decision, Decision::Trusted(1));
    // The rule allows reads only, from that page only.
    assert!(matches!(
        e.decide(&fault(0, 0x202 * P, FOREIGN, W)).decision,
        Decision::Deny(_)
    ));
    assert!(matches!(
        e.decide(&fault(0, 0x202 * P, FOREIGN + P, R)).decision,
        Decision::Deny(_)
    ));
}

/// Found by `cargo fuzz run decide`: a rule for the last page of the address space cannot say
/// where it ends, so learning it would allow an access whose code then never runs in the view.
#[test]
fn learning_denies_an_accessor_in_the_last_page() {
    let mut e = engine();
    e.set_mode(0, Some(Mode::Learn));
    let o = e.decide(&fault(0, 0x200 * P, u64::MAX, W));
    assert_eq!(o.decision, Decision::Deny(Deny::Exit));
    assert_eq!((o.learn, o.log), (None, Some(ctl::LOG_DENIED)));
    let o = e.decide(&fault(0, 0x200 * P, u64::MAX - P, W));
    assert_eq!(o.decision, Decision::Switch(1));
    assert!(o.learn.is_some());
}

#[test]
fn exec_in_a_domain_view() {
    let mut e = engine();
    e.set_mode(0, Some(Mode::Enforce));
    // The owner's code may run in its view; anything else leaves.
    assert_eq!(
        e.decide(&fault(1, 0x100 * P, 0x1000_0000, X)).decision,
        Decision::GrantExec
    );
    assert_eq!(
        e.decide(&fault(1, 0x77 * P, FOREIGN, X)).decision,
        Decision::Leave
    );
    // Domain 2's code in domain 1's view leaves too.
    assert_eq!(
        e.decide(&fault(1, 0x300 * P, 0x2000_0000, X)).decision,
        Decision::Leave
    );
    // Profile-named code may run in the view whose region it may access, trusted on its own or
    // not, if its rules give it all of the owner's rights; with fewer, in its lens.
    let mut rule = Rule {
        region: 0x200,
        start: 0x7000_0000,
        end: 0x7000_1000,
        rights: R,
        domain: 1,
        trusted: false,
    };
    e.learn(rule).unwrap();
    assert_eq!(
        e.decide(&fault(1, 0x77 * P, FOREIGN, X)).decision,
        Decision::Narrow(1)
    );
    rule.rights = W;
    e.learn(rule).unwrap();
    assert_eq!(
        e.decide(&fault(1, 0x77 * P, FOREIGN, X)).decision,
        Decision::GrantExec
    );
    assert_eq!(
        e.decide(&fault(2, 0x77 * P, FOREIGN, X)).decision,
        Decision::Leave
    );
}

#[test]
fn access_to_another_domain_from_a_domain_view() {
    let mut e = engine();
    e.set_mode(0, Some(Mode::Enforce));
    // Domain 2's code reading domain 1's region from view 2: denied without a rule...
    let f = fault(2, 0x200 * P, 0x2000_0000, R);
    assert!(matches!(e.decide(&f).decision, Decision::Deny(_)));
    // ... and with one that is not trusted on its own (view 2 is not domain 1's)...
    let mut r = Rule {
        region: 0x200,
        start: 0x2000_0000,
        end: 0x2000_2000,
        rights: R,
        domain: 1,
        trusted: false,
    };
    e.learn(r).unwrap();
    assert_eq!(e.decide(&f), denied(&e, 1));
    // ... and switched into view 1 with a trusted one.
    r.trusted = true;
    e.set_profile(&[ctl_rule(
        1,
        0x200 * P,
        u32::from(R) | ctl::RULE_TRUSTED,
        r.start,
        r.end,
    )])
    .unwrap();
    assert_eq!(e.rules(), &[r]);
    assert_eq!(e.decide(&f).decision, Decision::Trusted(1));
}

#[test]
fn off_mode_switches_and_records_nothing() {
    let e = engine();
    let o = e.decide(&fault(0, 0x200 * P, FOREIGN, R));
    assert_eq!(o.decision, Decision::Switch(1));
    assert_eq!((o.learn, o.log), (None, None));
}

#[test]
fn domain_mode_overrides_vm_mode() {
    let mut e = engine();
    e.set_mode(0, Some(Mode::Enforce));
    e.check_mode(2, Some(Mode::Learn), true).unwrap();
    e.set_mode(2, Some(Mode::Learn));
    assert_eq!(e.effective_mode(1), Mode::Enforce);
    assert_eq!(e.effective_mode(2), Mode::Learn);
    let o = e.decide(&fault(0, 0x400 * P, FOREIGN, R));
    assert_eq!(o.decision, Decision::Switch(2));
    assert!(o.learn.is_some());
    e.set_mode(2, None);
    assert_eq!(e.effective_mode(2), Mode::Enforce);
}

#[test]
fn lock_lets_the_guest_only_tighten() {
    let mut e = engine();
    e.set_mode(0, Some(Mode::Learn));
    e.set_locked(true);
    assert_eq!(e.check_mode(0, Some(Mode::Off), true), Err(Error::Perm));
    assert_eq!(e.check_mode(1, Some(Mode::Off), true), Err(Error::Perm));
    assert_eq!(e.check_mode(0, Some(Mode::Enforce), true), Ok(()));
    assert_eq!(e.check_mode(1, Some(Mode::Enforce), true), Ok(()));
    // The host may relax.
    assert_eq!(e.check_mode(0, Some(Mode::Off), false), Ok(()));
    // A domain that tightened alone may not fall back to a looser VM mode.
    e.set_mode(1, Some(Mode::Enforce));
    assert_eq!(e.check_mode(1, None, true), Err(Error::Perm));
    // Code may not be added, domains not destroyed; regions may be added.
    let c = Code {
        start: 0x5000_0000,
        end: 0x5000_1000,
        gfn: 0x600,
        npages: 1,
        domain: 1,
    };
    assert_eq!(e.check_code(1, &c, true), Err(Error::Perm));
    assert_eq!(e.check_code(1, &c, false), Ok(()));
    assert_eq!(e.check_destroy(1, true), Err(Error::Perm));
    let r = Region {
        index: 0,
        gfn: 0x700,
        npages: 1,
        rights: R,
        domain: 1,
    };
    assert_eq!(e.check_region(&r), Ok(()));
}

#[test]
fn overlaps_and_limits() {
    let mut e = engine();
    let clash = |gfn, npages| Region {
        index: 0,
        gfn,
        npages,
        rights: R,
        domain: 2,
    };
    assert_eq!(e.check_region(&clash(0x203, 4)), Err(Error::Exist));
    assert_eq!(e.check_region(&clash(0x1ff, 2)), Err(Error::Exist));
    // A region over a domain's code pages.
    assert_eq!(e.check_region(&clash(0x101, 1)), Err(Error::Exist));
    assert_eq!(e.check_region(&clash(0x204, 1)), Ok(()));
    assert_eq!(e.check_region(&clash(0x204, 0)), Err(Error::Range));
    let mut c = Code {
        start: 0x1000_1000,
        end: 0x1000_2000,
        gfn: 0x900,
        npages: 1,
        domain: 2,
    };
    assert_eq!(e.check_code(2, &c, false), Err(Error::Exist));
    c.start = 0x1000_2000;
    c.end = 0x1000_3000;
    assert_eq!(e.check_code(2, &c, false), Ok(()));
    c.gfn = 0x200;
    assert_eq!(e.check_code(2, &c, false), Err(Error::Exist));
    assert_eq!(e.check_code(9, &c, false), Err(Error::NoEnt));
    assert_eq!(
        e.check_region(&Region {
            index: 0,
            domain: 9,
            ..clash(0x900, 1)
        }),
        Err(Error::NoEnt)
    );
    // Fill the regions table.
    let mut n = e.regions().len();
    let mut gfn = 0x10_000;
    while n < MAX_REGIONS {
        let r = clash(gfn, 1);
        e.check_region(&r).unwrap();
        e.add_region(r).unwrap();
        gfn += 2;
        n += 1;
    }
    assert_eq!(e.check_region(&clash(gfn, 1)), Err(Error::NoSpc));
}

#[test]
fn destroy_removes_everything_of_the_domain() {
    let mut e = engine();
    e.learn(Rule {
        region: 0x200,
        start: 0x7000_0000,
        end: 0x7000_1000,
        rights: R,
        domain: 1,
        trusted: false,
    })
    .unwrap();
    e.destroy_domain(1);
    assert!(!e.is_domain(1));
    assert!(e.regions().iter().all(|r| r.domain == 2));
    assert!(e.code().iter().all(|c| c.domain == 2));
    assert!(e.rules().is_empty());
    assert_eq!(
        e.decide(&fault(0, 0x200 * P, FOREIGN, R)).decision,
        Decision::NotOurs
    );
    // The view can be a domain again.
    e.create_domain(1).unwrap();
    assert_eq!(e.create_domain(1), Err(Error::Inval));
    assert_eq!(e.create_domain(0), Err(Error::Inval));
    // Every view but 0 can be one: 255 domains.
    e.create_domain(255).unwrap();
    assert_eq!(e.domain_ids().collect::<Vec<_>>(), [1, 2, 255]);
    e.destroy_domain(255);
    assert_eq!(e.domain_count(), 2);
}

/// A rule of domain 1, not trusted on its own (as learning makes them).
fn rule(region: u64, start: u64, end: u64, rights: u8) -> Rule {
    Rule {
        region,
        start,
        end,
        rights,
        domain: 1,
        trusted: false,
    }
}

/// A rule of domain 1, trusted on its own (as only the administrator makes them).
fn trusted(region: u64, start: u64, end: u64, rights: u8) -> Rule {
    Rule {
        trusted: true,
        ..rule(region, start, end, rights)
    }
}

#[test]
fn learning_keeps_the_profile_compact() {
    let mut e = engine();
    // Adjacent pages with equal rights join.
    e.learn(rule(0x200, 0x7000_0000, 0x7000_1000, R)).unwrap();
    e.learn(rule(0x200, 0x7000_1000, 0x7000_2000, R)).unwrap();
    assert_eq!(e.rules(), &[rule(0x200, 0x7000_0000, 0x7000_2000, R)]);
    // The same page again with W: the covering rule gains W.
    e.learn(rule(0x200, 0x7000_1000, 0x7000_2000, W)).unwrap();
    assert_eq!(e.rules(), &[rule(0x200, 0x7000_0000, 0x7000_2000, R | W)]);
    // Different rights do not join.
    e.learn(rule(0x200, 0x7000_2000, 0x7000_3000, R)).unwrap();
    assert_eq!(e.rules().len(), 2);
    // A wider range swallows the rules inside it.
    e.learn(rule(0x200, 0x6fff_f000, 0x7000_4000, R)).unwrap();
    assert_eq!(e.rules(), &[rule(0x200, 0x6fff_f000, 0x7000_4000, R | W)]);
    // A partial overlap is refused and changes nothing.
    let before = e.rules().to_vec();
    assert_eq!(
        e.learn(rule(0x200, 0x7000_3000, 0x7000_5000, R)),
        Err(Error::Exist)
    );
    assert_eq!(e.rules(), &before[..]);
    // Other regions are separate.
    e.learn(rule(0x201, 0x7000_0000, 0x7000_1000, R)).unwrap();
    assert_eq!(e.rules().len(), 2);
}

#[test]
fn learning_stops_when_the_profile_is_full() {
    let mut e = engine();
    for i in 0..MAX_RULES as u64 {
        // Every other page, so that nothing joins.
        e.learn(rule(0x200, i * 2 * P, i * 2 * P + P, R)).unwrap();
    }
    assert_eq!(e.rules().len(), MAX_RULES);
    let before = e.rules().last().copied();
    assert_eq!(
        e.learn(rule(0x200, 0x1_0000_0000, 0x1_0000_1000, R)),
        Err(Error::NoSpc)
    );
    assert_eq!(e.rules().last().copied(), before);
    // In learn mode such an access is denied, not allowed without a rule, and nothing is learned.
    e.set_mode(0, Some(Mode::Learn));
    let o = e.handle(&fault(0, 0x200 * P, 0x1_0000_0008, R));
    assert_eq!(o.decision, Decision::Deny(Deny::Exit));
    assert_eq!((o.learn, o.log), (None, Some(ctl::LOG_DENIED)));
    assert_eq!((e.counters(1).denied, e.counters(1).learned), (1, 0));
    assert_eq!(e.rules().len(), MAX_RULES);
    // A rule that only widens an existing one still fits.
    e.learn(rule(0x200, 0, P, W)).unwrap();
    assert_eq!(e.rules()[0].rights, R | W);
}

// ---- rules trusted on their own ----

/// A helper's page named by an untrusted rule, and one named by a trusted rule, both reading
/// domain 1's region (not touching: nothing joins).
const UNTRUSTED: u64 = 0x7000_0000;
const TRUSTED: u64 = 0x7000_4000;

fn with_both_rules() -> Box<Engine> {
    let mut e = engine();
    e.learn(rule(0x200, UNTRUSTED, UNTRUSTED + P, R)).unwrap();
    e.learn(trusted(0x200, TRUSTED, TRUSTED + P, R)).unwrap();
    e
}

/// "in enforce mode, a rule trusted on its own allows the accessor (the guest RIP) this access:
/// switch to the owner's view and retry": an untrusted rule's accessor is denied from view 0
/// (and from another domain's view) and logged; a trusted one's is switched in. The untrusted
/// rule's code still runs in the owner's view when the owner calls it.
#[test]
fn enforce_switches_only_for_a_rule_trusted_on_its_own() {
    let mut e = with_both_rules();
    e.set_mode(0, Some(Mode::Enforce));
    for view in [0, 2, 9] {
        let f = fault(view, 0x201 * P + 8, UNTRUSTED + 0x10, R);
        assert_eq!(e.handle(&f), denied(&e, 1), "view {view}");
        let f = fault(view, 0x201 * P + 8, TRUSTED + 0x10, R);
        assert_eq!(e.handle(&f), trusted_lens(1), "view {view}");
    }
    assert_eq!((e.counters(1).denied, e.counters(1).allowed), (3, 3));
    // A trusted rule still allows only its rights.
    assert_eq!(e.decide(&fault(0, 0x201 * P, TRUSTED, W)), denied(&e, 1));
    // Both rules' code runs where the owner called it: in a lens, for they give only R over a
    // region the owner may also write.
    for rip in [UNTRUSTED, TRUSTED] {
        assert_eq!(
            e.decide(&fault(1, HELPER_PAGE, rip + 0x10, X)).decision,
            Decision::Narrow(1)
        );
    }
    // A domain's own mode decides: learning, domain 1 lets the untrusted rule in.
    e.set_mode(1, Some(Mode::Learn));
    assert_eq!(
        e.decide(&fault(0, 0x201 * P, UNTRUSTED, R)),
        switch(1, None)
    );
    // Off, everything is switched.
    e.set_mode(1, Some(Mode::Off));
    assert_eq!(
        e.decide(&fault(0, 0x201 * P, FOREIGN + 0x10_0000, R)),
        switch(1, None)
    );
}

/// "In learn mode, any rule that allows it does, and an accessor without one is learned as a
/// rule that is not trusted on its own."
#[test]
fn learn_switches_for_any_rule_and_learns_untrusted_rules() {
    let mut e = with_both_rules();
    e.set_mode(0, Some(Mode::Learn));
    for rip in [UNTRUSTED, TRUSTED] {
        let f = fault(0, 0x202 * P, rip + 0x20, R);
        assert_eq!(e.handle(&f), switch(1, None), "{rip:#x}");
    }
    assert_eq!(e.counters(1).learned, 0);
    // A new accessor (two pages away from both: nothing to join) is learned untrusted.
    let f = fault(0, 0x202 * P, 0x7000_2010, R);
    let o = e.handle(&f);
    assert_eq!(o.decision, Decision::Switch(1));
    assert_eq!(o.log, Some(ctl::LOG_LEARNED));
    assert_eq!(o.learn, Some(rule(0x200, 0x7000_2000, 0x7000_3000, R)));
    assert_eq!(
        e.rules(),
        &[
            rule(0x200, UNTRUSTED, UNTRUSTED + P, R),
            rule(0x200, 0x7000_2000, 0x7000_3000, R),
            trusted(0x200, TRUSTED, TRUSTED + P, R),
        ]
    );
    // Learning what an untrusted rule lacks widens it, untrusted.
    let o = e.handle(&fault(0, 0x202 * P, UNTRUSTED + 0x20, W));
    assert_eq!(o.learn, Some(rule(0x200, UNTRUSTED, UNTRUSTED + P, W)));
    assert_eq!(e.rules()[0], rule(0x200, UNTRUSTED, UNTRUSTED + P, R | W));
    // Enforcing afterwards, only the trusted rule lets code in from view 0.
    e.set_mode(0, Some(Mode::Enforce));
    for (rip, want) in [
        (UNTRUSTED, denied(&e, 1)),
        (0x7000_2000, denied(&e, 1)),
        (TRUSTED, trusted_lens(1)),
    ] {
        assert_eq!(e.decide(&fault(0, 0x202 * P, rip, R)), want, "{rip:#x}");
    }
}

/// "a learned rule that would merge with a trusted one is refused: trust never spreads". Learn
/// mode cannot store the rule, so `handle` denies the access (as one it cannot record) and the
/// profile stays as it was.
#[test]
fn learning_refuses_to_merge_across_trust() {
    let mut e = with_both_rules();
    e.set_mode(0, Some(Mode::Learn));
    let before = e.rules().to_vec();
    // The trusted rule allows reads; a write from its page would widen it.
    let f = fault(0, 0x200 * P, TRUSTED + 0x30, W);
    let o = e.decide(&f);
    assert_eq!(o.decision, Decision::Switch(1));
    assert_eq!(o.learn, Some(rule(0x200, TRUSTED, TRUSTED + P, W)));
    assert_eq!(e.handle(&f), denied(&e, 1));
    assert_eq!(e.rules(), &before[..]);
    assert_eq!((e.counters(1).denied, e.counters(1).learned), (1, 0));
    assert_eq!(e.rules()[1].rights, R);
    // Directly: a rule inside a trusted one, one swallowing it, either trust the other way round.
    for r in [
        rule(0x200, TRUSTED, TRUSTED + P, W),
        rule(0x200, TRUSTED - P, TRUSTED + 2 * P, R),
        trusted(0x200, UNTRUSTED, UNTRUSTED + P, R),
        trusted(0x200, UNTRUSTED - P, UNTRUSTED + P, R),
    ] {
        assert_eq!(e.learn(r), Err(Error::Exist), "{r:?}");
        assert_eq!(e.rules(), &before[..]);
    }
    // Equal trust still merges.
    e.learn(trusted(0x200, TRUSTED, TRUSTED + P, W)).unwrap();
    assert_eq!(e.rules()[1], trusted(0x200, TRUSTED, TRUSTED + P, R | W));
}

/// A learned accessor is a whole code range: a trusted rule for part of a domain's code makes
/// the rest of it unlearnable, as the learned rule would swallow the trusted one.
#[test]
fn a_trusted_rule_inside_a_code_range_refuses_learning_the_range() {
    let mut e = engine();
    e.learn(trusted(0x200, 0x2000_0000, 0x2000_1000, R))
        .unwrap();
    e.set_mode(0, Some(Mode::Learn));
    let before = e.rules().to_vec();
    // Domain 2's second code page reads domain 1's region from view 2.
    let f = fault(2, 0x200 * P, 0x2000_1008, R);
    assert_eq!(
        e.decide(&f).learn,
        Some(rule(0x200, 0x2000_0000, 0x2000_2000, R))
    );
    assert_eq!(e.handle(&f), denied(&e, 1));
    assert_eq!(e.rules(), &before[..]);
    // Its first page, which the trusted rule names, is switched.
    assert_eq!(
        e.handle(&fault(2, 0x200 * P, 0x2000_0008, R)),
        switch(1, None)
    );
}

/// "rules of one region that touch and have the same rights and trust are joined".
#[test]
fn neighbours_are_joined_only_with_equal_trust() {
    let mut e = engine();
    // Touching, equal rights, different trust: two rules, either way round.
    e.learn(trusted(0x200, 0x7000_0000, 0x7000_1000, R))
        .unwrap();
    e.learn(rule(0x200, 0x7000_1000, 0x7000_2000, R)).unwrap();
    e.learn(rule(0x200, 0x6fff_f000, 0x7000_0000, R)).unwrap();
    assert_eq!(
        e.rules(),
        &[
            rule(0x200, 0x6fff_f000, 0x7000_0000, R),
            trusted(0x200, 0x7000_0000, 0x7000_1000, R),
            rule(0x200, 0x7000_1000, 0x7000_2000, R),
        ]
    );
    // Equal trust joins, trusted with trusted and untrusted with untrusted.
    e.learn(trusted(0x200, 0x7000_4000, 0x7000_5000, R))
        .unwrap();
    e.learn(trusted(0x200, 0x7000_5000, 0x7000_6000, R))
        .unwrap();
    e.learn(rule(0x200, 0x7000_2000, 0x7000_3000, R)).unwrap();
    assert_eq!(
        e.rules(),
        &[
            rule(0x200, 0x6fff_f000, 0x7000_0000, R),
            trusted(0x200, 0x7000_0000, 0x7000_1000, R),
            rule(0x200, 0x7000_1000, 0x7000_3000, R),
            trusted(0x200, 0x7000_4000, 0x7000_6000, R),
        ]
    );
    // A rule between an untrusted and a trusted neighbour joins the one trusted like it.
    e.learn(rule(0x200, 0x7000_3000, 0x7000_4000, R)).unwrap();
    assert_eq!(e.rules()[2], rule(0x200, 0x7000_1000, 0x7000_4000, R));
    assert_eq!(e.rules()[3], trusted(0x200, 0x7000_4000, 0x7000_6000, R));
    assert_eq!(e.rules().len(), 4);
}

fn ctl_rule(domain: u32, region_gpa: u64, access: u32, s: u64, e: u64) -> CtlRule {
    CtlRule {
        domain,
        access,
        region_gpa,
        accessor_start: s,
        accessor_end: e,
    }
}

#[test]
fn profile_check_rejects_each_malformed_class() {
    let e = engine();
    let good = ctl_rule(1, 0x200 * P, 1, 0x7000_0000, 0x7000_1000);
    let mut ok = [good, ctl_rule(2, 0x400 * P, 1, 0x7000_0000, 0x7000_1000)];
    assert_eq!(e.check_profile(&mut ok), Ok(()));
    let bad: &[(CtlRule, Error)] = &[
        (CtlRule { domain: 3, ..good }, Error::Inval),
        (
            CtlRule {
                domain: 256,
                ..good
            },
            Error::Inval,
        ),
        (CtlRule { domain: 2, ..good }, Error::NoEnt),
        (
            CtlRule {
                region_gpa: 0x201 * P,
                ..good
            },
            Error::NoEnt,
        ),
        (
            CtlRule {
                region_gpa: 0x200 * P + 8,
                ..good
            },
            Error::Inval,
        ),
        (CtlRule { access: 0, ..good }, Error::Inval),
        (CtlRule { access: 8, ..good }, Error::Inval),
        (CtlRule { access: 4, ..good }, Error::Inval),
        // Trust is no right: a rule needs one of R, W, X besides it.
        (
            CtlRule {
                access: ctl::RULE_TRUSTED,
                ..good
            },
            Error::Inval,
        ),
        // Unknown bits, next to trust or a right.
        (
            CtlRule {
                access: 0x200 | 1,
                ..good
            },
            Error::Inval,
        ),
        (
            CtlRule {
                access: 0x200 | ctl::RULE_TRUSTED | 1,
                ..good
            },
            Error::Inval,
        ),
        // The rights are still bounded by the region's (X on a RW region) with trust.
        (
            CtlRule {
                access: ctl::RULE_TRUSTED | 4,
                ..good
            },
            Error::Inval,
        ),
        (
            CtlRule {
                accessor_start: 0x7000_0001,
                ..good
            },
            Error::Inval,
        ),
        (
            CtlRule {
                accessor_end: 0x7000_0000,
                ..good
            },
            Error::Inval,
        ),
        (
            CtlRule {
                accessor_end: 0x6000_0000,
                ..good
            },
            Error::Inval,
        ),
    ];
    for (r, want) in bad {
        assert_eq!(e.check_profile(&mut [*r]), Err(*want), "{r:?}");
    }
    let mut overlapping = [good, ctl_rule(1, 0x200 * P, 3, 0x6fff_f000, 0x7000_1000)];
    assert_eq!(e.check_profile(&mut overlapping), Err(Error::Exist));
    let mut too_many = vec![good; MAX_RULES + 1];
    assert_eq!(e.check_profile(&mut too_many), Err(Error::NoSpc));
}

#[test]
fn profile_round_trip() {
    let mut e = engine();
    e.learn(rule(0x200, 0x7000_0000, 0x7000_1000, R)).unwrap();
    e.learn(trusted(0x200, 0x7000_4000, 0x7000_5000, R | W))
        .unwrap();
    let mut out: Vec<CtlRule> = e.profile().collect();
    // Trust travels as RULE_TRUSTED in `access`, next to the rights.
    assert_eq!(
        out.iter().map(|x| x.access).collect::<Vec<_>>(),
        [u32::from(R), u32::from(R | W) | ctl::RULE_TRUSTED]
    );
    let mut f = engine();
    f.check_profile(&mut out).unwrap();
    f.set_profile(&out).unwrap();
    assert_eq!(e.rules(), f.rules());
    assert_eq!(f.profile().collect::<Vec<_>>(), out);
    f.set_mode(0, Some(Mode::Enforce));
    assert_eq!(
        f.decide(&fault(0, 0x200 * P, 0x7000_4100, W)).decision,
        Decision::Trusted(1)
    );
    assert_eq!(
        f.decide(&fault(0, 0x200 * P, 0x7000_0100, R)),
        denied(&f, 1)
    );
}

/// `check_profile` takes RULE_TRUSTED next to the rights; `set_profile` and `profile()` carry it
/// both ways, rule by rule.
#[test]
fn profile_carries_trust_both_ways() {
    let e = engine();
    for access in [1, 2, 3] {
        for t in [0, ctl::RULE_TRUSTED] {
            let mut one = [ctl_rule(1, 0x200 * P, access | t, 0x7000_0000, 0x7000_1000)];
            assert_eq!(e.check_profile(&mut one), Ok(()), "{:#x}", access | t);
        }
    }
    let mut p = vec![
        ctl_rule(
            1,
            0x200 * P,
            1 | ctl::RULE_TRUSTED,
            0x7000_0000,
            0x7000_1000,
        ),
        ctl_rule(1, 0x200 * P, 1, 0x7000_1000, 0x7000_2000),
        ctl_rule(
            2,
            0x400 * P,
            1 | ctl::RULE_TRUSTED,
            0x7000_0000,
            0x7000_3000,
        ),
    ];
    let mut f = engine();
    f.check_profile(&mut p).unwrap();
    f.set_profile(&p).unwrap();
    assert_eq!(
        f.rules()
            .iter()
            .map(|x| (x.rights, x.trusted))
            .collect::<Vec<_>>(),
        [(R, true), (R, false), (R, true)]
    );
    assert_eq!(f.profile().collect::<Vec<_>>(), p);
}

fn rec(rip: u64) -> CtlRecord {
    CtlRecord {
        rip,
        ..Default::default()
    }
}

#[test]
fn log_is_bounded_rate_limited_and_exact() {
    let mut l = Box::new(Log::new());
    // A burst at one instant: LOG_BURST records, the rest dropped.
    for i in 0..1000 {
        l.push(rec(i), 1_000_000_000);
    }
    assert_eq!(l.written, LOG_BURST);
    assert_eq!(l.dropped, 1000 - LOG_BURST);
    // 100 ms later: LOG_RATE / 10 more tokens.
    for i in 0..1000 {
        l.push(rec(10_000 + i), 1_100_000_000);
    }
    assert_eq!(l.written, LOG_BURST + LOG_RATE / 10);
    assert_eq!(l.written + l.dropped, 2000);
    assert_eq!(l.compressed, 0);
    // Oldest first; sequence numbers count the records dropped in between.
    let first = l.pop().unwrap();
    let second = l.pop().unwrap();
    assert_eq!((first.seq, second.seq), (0, 1));
    while l.len() > (LOG_RATE / 10) as usize {
        l.pop();
    }
    let after_gap = l.pop().unwrap();
    assert_eq!(after_gap.rip, 10_000);
    assert_eq!(
        after_gap.seq, 1000,
        "the 1000 - LOG_BURST dropped records are the gap"
    );
    assert_eq!(l.len() as u64, l.written - LOG_BURST - 1);
    // Never more than LOG_RECORDS wait, whatever the time.
    let mut t = 2_000_000_000u64;
    for i in 0..100_000 {
        t += 10_000_000;
        l.push(rec(100_000 + i), t);
        assert!(l.len() <= LOG_RECORDS);
    }
    assert_eq!(l.len(), LOG_RECORDS);
    assert_eq!(l.written + l.dropped, 102_000);
    // Time going backwards adds nothing.
    let d = l.dropped;
    while l.pop().is_some() {}
    for i in 0..LOG_BURST * 2 {
        l.push(rec(1_000_000 + i), 5);
    }
    assert!(l.dropped >= d + LOG_BURST);
    assert_eq!(l.compressed, 0);
}

#[test]
fn sub_millisecond_calls_still_earn_tokens() {
    let mut l = Box::new(Log::new());
    let mut t = 0;
    for i in 0..LOG_BURST {
        assert_eq!(l.push(rec(i), t), Pushed::Stored);
    }
    assert_eq!(l.push(rec(LOG_BURST), t), Pushed::Dropped);
    // 10 s in steps of 0.1 ms: LOG_RATE * 10 tokens.
    let mut ok = 0;
    for i in 0..100_000 {
        t += 100_000;
        if l.push(rec(1000 + i), t) == Pushed::Stored {
            ok += 1;
        }
        if l.len() == LOG_RECORDS {
            while l.pop().is_some() {}
        }
    }
    assert!((LOG_RATE * 10 - 1..=LOG_RATE * 10).contains(&ok), "{ok}");
}

/// A denial by `rip` of the page `gpa`, at `now`.
fn denial(rip: u64, gpa: u64, now: u64) -> CtlRecord {
    CtlRecord {
        time_ns: now,
        rip,
        gva: ctl::GVA_UNKNOWN,
        gpa,
        vm: 3,
        vcpu: 1,
        view: 0,
        domain: 1,
        access: u32::from(R),
        verdict: ctl::LOG_DENIED,
        ..Default::default()
    }
}

/// Issue 9 item 10: a flood of one violation compresses into one record and blinds nothing.
#[test]
fn identical_denials_are_one_record_and_hide_nothing() {
    let mut l = Box::new(Log::new());
    let t0 = 7_000_000_000u64;
    // 20,000 identical denials within 0.2 ms (no token comes back meanwhile). The linear address
    // and the offset in the page are not part of the key: the first ones are kept.
    for i in 0..20_000u64 {
        let mut r = denial(0x40_1000, 0x13_1000 + (i % 8) * 8, t0 + i * 10);
        r.gva = 0xffff_8880_0013_1000 + (i % 8) * 8;
        let want = if i == 0 {
            Pushed::Stored
        } else {
            Pushed::Compressed
        };
        assert_eq!(l.push(r, r.time_ns), want, "{i}");
    }
    let t1 = t0 + 19_999 * 10;
    // Then a distinct one: another RIP.
    let other = denial(0x40_6000, 0x13_1000, t1 + 5);
    assert_eq!(l.push(other, other.time_ns), Pushed::Stored);
    assert_eq!((l.written, l.dropped, l.compressed), (2, 0, 19_999));
    // The repeats took no token: the rest of the burst is still there.
    for i in 0..LOG_BURST - 2 {
        assert_eq!(
            l.push(denial(0x50_0000 + i, 0, t1 + 6), t1 + 6),
            Pushed::Stored
        );
    }
    assert_eq!(
        l.push(denial(0x60_0000, 0, t1 + 7), t1 + 7),
        Pushed::Dropped
    );

    let flood = l.pop().unwrap();
    assert_eq!(flood.seq, 0);
    assert_eq!(flood.count, 20_000);
    assert_eq!((flood.time_ns, flood.last_ns), (t0, t1));
    assert_eq!((flood.gpa, flood.gva), (0x13_1000, 0xffff_8880_0013_1000));
    let next = l.pop().unwrap();
    assert_eq!((next.seq, next.rip, next.count), (1, 0x40_6000, 1));
    assert_eq!((next.time_ns, next.last_ns), (t1 + 5, t1 + 5));
}

/// The same after 100,000 repeats, with the ring full and no token left: a repeat still counts,
/// a distinct record is dropped and counted, and once read, a repeat starts a new record.
#[test]
fn repeats_count_when_the_ring_is_full_and_restart_once_read() {
    let mut l = Box::new(Log::new());
    // Fill the ring: a token per millisecond.
    let mut t = 1_000_000_000u64;
    for i in 0..LOG_RECORDS as u64 {
        t += 1_000_000;
        assert_eq!(l.push(denial(0x1000 * i, 0, t), t), Pushed::Stored);
    }
    let last = denial(0x1000 * (LOG_RECORDS as u64 - 1), 0, t);
    for _ in 0..100_000 {
        t += 1_000_000;
        assert_eq!(
            l.push(CtlRecord { time_ns: t, ..last }, t),
            Pushed::Compressed
        );
    }
    assert_eq!(l.push(denial(0x7777_0000, 0, t), t), Pushed::Dropped);
    assert_eq!((l.written, l.dropped, l.compressed), (1024, 1, 100_000));
    while l.len() > 1 {
        l.pop();
    }
    let r = l.pop().unwrap();
    assert_eq!((r.rip, r.count, r.last_ns), (last.rip, 100_001, t));
    // Read: the next repeat is a new record, numbered after the dropped one.
    t += 1_000_000;
    assert_eq!(l.push(CtlRecord { time_ns: t, ..last }, t), Pushed::Stored);
    let again = l.pop().unwrap();
    assert_eq!((again.seq, again.count, again.time_ns), (1025, 1, t));
}

/// A small deterministic generator for the attack orders.
fn lcg(x: &mut u64) -> u64 {
    *x = x
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    *x >> 33
}

/// The guarantee: violations cycling among K <= LOG_WINDOW keys, in any order and however often,
/// make K records and use K tokens; a distinct denial after them is stored. The worst case for
/// the rate limit: all at one instant, so no token comes back.
#[test]
fn cycling_through_the_window_does_not_blind_the_log() {
    for k in [2u64, 7, LOG_WINDOW as u64] {
        for order in ["round robin", "random"] {
            let mut l = Box::new(Log::new());
            let mut x = k;
            let now = 42;
            for i in 0..100_000u64 {
                let key = if order == "round robin" {
                    i % k
                } else {
                    lcg(&mut x) % k
                };
                // Keys that differ in one field each: RIP, page, vCPU, access, verdict.
                let mut r = denial(0x40_0000 + (key % 3) * 0x1000, (key / 3) * 0x1000, now);
                r.vcpu = (key % 2) as u32;
                r.access = if key % 5 == 0 { 2 } else { 1 };
                l.push(r, now);
            }
            let seen = l.written;
            assert!(seen <= k, "{order} among {k}: {seen} records");
            assert_eq!(l.dropped, 0, "{order} among {k}");
            assert_eq!(l.compressed, 100_000 - seen);
            let new = denial(0x66_6000, 0x13_1000, now);
            assert_eq!(l.push(new, now), Pushed::Stored, "{order} among {k}");
            let counts: u64 = core::iter::from_fn(|| l.pop()).map(|r| r.count).sum();
            assert_eq!(counts, 100_001);
        }
    }
}

/// The limit of the guarantee, stated in the docs: a round robin over more keys than the window
/// holds misses every time while it has tokens (least recently used goes first), so at one
/// instant it uses up the burst, and a distinct denial right after it is dropped (and counted).
/// Once no token is left, the window stays as it is (a dropped record takes no entry), and the
/// keys in it compress again.
#[test]
fn cycling_through_more_keys_than_the_window_is_rate_limited() {
    let mut l = Box::new(Log::new());
    let k = LOG_WINDOW as u64 + 1;
    for i in 0..LOG_BURST {
        assert_eq!(
            l.push(denial(0x40_0000 + (i % k) * 0x1000, 0, 42), 42),
            Pushed::Stored
        );
    }
    for i in LOG_BURST..100_000u64 {
        l.push(denial(0x40_0000 + (i % k) * 0x1000, 0, 42), 42);
    }
    assert_eq!(l.written, LOG_BURST);
    assert_eq!(l.written + l.dropped + l.compressed, 100_000);
    // One key in k is out of the window: dropped once per round.
    assert!((100_000 - LOG_BURST) / k <= l.dropped && l.dropped <= (100_000 - LOG_BURST) / k + 1);
    assert_eq!(l.push(denial(0x66_6000, 0, 42), 42), Pushed::Dropped);
    // A second later, it is stored again (if the flood has paused for it).
    assert_eq!(
        l.push(denial(0x66_6000, 0, 1_000_000_042), 1_000_000_042),
        Pushed::Stored
    );
}

/// Records of other keys evict the least recently used entry only: a cycle over
/// K < LOG_WINDOW keys keeps compressing while other violations are logged in between.
#[test]
fn other_records_do_not_evict_an_active_cycle() {
    let mut l = Box::new(Log::new());
    let k = LOG_WINDOW as u64 - 1;
    let mut t = 0;
    for i in 0..50_000u64 {
        t += 10_000;
        l.push(denial(0x40_0000 + (i % k) * 0x1000, 0, t), t);
        if i % 100 == 99 {
            // Now and then a distinct violation (tokens come back meanwhile).
            assert_eq!(l.push(denial(0x90_0000 + i, 0, t), t), Pushed::Stored);
        }
    }
    // 500 distinct ones, and the cycle's 63 keys once each: 50,000 violations in 563 records.
    assert_eq!((l.written, l.dropped), (500 + k, 0));
    assert_eq!(l.compressed, 50_000 - k);
    // Every key of the cycle is in one record.
    let mut cycle: Vec<u64> = core::iter::from_fn(|| l.pop())
        .filter(|r| r.rip < 0x90_0000)
        .map(|r| r.rip)
        .collect();
    cycle.sort_unstable();
    cycle.dedup();
    assert_eq!(cycle.len() as u64, k);
}

// ---- entry gates ----

/// An entry point of domain 1 (page 0 of its code).
const ENTRY: u64 = 0x1000_0040;
/// An instruction of domain 1 that is no entry point.
const MIDDLE: u64 = 0x1000_0800;
/// The instruction after a call in domain 1 (page 1 of its code).
const SITE: u64 = 0x1000_1010;
/// A return address in the kernel, outside every domain.
const CALLER: u64 = 0x7000_0500;
/// A kernel helper's page: no region, no code.
const HELPER_PAGE: u64 = 0x77 * P;

/// Where domain 1's instruction at `gva` is, worked out by hand through its code range (gva
/// 0x1000_0000 at gfn 0x100).
fn gpa1(gva: u64) -> u64 {
    0x100 * P + (gva - 0x1000_0000)
}

/// Domain 1's location at `gva`.
fn gate1(gva: u64) -> Gate {
    Gate {
        gpa: gpa1(gva),
        gva,
        domain: 1,
    }
}

/// An instruction fetch of `gva` (at `gpa`) in `view`, with that stack.
fn fetch(view: u8, gva: u64, gpa: u64, stack: Option<Stack>) -> Fault {
    Fault {
        view,
        gpa,
        rip: gva,
        access: X,
        stack,
    }
}

/// The stack right after a `call` (or an event without error code) that will return to `ret`.
fn called_from(ret: u64) -> Option<Stack> {
    Some(Stack { event: None,
        below: 0x1234,
        top: ret,
    })
}

/// Domain 1 calls a kernel helper (its first fetch leaves view 1), to return to `ret`.
fn call_out(ret: u64) -> Fault {
    fetch(1, FOREIGN, HELPER_PAGE + 0x123, called_from(ret))
}

/// `engine()` in enforce mode with `ENTRY` registered as the guest would.
fn gated() -> Box<Engine> {
    let mut e = engine();
    e.set_mode(0, Some(Mode::Enforce));
    let g = e.check_entry(1, ENTRY, true).unwrap();
    e.add_entry(g).unwrap();
    e
}

fn switch(d: u8, gate: Option<GateOp>) -> Outcome {
    Outcome {
        decision: Decision::Switch(d),
        domain: d,
        learn: None,
        gate,
        log: None,
    }
}

/// A rule trusted on its own lets its accessor at domain `d`'s region in: to its trusted lens.
fn trusted_lens(d: u8) -> Outcome {
    Outcome {
        decision: Decision::Trusted(d),
        ..switch(d, None)
    }
}

fn denied(e: &Engine, d: u8) -> Outcome {
    Outcome {
        decision: Decision::Deny(e.deny()),
        domain: d,
        learn: None,
        gate: None,
        log: Some(ctl::LOG_DENIED),
    }
}

#[test]
fn an_entry_point_called_from_outside_switches_into_the_domain() {
    let mut e = gated();
    // The entry point is where its gva lies behind the code range.
    assert_eq!(e.entries(), &[gate1(ENTRY)]);
    assert!(e.is_entry(&gate1(ENTRY)));
    let call = fetch(0, ENTRY, gpa1(ENTRY), called_from(CALLER));
    assert_eq!(e.handle(&call), switch(1, None));
    assert_eq!(e.counters(1).allowed, 1);
    // Nothing is used up: an entry point serves every call, from any view of no domain (the
    // guest's own views are like view 0), whoever called (another domain's code is outside
    // domain 1 too).
    assert_eq!(e.handle(&call), switch(1, None));
    assert_eq!(e.decide(&Fault { view: 5, ..call }), switch(1, None));
    let from_2 = fetch(0, ENTRY, gpa1(ENTRY), called_from(0x2000_0100));
    assert_eq!(e.decide(&from_2), switch(1, None));
    // Both the physical location and the RIP must match: the entry's page mapped at another
    // address, or another page of domain 1 mapped at the entry's address, is no entry.
    let alias = fetch(0, 0x5000_0040, gpa1(ENTRY), called_from(CALLER));
    assert_eq!(e.decide(&alias), denied(&e, 1));
    let moved = fetch(0, ENTRY, gpa1(ENTRY) + P, called_from(CALLER));
    assert_eq!(e.decide(&moved), denied(&e, 1));
    assert_eq!(e.counters(1).allowed, 2);
}

#[test]
fn a_call_into_the_middle_of_a_domain_is_denied_and_logged() {
    let mut e = gated();
    e.set_deny(Deny::Gp);
    let f = fetch(0, MIDDLE, gpa1(MIDDLE), called_from(CALLER));
    let o = e.handle(&f);
    assert_eq!(o, denied(&e, 1));
    assert_eq!(o.decision, Decision::Deny(Deny::Gp));
    assert_eq!((e.counters(1).denied, e.counters(1).allowed), (1, 0));
    assert_eq!(e.violations, 1);
    // The kernel logs the outcome with the fault's RIP (kvm_isolate.rs, `violation`).
    let rec = CtlRecord {
        rip: f.rip,
        gpa: f.gpa,
        domain: u32::from(o.domain),
        access: u32::from(X),
        verdict: o.log.unwrap(),
        ..Default::default()
    };
    e.log.push(rec, 1);
    let got = e.log.pop().unwrap();
    assert_eq!(
        (got.rip, got.verdict, got.domain),
        (MIDDLE, ctl::LOG_DENIED, 1)
    );
    // A jump (the stack says nothing), and a `ret` with a forged address (the word below RSP is
    // the address it returned to), are denied alike.
    let jmp = fetch(0, MIDDLE, gpa1(MIDDLE), None);
    assert_eq!(e.decide(&jmp), denied(&e, 1));
    let ret = fetch(
        0,
        MIDDLE,
        gpa1(MIDDLE),
        Some(Stack { event: None,
            below: MIDDLE,
            top: CALLER,
        }),
    );
    assert_eq!(e.decide(&ret), denied(&e, 1));
    // Nor does a fetch through another view of no domain get further.
    assert_eq!(e.decide(&Fault { view: 9, ..f }), denied(&e, 1));
}

#[test]
fn an_entry_whose_return_address_is_in_the_domain_is_denied_unless_it_is_pending() {
    let mut e = gated();
    // `ret` would resume domain 1 at SITE, inside view 1, wherever the caller chose.
    let inside = fetch(0, ENTRY, gpa1(ENTRY), called_from(SITE));
    assert_eq!(e.handle(&inside), denied(&e, 1));
    // A stack KVM could not read cannot show the return address outside the domain.
    assert_eq!(e.decide(&fetch(0, ENTRY, gpa1(ENTRY), None)), denied(&e, 1));
    // Domain 1 calls out with SITE as its return address, and the call comes back in through
    // the entry point (a callback): its `ret` will resume SITE in view 1, and uses it up.
    assert_eq!(
        e.handle(&call_out(SITE)).gate,
        Some(GateOp::Called(gate1(SITE)))
    );
    assert_eq!(e.pending(&gate1(SITE)), 1);
    assert_eq!(
        e.handle(&inside),
        switch(1, Some(GateOp::Returned(gate1(SITE))))
    );
    assert_eq!((e.pending(&gate1(SITE)), e.return_sites()), (0, 0));
    // Used up: the same again is denied, and so is a return to SITE itself.
    assert_eq!(e.handle(&inside), denied(&e, 1));
    let back = fetch(0, SITE, gpa1(SITE), None);
    assert_eq!(e.decide(&back), denied(&e, 1));
}

#[test]
fn a_call_out_records_a_return_site_and_a_ret_or_tail_call_records_nothing() {
    let mut e = gated();
    let out = call_out(SITE);
    // Worked out through the code range: SITE is on the range's second page, gfn 0x101.
    let site = Gate {
        gpa: 0x101 * P + 0x10,
        gva: SITE,
        domain: 1,
    };
    let want = Outcome {
        decision: Decision::Leave,
        domain: 1,
        learn: None,
        gate: Some(GateOp::Called(site)),
        log: None,
    };
    assert_eq!(e.handle(&out), want);
    assert_eq!(e.counters(1).left, 1);
    assert_eq!((e.pending(&site), e.return_sites()), (1, 1));
    // A second call pending there (another task): one site, counted twice.
    assert_eq!(e.handle(&out), want);
    assert_eq!((e.pending(&site), e.return_sites()), (2, 1));
    let leave = |stack| Outcome { gate: None, ..want }.eq(&e.decide(&Fault { stack, ..out }));
    // A `ret` out of the domain: the word below RSP is the address it returned to.
    assert!(leave(Some(Stack { event: None,
        below: FOREIGN,
        top: SITE,
    })));
    // A tail call: the word at RSP is the domain's caller's return address, outside it.
    assert!(leave(called_from(CALLER)));
    // Another domain's code is not domain 1's return site; an unknown stack tells nothing.
    assert!(leave(called_from(0x2000_1010)));
    assert!(leave(None));
    // An exception with an error code inside domain 1: RSP holds the error code, so the
    // interrupted instruction is not recorded, and resuming there is denied.
    assert!(leave(Some(Stack { event: None,
        below: MIDDLE,
        top: 0,
    })));
    assert_eq!(
        e.decide(&fetch(0, MIDDLE, gpa1(MIDDLE), None)),
        denied(&e, 1)
    );
    // ... while an interrupt without one records the interrupted RIP like a call.
    let irq = Fault {
        stack: Some(Stack { event: None,
            below: 0x10,
            top: MIDDLE,
        }),
        ..out
    };
    assert_eq!(e.decide(&irq).gate, Some(GateOp::Called(gate1(MIDDLE))));
    assert_eq!(e.pending(&site), 2);
    // Leaving from domain 2's view records domain 2's sites only.
    let out2 = fetch(2, FOREIGN, HELPER_PAGE, called_from(0x2000_1010));
    assert_eq!(
        e.decide(&out2).gate,
        Some(GateOp::Called(Gate {
            gpa: 0x301 * P + 0x10,
            gva: 0x2000_1010,
            domain: 2
        }))
    );
    assert_eq!(
        e.decide(&fetch(2, FOREIGN, HELPER_PAGE, called_from(SITE)))
            .gate,
        None
    );
}

#[test]
fn a_return_site_lets_the_domain_resume_there_once() {
    let mut e = gated();
    e.handle(&call_out(SITE));
    // The helper's `ret`: the word below RSP is SITE.
    let back = fetch(
        0,
        SITE,
        gpa1(SITE),
        Some(Stack { event: None,
            below: SITE,
            top: CALLER,
        }),
    );
    assert_eq!(
        e.handle(&back),
        switch(1, Some(GateOp::Returned(gate1(SITE))))
    );
    assert_eq!((e.pending(&gate1(SITE)), e.return_sites()), (0, 0));
    // Once only.
    assert_eq!(e.handle(&back), denied(&e, 1));
    assert_eq!(e.counters(1).denied, 1);
    // Two calls pending there (two tasks asleep in the helper): two returns, from any vCPU
    // (the sites are the VM's), then no more.
    e.handle(&call_out(SITE));
    e.handle(&call_out(SITE));
    assert_eq!(e.pending(&gate1(SITE)), 2);
    assert_eq!(e.handle(&back).decision, Decision::Switch(1));
    assert_eq!(e.handle(&back).decision, Decision::Switch(1));
    assert_eq!(e.handle(&back), denied(&e, 1));
    // Both must match: the site's page mapped at another address does not use it.
    e.handle(&call_out(SITE));
    let alias = fetch(0, 0x5000_1010, gpa1(SITE), None);
    assert_eq!(e.handle(&alias), denied(&e, 1));
    assert_eq!(e.pending(&gate1(SITE)), 1);
    // A return site is no entry point: after use, learn mode learns it like any other location.
    assert_eq!(e.handle(&back).decision, Decision::Switch(1));
    e.set_mode(0, Some(Mode::Learn));
    assert_eq!(
        e.decide(&back),
        Outcome {
            gate: Some(GateOp::Learn(gate1(SITE))),
            log: Some(ctl::LOG_LEARNED),
            ..switch(1, None)
        }
    );
}

#[test]
fn learn_mode_learns_entry_points_and_enforce_allows_them() {
    let mut e = engine();
    e.set_mode(0, Some(Mode::Learn));
    let f = fetch(0, MIDDLE, gpa1(MIDDLE), called_from(CALLER));
    let o = e.handle(&f);
    assert_eq!(
        o,
        Outcome {
            gate: Some(GateOp::Learn(gate1(MIDDLE))),
            log: Some(ctl::LOG_LEARNED),
            ..switch(1, None)
        }
    );
    assert_eq!((e.counters(1).learned, e.counters(1).allowed), (1, 1));
    assert_eq!(e.entries(), &[gate1(MIDDLE)]);
    // Known now: nothing more to learn or log.
    assert_eq!(e.handle(&f), switch(1, None));
    assert_eq!(e.counters(1).learned, 1);
    e.set_mode(0, Some(Mode::Enforce));
    assert_eq!(e.handle(&f), switch(1, None));
    let other = fetch(0, MIDDLE + 8, gpa1(MIDDLE + 8), called_from(CALLER));
    assert_eq!(e.decide(&other), denied(&e, 1));
    // A domain's own mode decides: domain 2 learns in an enforcing VM.
    e.set_mode(2, Some(Mode::Learn));
    let d2 = fetch(0, 0x2000_0800, 0x300 * P + 0x800, called_from(CALLER));
    let o = e.handle(&d2);
    assert_eq!(o.decision, Decision::Switch(2));
    assert!(matches!(o.gate, Some(GateOp::Learn(g)) if g.domain == 2 && g.gva == 0x2000_0800));
    assert_eq!(e.counters(2).learned, 1);
    assert_eq!(e.entries().len(), 2);
}

#[test]
fn off_mode_decides_no_gate() {
    // Unprotected, the domain's code is executable in view 0: a fetch fault there raced the
    // change of mode, and is retried in the domain's view without recording anything.
    let mut e = engine();
    let f = fetch(0, MIDDLE, gpa1(MIDDLE), called_from(SITE));
    assert_eq!(e.handle(&f), switch(1, None));
    assert!(e.entries().is_empty());
    assert_eq!(e.counters(1).learned, 0);
}

#[test]
fn check_entry_refuses_each_bad_request() {
    let mut e = engine();
    assert_eq!(e.check_entry(9, ENTRY, false), Err(Error::NoEnt));
    assert_eq!(e.check_entry(0, ENTRY, false), Err(Error::NoEnt));
    // Outside the domain's code: past its end, before it, in another domain's code.
    assert_eq!(e.check_entry(1, 0x1000_2000, false), Err(Error::Range));
    assert_eq!(e.check_entry(1, 0x0fff_fff0, false), Err(Error::Range));
    assert_eq!(e.check_entry(1, 0x2000_0040, false), Err(Error::Range));
    assert_eq!(e.check_entry(2, ENTRY, false), Err(Error::Range));
    // The gate is worked out through the code range.
    assert_eq!(e.check_entry(1, SITE, true), Ok(gate1(SITE)));
    assert_eq!(
        e.check_entry(1, 0x1000_1fff, true).map(|g| g.gpa),
        Ok(0x101 * P + 0xfff)
    );
    // Locked: not the guest, only the host.
    e.set_locked(true);
    assert_eq!(e.check_entry(1, ENTRY, true), Err(Error::Perm));
    let g = e.check_entry(1, ENTRY, false).unwrap();
    e.add_entry(g).unwrap();
    e.set_locked(false);
    // Twice.
    assert_eq!(e.check_entry(1, ENTRY, true), Err(Error::Exist));
    assert_eq!(e.add_entry(g), Err(Error::Exist));
    assert_eq!(e.entries(), &[g]);
    // Full: MAX_ENTRIES, all domains together.
    let mut gva = 0x1000_0000;
    while e.entries().len() < MAX_ENTRIES {
        if let Ok(g) = e.check_entry(1, gva, true) {
            e.add_entry(g).unwrap();
        }
        gva += 4;
    }
    assert_eq!(e.check_entry(2, 0x2000_0000, true), Err(Error::NoSpc));
    assert_eq!(e.add_entry(gate1(0x1000_1ffc)), Err(Error::NoSpc));
    assert!(e.entries().windows(2).all(|w| w[0] < w[1]));
    // Learn mode cannot store another: the entry is denied, nothing learned.
    e.set_mode(0, Some(Mode::Learn));
    let f = fetch(0, 0x1000_1ffc, gpa1(0x1000_1ffc), called_from(CALLER));
    assert!(matches!(e.decide(&f).gate, Some(GateOp::Learn(_))));
    assert_eq!(e.handle(&f), denied(&e, 1));
    assert_eq!((e.counters(1).learned, e.entries().len()), (0, MAX_ENTRIES));
}

#[test]
fn destroying_a_domain_drops_its_entry_points_and_return_sites() {
    let mut e = gated();
    let g2 = e.check_entry(2, 0x2000_0040, true).unwrap();
    e.add_entry(g2).unwrap();
    e.handle(&call_out(SITE));
    let site2 = e.gate_at(2, 0x2000_1010).unwrap();
    e.handle(&fetch(2, FOREIGN, HELPER_PAGE, called_from(0x2000_1010)));
    assert_eq!((e.entries().len(), e.return_sites()), (2, 2));
    e.destroy_domain(1);
    assert_eq!(e.entries(), &[g2]);
    assert_eq!((e.pending(&gate1(SITE)), e.pending(&site2)), (0, 1));
    assert_eq!(e.return_sites(), 1);
    // A new domain 1 over the same code starts with no entry point and no return site.
    e.create_domain(1).unwrap();
    let c = Code {
        start: 0x1000_0000,
        end: 0x1000_2000,
        gfn: 0x100,
        npages: 2,
        domain: 1,
    };
    e.check_code(1, &c, true).unwrap();
    e.add_code(c).unwrap();
    assert!(!e.is_entry(&gate1(ENTRY)));
    let call = fetch(0, ENTRY, gpa1(ENTRY), called_from(CALLER));
    assert_eq!(e.decide(&call), denied(&e, 1));
    assert_eq!(e.decide(&fetch(0, SITE, gpa1(SITE), None)), denied(&e, 1));
}

// ---- entry points in profiles ----

fn ctl_entry(domain: u32, gva: u64, gpa: u64) -> CtlEntry {
    CtlEntry {
        domain,
        pad: 0,
        gva,
        gpa,
    }
}

/// What `KVM_ISOLATE_CTL_ENTRIES_SET` does with the entries (kvm-isolate/control.rs).
fn import_entries(e: &mut Engine, entries: &[CtlEntry]) -> Result<(), Error> {
    let mut v = entries.to_vec();
    e.check_entries(&mut v)?;
    e.set_entries(&v)
}

#[test]
fn check_entries_refuses_each_bad_class_and_a_refused_set_changes_nothing() {
    let mut e = gated();
    let g2 = e.check_entry(2, 0x2000_0040, true).unwrap();
    e.add_entry(g2).unwrap();
    let before = e.entries().to_vec();
    let good = ctl_entry(1, SITE, gpa1(SITE));
    let good2 = ctl_entry(2, 0x2000_0800, 0x300 * P + 0x800);
    // Accepted, and sorted by location like the engine's table (domain 1's code is below 2's).
    let mut ok = [good2, good];
    assert_eq!(e.check_entries(&mut ok), Ok(()));
    assert_eq!(ok, [good, good2]);
    // Domain 2's code maps its gva at gfn 0x300: the same gva at another page is another layout.
    let mut other = wide_engine();
    other.create_domain(2).unwrap();
    let c = Code {
        start: 0x2000_0000,
        end: 0x2000_2000,
        gfn: 0x500,
        npages: 2,
        domain: 2,
    };
    other.check_code(2, &c, false).unwrap();
    other.add_code(c).unwrap();
    let g = other.check_entry(2, 0x2000_0800, false).unwrap();
    other.add_entry(g).unwrap();
    let foreign: Vec<CtlEntry> = other.entry_list().collect();
    assert_eq!(foreign, [ctl_entry(2, 0x2000_0800, 0x500 * P + 0x800)]);
    let bad: &[(CtlEntry, Error)] = &[
        // Not a domain: none, 0, beyond 15, and numbers that only a `u8` cast would take for 1.
        (CtlEntry { domain: 3, ..good }, Error::Inval),
        (CtlEntry { domain: 0, ..good }, Error::Inval),
        (CtlEntry { domain: 16, ..good }, Error::Inval),
        (
            CtlEntry {
                domain: 257,
                ..good
            },
            Error::Inval,
        ),
        (
            CtlEntry {
                domain: u32::MAX,
                ..good
            },
            Error::Inval,
        ),
        (CtlEntry { pad: 1, ..good }, Error::Inval),
        (
            CtlEntry {
                pad: 0x8000_0000,
                ..good
            },
            Error::Inval,
        ),
        // Not in the domain's code: past its end, before it, in the other domain's code.
        (ctl_entry(1, 0x1000_2000, gpa1(0x1000_2000)), Error::NoEnt),
        (ctl_entry(1, 0x0fff_fff0, 0x100 * P - 0x10), Error::NoEnt),
        (ctl_entry(1, 0x2000_0800, 0x300 * P + 0x800), Error::NoEnt),
        (ctl_entry(2, SITE, gpa1(SITE)), Error::NoEnt),
        // In the code, but not where the code maps it: another page, another byte, no gpa.
        (
            CtlEntry {
                gpa: gpa1(SITE) + P,
                ..good
            },
            Error::NoEnt,
        ),
        (
            CtlEntry {
                gpa: gpa1(SITE) - P,
                ..good
            },
            Error::NoEnt,
        ),
        (
            CtlEntry {
                gpa: gpa1(SITE) + 1,
                ..good
            },
            Error::NoEnt,
        ),
        (CtlEntry { gpa: 0, ..good }, Error::NoEnt),
        (foreign[0], Error::NoEnt),
    ];
    for (x, want) in bad {
        // Alone, and next to good ones (before and after it): the whole set is refused.
        for mut set in [vec![*x], vec![good, *x], vec![*x, good2]] {
            assert_eq!(e.check_entries(&mut set), Err(*want), "{x:?}");
            assert_eq!(import_entries(&mut e, &set), Err(*want), "{x:?}");
            assert_eq!(e.entries(), before.as_slice(), "{x:?}");
        }
    }
    // Twice the same, wherever in the set; one gva at two gpas is not a duplicate but a bad gpa.
    let mut dup = [good, good2, good];
    assert_eq!(e.check_entries(&mut dup), Err(Error::Exist));
    assert_eq!(import_entries(&mut e, &dup), Err(Error::Exist));
    let mut two_gpas = [
        good,
        CtlEntry {
            gpa: good.gpa + P,
            ..good
        },
    ];
    assert_eq!(e.check_entries(&mut two_gpas), Err(Error::NoEnt));
    // More than MAX_ENTRIES: refused before anything else (these would be duplicates).
    let mut too_many = vec![good; MAX_ENTRIES + 1];
    assert_eq!(e.check_entries(&mut too_many), Err(Error::NoSpc));
    assert_eq!(import_entries(&mut e, &too_many), Err(Error::NoSpc));
    assert_eq!(e.entries(), before.as_slice());
    // Nothing refused touched the gates: the registered entry point still switches, SITE does not.
    let call = fetch(0, ENTRY, gpa1(ENTRY), called_from(CALLER));
    assert_eq!(e.decide(&call), switch(1, None));
    let site = fetch(0, SITE, gpa1(SITE), called_from(CALLER));
    assert_eq!(e.decide(&site), denied(&e, 1));
    // Exactly MAX_ENTRIES is a whole table: domain 1's two pages hold 2048 gvas 4 bytes apart.
    let full: Vec<CtlEntry> = (0..MAX_ENTRIES as u64)
        .map(|i| 0x1000_0000 + i * 4)
        .map(|gva| ctl_entry(1, gva, gpa1(gva)))
        .collect();
    assert_eq!(import_entries(&mut e, &full), Ok(()));
    assert_eq!(e.entries().len(), MAX_ENTRIES);
    assert_eq!(e.entry_list().collect::<Vec<_>>(), full);
}

/// Registered and learned entry points come out of `entry_list` alike, and go into another VM of
/// the same layout as they were: `check_entries` sorts them as the engine does.
#[test]
fn entry_list_round_trips_registered_and_learned_entry_points() {
    let mut e = engine();
    // Registered by the guest (domains 1 and 2), then learned (domains 1 and 2).
    for (d, gva) in [(1, ENTRY), (2, 0x2000_0040)] {
        let g = e.check_entry(d, gva, true).unwrap();
        e.add_entry(g).unwrap();
    }
    e.set_mode(0, Some(Mode::Learn));
    for f in [
        fetch(0, MIDDLE, gpa1(MIDDLE), called_from(CALLER)),
        fetch(0, 0x2000_1ffc, 0x301 * P + 0xffc, called_from(CALLER)),
    ] {
        assert!(matches!(e.handle(&f).gate, Some(GateOp::Learn(_))));
    }
    assert_eq!(e.counters(1).learned + e.counters(2).learned, 2);
    let list: Vec<CtlEntry> = e.entry_list().collect();
    assert_eq!(
        list,
        [
            ctl_entry(1, ENTRY, gpa1(ENTRY)),
            ctl_entry(1, MIDDLE, gpa1(MIDDLE)),
            ctl_entry(2, 0x2000_0040, 0x300 * P + 0x40),
            ctl_entry(2, 0x2000_1ffc, 0x301 * P + 0xffc),
        ]
    );
    // The table's own order (by gpa), one entry per gate.
    assert_eq!(
        list.iter()
            .map(|x| Gate {
                gpa: x.gpa,
                gva: x.gva,
                domain: x.domain as u8,
            })
            .collect::<Vec<_>>(),
        e.entries()
    );
    // Into a VM of the same layout, in any order; it had an entry point of its own, which goes.
    let mut f = gated();
    let g = f.check_entry(1, SITE, true).unwrap();
    f.add_entry(g).unwrap();
    let mut shuffled = list.clone();
    shuffled.reverse();
    shuffled.swap(0, 2);
    f.check_entries(&mut shuffled).unwrap();
    assert_eq!(shuffled, list);
    f.set_entries(&shuffled).unwrap();
    assert_eq!(f.entries(), e.entries());
    assert_eq!(f.entry_list().collect::<Vec<_>>(), list);
    assert!(!f.is_entry(&gate1(SITE)));
    // And back out, unchanged; an empty set clears the table.
    let mut again: Vec<CtlEntry> = f.entry_list().collect();
    assert_eq!(import_entries(&mut e, &again), Ok(()));
    assert_eq!(e.entry_list().collect::<Vec<_>>(), list);
    again.clear();
    assert_eq!(import_entries(&mut f, &again), Ok(()));
    assert!(f.entries().is_empty() && f.entry_list().next().is_none());
}

/// Enforcing, entry points set from another VM's list are the only ones: calls there switch into
/// the domain, calls at the old ones are denied; calls out still pending may return.
#[test]
fn imported_entry_points_switch_and_the_old_ones_are_gone() {
    // Learned in one VM...
    let mut learner = engine();
    learner.set_mode(0, Some(Mode::Learn));
    let at_middle = fetch(0, MIDDLE, gpa1(MIDDLE), called_from(CALLER));
    learner.handle(&at_middle);
    let at_d2 = fetch(0, 0x2000_0040, 0x300 * P + 0x40, called_from(CALLER));
    learner.handle(&at_d2);
    let list: Vec<CtlEntry> = learner.entry_list().collect();
    assert_eq!(list.len(), 2);
    // ... imported into an enforcing one whose guest registered ENTRY, with a call out pending.
    let mut e = gated();
    e.set_deny(Deny::Gp);
    assert_eq!(e.handle(&call_out(SITE)).decision, Decision::Leave);
    let at_entry = fetch(0, ENTRY, gpa1(ENTRY), called_from(CALLER));
    assert_eq!(e.decide(&at_entry), switch(1, None));
    assert_eq!(e.decide(&at_middle), denied(&e, 1));
    assert_eq!(e.decide(&at_d2), denied(&e, 2));
    import_entries(&mut e, &list).unwrap();
    assert_eq!(e.handle(&at_middle), switch(1, None));
    assert_eq!(e.handle(&at_d2), switch(2, None));
    let o = e.handle(&at_entry);
    assert_eq!(o, denied(&e, 1));
    assert_eq!(o.decision, Decision::Deny(Deny::Gp));
    assert_eq!(
        (
            e.counters(1).allowed,
            e.counters(1).denied,
            e.counters(2).allowed
        ),
        (1, 1, 1)
    );
    // Entry points only: the return site of the pending call is no entry point, and is kept.
    assert_eq!(e.pending(&gate1(SITE)), 1);
    let back = fetch(0, SITE, gpa1(SITE), None);
    assert_eq!(
        e.handle(&back),
        switch(1, Some(GateOp::Returned(gate1(SITE))))
    );
    assert_eq!(e.handle(&back), denied(&e, 1));
    // Learning again: the imported entry points are known, nothing is learned twice.
    e.set_mode(0, Some(Mode::Learn));
    assert_eq!(e.handle(&at_middle), switch(1, None));
    assert_eq!(e.counters(1).learned, 0);
    assert_eq!(e.entry_list().collect::<Vec<_>>(), list);
}

#[test]
fn code_ranges_may_not_share_pages() {
    let e = engine();
    let code = |gfn, npages, domain| Code {
        start: 0x3000_0000,
        end: 0x3000_0000 + npages * P,
        gfn,
        npages,
        domain,
    };
    // Disjoint addresses, but pages behind domain 1's code: the page is the unit of execute
    // rights (and identity), for another domain and for the same one.
    assert_eq!(
        e.check_code(2, &code(0x101, 1, 2), false),
        Err(Error::Exist)
    );
    assert_eq!(
        e.check_code(1, &code(0x101, 1, 1), false),
        Err(Error::Exist)
    );
    assert_eq!(e.check_code(2, &code(0xff, 2, 2), false), Err(Error::Exist));
    assert_eq!(
        e.check_code(1, &code(0x2ff, 4, 1), false),
        Err(Error::Exist)
    );
    // Next to them is fine.
    assert_eq!(e.check_code(2, &code(0xff, 1, 2), false), Ok(()));
    assert_eq!(e.check_code(2, &code(0x102, 1, 2), false), Ok(()));
}

#[test]
fn code_is_executable_only_in_its_domains_view_and_writable_in_none() {
    let mut e = engine();
    for m in [Mode::Off, Mode::Learn, Mode::Enforce] {
        e.set_mode(0, Some(m));
        for c in e.code() {
            for v in 0..16u8 {
                let got = e.code_rights(c, v, e.is_domain(v));
                let want = match (m, e.is_domain(v), v == c.domain) {
                    (_, true, true) => R | X,
                    (Mode::Off, false, _) => R | W | X,
                    (Mode::Off, true, false) => DOMAIN_VIEW_DEFAULT,
                    _ => R,
                };
                assert_eq!(got, want, "{m:?} view {v} code of {}", c.domain);
            }
        }
    }
    assert_eq!(DOMAIN_VIEW_DEFAULT, R | W);
    assert_eq!(DOMAIN_CODE_RIGHTS, R | X);
}

/// The table of return sites of `calls_out_are_bounded_and_accounted`: domain 1 with 64 pages
/// of code, enforcing.
fn wide_engine() -> Box<Engine> {
    let mut e = Box::new(Engine::with_limits(LIMITS));
    e.create_domain(1).unwrap();
    let c = Code {
        start: 0x1000_0000,
        end: 0x1000_0000 + 64 * P,
        gfn: 0x100,
        npages: 64,
        domain: 1,
    };
    e.check_code(1, &c, true).unwrap();
    e.add_code(c).unwrap();
    e.set_mode(0, Some(Mode::Enforce));
    e
}

/// A guest that never returns: 100,000 calls out, each from another place, cost at most
/// MAX_RETURNS sites; the rest are forgotten, oldest first, and counted.
#[test]
fn a_guest_that_never_returns_cannot_grow_the_return_table() {
    let mut e = wide_engine();
    let n = 100_000u64;
    for i in 0..n {
        let o = e.handle(&call_out(0x1000_0000 + (i % 60_000) * 4));
        assert_eq!(o.decision, Decision::Leave);
        assert!(e.return_sites() <= MAX_RETURNS);
    }
    assert_eq!(e.return_sites(), MAX_RETURNS);
    assert_eq!(e.returns_dropped, n - MAX_RETURNS as u64);
    // The most recent ones are kept, the older forgotten.
    let at = |i: u64| e.gate_at(1, 0x1000_0000 + (i % 60_000) * 4).unwrap();
    assert_eq!(e.pending(&at(n - 1)), 1);
    assert_eq!(e.pending(&at(n - MAX_RETURNS as u64)), 1);
    assert_eq!(e.pending(&at(n - MAX_RETURNS as u64 - 1)), 0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Calls out of a domain and returns into it, in any order, with more distinct sites than
    /// the table holds: never more than MAX_RETURNS sites; each site's count is a model's, in
    /// which a full table forgets its least recently recorded site; and every call is
    /// accounted for: calls = pending + returned + dropped.
    #[test]
    fn calls_out_are_bounded_and_accounted(
        ops in prop::collection::vec((0u64..1500, prop::bool::weighted(0.25)), 1..2500)
    ) {
        let mut e = wide_engine();
        let gva = |i: u64| 0x1000_0000 + i * 16;
        // The model: per site, its count and when it was last recorded.
        let mut model: std::collections::HashMap<u64, (u32, u64)> = Default::default();
        let (mut calls, mut returned, mut dropped) = (0u64, 0u64, 0u64);
        for (t, &(i, back)) in ops.iter().enumerate() {
            let site = e.gate_at(1, gva(i)).unwrap();
            if back {
                let o = e.handle(&fetch(0, gva(i), site.gpa, None));
                let pending = model.get(&i).map_or(0, |m| m.0);
                if pending > 0 {
                    prop_assert_eq!(o.gate, Some(GateOp::Returned(site)));
                    returned += 1;
                    let m = model.get_mut(&i).unwrap();
                    m.0 -= 1;
                    if m.0 == 0 {
                        model.remove(&i);
                    }
                } else {
                    prop_assert_eq!(o.decision, Decision::Deny(Deny::Exit));
                }
            } else {
                let o = e.handle(&call_out(gva(i)));
                prop_assert_eq!(o.gate, Some(GateOp::Called(site)));
                calls += 1;
                if !model.contains_key(&i) && model.len() == MAX_RETURNS {
                    let (&old, _) = model.iter().min_by_key(|(_, m)| m.1).unwrap();
                    dropped += u64::from(model.remove(&old).unwrap().0);
                }
                let m = model.entry(i).or_insert((0, 0));
                m.0 += 1;
                m.1 = t as u64;
            }
            prop_assert!(e.return_sites() <= MAX_RETURNS);
            prop_assert_eq!(e.return_sites(), model.len());
            prop_assert_eq!(e.pending(&site), model.get(&i).map_or(0, |m| m.0));
            prop_assert_eq!(e.returns_dropped, dropped);
        }
        let mut pending = 0;
        for i in 0..1500 {
            let p = e.pending(&e.gate_at(1, gva(i)).unwrap());
            prop_assert_eq!(p, model.get(&i).map_or(0, |m| m.0), "site {}", i);
            pending += u64::from(p);
        }
        prop_assert_eq!(calls, pending + returned + e.returns_dropped);
    }

    /// Whatever the modes: a protected domain's code is executable only in its own view and
    /// writable in none; an unprotected one's is everything in views of no domain.
    #[test]
    fn code_rights_follow_the_views(
        e in arb_engine(),
        modes in prop::collection::vec(prop::option::of(0u32..3), 15),
    ) {
        let mut e = e;
        for (d, m) in (1u8..).zip(modes) {
            if e.is_domain(d) {
                e.set_mode(d, m.and_then(Mode::from_u32));
            }
        }
        for c in e.code() {
            let off = e.effective_mode(c.domain) == Mode::Off;
            for v in 0..16u8 {
                let dv = e.is_domain(v);
                let rights = e.code_rights(c, v, dv);
                prop_assert!(rights & R != 0);
                prop_assert_eq!(rights & X != 0, (dv && v == c.domain) || (off && !dv));
                if !off || (dv && v == c.domain) {
                    prop_assert_eq!(rights & W, 0, "view {} code of {}", v, c.domain);
                }
                if off && !dv {
                    prop_assert_eq!(rights, R | W | X);
                }
            }
        }
    }
}

// ---- property tests against a naive model ----

/// The naive model: linear scans over unsorted lists, the decision written out again (with the
/// gate it records or uses up; pending return sites are read back from the engine).
struct Naive<'a>(&'a Engine);

impl Naive<'_> {
    /// The return site at `gva` if it lies in domain `d`'s code, through the code range.
    fn site(&self, d: u8, gva: u64) -> Option<Gate> {
        self.0
            .code()
            .iter()
            .find(|c| c.domain == d && gva >= c.start && gva < c.end)
            .map(|c| Gate {
                gpa: c.gfn * P + (gva - c.start),
                gva,
                domain: d,
            })
    }

    fn decide(&self, f: &Fault) -> (Decision, Option<GateOp>) {
        let e = self.0;
        let gfn = f.gpa / P;
        let region = e
            .regions()
            .iter()
            .find(|r| gfn >= r.gfn && gfn < r.gfn + r.npages);
        // Which code runs is decided by the page it comes from.
        let code_page = e
            .code()
            .iter()
            .find(|c| gfn >= c.gfn && gfn < c.gfn + c.npages);
        // The rule of the region for this accessor and access, and whether it is trusted on its
        // own.
        let rule_for = |r: &Region| {
            e.rules().iter().find(|x| {
                x.region == r.gfn && f.rip >= x.start && f.rip < x.end && x.rights & f.access != 0
            })
        };
        let allowed_by_rule = |r: &Region| rule_for(r).is_some();
        let trusted_rule = |r: &Region| rule_for(r).is_some_and(|x| x.trusted);
        let deny = (Decision::Deny(e.deny()), None);
        // A domain's code is writable nowhere (and readable everywhere).
        if code_page.is_some() && f.access != X {
            return deny;
        }
        if e.is_domain(f.view) {
            if f.access == X {
                let any_rule = e
                    .rules()
                    .iter()
                    .any(|x| x.domain == f.view && f.rip >= x.start && f.rip < x.end);
                let mine = code_page.is_some_and(|c| c.domain == f.view);
                if !mine && !any_rule {
                    let called = f
                        .stack
                        .filter(|s| s.below != f.rip)
                        .and_then(|s| self.site(f.view, s.top));
                    return (Decision::Leave, called.map(GateOp::Called));
                }
                // A region's page is never made executable: it is decided as a region access.
                // Profile code without all of the owner's rights goes to its lens.
                if region.is_none() {
                    let all = e.regions().iter().filter(|r| r.domain == f.view).all(|r| {
                        e.rules()
                            .iter()
                            .find(|x| x.region == r.gfn && x.start <= f.rip && f.rip < x.end)
                            .is_some_and(|x| x.rights & r.rights == r.rights)
                    });
                    if !mine && !all {
                        let called = f
                            .stack
                            .filter(|s| s.below != f.rip)
                            .and_then(|s| self.site(f.view, s.top));
                        return (Decision::Narrow(f.view), called.map(GateOp::Called));
                    }
                    return (Decision::GrantExec, None);
                }
            }
            if region.is_some_and(|r| r.domain == f.view) {
                return deny;
            }
        }
        if let Some(c) = code_page.filter(|_| f.access == X) {
            let d = c.domain;
            let switch = Decision::Switch(d);
            let mode = e.effective_mode(d);
            if mode == Mode::Off {
                return (switch, None);
            }
            let g = Gate {
                gpa: f.gpa,
                gva: f.rip,
                domain: d,
            };
            let entry = e.entries().contains(&g);
            if entry {
                if let Some(s) = f.stack {
                    match self.site(d, s.top) {
                        // From outside: a site pending at the entry point itself is used up.
                        None if e.pending(&g) > 0 => return (switch, Some(GateOp::Returned(g))),
                        None => return (switch, None),
                        Some(r) if e.pending(&r) > 0 => return (switch, Some(GateOp::Returned(r))),
                        Some(_) => {}
                    }
                }
            }
            if e.pending(&g) > 0 {
                return (switch, Some(GateOp::Returned(g)));
            }
            if mode == Mode::Learn {
                return (switch, (!entry).then_some(GateOp::Learn(g)));
            }
            return deny;
        }
        let Some(r) = region else {
            return (Decision::NotOurs, None);
        };
        if r.rights & f.access == 0 {
            return deny;
        }
        // Only the profile lets code outside the owner's view in, whatever its RIP: learning,
        // any rule (or a rule learned now); enforcing, only a rule trusted on its own.
        let decision = match e.effective_mode(r.domain) {
            Mode::Learn if f.rip >= u64::MAX - (P - 1) && !allowed_by_rule(r) => {
                Decision::Deny(e.deny())
            }
            Mode::Off | Mode::Learn => Decision::Switch(r.domain),
            Mode::Enforce if trusted_rule(r) => Decision::Trusted(r.domain),
            Mode::Enforce => Decision::Deny(e.deny()),
        };
        (decision, None)
    }
}

fn access() -> impl Strategy<Value = u8> {
    prop_oneof![Just(R), Just(W), Just(X)]
}

/// Domain `d`'s code in `arb_engine`: gva d << 24, 4 pages, at gfn 0x10000 + d * 16.
fn arb_code(d: u8) -> Code {
    Code {
        start: u64::from(d) << 24,
        end: (u64::from(d) << 24) + 4 * P,
        gfn: 0x10000 + u64::from(d) * 16,
        npages: 4,
        domain: d,
    }
}

/// An instruction of domain `d`'s code in `arb_engine` (page `p`): its gva and gpa.
fn arb_loc(d: u64, p: u64) -> (u64, u64) {
    (
        (d << 24) + p * P + 0x123,
        (0x10000 + d * 16 + p) * P + 0x123,
    )
}

/// A page of no region and no code.
const PLAIN: u64 = 0x5000 * P;
/// Where `arb_engine`'s call-outs go: no domain's code, named by no rule.
const HELPER: u64 = 0x6000_0040;

/// A random engine: up to 15 domains with a code range (4 pages) and a few regions each, random
/// rules (trusted on their own or not), entry points, and return sites recorded by calls out of a
/// domain.
fn arb_engine() -> impl Strategy<Value = Box<Engine>> {
    (
        1usize..=15,
        prop::collection::vec((0u64..64, 1u64..4, 1u8..8), 0..60),
        prop::collection::vec((0u64..64, 0u64..64, 1u64..4, 1u8..8, any::<bool>()), 0..200),
        0u8..3,
        prop::collection::vec((1u64..16, 0u64..4), 0..24),
        prop::collection::vec((1u64..16, 0u64..4), 0..12),
    )
        .prop_map(|(ndom, regions, rules, mode, entries, calls)| {
            let mut e = Box::new(Engine::with_limits(LIMITS));
            for d in 1..=ndom as u8 {
                e.create_domain(d).unwrap();
                let c = arb_code(d);
                e.check_code(d, &c, false).unwrap();
                e.add_code(c).unwrap();
            }
            for (i, (slot, n, rights)) in regions.into_iter().enumerate() {
                let r = Region {
                    index: 0,
                    gfn: slot * 8,
                    npages: n,
                    rights,
                    domain: (i % ndom) as u8 + 1,
                };
                if e.check_region(&r).is_ok() {
                    e.add_region(r).unwrap();
                }
            }
            let regions: Vec<Region> = e.regions().to_vec();
            if !regions.is_empty() {
                for (ri, page, n, rights, trusted) in rules {
                    let r = regions[ri as usize % regions.len()];
                    let start = 0x7000_0000 + page * P;
                    let _ = e.learn(Rule {
                        region: r.gfn,
                        start,
                        end: start + n * P,
                        rights,
                        domain: r.domain,
                        trusted,
                    });
                }
            }
            for (d, p) in entries {
                if let Ok(g) = e.check_entry(d as u8, arb_loc(d, p).0, false) {
                    e.add_entry(g).unwrap();
                }
            }
            for (d, p) in calls {
                // A call out of domain d: it resumes at the instruction after the call.
                let out = Fault {
                    view: d as u8,
                    gpa: PLAIN,
                    rip: HELPER,
                    access: X,
                    stack: Some(Stack { event: None,
                        below: 0,
                        top: arb_loc(d, p).0,
                    }),
                };
                let o = e.handle(&out);
                if e.is_domain(d as u8) {
                    assert!(matches!(o.gate, Some(GateOp::Called(_))), "{o:?}");
                }
            }
            e.set_mode(0, Mode::from_u32(u32::from(mode)));
            e
        })
}

/// The gpa behind `rip` in `arb_engine`: its code page if it is a domain's instruction, else a
/// page of nothing.
fn behind(rip: u64) -> u64 {
    let (d, off) = (rip >> 24, rip & 0xff_ffff);
    if (1..16).contains(&d) && off < 4 * P {
        (0x10000 + d * 16) * P + off
    } else {
        PLAIN + (rip & (P - 1))
    }
}

fn arb_fault() -> impl Strategy<Value = Fault> {
    let loc = (1u64..16, 0u64..4).prop_map(|(d, p)| arb_loc(d, p));
    (
        0u8..16,
        prop_oneof![
            // Regions' pages and others, the page behind the RIP, or some code page.
            3 => (0u64..(64 * 8 + 8)).prop_map(|gfn| Some(gfn * P + 16)),
            2 => Just(None),
            1 => loc.clone().prop_map(|l| Some(l.1)),
        ],
        prop_oneof![
            loc.clone().prop_map(|l| l.0),
            (0u64..80).prop_map(|p| 0x7000_0000 + p * P + 8),
            Just(FOREIGN),
        ],
        access(),
        // The stack: unknown, or a return address (code or not) above the word a `ret` took.
        prop::option::of((
            any::<bool>(),
            prop_oneof![loc.prop_map(|l| l.0), Just(FOREIGN)],
        )),
    )
        .prop_map(|(view, gpa, rip, access, stack)| Fault {
            view,
            gpa: gpa.unwrap_or_else(|| behind(rip)),
            rip,
            access,
            stack: stack.map(|(ret, top)| Stack { event: None,
                below: if ret { rip } else { 0 },
                top,
            }),
        })
}

/// A fault from `arb_fault`, or (`Some`) a data access from view 0 near one of the engine's rules,
/// resolved by [`resolve`].
type MaybeNear = (Fault, Option<(prop::sample::Index, u64, u8)>);

/// Faults for the properties about trust: half of them near the engine's rules, where learning
/// joins, widens, or is refused.
fn arb_faults_near_rules() -> impl Strategy<Value = Vec<MaybeNear>> {
    prop::collection::vec(
        (
            arb_fault(),
            prop::option::weighted(0.5, (any::<prop::sample::Index>(), 0u64..6, access())),
        ),
        1..100,
    )
}

/// The fault: a near one is an access to a rule's region from the page before its accessor range,
/// in it, or just after it.
fn resolve(e: &Engine, (f, near): &MaybeNear) -> Fault {
    let (Some((i, page, access)), false) = (near, e.rules().is_empty()) else {
        return *f;
    };
    let x = e.rules()[i.index(e.rules().len())];
    Fault {
        view: 0,
        gpa: x.region * P + 16,
        rip: x.start.wrapping_sub(P) + page * P + 8,
        access: *access,
        stack: f.stack,
    }
}

/// A record of the log's model: its number in the order stored, key, sequence number, count and
/// last time.
#[derive(Clone, Copy, Debug, Default)]
struct ModelRecord {
    n: u64,
    key: u64,
    seq: u64,
    count: u64,
    last: u64,
}

/// The RIP of a model key (twelve RIPs; the page is `key / 12`).
fn rip_of(key: u64) -> u64 {
    0x40_0000 + (key % 12) * 0x1000
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn decide_matches_the_naive_model(e in arb_engine(), faults in arb_faults_near_rules()) {
        for f in &faults {
            let f = &resolve(&e, f);
            let o = e.decide(f);
            prop_assert_eq!((o.decision, o.gate), Naive(&e).decide(f), "{:?}", f);
            // Learning never trusts a rule on its own.
            prop_assert!(!o.learn.is_some_and(|r| r.trusted), "{:?}", f);
        }
    }

    #[test]
    fn rules_stay_sorted_and_disjoint(e in arb_engine()) {
        for w in e.rules().windows(2) {
            prop_assert!((w[0].region, w[0].start) < (w[1].region, w[1].start));
            if w[0].region == w[1].region {
                prop_assert!(w[0].end <= w[1].start);
            }
        }
        for x in e.rules() {
            prop_assert!(x.start < x.end);
            prop_assert!(e.regions().iter().any(|r| r.gfn == x.region && r.domain == x.domain));
        }
    }

    /// What a workload did in learn mode, it may do in enforce mode once the administrator has
    /// trusted the learned rules on their own (an imported profile with RULE_TRUSTED on each):
    /// zero denials (data accesses and entries into domains alike). Before that, enforce mode
    /// lets in the entries, and the data accesses a trusted rule allows, and nothing else.
    #[test]
    fn learned_workload_is_never_denied_once_trusted(e in arb_engine(), faults in arb_faults_near_rules()) {
        let mut e = e;
        e.set_mode(0, Some(Mode::Learn));
        let mut learned = Vec::new();
        for f in &faults {
            let f = resolve(&e, f);
            if f.view != 0 {
                continue;
            }
            // Called from outside every domain: the return address is no domain's code.
            let f = Fault {
                stack: Some(Stack { event: None, below: 0, top: FOREIGN }),
                ..f
            };
            // `handle` stores the rules and entry points (and denies what it cannot store).
            let o = e.handle(&f);
            // A return site is good for one re-entry: not something learning makes last.
            if matches!(o.decision, Decision::Switch(_))
                && !matches!(o.gate, Some(GateOp::Returned(_)))
            {
                learned.push(f);
            }
        }
        e.set_mode(0, Some(Mode::Enforce));
        for f in &learned {
            let d = e.decide(f).decision;
            let switched = matches!(d, Decision::Switch(_));
            match e.region_at(f.gpa / P) {
                // A data access (or a fetch of a region's page) from view 0: to the trusted
                // rule's lens.
                Some(r) => {
                    let trusted = e
                        .rule_at(r.gfn, f.rip)
                        .is_some_and(|x| x.trusted && x.rights & f.access != 0);
                    prop_assert_eq!(matches!(d, Decision::Trusted(_)), trusted, "{:?}", f);
                }
                // An entry into a domain.
                None => prop_assert!(switched, "{:?}", f),
            }
        }
        // Trust every rule. Directly: `arb_engine`'s rules may name rights beyond their region's,
        // which `check_profile` refuses (the decision bounds an access by the region's first).
        let all: Vec<CtlRule> = e
            .profile()
            .map(|x| CtlRule {
                access: x.access | ctl::RULE_TRUSTED,
                ..x
            })
            .collect();
        e.set_profile(&all).unwrap();
        prop_assert!(e.rules().iter().all(|x| x.trusted));
        for f in &learned {
            prop_assert!(
                matches!(e.decide(f).decision, Decision::Switch(_) | Decision::Trusted(_)),
                "{:?}",
                f
            );
        }
    }

    /// Trust never spreads: whatever learn mode handles, the rules trusted on their own stay
    /// exactly as they were, every rule it learns is untrusted, and a fault whose rule cannot be
    /// stored (it would merge with a rule trusted otherwise) is denied with the profile
    /// unchanged.
    #[test]
    fn learning_never_spreads_trust(e in arb_engine(), faults in arb_faults_near_rules()) {
        let mut e = e;
        e.set_mode(0, Some(Mode::Learn));
        let trusted = |e: &Engine| -> Vec<Rule> {
            e.rules().iter().copied().filter(|x| x.trusted).collect()
        };
        let first = trusted(&e);
        for f in &faults {
            let f = &resolve(&e, f);
            let before = e.rules().to_vec();
            let d = e.decide(f);
            let o = e.handle(f);
            match (d.learn, o.learn) {
                (Some(r), Some(_)) => {
                    prop_assert!(!r.trusted, "{:?}", f);
                    // Known now, by an untrusted rule.
                    let x = e.rule_at(r.region, f.rip);
                    prop_assert!(
                        x.is_some_and(|x| !x.trusted && x.rights & f.access != 0),
                        "{:?} {:?}",
                        f,
                        x
                    );
                }
                (Some(r), None) => {
                    prop_assert!(!r.trusted, "{:?}", f);
                    prop_assert_eq!(o.decision, Decision::Deny(e.deny()), "{:?}", f);
                    prop_assert_eq!(o.log, Some(ctl::LOG_DENIED));
                    prop_assert_eq!(e.rules(), &before[..], "{:?}", f);
                }
                _ => prop_assert_eq!(e.rules(), &before[..], "{:?}", f),
            }
            prop_assert_eq!(trusted(&e), first.clone(), "{:?}", f);
        }
    }

    /// The log accounts for every offer, whatever the timing, the keys and the reads:
    /// `written + dropped + compressed` is the number of offers; the counts of the records sum to
    /// `written + compressed`; a record's `seq` is the offers before it that were not repeats;
    /// and an offer is a repeat exactly when a model window (the LOG_WINDOW least recently used
    /// keys of unread records) holds its key.
    #[test]
    fn log_accounts_for_every_record(
        steps in prop::collection::vec(
            (
                // Bursts (no token comes back) and pauses (tokens come back).
                prop_oneof![3 => 0u64..2_000, 1 => 0u64..5_000_000],
                // A few keys, more than the window holds, and a spray of distinct ones.
                prop_oneof![3 => 0u64..96, 1 => 0u64..1_000_000],
                0u64..4096,
                prop::bool::weighted(0.1),
            ),
            1..3000,
        )
    ) {
        let mut l = Box::new(Log::new());
        let mut t = 0u64;
        // The model: the unread records, oldest first, and the window (number, key), most
        // recently used first.
        let mut unread = std::collections::VecDeque::<ModelRecord>::new();
        let mut window: Vec<(u64, u64)> = Vec::new();
        let (mut stored, mut dropped, mut counts) = (0u64, 0u64, 0u64);
        for (i, &(dt, key, offset, pop)) in steps.iter().enumerate() {
            t += dt;
            // The offset in the page and the linear address are not part of a key.
            let mut r = denial(rip_of(key), (key / 12) * P + offset, t);
            r.gva = offset;
            let repeat = window.iter().position(|w| w.1 == key);
            match l.push(r, t) {
                Pushed::Compressed => {
                    prop_assert!(repeat.is_some(), "key {} compressed, not in the window", key);
                    let w = window.remove(repeat.unwrap_or_default());
                    window.insert(0, w);
                    let u = unread.iter_mut().find(|u| u.n == w.0);
                    prop_assert!(u.is_some(), "the window names a read record");
                    if let Some(u) = u {
                        u.count += 1;
                        u.last = t;
                    }
                }
                got => {
                    prop_assert!(repeat.is_none(), "key {} in the window: {:?}", key, got);
                    if got == Pushed::Stored {
                        window.insert(0, (stored, key));
                        window.truncate(LOG_WINDOW);
                        unread.push_back(ModelRecord {
                            n: stored,
                            key,
                            seq: stored + dropped,
                            count: 1,
                            last: t,
                        });
                        stored += 1;
                    } else {
                        dropped += 1;
                    }
                }
            }
            // Reads now and then, and all of it at the end.
            let reads = if i + 1 == steps.len() {
                LOG_RECORDS
            } else {
                usize::from(pop)
            };
            for _ in 0..reads {
                let Some(r) = l.pop() else {
                    break;
                };
                let m = unread.pop_front();
                prop_assert!(m.is_some());
                let m = m.unwrap_or_default();
                prop_assert_eq!((r.rip, r.gpa / P), (rip_of(m.key), m.key / 12));
                prop_assert_eq!((r.seq, r.count, r.last_ns), (m.seq, m.count, m.last));
                prop_assert!(r.time_ns <= r.last_ns);
                window.retain(|w| w.0 != m.n);
                counts += r.count;
            }
            prop_assert!(l.len() <= LOG_RECORDS);
            prop_assert_eq!(l.len(), unread.len());
        }
        prop_assert_eq!((l.written, l.dropped), (stored, dropped));
        prop_assert_eq!(l.written + l.dropped + l.compressed, steps.len() as u64);
        prop_assert_eq!(counts, l.written + l.compressed);
    }
}

#[test]
fn peek_shows_the_oldest_record_and_takes_nothing() {
    let mut l = Box::new(Log::new());
    assert_eq!(l.peek(), None);
    l.push(rec(1), 1_000_000_000);
    l.push(rec(2), 1_000_000_000);
    // A reader that could not deliver the record leaves it in the log.
    assert_eq!(l.peek().map(|r| r.rip), Some(1));
    assert_eq!(l.peek().map(|r| r.rip), Some(1));
    assert_eq!(l.len(), 2);
    assert_eq!(l.pop().map(|r| r.rip), Some(1));
    assert_eq!(l.peek().map(|r| r.rip), Some(2));
    assert_eq!(l.len(), 1);
}

/// Caps of one: each table takes one item, then refuses the next with `NoSpc`, changing
/// nothing, and `full()` says which tables are at their cap.
#[test]
fn each_cap_refuses_the_next_item_and_changes_nothing() {
    let one = Limits {
        code: 1,
        regions: 1,
        rules: 1,
        entries: 1,
        returns: 1,
    };
    let mut e = Engine::with_limits(one);
    e.create_domain(1).unwrap();
    let code = |gva: u64, gfn: u64| Code {
        start: gva,
        end: gva + P,
        gfn,
        npages: 1,
        domain: 1,
    };
    e.check_code(1, &code(0x1000_0000, 0x100), true).unwrap();
    e.add_code(code(0x1000_0000, 0x100)).unwrap();
    assert_eq!(e.full(), full::CODE);
    assert_eq!(
        e.check_code(1, &code(0x1000_1000, 0x101), true),
        Err(Error::NoSpc)
    );
    let region = |gfn: u64| Region {
        index: 0,
        gfn,
        npages: 1,
        rights: R | W,
        domain: 1,
    };
    e.check_region(&region(0x200)).unwrap();
    e.add_region(region(0x200)).unwrap();
    assert_eq!(e.check_region(&region(0x201)), Err(Error::NoSpc));
    e.learn(rule(0x200, 0x7000_0000, 0x7000_1000, R)).unwrap();
    assert_eq!(
        e.learn(rule(0x200, 0x7000_2000, 0x7000_3000, R)),
        Err(Error::NoSpc)
    );
    // A rule the existing one absorbs takes no room.
    e.learn(rule(0x200, 0x7000_0000, 0x7000_1000, W)).unwrap();
    assert_eq!(e.rules().len(), 1);
    let g = e.check_entry(1, 0x1000_0010, true).unwrap();
    e.add_entry(g).unwrap();
    assert_eq!(e.check_entry(1, 0x1000_0020, true), Err(Error::NoSpc));
    let g2 = Gate {
        gpa: 0x100 * P + 0x20,
        gva: 0x1000_0020,
        domain: 1,
    };
    assert_eq!(e.add_entry(g2), Err(Error::NoSpc));
    // Imports above a cap are refused before anything else.
    let entry = |gva: u64| CtlEntry {
        domain: 1,
        pad: 0,
        gva,
        gpa: 0x100 * P + (gva - 0x1000_0000),
    };
    assert_eq!(
        e.check_entries(&mut [entry(0x1000_0010), entry(0x1000_0020)]),
        Err(Error::NoSpc)
    );
    let r = ctl_rule(1, 0x200 * P, 1, 0x7000_0000, 0x7000_1000);
    let r2 = ctl_rule(1, 0x200 * P, 1, 0x7000_2000, 0x7000_3000);
    assert_eq!(e.check_profile(&mut [r, r2]), Err(Error::NoSpc));
    assert_eq!(
        e.full(),
        full::CODE | full::REGIONS | full::RULES | full::ENTRIES
    );
    assert_eq!(e.code().len(), 1);
    assert_eq!(e.regions().len(), 1);
    assert_eq!(e.entries(), &[g]);
    // Return sites: the second call out forgets the first.
    e.set_mode(0, Some(Mode::Enforce));
    for ret in [0x1000_0100u64, 0x1000_0200] {
        e.handle(&fetch(1, 0x6000_0123, 0x900 * P, called_from(ret)));
    }
    assert_eq!((e.return_sites(), e.returns_dropped), (1, 1));
    assert_ne!(e.full() & full::RETURNS, 0);
    // Destroying the domain empties every table.
    e.destroy_domain(1);
    assert_eq!(e.full(), 0);
    assert_eq!(e.code_at_gfn(0x100), None);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The overlap checks look only at neighbours in the sorted tables: they agree with a scan
    /// of every code range and region, whatever was added before.
    #[test]
    fn overlap_checks_agree_with_a_scan(
        adds in prop::collection::vec((0u64..64, 1u64..6, any::<bool>(), 0u64..64), 1..60)
    ) {
        let mut e = Engine::new();
        e.create_domain(1).unwrap();
        for (gfn, n, is_code, gva_page) in adds {
            let pages = |a: u64, an: u64, b: u64, bn: u64| a < b + bn && b < a + an;
            let code_clash = e.code().iter().any(|c| pages(c.gfn, c.npages, gfn, n));
            let region_clash = e.regions().iter().any(|r| pages(r.gfn, r.npages, gfn, n));
            if is_code {
                let c = Code {
                    start: gva_page * P,
                    end: (gva_page + n) * P,
                    gfn,
                    npages: n,
                    domain: 1,
                };
                let va_clash = e
                    .code()
                    .iter()
                    .any(|x| x.start < c.end && c.start < x.end);
                let want = code_clash || region_clash || va_clash;
                let got = e.check_code(1, &c, false);
                prop_assert_eq!(got == Err(Error::Exist), want, "{:?}", c);
                if got.is_ok() {
                    e.add_code(c).unwrap();
                }
            } else {
                let r = Region { index: 0, gfn, npages: n, rights: R, domain: 1 };
                let got = e.check_region(&r);
                prop_assert_eq!(got == Err(Error::Exist), code_clash || region_clash);
                if got.is_ok() {
                    e.add_region(r).unwrap();
                }
            }
        }
        for c in e.code() {
            for g in c.gfn..c.gfn + c.npages {
                prop_assert_eq!(e.code_at_gfn(g), Some(c));
            }
        }
    }
}

// ---- lenses ----

/// A reader of domain 1's region (R of its RW), a writer (RW: all of the owner's rights), and
/// another reader, in kernel pages of their own.
const READER: u64 = 0x7100_0000;
const WRITER: u64 = 0x7200_0000;
const READER2: u64 = 0x7300_0000;

/// `gated()` with the three accessors' rules and a lens on domain 1 for the readers (view 9).
fn with_lens() -> Box<Engine> {
    let mut e = gated();
    e.learn(rule(0x200, READER, READER + P, R)).unwrap();
    e.learn(rule(0x200, WRITER, WRITER + P, R | W)).unwrap();
    e.learn(rule(0x200, READER2, READER2 + P, R)).unwrap();
    e.add_lens(9, 1, READER, false).unwrap();
    e
}

fn narrow(d: u8, gate: Option<GateOp>) -> Outcome {
    Outcome {
        decision: Decision::Narrow(d),
        gate,
        ..switch(d, None)
    }
}

/// "A rule's rights bound its accessor": the owner calling a helper whose rules give it less
/// than the owner's rights sends it to a lens (recording the return site, as leaving does); a
/// helper with all of them runs in the owner's view.
#[test]
fn profile_code_with_fewer_rights_than_the_owner_runs_in_a_lens() {
    let mut e = with_lens();
    let call = fetch(1, READER + 0x10, HELPER_PAGE, called_from(SITE));
    assert_eq!(
        e.handle(&call),
        narrow(1, Some(GateOp::Called(gate1(SITE))))
    );
    assert_eq!(e.pending(&gate1(SITE)), 1);
    assert!(!e.covers(1, READER) && e.covers(1, WRITER));
    let call = fetch(1, WRITER + 0x10, HELPER_PAGE, called_from(SITE));
    assert_eq!(e.decide(&call).decision, Decision::GrantExec);
    // Both readers share the lens; the writer has none.
    assert_eq!(e.lens_for(1, READER + 0x800, false), Some(9));
    assert_eq!(e.lens_for(1, READER2, false), Some(9));
    assert_eq!(e.lens_for(1, WRITER, false), None);
    assert_eq!(e.lens_for(2, READER, false), None);
}

/// In a lens: code with its rights runs; the region beyond them is denied; the owner is resumed
/// only at a pending return site (or an entry point); other profile code goes to its own lens or
/// the owner's view; other code leaves, recording nothing.
#[test]
fn a_lens_runs_only_code_with_its_rights_within_them() {
    let mut e = with_lens();
    e.handle(&fetch(1, READER + 0x10, HELPER_PAGE, called_from(SITE)));
    assert_eq!(
        e.decide(&fetch(9, READER + 0x10, HELPER_PAGE, None))
            .decision,
        Decision::GrantExec
    );
    assert_eq!(
        e.decide(&fetch(9, READER2, HELPER_PAGE + P, None)).decision,
        Decision::GrantExec
    );
    // The reader writes the owner's region: denied, counted and logged as domain 1's.
    let denied_before = e.counters(1).denied;
    assert_eq!(
        e.handle(&fault(9, 0x201 * P, READER + 0x20, W)),
        denied(&e, 1)
    );
    assert_eq!(e.counters(1).denied, denied_before + 1);
    // A read it may do faults only if the lens is stale: to its lens, to be rebuilt.
    assert_eq!(
        e.decide(&fault(9, 0x201 * P, READER + 0x20, R)),
        narrow(1, None)
    );
    // Code with other rights to its own lens, even the writer, which has all of the owner's
    // (the owner's view would let it return into the owner unchecked); unnamed code to view 0.
    assert_eq!(
        e.decide(&fetch(9, WRITER, HELPER_PAGE, None)),
        narrow(1, None)
    );
    let out = e.decide(&fetch(9, FOREIGN, HELPER_PAGE, called_from(SITE)));
    assert_eq!((out.decision, out.gate), (Decision::Leave, None));
    // The owner's code: at its pending return site once, elsewhere denied.
    assert_eq!(
        e.decide(&fetch(9, MIDDLE, gpa1(MIDDLE), None)).decision,
        Decision::Deny(e.deny())
    );
    let back = fetch(9, SITE, gpa1(SITE), None);
    assert_eq!(
        e.handle(&back),
        switch(1, Some(GateOp::Returned(gate1(SITE))))
    );
    assert_eq!(e.decide(&back).decision, Decision::Deny(e.deny()));
    // An entry point is a way in from a lens too.
    assert_eq!(
        e.decide(&fetch(9, ENTRY, gpa1(ENTRY), called_from(READER))),
        switch(1, None)
    );
    // Another domain's region is not the lens's.
    assert_eq!(e.decide(&fault(9, 0x400 * P, READER, R)), denied(&e, 2));
    // A page of no domain faults only in a stale lens (reset by a failed rebuild): rebuilt.
    assert_eq!(e.decide(&fault(9, 0x5000 * P, READER, W)), narrow(1, None));
}

/// Learning in a lens widens the accessor's rule (the module then rebuilds the domain's
/// lenses); the region's own rights still bound it.
#[test]
fn learning_in_a_lens_widens_the_rule() {
    let mut e = with_lens();
    e.set_mode(1, Some(Mode::Learn));
    let o = e.handle(&fault(9, 0x201 * P, READER + 0x20, W));
    assert_eq!(o.decision, Decision::Narrow(1));
    assert_eq!(o.log, Some(ctl::LOG_LEARNED));
    assert_eq!(e.rule_at(0x200, READER).map(|x| x.rights), Some(R | W));
    assert!(e.covers(1, READER));
    // Domain 2's region is read-only: learning cannot widen past it.
    e.add_lens(10, 2, READER, false).unwrap();
    assert_eq!(
        e.handle(&fault(10, 0x400 * P, READER, W)).decision,
        Decision::Deny(e.deny())
    );
}

/// Lenses are the engine's views: none in view 0, a domain's view or a lens's, none on a missing
/// domain, at most `MAX_LENSES`; they go with their domain.
#[test]
fn lenses_are_checked_capped_and_go_with_their_domain() {
    let mut e = with_lens();
    assert_eq!(e.add_lens(0, 1, READER, false), Err(Error::Inval));
    assert_eq!(e.add_lens(1, 2, READER, false), Err(Error::Inval));
    assert_eq!(e.add_lens(9, 2, READER, false), Err(Error::Inval));
    assert_eq!(e.add_lens(11, 7, READER, false), Err(Error::Inval));
    assert!(e.owns_view(9) && e.owns_view(1) && !e.owns_view(11));
    // A lens's view cannot become a domain.
    assert_eq!(e.create_domain(9), Err(Error::Inval));
    let mut n = e.lenses().len();
    let mut v = 20u8;
    while n < MAX_LENSES {
        e.add_lens(v, 2, READER, false).unwrap();
        v += 1;
        n += 1;
    }
    assert_eq!(e.add_lens(v, 2, READER, false), Err(Error::NoSpc));
    assert!(e.lenses().windows(2).all(|x| x[0].view < x[1].view));
    // Dropping domain 1's lenses names their views; destroying domain 2 drops its own.
    assert_eq!(e.drop_lenses(1).collect::<Vec<_>>(), vec![9]);
    assert!(e.lens(9).is_none());
    e.destroy_domain(2);
    assert!(e.lenses().is_empty());
}

/// Trust does not spread: a rule trusted on its own lets its accessor in from outside to a lens
/// of its trusted rules only; its untrusted rules' rights (which let it in only when the owner
/// calls it) are not there.
#[test]
fn a_trusted_rule_lends_no_other_rule_s_rights() {
    let mut e = gated();
    let r2 = Region {
        index: 0,
        gfn: 0x210,
        npages: 1,
        rights: R | W,
        domain: 1,
    };
    e.check_region(&r2).unwrap();
    e.add_region(r2).unwrap();
    e.learn(trusted(0x200, READER, READER + P, R)).unwrap();
    e.learn(rule(0x210, READER, READER + P, R | W)).unwrap();
    assert_eq!(e.decide(&fault(0, 0x201 * P, READER, R)), trusted_lens(1));
    // A call from the owner gets all of its rules (its own lens), from outside only the
    // trusted one's.
    e.add_lens(9, 1, READER, false).unwrap();
    e.add_lens(10, 1, READER, true).unwrap();
    assert_eq!(e.lens_for(1, READER, true), Some(10));
    assert_eq!(e.lens_for(1, READER, false), Some(9));
    let region2 = e.region_at(0x210).copied().unwrap();
    assert_eq!(e.lens_rights(e.lens(9).unwrap(), &region2), R | W);
    assert_eq!(e.lens_rights(e.lens(10).unwrap(), &region2), 0);
    // In the trusted lens: its code runs, the untrusted region is denied, the trusted one
    // beyond its rule too.
    assert_eq!(
        e.decide(&fetch(10, READER, HELPER_PAGE, None)).decision,
        Decision::GrantExec
    );
    assert_eq!(e.decide(&fault(10, 0x210 * P, READER, R)), denied(&e, 1));
    assert_eq!(e.decide(&fault(10, 0x201 * P, READER, W)), denied(&e, 1));
    // Code without a trusted rule is not run there.
    assert_eq!(
        e.decide(&fetch(10, WRITER, HELPER_PAGE, None)).decision,
        Decision::Leave
    );
}

// ---- switchable domains ----

/// `gated()` with an entry point at each page start of domain 1's code.
fn page_starts_entries() -> Box<Engine> {
    let mut e = gated();
    for gva in [0x1000_0000, 0x1000_1000] {
        let g = e.check_entry(1, gva, true).unwrap();
        e.add_entry(g).unwrap();
    }
    e
}

/// `gated()` with an entry point at each page start of domain 1's code (0x1000_0000 and
/// 0x1000_1000), made switchable.
fn switchable() -> Box<Engine> {
    let mut e = page_starts_entries();
    e.check_switchable(1, true).unwrap();
    e.set_switchable(1);
    e
}

#[test]
fn switchable_needs_an_entry_point_at_every_page_start_and_changes_nothing_when_refused() {
    let mut e = gated();
    assert_eq!(e.check_switchable(3, true), Err(Error::NoEnt));
    // ENTRY is no page start; then the first page only.
    assert_eq!(e.check_switchable(1, true), Err(Error::Inval));
    let g = e.check_entry(1, 0x1000_0000, true).unwrap();
    e.add_entry(g).unwrap();
    assert_eq!(e.check_switchable(1, true), Err(Error::Inval));
    assert!(!e.switchable(1));
    let g = e.check_entry(1, 0x1000_1000, true).unwrap();
    e.add_entry(g).unwrap();
    // An executable region of its own refuses it too.
    let mut x = page_starts_entries();
    let r = Region {
        index: 0,
        gfn: 0x500,
        npages: 1,
        rights: R | X,
        domain: 1,
    };
    x.check_region(&r).unwrap();
    x.add_region(r).unwrap();
    assert_eq!(x.check_switchable(1, true), Err(Error::Inval));
    // A domain without code has no entry point to switch to.
    e.create_domain(5).unwrap();
    assert_eq!(e.check_switchable(5, true), Err(Error::Inval));
    // The guest, locked, may not; the host may; twice is no change.
    e.set_locked(true);
    assert_eq!(e.check_switchable(1, true), Err(Error::Perm));
    assert_eq!(e.check_switchable(1, false), Ok(()));
    e.set_switchable(1);
    assert!(e.switchable(1) && !e.switchable(2) && !e.switchable(5));
    assert_eq!(e.check_switchable(1, false), Err(Error::Exist));
    // Its code is complete, and no region of it becomes executable.
    let c = Code {
        start: 0x1800_0000,
        end: 0x1800_1000,
        gfn: 0x600,
        npages: 1,
        domain: 1,
    };
    assert_eq!(e.check_code(1, &c, false), Err(Error::Perm));
    assert_eq!(e.check_code(2, &Code { domain: 2, ..c }, false), Ok(()));
    let r = Region {
        index: 0,
        gfn: 0x500,
        npages: 1,
        rights: R | X,
        domain: 1,
    };
    assert_eq!(e.check_region(&r), Err(Error::Perm));
    assert_eq!(
        e.check_region(&Region {
            index: 0,
            rights: R | W,
            ..r
        }),
        Ok(())
    );
    // Destroyed and created again, it is not switchable.
    e.destroy_domain(1);
    e.create_domain(1).unwrap();
    assert!(!e.switchable(1));
}

#[test]
fn the_host_cannot_drop_a_page_start_entry_of_a_switchable_domain() {
    let e = switchable();
    let mut all: Vec<CtlEntry> = e.entry_list().collect();
    assert_eq!(all.len(), 3);
    assert_eq!(e.check_entries(&mut all.clone()), Ok(()));
    // Without ENTRY (no page start): fine. Without the second page's start: refused.
    all.retain(|x| x.gva != ENTRY);
    assert_eq!(e.check_entries(&mut all.clone()), Ok(()));
    all.retain(|x| x.gva != 0x1000_1000);
    assert_eq!(e.check_entries(&mut all), Err(Error::Inval));
}

#[test]
fn leaving_a_switchable_domain_s_view_records_no_return_site() {
    // Any code may SWITCH into the view and fault on its next fetch with a return address
    // of its choice at RSP: in a gated domain, a call out records it; here, nothing.
    let mut g = gated();
    assert_eq!(
        g.decide(&call_out(SITE)).gate,
        Some(GateOp::Called(gate1(SITE)))
    );
    let mut e = switchable();
    let want = Outcome {
        decision: Decision::Leave,
        domain: 1,
        learn: None,
        gate: None,
        log: None,
    };
    assert_eq!(e.handle(&call_out(SITE)), want);
    assert_eq!(e.return_sites(), 0);
    // So coming back there is what it is from anywhere: denied.
    let back = fetch(0, SITE, gpa1(SITE), called_from(CALLER));
    assert_eq!(e.decide(&back), denied(&e, 1));
    // Entry points still enter.
    let entry = fetch(0, 0x1000_1000, gpa1(0x1000_1000), called_from(CALLER));
    assert_eq!(e.decide(&entry), switch(1, None));
    g.handle(&call_out(SITE));
    assert_eq!(g.decide(&back).decision, Decision::Switch(1));
}

#[test]
fn profile_code_never_runs_from_a_switchable_domain_s_view() {
    // Profile code is made executable in a gated domain's view (all of the owner's rights) or
    // runs in a lens (fewer); from a switchable one's, where any code may land on its page
    // starts, it leaves to view 0, recording nothing, whatever its rights.
    let call = fetch(1, 0x7000_0000, HELPER_PAGE, called_from(SITE));
    for (rights, gated_too) in [(R | W, Decision::GrantExec), (R, Decision::Narrow(1))] {
        let mut g = gated();
        g.learn(rule(0x200, 0x7000_0000, 0x7000_1000, rights))
            .unwrap();
        assert_eq!(g.decide(&call).decision, gated_too);
        let mut e = switchable();
        e.learn(rule(0x200, 0x7000_0000, 0x7000_1000, rights))
            .unwrap();
        let o = e.decide(&call);
        assert_eq!((o.decision, o.gate), (Decision::Leave, None));
    }
}

#[test]
fn learning_about_a_switchable_domain_s_region_uses_a_lens() {
    // In its view the accessor could not run (it would leave, and fault again, for ever).
    let mut e = switchable();
    e.set_mode(0, Some(Mode::Learn));
    let f = fault(0, 0x202 * P, FOREIGN, R);
    let o = e.handle(&f);
    assert_eq!(
        (o.decision, o.log),
        (Decision::Narrow(1), Some(ctl::LOG_LEARNED))
    );
    assert_eq!(e.rules().len(), 1);
    assert_eq!(e.decide(&f).decision, Decision::Narrow(1));
    // Its fetch in the view it was not let into would leave.
    assert_eq!(
        e.decide(&fetch(1, FOREIGN, HELPER_PAGE, None)).decision,
        Decision::Leave
    );
}

#[test]
fn a_domain_keeps_the_name_the_guest_gave_it_until_it_goes() {
    let mut e = engine();
    assert_eq!(e.name(1), [0; abi::NAME_LEN], "no name yet");
    assert_eq!(e.check_name(3), Err(Error::NoEnt));
    e.check_name(1).unwrap();
    e.set_name(1, 0, [u64::from_le_bytes(*b"ki_keepe"), u64::from(b'r')]);
    e.set_name(1, 3, [u64::from_le_bytes(*b"the_end!"), 0]);
    let name = e.name(1);
    assert_eq!(&name[..10], b"ki_keeper\0");
    assert_eq!(&name[48..56], b"the_end!");
    assert_eq!(name[16..48], [0; 32]);
    assert_eq!(e.name(2), [0; abi::NAME_LEN], "domain 2 keeps its own");
    // A name is the guest's until it locks; a new domain in the same view starts without one.
    e.set_locked(true);
    assert_eq!(e.check_name(1), Err(Error::Perm));
    e.set_locked(false);
    e.destroy_domain(1);
    e.create_domain(1).unwrap();
    assert_eq!(e.name(1), [0; abi::NAME_LEN]);
}

/// The code names kept, as `(start, size, name, since_ns, until_ns)`.
fn code_names(e: &Engine) -> Vec<(u64, u64, String, u64, u64)> {
    let mut out = vec![CtlCodeName::default(); abi::MAX_CODE_NAMES + 1];
    let n = e.code_name_list(&mut out);
    assert_eq!(n, e.code_names());
    out[..n]
        .iter()
        .map(|x| {
            let len = x.name.iter().position(|&b| b == 0).unwrap_or(x.name.len());
            let name = String::from_utf8_lossy(&x.name[..len]).into_owned();
            (x.start, x.size, name, x.since_ns, x.until_ns)
        })
        .collect()
}

fn word(s: &[u8]) -> u64 {
    let mut b = [0; 8];
    b[..s.len()].copy_from_slice(s);
    u64::from_le_bytes(b)
}

const LIVE: u64 = u64::MAX;

#[test]
fn a_code_name_is_retired_by_what_overlaps_it_and_kept_for_older_records() {
    let mut e = engine();
    let m = 0xffff_ffff_a000_0000_u64;
    let k = 0xffff_ffff_8100_0000_u64;
    // A 17-byte name in three calls; a second module; the kernel below both.
    e.name_code(m, 0x4000, 0, word(b"kvm_isol"), 5).unwrap();
    e.name_code(m, 0x4000, 1, word(b"ate_gues"), 5).unwrap();
    e.name_code(m, 0x4000, 2, word(b"t"), 5).unwrap();
    e.name_code(m + 0x8000, 0x2000, 0, word(b"ki_rogue"), 5)
        .unwrap();
    e.name_code(k, 0x100_0000, 0, word(b"vmlinux"), 5).unwrap();
    assert_eq!(
        code_names(&e),
        [
            (k, 0x100_0000, "vmlinux".into(), 5, LIVE),
            (m, 0x4000, "kvm_isolate_guest".into(), 5, LIVE),
            (m + 0x8000, 0x2000, "ki_rogue".into(), 5, LIVE),
        ]
    );
    // More bytes only for a range that is named, exactly; nothing changes otherwise.
    let before = code_names(&e);
    assert_eq!(e.name_code(m, 0x3000, 1, word(b"x"), 6), Err(Error::NoEnt));
    assert_eq!(
        e.name_code(m + 0x1000, 0x3000, 1, word(b"x"), 6),
        Err(Error::NoEnt)
    );
    assert_eq!(e.name_code(m + 0x10, 0, 0, 0, 6), Err(Error::NoEnt));
    assert_eq!(code_names(&e), before);
    // Removing retires: the name stays for records of its time, and takes no more bytes.
    e.name_code(m, 0, 0, 0, 6).unwrap();
    assert_eq!(e.name_code(m, 0, 0, 0, 7), Err(Error::NoEnt), "retired already");
    assert_eq!(e.name_code(m, 0x4000, 1, word(b"x"), 7), Err(Error::NoEnt));
    assert_eq!(code_names(&e)[1], (m, 0x4000, "kvm_isolate_guest".into(), 5, 6));
    // A module loaded where the rogue was, larger: the rogue's name is retired, and the
    // same module loaded again gets a name of its own (its records tell the loads apart).
    e.name_code(m + 0x7000, 0x2000, 0, word(b"ki_keepe"), 8).unwrap();
    e.name_code(m + 0x7000, 0x2000, 1, word(b"r"), 8).unwrap();
    e.name_code(m + 0x7000, 0x2000, 0, word(b"ki_keepe"), 9).unwrap();
    e.name_code(m + 0x7000, 0x2000, 1, word(b"r"), 9).unwrap();
    assert_eq!(
        code_names(&e)[2..],
        [
            (m + 0x7000, 0x2000, "ki_keeper".into(), 8, 9),
            (m + 0x7000, 0x2000, "ki_keeper".into(), 9, LIVE),
            (m + 0x8000, 0x2000, "ki_rogue".into(), 5, 8),
        ]
    );
    // The guest's reboot retires every name at once.
    e.name_code(0, 0, 0, 0, 10).unwrap();
    assert!(code_names(&e).iter().all(|x| x.4 != LIVE));
    assert_eq!(code_names(&e).len(), 5);
}

#[test]
fn code_names_are_bounded_the_longest_retired_going_first() {
    let mut e = engine();
    let base = 0xffff_ffff_c000_0000_u64;
    for i in 0..abi::MAX_CODE_NAMES as u64 {
        e.name_code(base + i * 0x1000, 0x1000, 0, word(b"m"), 5)
            .unwrap();
    }
    let full = code_names(&e);
    // Full of live names: one more is refused, and changes nothing, even over another.
    for start in [base - 0x1000, base] {
        assert_eq!(
            e.name_code(start, 0x1000, 0, word(b"more"), 6),
            Err(Error::NoSpc)
        );
    }
    assert_eq!(code_names(&e), full, "nothing changed");
    // Two retired (the second one first): a new name takes the longest retired's place.
    e.name_code(base + 0x2000, 0, 0, 0, 7).unwrap();
    e.name_code(base + 0x1000, 0, 0, 0, 8).unwrap();
    e.name_code(base - 0x1000, 0x1000, 0, word(b"new"), 9).unwrap();
    let now = code_names(&e);
    assert_eq!(now.len(), abi::MAX_CODE_NAMES);
    assert_eq!(now[0], (base - 0x1000, 0x1000, "new".into(), 9, LIVE));
    assert!(!now.iter().any(|x| x.0 == base + 0x2000), "retired at 7: gone");
    assert!(now.iter().any(|x| x.0 == base + 0x1000 && x.4 == 8), "retired at 8: kept");
    // Locking changes nothing about names (they decide nothing).
    e.set_locked(true);
    e.name_code(base - 0x2000, 0x1000, 0, word(b"late"), 10)
        .unwrap();
    assert_eq!(code_names(&e)[0].2, "late");
}

// ---- what profiles name by (module, offset) ----

#[test]
fn regions_are_numbered_in_the_order_added_whatever_their_addresses() {
    let mut e = engine();
    // Domain 1 gets two more regions, the second below its first: numbers go by order.
    for gfn in [0x280, 0x180] {
        let r = Region {
            index: 7, // ignored: add_region numbers it
            gfn,
            npages: 1,
            rights: R,
            domain: 1,
        };
        e.check_region(&r).unwrap();
        e.add_region(r).unwrap();
    }
    let mut out = [CtlRegion::default(); 8];
    let n = e.region_list(&mut out);
    let got: Vec<(u32, u32, u64, u64, u32)> = out[..n]
        .iter()
        .map(|x| (x.domain, x.index, x.gpa, x.npages, x.access))
        .collect();
    assert_eq!(
        got,
        [
            (1, 0, 0x200 * P, 4, u32::from(R | W)),
            (1, 1, 0x280 * P, 1, u32::from(R)),
            (1, 2, 0x180 * P, 1, u32::from(R)),
            (2, 0, 0x400 * P, 1, u32::from(R)),
        ]
    );
    // A short buffer gets what fits, still by domain and number.
    let mut two = [CtlRegion::default(); 2];
    assert_eq!(e.region_list(&mut two), 2);
    assert!(two[0].domain <= two[1].domain);
    // A destroyed domain's numbers start again from 0 in the next domain of that view.
    e.destroy_domain(2);
    e.create_domain(2).unwrap();
    let r = Region {
        index: 0,
        gfn: 0x600,
        npages: 1,
        rights: R,
        domain: 2,
    };
    e.check_region(&r).unwrap();
    e.add_region(r).unwrap();
    let n = e.region_list(&mut out);
    assert_eq!((out[n - 1].domain, out[n - 1].index), (2, 0));
}

#[test]
fn code_span_is_from_the_lowest_code_address_to_the_highest_end() {
    let mut e = engine();
    assert_eq!(e.code_span(1), Some((0x1000_0000, 0x1000_2000)));
    assert_eq!(e.code_span(2), Some((0x2000_0000, 0x2000_2000)));
    assert_eq!(e.code_span(3), None);
    // A range below the first one moves it; one above does not.
    for (start, gfn) in [(0x0f00_0000u64, 0x700u64), (0x1100_0000, 0x800)] {
        let c = Code {
            start,
            end: start + P,
            gfn,
            npages: 1,
            domain: 1,
        };
        e.check_code(1, &c, true).unwrap();
        e.add_code(c).unwrap();
    }
    assert_eq!(e.code_span(1), Some((0x0f00_0000, 0x1100_1000)));
}

#[test]
fn an_entry_point_may_leave_its_gpa_to_the_domains_code() {
    let mut e = engine();
    let mut v = [ctl_entry(1, 0x1000_0040, ctl::GPA_FROM_CODE)];
    assert_eq!(e.check_entries(&mut v), Ok(()));
    assert_eq!(v, [ctl_entry(1, 0x1000_0040, 0x100 * P + 0x40)]);
    // Outside the domain's code there is nothing to take it from: refused, nothing changed.
    let before = e.entries().to_vec();
    let mut out = [
        ctl_entry(1, 0x1000_0040, ctl::GPA_FROM_CODE),
        ctl_entry(1, 0x3000_0000, ctl::GPA_FROM_CODE),
    ];
    assert_eq!(import_entries(&mut e, &out.clone()), Err(Error::NoEnt));
    assert_eq!(e.entries(), &before[..]);
    // Domain 2's address named for domain 1 is refused too.
    out[1] = ctl_entry(1, 0x2000_0040, ctl::GPA_FROM_CODE);
    assert_eq!(e.check_entries(&mut out), Err(Error::NoEnt));
    // Accepted, it is an entry point like any other.
    import_entries(&mut e, &[ctl_entry(1, 0x1000_0040, ctl::GPA_FROM_CODE)]).unwrap();
    assert!(e.is_entry(&Gate {
        gpa: 0x100 * P + 0x40,
        gva: 0x1000_0040,
        domain: 1,
    }));
}

#[test]
fn an_interrupt_taken_at_an_entry_point_leaves_no_return_site_behind() {
    // Seen in the L2 guest: the timer interrupt arrives on the first instruction after the
    // entry's switch, so the handler's fetch leaves domain 1's view with the entry point on the
    // stack, and the handler's iret comes back to it from view 0 with the caller's return
    // address on top: an entry. The site the interrupt recorded used to stay pending for good.
    let mut e = gated();
    let call = fetch(0, ENTRY, gpa1(ENTRY), called_from(CALLER));
    assert_eq!(e.handle(&call), switch(1, None));
    let irq = fetch(1, FOREIGN, HELPER_PAGE + 0x10, called_from(ENTRY));
    let o = e.handle(&irq);
    assert_eq!(o.gate, Some(GateOp::Called(gate1(ENTRY))));
    assert_eq!(e.pending(&gate1(ENTRY)), 1);
    // The iret: the entry point's fetch, the caller's return address on top again.
    assert_eq!(
        e.handle(&call),
        switch(1, Some(GateOp::Returned(gate1(ENTRY))))
    );
    assert_eq!((e.pending(&gate1(ENTRY)), e.return_sites()), (0, 0));
    // With nothing pending it is the plain entry it always was.
    assert_eq!(e.handle(&call), switch(1, None));
    assert_eq!(e.return_sites(), 0);
}

/// The fault of an interrupt handler's first fetch in domain 1's view: the event interrupted
/// `rip` (outside the domain) with `top` at the top of its stack, which a `ret` may have just
/// popped `popped` from (the word below it).
fn irq_at(rip: u64, popped: u64, top: u64, event: impl FnOnce(Event) -> Event) -> Fault {
    let at = 0xffff_c900_0000_7e00;
    fetch(
        1,
        FOREIGN,
        HELPER_PAGE + 0x10,
        Some(Stack {
            below: 0x5555,
            top: rip,
            event: Some(event(Event {
                at,
                cs: 0x10,
                rflags: 0x246,
                rsp: at + 40 + 8,
                ss: 0x18,
                below: popped,
                top,
            })),
        }),
    )
}

#[test]
fn an_interrupt_before_a_callees_first_fetch_records_the_calls_return_site() {
    // Seen in the L2 guest on the sanitizer host: the keeper's `call scnprintf` completed in its
    // view, and the timer interrupt was taken before scnprintf's first fetch. The handler's
    // fetch left the view with scnprintf at the top of the frame, and the return address was
    // one level up, on the interrupted stack; nothing was recorded, and scnprintf's return into
    // the keeper was denied.
    let callee = 0x7000_9000;
    let mut e = gated();
    let o = e.handle(&irq_at(callee, 0x1234, SITE, |x| x));
    assert_eq!(o.decision, Decision::Leave);
    assert_eq!(o.gate, Some(GateOp::Called(gate1(SITE))));
    // The callee's return into the domain is the call's return.
    let back = fetch(0, SITE, gpa1(SITE), Some(Stack { event: None, below: SITE, top: 0 }));
    assert_eq!(
        e.handle(&back),
        switch(1, Some(GateOp::Returned(gate1(SITE))))
    );
    assert_eq!(e.return_sites(), 0);
}

#[test]
fn an_interrupted_ret_or_jmp_out_of_a_domain_records_nothing() {
    let target = 0x7000_9000;
    let e = gated();
    // A `ret` out of the domain, interrupted at its target: the target was popped from just
    // below the interrupted RSP, whatever the word at it (even an address in the domain).
    assert_eq!(e.decide(&irq_at(target, target, SITE, |x| x)).gate, None);
    // A `jmp` (tail call) out: the top is the domain's caller's return address.
    assert_eq!(e.decide(&irq_at(target, 0x1234, CALLER, |x| x)).gate, None);
    // Words that are no event's frame: a user CS or SS, RFLAGS without its always-one bit or
    // with a reserved bit, an interrupted RSP not right above the frame (another stack).
    for bad in [
        |x: Event| Event { cs: 0x33, ..x },
        |x: Event| Event { ss: 0x2b, ..x },
        |x: Event| Event { rflags: 0x244, ..x },
        |x: Event| Event { rflags: 0x246 | 1 << 22, ..x },
        |x: Event| Event { rsp: x.at + 40 + 16, ..x },
        |x: Event| Event { rsp: x.at, ..x },
    ] {
        let f = irq_at(target, 0x1234, SITE, bad);
        assert_eq!(e.decide(&f).gate, None, "{:x?}", f.stack);
    }
    // Without the event's words (KVM could not read them), as before: nothing.
    let mut f = irq_at(target, 0x1234, SITE, |x| x);
    f.stack = f.stack.map(|s| Stack { event: None, ..s });
    assert_eq!(e.decide(&f).gate, None);
}

/// The fault of an exception handler's first fetch in domain 1's view, for an exception with
/// error code `code` taken at `rip`: the code at RSP, the frame one word up.
fn exception_at(rip: u64, code: u64, frame: impl FnOnce(Event) -> Event) -> Fault {
    let at = 0xffff_c900_0000_7e00;
    fetch(
        1,
        FOREIGN,
        HELPER_PAGE + 0x10,
        Some(Stack {
            below: 0x5555,
            top: code,
            event: Some(frame(Event {
                at,
                cs: rip,
                rflags: 0x10,
                rsp: 0x246,
                ss: at + 48 + 8,
                // The word "at the interrupted RSP" read at RFLAGS - 8: KVM could not.
                below: 0,
                top: 0,
            })),
        }),
    )
}

#[test]
fn a_page_fault_in_a_domain_records_its_rip_as_the_return_site() {
    // Seen in the L2 guest: the keeper copying its answer into a reader's buffer not faulted in
    // yet (dd bs=1M) took a page fault in its own code; the error code was at RSP, the frame's
    // RIP one word up, so nothing was recorded, and in learn mode the handler's return was
    // learned as an entry point in the middle of the keeper (denied under enforcement).
    let mut e = gated();
    let o = e.handle(&exception_at(SITE, 2, |x| x));
    assert_eq!(o.decision, Decision::Leave);
    assert_eq!(o.gate, Some(GateOp::Called(gate1(SITE))));
    let back = fetch(0, SITE, gpa1(SITE), Some(Stack { event: None, below: 0, top: 0 }));
    assert_eq!(
        e.handle(&back),
        switch(1, Some(GateOp::Returned(gate1(SITE))))
    );
    assert_eq!(e.return_sites(), 0);
}

#[test]
fn words_that_are_no_error_code_frame_record_nothing() {
    let e = gated();
    // A user CS, RFLAGS without its always-one bit or with a reserved bit, an interrupted RSP
    // not right above the six words, a RIP outside the domain.
    for bad in [
        |x: Event| Event { rflags: 0x33, ..x },
        |x: Event| Event { rsp: 0x244, ..x },
        |x: Event| Event { rsp: 0x246 | 1 << 22, ..x },
        |x: Event| Event { ss: x.at + 48 + 16, ..x },
        |x: Event| Event { ss: x.at + 40, ..x },
        |x: Event| Event { cs: 0x7000_9000, ..x },
    ] {
        let f = exception_at(SITE, 2, bad);
        assert_eq!(e.decide(&f).gate, None, "{:x?}", f.stack);
    }
    // An "error code" no CPU pushes (above 32 bits): not a frame.
    assert_eq!(e.decide(&exception_at(SITE, 1 << 32, |x| x)).gate, None);
    // The right words with the frame's RIP, each shape still recognized.
    assert_eq!(
        e.decide(&exception_at(SITE, 0, |x| x)).gate,
        Some(GateOp::Called(gate1(SITE)))
    );
}
