// SPDX-License-Identifier: GPL-2.0

//! `cargo bench --bench scale`: the decision's latency as a VM grows to many domains and ranges,
//! against a linear scan of the same tables. Each domain owns code ranges and regions, spread
//! over guest-physical memory as real modules are (interleaved, not contiguous); faults mix five
//! kinds of decision: a data access from view 0 (region, then rule), a call into a domain's entry
//! point from outside, a fetch outside the domain's code in its view (does a rule of the domain
//! name the accessor?), a return into the domain at a pending return site, and a fetch of
//! profile code in the domain's view (do its rules give it all of the owner's rights, or does it
//! go to a lens?).

use kvm_isolate_core::policy::*;
use std::hint::black_box;
use std::time::Instant;

const P: u64 = 4096;

struct Vm {
    e: Box<Engine>,
    faults: Vec<Fault>,
}

/// `nd` domains and `nr` ranges: `nr` regions and `nr` code ranges in all, dealt round-robin to
/// the domains, each one page, interleaved in guest-physical memory; one rule per region and one
/// entry point per code range.
fn vm(nd: u64, nr: u64) -> Vm {
    let mut e = Box::new(Engine::new());
    for d in 1..=nd {
        e.create_domain(d as u8).unwrap();
    }
    let dom = |i: u64| (i % nd) as u8 + 1;
    for i in 0..nr {
        let c = Code {
            start: 0xffff_ffff_c000_0000 + i * 2 * P,
            end: 0xffff_ffff_c000_0000 + i * 2 * P + P,
            gfn: 0x10_0000 + i * 2,
            npages: 1,
            domain: dom(i),
        };
        e.check_code(c.domain, &c, false).unwrap();
        e.add_code(c).unwrap();
        let g = e.check_entry(c.domain, c.start, false).unwrap();
        e.add_entry(g).unwrap();
        let r = Region {
            index: 0,
            gfn: 0x10_0001 + i * 2,
            npages: 1,
            rights: 3,
            domain: dom(i),
        };
        e.check_region(&r).unwrap();
        e.add_region(r).unwrap();
        e.learn(Rule {
            region: r.gfn,
            start: 0xffff_ffff_8000_0000 + i * 2 * P,
            end: 0xffff_ffff_8000_0000 + i * 2 * P + P,
            rights: 1,
            domain: dom(i),
            trusted: true,
        })
        .unwrap();
    }
    e.set_mode(0, Some(Mode::Enforce));
    // Each code range's module called out from its second instruction (the helper's first
    // fetch left the domain's view with the return address at RSP): a pending return site each.
    for i in 0..nr {
        e.handle(&Fault {
            view: dom(i),
            gpa: 0x20_0000 * P,
            rip: 0xffff_ffff_9000_0000,
            access: 4,
            stack: Some(Stack { event: None,
                below: 0,
                top: 0xffff_ffff_c000_0000 + i * 2 * P + 16,
            }),
        });
    }
    // The last items: where a scan looks longest.
    let faults = (0..1024u64)
        .map(|k| {
            let i = nr - 1 - (k % nr.min(64));
            match k % 5 {
                0 => Fault {
                    view: 0,
                    gpa: (0x10_0001 + i * 2) * P + 8,
                    rip: 0xffff_ffff_8000_0000 + i * 2 * P + 8,
                    access: 1,
                    stack: None,
                },
                1 => Fault {
                    view: 0,
                    gpa: (0x10_0000 + i * 2) * P,
                    rip: 0xffff_ffff_c000_0000 + i * 2 * P,
                    access: 4,
                    stack: Some(Stack { event: None,
                        below: 0,
                        top: 0xffff_ffff_8100_0000,
                    }),
                },
                2 => Fault {
                    view: dom(i),
                    gpa: 0x20_0000 * P,
                    rip: 0xffff_ffff_9000_0000,
                    access: 4,
                    stack: None,
                },
                // Profile code (region i's reader) called by the module: to a lens.
                4 => Fault {
                    view: dom(i),
                    gpa: 0x20_0000 * P,
                    rip: 0xffff_ffff_8000_0000 + i * 2 * P + 8,
                    access: 4,
                    stack: None,
                },
                // The helper returns into the module at its return site.
                _ => Fault {
                    view: 0,
                    gpa: (0x10_0000 + i * 2) * P + 16,
                    rip: 0xffff_ffff_c000_0000 + i * 2 * P + 16,
                    access: 4,
                    stack: Some(Stack { event: None,
                        below: 0xffff_ffff_c000_0000 + i * 2 * P + 16,
                        top: 0xffff_ffff_8100_0000,
                    }),
                },
            }
        })
        .collect::<Vec<_>>();
    // Had no return site been recorded (or kept: the table holds the most recent ones), the
    // fourth kind would time denials, on which the scan agrees too.
    for f in faults.iter().skip(3).step_by(5) {
        assert_eq!(kind(e.decide(f).decision), 1, "return not switched: {f:?}");
    }
    Vm { e, faults }
}

/// The same decision by scanning every table: the verdict kind only.
fn naive(e: &Engine, f: &Fault) -> u8 {
    let gfn = f.gpa / P;
    if f.access == 4 {
        if f.view != 0 {
            let mine = e
                .code()
                .iter()
                .any(|c| c.domain == f.view && gfn >= c.gfn && gfn < c.gfn + c.npages);
            let named = e
                .rules()
                .iter()
                .any(|x| x.domain == f.view && f.rip >= x.start && f.rip < x.end);
            if mine {
                return 1;
            }
            if !named {
                return 2;
            }
            // All of the owner's rights over each of its regions, or a lens.
            let all = e.regions().iter().filter(|r| r.domain == f.view).all(|r| {
                e.rules().iter().any(|x| {
                    x.region == r.gfn
                        && f.rip >= x.start
                        && f.rip < x.end
                        && x.rights & r.rights == r.rights
                })
            });
            return if all { 1 } else { 4 };
        }
        let Some(c) = e
            .code()
            .iter()
            .find(|c| gfn >= c.gfn && gfn < c.gfn + c.npages)
        else {
            return 0;
        };
        let entry = e
            .entries()
            .iter()
            .any(|g| g.gpa == f.gpa && g.gva == f.rip && g.domain == c.domain);
        // Pending return sites through the engine's own lookup: it lists them nowhere.
        let site = Gate {
            gpa: f.gpa,
            gva: f.rip,
            domain: c.domain,
        };
        return if entry || e.pending(&site) > 0 { 1 } else { 3 };
    }
    let Some(r) = e
        .regions()
        .iter()
        .find(|r| gfn >= r.gfn && gfn < r.gfn + r.npages)
    else {
        return 0;
    };
    let ok = e.rules().iter().any(|x| {
        x.region == r.gfn
            && f.rip >= x.start
            && f.rip < x.end
            && x.rights & f.access != 0
            && x.trusted
    });
    if ok {
        1
    } else {
        3
    }
}

fn kind(d: Decision) -> u8 {
    match d {
        Decision::NotOurs => 0,
        // Allowed: switched to the owner's view, made executable, to a trusted rule's lens.
        Decision::Switch(_) | Decision::GrantExec | Decision::Trusted(_) => 1,
        Decision::Leave => 2,
        Decision::Deny(_) => 3,
        Decision::Narrow(_) => 4,
    }
}

fn time(rounds: u32, mut f: impl FnMut() -> u64) -> f64 {
    let start = Instant::now();
    let mut n = 0;
    for _ in 0..rounds {
        n += f();
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

fn main() {
    println!(
        "decision latency, ns (mixed: view-0 data access, entry fetch, fetch in a domain's view, return to a call site, profile code to a lens):"
    );
    println!(
        "{:>8} {:>8} {:>10} {:>12} {:>9}",
        "domains", "ranges", "engine", "linear scan", "ratio"
    );
    for nd in [1u64, 10, 100, 255] {
        for nr in [10u64, 1000, 10_000] {
            if nr < nd {
                continue;
            }
            let v = vm(nd, nr);
            for f in &v.faults {
                assert_eq!(kind(v.e.decide(f).decision), naive(&v.e, f), "{f:?}");
            }
            let fast = time(200, || {
                for f in &v.faults {
                    black_box(black_box(&v.e).decide(black_box(f)));
                }
                v.faults.len() as u64
            });
            let rounds = if nr >= 10_000 { 2 } else { 20 };
            let slow = time(rounds, || {
                for f in &v.faults {
                    black_box(naive(black_box(&v.e), black_box(f)));
                }
                v.faults.len() as u64
            });
            println!(
                "{nd:>8} {nr:>8} {fast:>10.1} {slow:>12.1} {:>8.0}x",
                slow / fast
            );
        }
    }
}
