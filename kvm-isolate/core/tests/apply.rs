// SPDX-License-Identifier: GPL-2.0

//! The order in which `apply` changes KVM's views, against a recording fake of KVM that keeps
//! every view's rights (a default and per-page rights, as KVM does) and a snapshot after every
//! call: a vCPU may fault between two calls and be mapped what the view grants at that moment.
//!
//! The rules, checked at every snapshot:
//!
//! - A view being built (a domain's view rebuilt by a profile import or created, a new ABI v1
//!   view) never has more than its final rights: no other domain's region is ever mapped in it.
//! - A change to views in use (a mode change, code or a region added, a domain destroyed) never
//!   gives a page a right that neither the old state nor the new one gives it.
//! - A failed call (the fake fails the k-th, for every k) returns the error and leaves the views
//!   within the same bounds; a view being created grants nothing after a failure.
//!
//! The final rights are written from `Documentation/kvm-isolate/domains.rst` ("Views of a VM
//! with domains", "Modes"), with plain scans over the engine's code and regions.

use kvm_isolate_core::abi::{Error, Views, MODE_INHERIT};
use kvm_isolate_core::apply::{self, ViewOps};
use kvm_isolate_core::policy::{Code, Engine, Mode, Region, Rule};

const PAGE: u64 = 4096;
/// Guest pages the fake models; every setup fits in them.
const PAGES: usize = 64;
/// Views the fake models; every setup uses fewer.
const VIEWS: usize = 8;
const R: u8 = 1;
const W: u8 = 2;
const X: u8 = 4;
const RW: u8 = R | W;
const RX: u8 = R | X;
const RWX: u8 = R | W | X;

/// Rights of every page of a view.
type Page = [u8; PAGES];

/// One view in the fake: KVM's table of per-page rights and its default.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Table {
    default: u8,
    own: [Option<u8>; PAGES],
}

impl Table {
    /// A view with no rights at all (reset).
    fn none() -> Table {
        Table {
            default: 0,
            own: [None; PAGES],
        }
    }

    /// A view with `rights`, held as KVM holds a built view: `default` and entries where the
    /// page differs.
    fn with(rights: &Page, default: u8) -> Table {
        let mut t = Table {
            default,
            own: [None; PAGES],
        };
        for (o, &r) in t.own.iter_mut().zip(rights) {
            *o = (r != default).then_some(r);
        }
        t
    }

    fn rights(&self) -> Page {
        let mut p = [0; PAGES];
        for (x, o) in p.iter_mut().zip(&self.own) {
            *x = o.unwrap_or(self.default);
        }
        p
    }
}

/// A call the fake received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Set {
        view: u8,
        gfn: u64,
        npages: u64,
        rights: u8,
    },
    Reset(u8),
    Default(u8, u8),
}

/// KVM, recorded.
struct Fake {
    tables: Vec<Table>,
    /// Every call, the failed one included.
    ops: Vec<Op>,
    /// The call (0-based) that fails with `NoMem`, changing nothing.
    fail_at: Option<usize>,
    /// The rights of every view, at the start and after every call that succeeded.
    steps: Vec<Vec<Page>>,
}

impl Fake {
    fn new(tables: Vec<Table>) -> Fake {
        let mut f = Fake {
            tables,
            ops: Vec::new(),
            fail_at: None,
            steps: Vec::new(),
        };
        f.snapshot();
        f
    }

    fn snapshot(&mut self) {
        let s = self.tables.iter().map(Table::rights).collect();
        self.steps.push(s);
    }

    fn rights(&self) -> Vec<Page> {
        self.tables.iter().map(Table::rights).collect()
    }

    /// Records `op`; whether it is the call that fails.
    fn call(&mut self, op: Op) -> Result<(), Error> {
        let fail = self.fail_at == Some(self.ops.len());
        self.ops.push(op);
        if fail {
            Err(Error::NoMem)
        } else {
            Ok(())
        }
    }

    fn table(&mut self, view: u8) -> &mut Table {
        let v = usize::from(view);
        assert!(v < VIEWS, "view {view} outside the fake");
        &mut self.tables[v]
    }
}

impl ViewOps for Fake {
    fn set(&mut self, view: u8, gfn: u64, npages: u64, rights: u8) -> Result<(), Error> {
        assert!(gfn + npages <= PAGES as u64, "pages outside the fake");
        assert_eq!(rights & !RWX, 0);
        self.call(Op::Set {
            view,
            gfn,
            npages,
            rights,
        })?;
        let t = self.table(view);
        for p in gfn..gfn + npages {
            t.own[p as usize] = Some(rights);
        }
        self.snapshot();
        Ok(())
    }

    fn reset(&mut self, view: u8) -> Result<(), Error> {
        self.call(Op::Reset(view))?;
        *self.table(view) = Table::none();
        self.snapshot();
        Ok(())
    }

    fn set_default(&mut self, view: u8, rights: u8) -> Result<(), Error> {
        assert_eq!(rights & !RWX, 0);
        self.call(Op::Default(view, rights))?;
        self.table(view).default = rights;
        self.snapshot();
        Ok(())
    }
}

fn subset(a: u8, b: u8) -> bool {
    a & !b == 0
}

// ---- the VMs ----

/// A VM: the engine and the views that exist.
struct Vm {
    name: &'static str,
    e: Box<Engine>,
    views: Views,
}

/// Builds a VM: its mode; its domains with their own modes; code as (domain, first gfn, pages);
/// regions as (domain, first gfn, pages, rights); the guest's ABI v1 views.
fn vm(
    name: &'static str,
    mode: Mode,
    domains: &[(u8, Option<Mode>)],
    code: &[(u8, u64, u64)],
    regions: &[(u8, u64, u64, u8)],
    plain: &[u8],
) -> Vm {
    let mut e = Box::new(Engine::new());
    let mut views = Views::default();
    e.set_mode(0, Some(mode));
    for &(d, m) in domains {
        e.create_domain(d).unwrap();
        e.set_mode(d, m);
        views.insert(d);
    }
    for &v in plain {
        views.insert(v);
    }
    for &(domain, gfn, npages) in code {
        let c = code_range(domain, gfn, npages);
        e.check_code(domain, &c, false).unwrap();
        e.add_code(c).unwrap();
    }
    for &(domain, gfn, npages, rights) in regions {
        let r = Region {
            index: 0,
            gfn,
            npages,
            rights,
            domain,
        };
        e.check_region(&r).unwrap();
        e.add_region(r).unwrap();
    }
    Vm { name, e, views }
}

/// A code range backed by `npages` at `gfn`, at a linear address of its own.
fn code_range(domain: u8, gfn: u64, npages: u64) -> Code {
    let start = 0x1000_0000 + gfn * PAGE;
    Code {
        start,
        end: start + npages * PAGE,
        gfn,
        npages,
        domain,
    }
}

fn vms() -> Vec<Vm> {
    vec![
        vm(
            "two enforced domains and a guest view",
            Mode::Enforce,
            &[(1, None), (2, None)],
            &[(1, 2, 2), (2, 8, 1), (1, 50, 3)],
            &[
                (1, 12, 4, RW),
                (1, 20, 1, R),
                (2, 24, 3, RWX),
                (2, 40, 2, RX),
            ],
            &[3],
        ),
        vm(
            "learning VM, domains enforced, off and inheriting",
            Mode::Learn,
            &[(1, Some(Mode::Enforce)), (2, Some(Mode::Off)), (4, None)],
            &[(1, 0, 1), (2, 1, 2), (4, 60, 4)],
            &[
                (1, 5, 3, RW),
                (2, 10, 1, RWX),
                (4, 30, 10, R),
                (4, 45, 1, RW),
            ],
            &[3, 5],
        ),
        vm(
            "VM off, a domain above a guest view, regions only",
            Mode::Off,
            &[(2, Some(Mode::Learn))],
            &[],
            &[(2, 16, 16, RW), (2, 33, 1, RX)],
            &[1, 3],
        ),
        vm(
            "three domains, one empty",
            Mode::Enforce,
            &[(1, None), (2, Some(Mode::Learn)), (3, None)],
            &[(2, 0, 4), (3, 63, 1)],
            &[(1, 4, 28, RW), (2, 32, 8, RWX)],
            &[],
        ),
    ]
}

// ---- the rights the text gives ----

fn region_at(e: &Engine, gfn: u64) -> Option<Region> {
    e.regions()
        .iter()
        .copied()
        .find(|r| r.gfn <= gfn && gfn < r.gfn + r.npages)
}

fn code_at(e: &Engine, gfn: u64) -> Option<Code> {
    e.code()
        .iter()
        .copied()
        .find(|c| c.gfn <= gfn && gfn < c.gfn + c.npages)
}

/// "While a domain is protected (its mode is `learn` or `enforce`)".
fn protected(e: &Engine, d: u8) -> bool {
    e.own_mode(d).unwrap_or(e.mode()) != Mode::Off
}

/// The rights view `v` (which exists) gives page `gfn`.
fn want_page(e: &Engine, v: u8, gfn: u64) -> u8 {
    if e.is_domain(v) {
        // "Domain d's regions with d's rights; no other domain's regions".
        if let Some(r) = region_at(e, gfn) {
            return if r.domain == v { r.rights } else { 0 };
        }
        if let Some(c) = code_at(e, gfn) {
            // "d's code readable and executable (never writable); other domains' code readable
            // only". Reading: code of a domain that is off is a page like any other there.
            return if c.domain == v {
                RX
            } else if protected(e, c.domain) {
                R
            } else {
                RW
            };
        }
        // "everything else readable and writable but not executable".
        RW
    } else {
        // View 0, and "the guest's own (ABI v1) views are like view 0": "everything, except
        // every domain's regions; every domain's code is readable only". Off: "the domain's
        // regions are mapped in view 0 and its code is executable there".
        if let Some(r) = region_at(e, gfn) {
            return if protected(e, r.domain) { 0 } else { RWX };
        }
        if let Some(c) = code_at(e, gfn) {
            return if protected(e, c.domain) { R } else { RWX };
        }
        RWX
    }
}

fn want_view(e: &Engine, v: u8) -> Page {
    let mut p = [0; PAGES];
    for (gfn, x) in p.iter_mut().enumerate() {
        *x = want_page(e, v, gfn as u64);
    }
    p
}

/// The rights of every view of the VM; views that do not exist grant nothing.
fn want(e: &Engine, views: Views) -> Vec<Page> {
    (0..VIEWS as u8)
        .map(|v| {
            if views.exists(v) {
                want_view(e, v)
            } else {
                [0; PAGES]
            }
        })
        .collect()
}

/// A fake holding `rights` (every view), as KVM holds built views.
fn fake(e: &Engine, rights: &[Page]) -> Fake {
    let tables = rights
        .iter()
        .enumerate()
        .map(|(v, p)| {
            let default = if e.is_domain(v as u8) { RW } else { RWX };
            Table::with(p, default)
        })
        .collect();
    Fake::new(tables)
}

// ---- the checks ----

/// Every step of `f` grants in every view at most what `old` or `new` grants there.
fn check_change(what: &str, f: &Fake, old: &[Page], new: &[Page]) {
    for (i, step) in f.steps.iter().enumerate() {
        for v in 0..VIEWS {
            for p in 0..PAGES {
                let (now, o, n) = (step[v][p], old[v][p], new[v][p]);
                assert!(
                    subset(now, o | n),
                    "{what}: after call {i} view {v} page {p} has {now:#x}, old {o:#x}, new \
                     {n:#x}; calls {:?}",
                    &f.ops[..i]
                );
            }
        }
    }
}

/// Every step of `f` grants in view `built.0` at most `fin`, and leaves the other views as in
/// `start`; no step maps in it a region it must hide: another domain's if it is a domain's view
/// (`built.1`), a protected domain's if not.
fn check_build(what: &str, e: &Engine, f: &Fake, built: (u8, bool), start: &[Page], fin: &Page) {
    let (built, domain) = built;
    let b = usize::from(built);
    let hidden = |r: &Region| {
        if domain {
            r.domain != built
        } else {
            protected(e, r.domain)
        }
    };
    for (i, step) in f.steps.iter().enumerate().skip(1) {
        for p in 0..PAGES {
            let now = step[b][p];
            assert!(
                subset(now, fin[p]),
                "{what}: after call {i} view {built} page {p} has {now:#x}, final {:#x}; calls \
                 {:?}",
                fin[p],
                &f.ops[..i]
            );
            if let Some(r) = region_at(e, p as u64).filter(hidden) {
                assert_eq!(
                    now, 0,
                    "{what}: after call {i} view {built} maps page {p} of domain {}'s region",
                    r.domain
                );
            }
        }
        for v in (0..VIEWS).filter(|&v| v != b) {
            assert_eq!(
                step[v], start[v],
                "{what}: view {v} changed while {built} was built"
            );
        }
    }
}

/// How many calls `run` makes when none fails.
fn calls(start: &Fake, run: impl Fn(&mut Fake) -> Result<(), Error>) -> usize {
    let mut f = Fake::new(start.tables.clone());
    run(&mut f).unwrap();
    f.ops.len()
}

/// A fake like `start` whose call `k` fails.
fn failing(start: &Fake, k: usize) -> Fake {
    let mut f = Fake::new(start.tables.clone());
    f.fail_at = Some(k);
    f
}

// ---- building views ----

/// A profile import rebuilds every domain's view; before, the view may grant anything (pages
/// made executable for the old profile, or worse: all of it).
#[test]
fn a_rebuilt_domain_view_never_has_more_than_its_final_rights() {
    for vm in vms() {
        let e = &vm.e;
        for d in e.domain_ids() {
            let mut start = want(e, vm.views);
            start[usize::from(d)] = [RWX; PAGES];
            let mut f = fake(e, &start);
            let what = format!("{}: rebuilding view {d}", vm.name);
            apply::build_domain_view(&mut f, e, d).unwrap();
            let fin = want_view(e, d);
            check_build(&what, e, &f, (d, true), &start, &fin);
            assert_eq!(f.rights()[usize::from(d)], fin, "{what}");
        }
    }
}

#[test]
fn a_new_domain_view_never_has_more_than_its_final_rights() {
    for vm in vms() {
        let mut e = vm.e;
        let mut views = vm.views;
        let d = views.free().unwrap();
        // The view is free: whatever it granted before must not show.
        let mut start = want(&e, views);
        start[usize::from(d)] = [RWX; PAGES];
        let mut f = fake(&e, &start);
        apply::new_domain_view(&mut f, &e, d).unwrap();
        e.create_domain(d).unwrap();
        views.insert(d);
        let what = format!("{}: creating domain {d}", vm.name);
        let fin = want_view(&e, d);
        check_build(&what, &e, &f, (d, true), &start, &fin);
        assert_eq!(f.rights(), want(&e, views), "{what}");
    }
}

#[test]
fn a_new_view_never_has_more_than_its_final_rights() {
    for vm in vms() {
        let e = &vm.e;
        let mut views = vm.views;
        let v = views.free().unwrap();
        let mut start = want(e, views);
        start[usize::from(v)] = [RWX; PAGES];
        let mut f = fake(e, &start);
        apply::new_view(&mut f, e, v).unwrap();
        views.insert(v);
        let what = format!("{}: creating view {v}", vm.name);
        let fin = want_view(e, v);
        check_build(&what, e, &f, (v, false), &start, &fin);
        assert_eq!(f.rights(), want(e, views), "{what}");
    }
}

// ---- changing views in use ----

/// Mode changes of the VM and of each domain, one after the other, each from the views the one
/// before left.
fn mode_changes(e: &Engine) -> Vec<(u8, Option<Mode>)> {
    let mut c = vec![
        (0, Some(Mode::Off)),
        (0, Some(Mode::Learn)),
        (0, Some(Mode::Off)),
        (0, Some(Mode::Enforce)),
    ];
    for d in e.domain_ids() {
        c.extend([
            (d, Some(Mode::Off)),
            (d, Some(Mode::Enforce)),
            (d, None),
            (0, Some(Mode::Off)),
            (d, Some(Mode::Learn)),
            (d, Some(Mode::Off)),
            (0, Some(Mode::Enforce)),
            (d, None),
        ]);
    }
    c
}

#[test]
fn mode_changes_grant_nothing_neither_mode_grants() {
    for vm in vms() {
        let mut e = vm.e;
        let mut f = fake(&e, &want(&e, vm.views));
        for (d, mode) in mode_changes(&e) {
            let what = format!("{}: mode {mode:?} for {d}", vm.name);
            let old = want(&e, vm.views);
            assert_eq!(f.rights(), old, "{what}: the views before");
            let prev = if d == 0 {
                e.mode() as u64
            } else {
                e.own_mode(d).map_or(MODE_INHERIT, |m| m as u64)
            };
            f = Fake::new(f.tables);
            let r = apply::set_mode(&mut f, &mut e, vm.views, d, mode, false);
            assert_eq!(r, Ok(prev), "{what}");
            let new = want(&e, vm.views);
            check_change(&what, &f, &old, &new);
            assert_eq!(f.rights(), new, "{what}");
        }
    }
}

/// Free pages of the fake (in no code range and no region), `n` in a row.
fn free_pages(e: &Engine, n: u64) -> u64 {
    (0..=PAGES as u64 - n)
        .find(|&g| (g..g + n).all(|p| region_at(e, p).is_none() && code_at(e, p).is_none()))
        .unwrap()
}

#[test]
fn new_code_and_regions_grant_nothing_neither_state_grants() {
    for vm in vms() {
        for d in vm.e.domain_ids() {
            for rights in [0, R, RW, RX, RWX] {
                let mut e = vm.vm_copy();
                let gfn = free_pages(&e, 2);
                let old = want(&e, vm.views);
                let mut f = fake(&e, &old);
                let what;
                if rights == 0 {
                    what = format!("{}: code of {d} at {gfn}", vm.name);
                    let c = code_range(d, gfn, 2);
                    e.check_code(d, &c, false).unwrap();
                    apply::place_code(&mut f, &e, vm.views, &c).unwrap();
                    e.add_code(c).unwrap();
                } else {
                    what = format!("{}: region {rights:#x} of {d} at {gfn}", vm.name);
                    let r = Region {
                        index: 0,
                        gfn,
                        npages: 2,
                        rights,
                        domain: d,
                    };
                    e.check_region(&r).unwrap();
                    apply::place_region(&mut f, &e, vm.views, &r).unwrap();
                    e.add_region(r).unwrap();
                }
                let new = want(&e, vm.views);
                check_change(&what, &f, &old, &new);
                assert_eq!(f.rights(), new, "{what}");
            }
        }
    }
}

#[test]
fn destroying_a_domain_grants_nothing_neither_state_grants() {
    for vm in vms() {
        for d in vm.e.domain_ids() {
            let mut e = vm.vm_copy();
            let mut views = vm.views;
            let what = format!("{}: destroying {d}", vm.name);
            let old = want(&e, views);
            let mut f = fake(&e, &old);
            apply::release_domain(&mut f, &e, views, d).unwrap();
            e.destroy_domain(d);
            views.remove(d);
            // A destroyed view grants nothing (`want` of a view that does not exist).
            let new = want(&e, views);
            check_change(&what, &f, &old, &new);
            assert_eq!(f.rights(), new, "{what}");
        }
    }
}

impl Vm {
    /// A copy of the engine, rebuilt through its public interface.
    fn vm_copy(&self) -> Box<Engine> {
        let mut e = Box::new(Engine::new());
        e.set_mode(0, Some(self.e.mode()));
        for d in self.e.domain_ids() {
            e.create_domain(d).unwrap();
            e.set_mode(d, self.e.own_mode(d));
        }
        for &c in self.e.code() {
            e.add_code(c).unwrap();
        }
        for &r in self.e.regions() {
            e.add_region(r).unwrap();
        }
        e
    }
}

// ---- failures ----

#[test]
fn a_failed_rebuild_leaves_no_more_than_the_final_rights() {
    for vm in vms() {
        let e = &vm.e;
        for d in e.domain_ids() {
            let mut start = want(e, vm.views);
            start[usize::from(d)] = [RWX; PAGES];
            let start = fake(e, &start);
            let before = start.rights();
            let fin = want_view(e, d);
            let n = calls(&start, |f| apply::build_domain_view(f, e, d));
            for k in 0..n {
                let what = format!("{}: rebuilding view {d}, call {k} fails", vm.name);
                let mut f = failing(&start, k);
                assert_eq!(
                    apply::build_domain_view(&mut f, e, d),
                    Err(Error::NoMem),
                    "{what}"
                );
                assert_eq!(f.ops.len(), k + 1, "{what}: calls after the failure");
                if k == 0 {
                    // The reset failed: nothing changed.
                    assert_eq!(f.rights(), before, "{what}");
                } else {
                    check_build(&what, e, &f, (d, true), &before, &fin);
                }
            }
        }
    }
}

/// A function that creates a view.
type Create = fn(&mut Fake, &Engine, u8) -> Result<(), Error>;

#[test]
fn a_failed_creation_leaves_a_view_that_grants_nothing() {
    for vm in vms() {
        let e = &vm.e;
        let v = vm.views.free().unwrap();
        let mut start = want(e, vm.views);
        start[usize::from(v)] = [RWX; PAGES];
        let start = fake(e, &start);
        let before = start.rights();
        let mut after = before.clone();
        after[usize::from(v)] = [0; PAGES];
        // A domain's view (DomainCreate) and a view of no domain (ViewCreate).
        let runs: [(&str, Create); 2] = [
            ("domain", apply::new_domain_view),
            ("view", apply::new_view),
        ];
        for (kind, run) in runs {
            let n = calls(&start, |f| run(f, e, v));
            for k in 0..n {
                let what = format!("{}: creating {kind} {v}, call {k} fails", vm.name);
                let mut f = failing(&start, k);
                assert_eq!(run(&mut f, e, v), Err(Error::NoMem), "{what}");
                if kind == "view" && k == 0 {
                    // ViewCreate stops when its first reset fails: nothing changed.
                    assert_eq!(f.rights(), before, "{what}");
                } else {
                    assert_eq!(f.rights(), after, "{what}");
                    assert_eq!(f.tables[usize::from(v)], Table::none(), "{what}");
                }
                let fin = if kind == "domain" {
                    let mut e2 = vm.vm_copy();
                    e2.create_domain(v).unwrap();
                    want_view(&e2, v)
                } else {
                    want_view(e, v)
                };
                if k > 0 {
                    check_build(&what, e, &f, (v, kind == "domain"), &before, &fin);
                }
            }
        }
    }
}

/// A failed mode change also leaves the engine and the views in the old mode.
#[test]
fn a_failed_mode_change_grants_nothing_neither_mode_grants() {
    for vm in vms() {
        let changes = mode_changes(&vm.e);
        for i in 0..changes.len() {
            // The VM as the changes before `i` left it.
            let mut e = vm.vm_copy();
            for &(d, m) in &changes[..i] {
                e.set_mode(d, m);
            }
            let (d, mode) = changes[i];
            let old = want(&e, vm.views);
            let start = fake(&e, &old);
            let mut after = vm.vm_copy();
            for &(d, m) in &changes[..=i] {
                after.set_mode(d, m);
            }
            let new = want(&after, vm.views);
            let n = calls(&start, |f| {
                let mut e2 = vm.vm_copy();
                for &(d, m) in &changes[..i] {
                    e2.set_mode(d, m);
                }
                apply::set_mode(f, &mut e2, vm.views, d, mode, false).map(|_| ())
            });
            for k in 0..n {
                let what = format!("{}: mode {mode:?} for {d}, call {k} fails", vm.name);
                let mut e2 = vm.vm_copy();
                for &(d, m) in &changes[..i] {
                    e2.set_mode(d, m);
                }
                let mut f = failing(&start, k);
                let r = apply::set_mode(&mut f, &mut e2, vm.views, d, mode, false);
                assert_eq!(r, Err(Error::NoMem), "{what}");
                check_change(&what, &f, &old, &new);
                // Back in the old mode, engine and views alike (only call `k` fails).
                assert_eq!(want(&e2, vm.views), old, "{what}: the engine's mode");
                assert_eq!(f.rights(), old, "{what}: the views");
            }
        }
    }
}

#[test]
fn failed_new_code_or_region_puts_the_old_rights_back() {
    for vm in vms() {
        for d in vm.e.domain_ids() {
            for rights in [0, R, RW, RX, RWX] {
                let mut e = vm.vm_copy();
                let gfn = free_pages(&e, 2);
                let old = want(&e, vm.views);
                let start = fake(&e, &old);
                let c = code_range(d, gfn, 2);
                let r = Region {
                    index: 0,
                    gfn,
                    npages: 2,
                    rights,
                    domain: d,
                };
                let run = |f: &mut Fake, e: &Engine| {
                    if rights == 0 {
                        apply::place_code(f, e, vm.views, &c)
                    } else {
                        apply::place_region(f, e, vm.views, &r)
                    }
                };
                let n = calls(&start, |f| run(f, &e));
                let new = {
                    let mut e2 = vm.vm_copy();
                    if rights == 0 {
                        e2.add_code(c).unwrap();
                    } else {
                        e2.add_region(r).unwrap();
                    }
                    want(&e2, vm.views)
                };
                for k in 0..n {
                    let what = format!(
                        "{}: {} of {d} at {gfn}, call {k} fails",
                        vm.name,
                        if rights == 0 { "code" } else { "region" }
                    );
                    let mut f = failing(&start, k);
                    assert_eq!(run(&mut f, &e), Err(Error::NoMem), "{what}");
                    check_change(&what, &f, &old, &new);
                    // The engine does not take the range: its pages are of no domain again.
                    assert_eq!(f.rights(), old, "{what}");
                }
                // And once nothing fails, the engine takes it.
                if rights == 0 {
                    e.add_code(c).unwrap();
                } else {
                    e.add_region(r).unwrap();
                }
                assert_eq!(want(&e, vm.views), new);
            }
        }
    }
}

#[test]
fn a_failed_destruction_grants_nothing_neither_state_grants() {
    for vm in vms() {
        for d in vm.e.domain_ids() {
            let e = vm.vm_copy();
            let old = want(&e, vm.views);
            let start = fake(&e, &old);
            let mut views = vm.views;
            views.remove(d);
            let mut gone = vm.vm_copy();
            gone.destroy_domain(d);
            let new = want(&gone, views);
            let n = calls(&start, |f| apply::release_domain(f, &e, vm.views, d));
            for k in 0..n {
                let what = format!("{}: destroying {d}, call {k} fails", vm.name);
                let mut f = failing(&start, k);
                assert_eq!(
                    apply::release_domain(&mut f, &e, vm.views, d),
                    Err(Error::NoMem),
                    "{what}"
                );
                check_change(&what, &f, &old, &new);
            }
        }
    }
}

// ---- lenses ----

/// What lens `lens` on domain `d` gives page `gfn`: "the domain's regions with the rights its
/// rules give (only those), no other domain's region, no code writable", everything else
/// readable and writable but not executable (as a domain's view).
fn want_lens_page(e: &Engine, lens: u8, gfn: u64) -> u8 {
    let l = e.lens(lens).unwrap();
    if let Some(r) = region_at(e, gfn) {
        if r.domain != l.domain {
            return 0;
        }
        return e
            .rules()
            .iter()
            .find(|x| x.region == r.gfn && x.start <= l.rep && l.rep < x.end)
            .map_or(0, |x| x.rights & r.rights);
    }
    if let Some(c) = code_at(e, gfn) {
        return if protected(e, c.domain) { R } else { RW };
    }
    RW
}

/// A lens built from any state (here: everything granted) never has more than its final
/// rights, changes no other view, and ends with exactly its rules' rights; when its rules
/// change, a rebuild follows them.
#[test]
fn a_lens_never_has_more_than_its_rules_rights() {
    const LENS: u8 = 7;
    const REP: u64 = 0x7100_0000;
    for vm in vms() {
        let mut e = vm.e;
        let Some(r0) = e
            .regions()
            .iter()
            .copied()
            .find(|r| protected(&e, r.domain))
        else {
            continue;
        };
        let d = r0.domain;
        let mut rule = Rule {
            region: r0.gfn,
            start: REP,
            end: REP + PAGE,
            rights: R,
            domain: d,
            trusted: false,
        };
        e.learn(rule).unwrap();
        e.add_lens(LENS, d, REP, false).unwrap();
        let l = *e.lens(LENS).unwrap();
        let mut start = want(&e, vm.views);
        start[usize::from(LENS)] = [RWX; PAGES];
        let mut f = fake(&e, &start);
        let what = format!("{}: building a lens on {d}", vm.name);
        apply::build_lens(&mut f, &e, &l).unwrap();
        let mut fin = [0; PAGES];
        for (gfn, x) in fin.iter_mut().enumerate() {
            *x = want_lens_page(&e, LENS, gfn as u64);
        }
        assert_eq!(fin[r0.gfn as usize], R, "{what}");
        for (i, step) in f.steps.iter().enumerate().skip(1) {
            for p in 0..PAGES {
                assert!(
                    subset(step[usize::from(LENS)][p], fin[p]),
                    "{what}: after call {i} page {p} has {:#x}, final {:#x}",
                    step[usize::from(LENS)][p],
                    fin[p]
                );
            }
            for v in (0..VIEWS).filter(|&v| v != usize::from(LENS)) {
                assert_eq!(step[v], start[v], "{what}: view {v} changed");
            }
        }
        assert_eq!(f.rights()[usize::from(LENS)], fin, "{what}");

        // The rule widens (learn mode): the rebuilt lens follows, within the region's rights.
        rule.rights = W;
        e.learn(rule).unwrap();
        apply::rebuild_lenses(&mut f, &e, d).unwrap();
        assert_eq!(
            f.rights()[usize::from(LENS)][r0.gfn as usize],
            r0.rights & (R | W),
            "{what}: after the rule widened"
        );
        // A new region of d gets nothing in the lens (no rule names it), nor does any region
        // but the rule's.
        let r1 = Region {
            index: 0,
            gfn: free_pages(&e, 1),
            npages: 1,
            rights: RW,
            domain: d,
        };
        e.check_region(&r1).unwrap();
        apply::place_region(&mut f, &e, vm.views, &r1).unwrap();
        e.add_region(r1).unwrap();
        for r in e.regions() {
            if r.gfn != r0.gfn {
                assert_eq!(f.rights()[usize::from(LENS)][r.gfn as usize], 0, "{what}");
            }
        }
        // Destroying d resets the lens with its view.
        apply::release_domain(&mut f, &e, vm.views, d).unwrap();
        assert_eq!(
            f.rights()[usize::from(LENS)],
            [0; PAGES],
            "{what}: after release"
        );
    }
}
