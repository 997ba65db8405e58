// SPDX-License-Identifier: GPL-2.0

//! The policy engine: decisions, learning, profiles, modes and the lock, the log; property tests
//! against a naive model.

use kvm_isolate_core::abi::Error;
use kvm_isolate_core::ctl::{self, CtlRecord, CtlRule};
use kvm_isolate_core::policy::*;
use proptest::prelude::*;

const P: u64 = 4096;
const R: u8 = 1;
const W: u8 = 2;
const X: u8 = 4;

/// Domain 1: code at gva 0x1000_0000 (2 pages, gfn 0x100), region gfn 0x200 (4 pages, RW).
/// Domain 2: code at gva 0x2000_0000 (1 page, gfn 0x300), region gfn 0x400 (1 page, R).
fn engine() -> Box<Engine> {
    let mut e = Box::new(Engine::new());
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
    }
}

const FOREIGN: u64 = 0x7000_0123;

#[test]
fn all_zero_engine_is_empty() {
    // The kernel allocates the engine zeroed; that must be the same as `Engine::new()`.
    let z: Box<Engine> = unsafe { Box::<Engine>::new_zeroed().assume_init() };
    let n = Engine::new();
    assert_eq!(z.mode(), n.mode());
    assert_eq!(z.deny(), n.deny());
    assert_eq!(z.locked(), n.locked());
    assert_eq!(z.domain_bits(), 0);
    assert!(z.regions().is_empty() && z.code().is_empty() && z.rules().is_empty());
    assert_eq!(z.log.len(), 0);
    assert_eq!((z.log.written, z.log.dropped), (0, 0));
}

#[test]
fn not_ours_outside_regions() {
    let e = engine();
    let o = e.decide(&fault(0, 0x500 * P, FOREIGN, R));
    assert_eq!(o.decision, Decision::NotOurs);
    assert_eq!(o.log, None);
}

#[test]
fn enforce_allows_owner_and_denies_others() {
    let mut e = engine();
    e.set_mode(0, Some(Mode::Enforce));
    let own = e.decide(&fault(0, 0x201 * P + 8, 0x1000_0010, W));
    assert_eq!(own.decision, Decision::Switch(1));
    assert_eq!(own.log, None);
    let other = e.decide(&fault(0, 0x201 * P, FOREIGN, R));
    assert_eq!(other.decision, Decision::Deny(Deny::Exit));
    assert_eq!(other.domain, 1);
    assert_eq!(other.log, Some(ctl::LOG_DENIED));
    // Domain 2's code is no owner of domain 1's region either.
    let d2 = e.decide(&fault(0, 0x200 * P, 0x2000_0000, R));
    assert_eq!(d2.decision, Decision::Deny(Deny::Exit));
    e.set_deny(Deny::Gp);
    assert_eq!(
        e.decide(&fault(0, 0x200 * P, FOREIGN, R)).decision,
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
    assert_eq!(e.handle(&f), o);
    assert_eq!(e.rules().len(), 1);
    assert_eq!(e.counters(1).learned, 1);
    // Known now: no second rule, no log.
    let again = e.decide(&f);
    assert_eq!((again.learn, again.log), (None, None));
    e.set_mode(0, Some(Mode::Enforce));
    assert_eq!(e.decide(&f).decision, Decision::Switch(1));
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
    // Profile-named code may run in the view whose region it may access.
    e.learn(Rule {
        region: 0x200,
        start: 0x7000_0000,
        end: 0x7000_1000,
        rights: R,
        domain: 1,
    })
    .unwrap();
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
    // ... and switched into view 1 with one.
    e.learn(Rule {
        region: 0x200,
        start: 0x2000_0000,
        end: 0x2000_2000,
        rights: R,
        domain: 1,
    })
    .unwrap();
    assert_eq!(e.decide(&f).decision, Decision::Switch(1));
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
    assert_eq!(e.create_domain(16), Err(Error::Inval));
}

fn rule(region: u64, start: u64, end: u64, rights: u8) -> Rule {
    Rule {
        region,
        start,
        end,
        rights,
        domain: 1,
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
    e.learn(rule(0x200, 0x7000_4000, 0x7000_5000, R | W))
        .unwrap();
    let mut out: Vec<CtlRule> = e.profile().collect();
    let mut f = engine();
    f.check_profile(&mut out).unwrap();
    f.set_profile(&out);
    assert_eq!(e.rules(), f.rules());
    f.set_mode(0, Some(Mode::Enforce));
    assert_eq!(
        f.decide(&fault(0, 0x200 * P, 0x7000_4100, W)).decision,
        Decision::Switch(1)
    );
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

// ---- property tests against a naive model ----

/// The naive model: linear scans over unsorted lists, the decision written out again.
struct Naive<'a>(&'a Engine);

impl Naive<'_> {
    fn decide(&self, f: &Fault) -> Decision {
        let e = self.0;
        let gfn = f.gpa / P;
        let region = e
            .regions()
            .iter()
            .find(|r| gfn >= r.gfn && gfn < r.gfn + r.npages);
        let code = e.code().iter().find(|c| f.rip >= c.start && f.rip < c.end);
        let allowed_by_rule = |r: &Region| {
            e.rules().iter().any(|x| {
                x.region == r.gfn && f.rip >= x.start && f.rip < x.end && x.rights & f.access != 0
            })
        };
        if e.is_domain(f.view) {
            if f.access == X {
                let any_rule = e
                    .rules()
                    .iter()
                    .any(|x| x.domain == f.view && f.rip >= x.start && f.rip < x.end);
                let mine = code.is_some_and(|c| c.domain == f.view);
                if !mine && !any_rule {
                    return Decision::Leave;
                }
                // A region's page is never made executable: it is decided as a region access.
                if region.is_none() {
                    return Decision::GrantExec;
                }
            }
            if region.is_some_and(|r| r.domain == f.view) {
                return Decision::Deny(e.deny());
            }
        }
        let Some(r) = region else {
            return Decision::NotOurs;
        };
        if r.rights & f.access == 0 {
            return Decision::Deny(e.deny());
        }
        let owner = code.is_some_and(|c| c.domain == r.domain);
        match e.effective_mode(r.domain) {
            Mode::Learn if !owner && f.rip >= u64::MAX - (P - 1) && !allowed_by_rule(r) => {
                Decision::Deny(e.deny())
            }
            Mode::Off | Mode::Learn => Decision::Switch(r.domain),
            Mode::Enforce if owner || allowed_by_rule(r) => Decision::Switch(r.domain),
            Mode::Enforce => Decision::Deny(e.deny()),
        }
    }
}

fn access() -> impl Strategy<Value = u8> {
    prop_oneof![Just(R), Just(W), Just(X)]
}

/// A random engine: up to 15 domains with a few code ranges and regions each, random rules.
fn arb_engine() -> impl Strategy<Value = Box<Engine>> {
    (
        1usize..=15,
        prop::collection::vec((0u64..64, 1u64..4, 1u8..8), 0..60),
        prop::collection::vec((0u64..64, 0u64..64, 1u64..4, 1u8..8), 0..200),
        0u8..3,
    )
        .prop_map(|(ndom, regions, rules, mode)| {
            let mut e = Box::new(Engine::new());
            for d in 1..=ndom as u8 {
                e.create_domain(d).unwrap();
                // Domain d's code: gva d << 24, 4 pages, gfn 0x10000 + d * 16.
                let c = Code {
                    start: u64::from(d) << 24,
                    end: (u64::from(d) << 24) + 4 * P,
                    gfn: 0x10000 + u64::from(d) * 16,
                    npages: 4,
                    domain: d,
                };
                e.check_code(d, &c, false).unwrap();
                e.add_code(c).unwrap();
            }
            for (i, (slot, n, rights)) in regions.into_iter().enumerate() {
                let r = Region {
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
                for (ri, page, n, rights) in rules {
                    let r = regions[ri as usize % regions.len()];
                    let start = 0x7000_0000 + page * P;
                    let _ = e.learn(Rule {
                        region: r.gfn,
                        start,
                        end: start + n * P,
                        rights,
                        domain: r.domain,
                    });
                }
            }
            e.set_mode(0, Mode::from_u32(u32::from(mode)));
            e
        })
}

fn arb_fault() -> impl Strategy<Value = Fault> {
    (
        0u8..16,
        0u64..(64 * 8 + 8),
        prop_oneof![
            (1u64..16).prop_map(|d| (d << 24) + 0x123),
            (0u64..80).prop_map(|p| 0x7000_0000 + p * P + 8),
            Just(FOREIGN),
        ],
        access(),
    )
        .prop_map(|(view, gfn, rip, access)| Fault {
            view,
            gpa: gfn * P + 16,
            rip,
            access,
        })
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
    fn decide_matches_the_naive_model(e in arb_engine(), faults in prop::collection::vec(arb_fault(), 1..50)) {
        for f in &faults {
            prop_assert_eq!(e.decide(f).decision, Naive(&e).decide(f), "{:?}", f);
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

    /// What a workload did in learn mode, it may do in enforce mode: zero denials.
    #[test]
    fn learned_workload_is_never_denied(e in arb_engine(), faults in prop::collection::vec(arb_fault(), 1..100)) {
        let mut e = e;
        e.set_mode(0, Some(Mode::Learn));
        let mut learned = Vec::new();
        for f in faults.iter().filter(|f| f.view == 0) {
            let o = e.decide(f);
            if let Some(rule) = o.learn {
                if e.learn(rule).is_err() {
                    continue; // profile full or clash: the kernel denies these in learn mode too
                }
            }
            if let Decision::Switch(_) = o.decision {
                learned.push(*f);
            }
        }
        e.set_mode(0, Some(Mode::Enforce));
        for f in &learned {
            prop_assert!(matches!(e.decide(f).decision, Decision::Switch(_)), "{:?}", f);
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
