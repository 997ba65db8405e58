// SPDX-License-Identifier: GPL-2.0

//! `cargo bench`: the engine's decision (binary searches) against a naive linear scan over the
//! same domains, regions and rules, at growing sizes. Prints ns per decision and the ratio.

use kvm_isolate_core::policy::*;
use std::hint::black_box;
use std::time::Instant;

const P: u64 = 4096;

/// 15 domains, `nregions` regions, `nrules` rules spread over them.
fn engine(nregions: u64, nrules: u64) -> Box<Engine> {
    let mut e = Box::new(Engine::new());
    for d in 1..=15u8 {
        e.create_domain(d).unwrap();
        let c = Code {
            start: u64::from(d) << 32,
            end: (u64::from(d) << 32) + 64 * P,
            gfn: 0x100_0000 + u64::from(d) * 64,
            npages: 64,
            domain: d,
        };
        e.add_code(c).unwrap();
    }
    for i in 0..nregions {
        e.add_region(Region {
            index: 0,
            gfn: i * 16,
            npages: 8,
            rights: 3,
            domain: (i % 15) as u8 + 1,
        })
        .unwrap();
    }
    for i in 0..nrules {
        let region = (i % nregions) * 16;
        let domain = ((i % nregions) % 15) as u8 + 1;
        let start = 0x7000_0000 + (i / nregions) * 2 * P;
        // Trusted on their own, so that enforce mode lets their accessors in from view 0.
        e.learn(Rule {
            region,
            start,
            end: start + P,
            rights: 1,
            domain,
            trusted: true,
        })
        .unwrap();
    }
    e.set_mode(0, Some(Mode::Enforce));
    e
}

/// The naive decision for a view-0 data access: scan everything. Only a rule trusted on its own
/// lets an access from view 0 in, enforcing (the owner's code runs in its own view, entered
/// through its gates, and code it calls runs there too).
fn naive(e: &Engine, f: &Fault) -> bool {
    let gfn = f.gpa / P;
    let Some(r) = e
        .regions()
        .iter()
        .find(|r| gfn >= r.gfn && gfn < r.gfn + r.npages)
    else {
        return false;
    };
    e.rules().iter().any(|x| {
        x.region == r.gfn
            && f.rip >= x.start
            && f.rip < x.end
            && x.rights & f.access != 0
            && x.trusted
    })
}

fn faults(nregions: u64, nrules: u64) -> Vec<Fault> {
    // Accessors named by the last rules (the naive scan's worst case) and denied ones.
    (0..1024u64)
        .map(|i| {
            let k = nrules - 1 - (i % nrules.min(64));
            Fault {
                view: 0,
                gpa: (k % nregions) * 16 * P + 8,
                rip: 0x7000_0000 + (k / nregions) * 2 * P + if i % 2 == 0 { 8 } else { P + 8 },
                access: 1,
                stack: None,
            }
        })
        .collect()
}

fn time(mut f: impl FnMut() -> u64) -> f64 {
    let rounds = 200;
    let start = Instant::now();
    let mut n = 0;
    for _ in 0..rounds {
        n += f();
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

fn main() {
    println!("decisions per size (view-0 data access, enforce mode), ns per decision:");
    println!(
        "{:>8} {:>8} {:>10} {:>10} {:>8}",
        "regions", "rules", "engine", "naive", "ratio"
    );
    for (nregions, nrules) in [(15, 16), (64, 256), (256, 1024), (256, 4096)] {
        let e = engine(nregions, nrules);
        let fs = faults(nregions, nrules);
        // Both must agree before their speed means anything.
        for f in &fs {
            let allowed = matches!(e.decide(f).decision, Decision::Switch(_));
            assert_eq!(allowed, naive(&e, f), "{f:?}");
        }
        let fast = time(|| {
            for f in &fs {
                black_box(black_box(&e).decide(black_box(f)));
            }
            fs.len() as u64
        });
        let slow = time(|| {
            for f in &fs {
                black_box(naive(black_box(&e), black_box(f)));
            }
            fs.len() as u64
        });
        println!(
            "{nregions:>8} {nrules:>8} {fast:>10.1} {slow:>10.1} {:>7.1}x",
            slow / fast
        );
    }
}
