// SPDX-License-Identifier: GPL-2.0

//! Fuzz bodies shared by the cargo-fuzz targets and `tests/fuzz_bodies.rs`: each turns bytes into
//! calls and panics if an invariant breaks.

use kvm_isolate_core::abi::{self, Call, Error};
use kvm_isolate_core::ctl::{self, CtlRule};
use kvm_isolate_core::policy::{Code, Decision, Engine, Fault, GateOp, Mode, Region, Rule, Stack};

fn words(data: &[u8]) -> impl Iterator<Item = u64> + '_ {
    data.chunks(8).map(|c| {
        let mut b = [0u8; 8];
        b[..c.len()].copy_from_slice(c);
        u64::from_le_bytes(b)
    })
}

/// Decodes (nr, 4 args) tuples; every accepted call must be within the ABI's limits, and every
/// refusal must be one the decoder can give for that function (it needs no VM state: ENOSYS for
/// an unknown function, EPERM for destroying view 0, ERANGE for a guest-physical range, EINVAL
/// for the rest).
pub fn abi_decode(data: &[u8]) {
    let w: Vec<u64> = words(data).collect();
    for c in w.chunks(5) {
        let mut a = [0u64; 4];
        for (i, v) in c.iter().skip(1).enumerate() {
            a[i] = *v;
        }
        // Keep the function number mostly inside the range.
        let nr = abi::HC_FIRST + c[0] % 32;
        let in_range = |gfn: u64, n: u64| {
            n >= 1 && n <= abi::MAX_PAGES && (gfn + n) * abi::PAGE_SIZE <= abi::GPA_LIMIT
        };
        match abi::decode(nr, a) {
            Ok(Call::SetAccess {
                view,
                gfn,
                npages,
                access,
            }) => {
                assert!(u64::from(view) < abi::MAX_VIEWS && access <= 0xf && in_range(gfn, npages));
            }
            Ok(Call::DomainAddRegion {
                domain,
                gfn,
                npages,
                access,
            }) => {
                assert!(domain >= 1 && u64::from(domain) < abi::MAX_VIEWS);
                assert!(access >= 1 && access <= 7 && in_range(gfn, npages));
            }
            Ok(Call::DomainAddCode {
                domain,
                gva,
                gfn,
                npages,
            }) => {
                assert!(domain >= 1 && u64::from(domain) < abi::MAX_VIEWS);
                assert!(gva % abi::PAGE_SIZE == 0 && in_range(gfn, npages));
                assert!(gva.checked_add(npages * abi::PAGE_SIZE).is_some());
            }
            Ok(Call::Switch(v)) | Ok(Call::ViewDestroy(v)) | Ok(Call::DomainDestroy(v)) => {
                assert!(u64::from(v) < abi::MAX_VIEWS)
            }
            Ok(Call::DomainAddEntry { domain, gva: _ }) => {
                assert!(domain >= 1 && u64::from(domain) < abi::MAX_VIEWS);
                assert!(a[2] == 0 && a[3] == 0);
            }
            Ok(Call::SetMode { domain, mode }) => {
                assert!(u64::from(domain) < abi::MAX_VIEWS);
                assert!(mode.is_some_and(|m| m <= 2) || (mode.is_none() && domain != 0));
            }
            Ok(Call::DomainSwitchable(d)) => {
                assert!(a[1..] == [0; 3] && d != 0 && u64::from(d) < abi::MAX_VIEWS);
            }
            Ok(Call::DomainName {
                domain,
                chunk,
                bytes,
            }) => {
                assert!(domain != 0 && u64::from(domain) < abi::MAX_VIEWS);
                assert!(a[1] == u64::from(chunk) * 16 && usize::from(chunk) < abi::NAME_LEN / 16);
                assert!(bytes == [a[2], a[3]]);
                let ok = |b: &u8| *b == 0 || (0x20..0x7f).contains(b);
                assert!(bytes.iter().all(|w| w.to_le_bytes().iter().all(ok)));
            }
            Ok(Call::CodeName {
                start,
                size,
                chunk,
                bytes,
            }) => {
                assert!([start, size, bytes] == [a[0], a[1], a[3]]);
                assert!(a[2] == u64::from(chunk) * 8 && usize::from(chunk) < abi::NAME_LEN / 8);
                assert!(size <= abi::CODE_NAME_MAX_SIZE && start.checked_add(size).is_some());
                assert!(start != 0 || (size == 0 && bytes == 0));
                assert!(size != 0 || chunk == 0);
                let ok = |b: &u8| *b == 0 || (0x20..0x7f).contains(b);
                assert!(bytes.to_le_bytes().iter().all(ok));
            }
            Ok(Call::VeInfo(page)) => {
                assert!(a[1..] == [0; 3]);
                match page {
                    Some(gfn) => assert!(a[0] == gfn * abi::PAGE_SIZE && a[0] < abi::GPA_LIMIT),
                    None => assert!(a[0] == u64::MAX),
                }
            }
            Ok(_) => {}
            Err(e) => {
                let known = (abi::HC_FIRST..=abi::HC_CODE_NAME).contains(&nr);
                let why = match e {
                    Error::NoSys => !known,
                    Error::Perm => nr == abi::HC_VIEW_DESTROY && a[0] == 0,
                    Error::Range => [
                        abi::HC_SET_ACCESS,
                        abi::HC_QUERY,
                        abi::HC_DOMAIN_ADD_CODE,
                        abi::HC_DOMAIN_ADD_REGION,
                        abi::HC_VE_INFO,
                    ]
                    .contains(&nr),
                    Error::Inval => known,
                    _ => false,
                };
                assert!(why, "{nr:#x} {a:x?}: {e:?}");
            }
        }
        // All-zero arguments (a short last chunk): each function's answer is known exactly.
        if a == [0; 4] {
            let want = match nr {
                abi::HC_PROBE => Ok(Call::Probe),
                abi::HC_VERSION => Ok(Call::Version),
                abi::HC_VIEW_CREATE => Ok(Call::ViewCreate),
                abi::HC_VIEW_DESTROY => Err(Error::Perm),
                abi::HC_SET_ACCESS => Err(Error::Range),
                abi::HC_SWITCH => Ok(Call::Switch(0)),
                abi::HC_QUERY => Ok(Call::QueryView),
                abi::HC_ON_VIOLATION => Ok(Call::OnViolation(abi::OnViolation::Exit)),
                abi::HC_DOMAIN_CREATE => Ok(Call::DomainCreate),
                abi::HC_DOMAIN_ADD_CODE
                | abi::HC_DOMAIN_ADD_REGION
                | abi::HC_DOMAIN_DESTROY
                | abi::HC_DOMAIN_ADD_ENTRY
                | abi::HC_DOMAIN_SWITCHABLE
                | abi::HC_DOMAIN_NAME => Err(Error::Inval),
                abi::HC_SET_MODE => Ok(Call::SetMode {
                    domain: 0,
                    mode: Some(0),
                }),
                abi::HC_LOCK => Ok(Call::Lock),
                abi::HC_VE_INFO => Ok(Call::VeInfo(Some(0))),
                abi::HC_CODE_NAME => Ok(Call::CodeName {
                    start: 0,
                    size: 0,
                    chunk: 0,
                    bytes: 0,
                }),
                _ => Err(Error::NoSys),
            };
            assert_eq!(abi::decode(nr, a), want, "{nr:#x}");
        } else if [
            abi::HC_PROBE,
            abi::HC_VERSION,
            abi::HC_VIEW_CREATE,
            abi::HC_DOMAIN_CREATE,
            abi::HC_LOCK,
        ]
        .contains(&nr)
        {
            // They take no argument.
            assert_eq!(abi::decode(nr, a), Err(Error::Inval), "{nr:#x} {a:x?}");
        }
    }
}

/// A code location picked by `x` among the engine's code ranges: its virtual address and the
/// physical address behind it.
fn code_loc(e: &Engine, x: u64) -> Option<(u64, u64)> {
    let c = e.code().get((x % 64) as usize % e.code().len().max(1))?;
    // Instruction-like offsets, few enough that faults meet entry points and return sites.
    let off = ((x >> 8) % (c.npages * 4096)) & !0x3f;
    Some((c.start + off, c.gfn * 4096 + off))
}

/// The rules trusted on their own.
/// The rights the rules give code at `rip` over each of domain `d`'s regions.
/// With `trusted`, of its rules trusted on their own only.
fn rights(e: &Engine, d: u8, rip: u64, trusted: bool) -> Vec<u8> {
    e.regions()
        .iter()
        .filter(|r| r.domain == d)
        .map(|r| {
            e.rule_at(r.gfn, rip)
                .filter(|x| x.trusted || !trusted)
                .map_or(0, |x| x.rights & r.rights)
        })
        .collect()
}

fn trusted(e: &Engine) -> Vec<Rule> {
    e.rules().iter().copied().filter(|x| x.trusted).collect()
}

/// Builds an engine from the first bytes (domains, code, regions, entry points, an imported
/// profile with rules trusted on their own or not, mode), then handles faults made from the rest,
/// fetches often at code locations with stacks that often point into code; checks the decisions'
/// basic laws and the engine's invariants after each.
pub fn decide(data: &[u8]) {
    let mut e = Box::new(Engine::new());
    let mut w = words(data);
    let n = (w.next().unwrap_or(0) % 15) as u8 + 1;
    for d in 1..=n {
        let _ = e.create_domain(d);
    }
    for _ in 0..8 {
        let (Some(a), Some(b)) = (w.next(), w.next()) else {
            break;
        };
        let d = (a % 16) as u8;
        let start = (b % 64) << 20;
        let c = Code {
            start,
            end: start + 4096 * (1 + a % 4),
            gfn: b % 4096,
            npages: 1 + a % 4,
            domain: d,
        };
        if e.check_code(d, &c, false).is_ok() {
            e.add_code(c).unwrap();
        }
        let r = Region {
            index: 0,
            gfn: (b >> 8) % 4096,
            npages: 1 + (a >> 8) % 8,
            rights: ((a >> 16) % 7 + 1) as u8,
            domain: d,
        };
        if e.check_region(&r).is_ok() {
            e.add_region(r).unwrap();
        }
        // An entry point at a code location (of any domain: check_entry refuses the others').
        if let Some((gva, _)) = code_loc(&e, a >> 24) {
            if let Ok(g) = e.check_entry(d, gva, false) {
                assert_eq!(e.gate_at(d, gva), Some(g));
                e.add_entry(g).unwrap();
                assert_eq!(e.check_entry(d, gva, false), Err(Error::Exist));
            }
        }
    }
    // A profile as the administrator imports it: rules of the regions at the addresses faults
    // use (code range starts), some trusted on their own; all of it or nothing, as the kernel.
    let mut profile = Vec::new();
    for _ in 0..w.next().unwrap_or(0) % 6 {
        let (Some(a), false) = (w.next(), e.regions().is_empty()) else {
            break;
        };
        let r = e.regions()[(a % 256) as usize % e.regions().len()];
        let start = ((a >> 8) % 64) << 20;
        profile.push(CtlRule {
            domain: u32::from(r.domain),
            access: (((a >> 16) % 7 + 1) as u32 & u32::from(r.rights))
                | if a & 1 << 20 != 0 {
                    ctl::RULE_TRUSTED
                } else {
                    0
                },
            region_gpa: r.gfn * 4096,
            accessor_start: start,
            accessor_end: start + 4096 * (1 + (a >> 24) % 4),
        });
    }
    if e.check_profile(&mut profile).is_ok() {
        e.set_profile(&profile).unwrap();
        assert_eq!(e.profile().collect::<Vec<_>>(), profile);
    }
    // Lenses, in the views above the domains', for the rules' accessors as decisions make them.
    let mut v = n + 1;
    // Entered from the owner's view, and (trusted rules) from outside.
    for x in e.rules().to_vec() {
        for t in [false, x.trusted] {
            if v < 16 && e.lens_for(x.domain, x.start, t).is_none() {
                e.add_lens(v, x.domain, x.start, t).unwrap();
                assert_eq!(e.lens_for(x.domain, x.start, t), Some(v));
                v += 1;
            }
        }
    }
    e.set_mode(0, Mode::from_u32((w.next().unwrap_or(0) % 3) as u32));
    while let (Some(a), Some(b)) = (w.next(), w.next()) {
        let s = w.next().unwrap_or(0);
        let mut f = Fault {
            view: (a % 16) as u8,
            gpa: (b % 4200) * 4096 + (a >> 32) % 4096,
            rip: if a & 1 << 8 != 0 {
                ((b >> 20) % 64) << 20
            } else {
                b
            },
            access: [1u8, 2, 4][((a >> 12) % 3) as usize],
            stack: None,
        };
        if a & 1 << 9 != 0 {
            // A fetch of a code location, at its own address.
            if let Some((gva, gpa)) = code_loc(&e, b) {
                (f.rip, f.gpa, f.access) = (gva, gpa, 4);
            }
        } else if a & 1 << 10 != 0 && !e.rules().is_empty() {
            // An access to a rule's region from its accessor range, or just past its end.
            let x = e.rules()[(b % 4096) as usize % e.rules().len()];
            f.gpa = x.region * 4096 + (b >> 12) % 4096;
            f.rip = x.start + (b >> 24) % (x.end - x.start + 4096);
        }
        let top = code_loc(&e, s >> 8).map_or(s, |x| x.0);
        f.stack = match s % 4 {
            0 => None,
            // A `ret` (the word below RSP is where it went), a call or an event, noise.
            1 => Some(Stack { event: None, below: f.rip, top }),
            2 => Some(Stack { event: None, below: s >> 2, top }),
            _ => Some(Stack { event: None,
                below: s.rotate_left(17),
                top: s,
            }),
        };
        let o = e.decide(&f);
        // Enforcing, only a rule trusted on its own lets a data access in from outside the
        // owner's view; learning never trusts a rule.
        if let (Some(r), Decision::Switch(_)) = (e.region_at(f.gpa / 4096), o.decision) {
            if e.effective_mode(r.domain) == Mode::Enforce {
                let x = e.rule_at(r.gfn, f.rip);
                assert!(
                    x.is_some_and(|x| x.trusted && x.rights & f.access != 0),
                    "{f:?} {x:?}"
                );
            }
        }
        assert!(!o.learn.is_some_and(|r| r.trusted), "{o:?}");
        // Never from a lens into a domain's view, enforcing, but at a way in (its code).
        if let (Some(_), Decision::Switch(s)) = (e.lens(f.view), o.decision) {
            assert!(
                e.effective_mode(s) != Mode::Enforce || e.code_at_gfn(f.gpa / 4096).is_some(),
                "{f:?} {s}"
            );
        }
        // The domain whose view or lens the fault is in.
        let owner = e.lens(f.view).map_or(f.view, |l| l.domain);
        match o.decision {
            Decision::Switch(d) => assert!(e.is_domain(d) && d != f.view),
            Decision::GrantExec => {
                assert!(f.access == 4 && e.is_domain(owner));
                // Only code pages are made executable, never a region's.
                assert!(e.region_at(f.gpa / 4096).is_none(), "{f:?}");
                // Profile code runs with no more than its rules' rights: in the owner's view
                // only if they are all of the owner's, in a lens only if they are the lens's.
                let mine = e
                    .code_at_gfn(f.gpa / 4096)
                    .is_some_and(|c| c.domain == owner);
                match e.lens(f.view) {
                    Some(l) => assert_eq!(
                        rights(&e, owner, f.rip, l.trusted),
                        rights(&e, owner, l.rep, l.trusted)
                    ),
                    None => assert!(mine || e.covers(owner, f.rip), "{f:?}"),
                }
            }
            Decision::Narrow(d) => {
                assert!(
                    e.is_domain(d)
                        && d == owner
                        && e.region_at(f.gpa / 4096).is_none_or(|r| r.domain == d)
                );
                // Out of the owner's view, only code without all of its rights; out of a lens,
                // code without the lens's rights.
                if f.access == 4 {
                    match e.lens(f.view) {
                        Some(l) => {
                            assert!(!l.trusted, "{f:?}");
                            assert_ne!(
                                rights(&e, d, f.rip, false),
                                rights(&e, d, l.rep, false),
                                "{f:?}"
                            )
                        }
                        None => assert!(!e.covers(d, f.rip), "{f:?}"),
                    }
                }
            }
            // From outside: a data access a trusted rule allows (enforcing), or code with other
            // trusted rights in a lens entered that way; never with an untrusted rule's rights.
            Decision::Trusted(d) => {
                assert!(e.is_domain(d));
                match e.lens(f.view) {
                    Some(l) if l.trusted && l.domain == d => {}
                    _ => {
                        let r = e.region_at(f.gpa / 4096).unwrap();
                        let x = e.rule_at(r.gfn, f.rip).unwrap();
                        assert!(
                            r.domain == d && x.trusted && x.rights & f.access != 0,
                            "{f:?}"
                        );
                    }
                }
            }
            Decision::Leave => assert!(f.access == 4 && e.is_domain(owner) && o.domain == owner),
            Decision::NotOurs => assert!(e.region_at(f.gpa / 4096).is_none()),
            Decision::Deny(_) => assert!(o.domain != 0),
        }
        match o.gate {
            Some(GateOp::Learn(g)) => {
                assert_eq!(o.decision, Decision::Switch(g.domain));
                assert_eq!(e.effective_mode(g.domain), Mode::Learn);
                assert_eq!((g.gpa, g.gva), (f.gpa, f.rip));
                assert!(!e.is_entry(&g));
                assert!(e
                    .code_at_gfn(g.gpa / 4096)
                    .is_some_and(|c| c.domain == g.domain));
            }
            Some(GateOp::Called(g)) => {
                // Out of the owner's view only: a lens runs none of the owner's code.
                assert!(matches!(o.decision, Decision::Leave | Decision::Narrow(_)));
                assert_eq!(g.domain, f.view);
                let st = f.stack.unwrap();
                assert!(st.top == g.gva && st.below != f.rip, "{f:?}");
                assert_eq!(e.gate_at(g.domain, g.gva), Some(g));
            }
            Some(GateOp::Returned(g)) => {
                assert_eq!(o.decision, Decision::Switch(g.domain));
                assert!(e.pending(&g) > 0);
            }
            None => {}
        }
        let pending = |e: &Engine| match o.gate {
            Some(GateOp::Called(g) | GateOp::Returned(g)) => e.pending(&g),
            _ => 0,
        };
        let (before, dropped) = (pending(&e), e.returns_dropped);
        let trust = trusted(&e);
        let h = e.handle(&f);
        // Trust never spreads: handling changes no rule trusted on its own.
        assert_eq!(trusted(&e), trust, "{f:?}");
        if h != o {
            // Only what could not be stored turns into a denial.
            assert!(o.learn.is_some() || matches!(o.gate, Some(GateOp::Learn(_))));
            assert_eq!(h.decision, Decision::Deny(e.deny()));
            assert_eq!((h.learn, h.gate), (None, None));
        }
        match h.gate {
            Some(GateOp::Called(_)) => {
                assert!(pending(&e) == before + 1 || e.returns_dropped > dropped)
            }
            Some(GateOp::Returned(_)) => assert_eq!(pending(&e), before - 1),
            _ => {}
        }
        // Learned means known: the same fault learns nothing new.
        if h.learn.is_some() || matches!(h.gate, Some(GateOp::Learn(_))) {
            let again = e.decide(&f);
            assert!(again.learn.is_none(), "{f:?}");
            assert!(!matches!(again.gate, Some(GateOp::Learn(_))), "{f:?}");
        }
        for x in e.rules().windows(2) {
            assert!((x[0].region, x[0].start) < (x[1].region, x[1].start));
            assert!(x[0].region != x[1].region || x[0].end <= x[1].start);
        }
        assert!(e.entries().windows(2).all(|x| x[0] < x[1]));
        for g in e.entries() {
            assert!(e
                .code_at_gfn(g.gpa / 4096)
                .is_some_and(|c| c.domain == g.domain));
        }
        assert!(e.return_sites() <= e.limits().returns);
    }
}
