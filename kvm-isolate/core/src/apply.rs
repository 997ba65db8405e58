// SPDX-License-Identifier: GPL-2.0

//! Applying the policy engine's state to KVM's per-view rights, in an order that never loosens
//! a view while it is rebuilt.
//!
//! KVM is driven through [`ViewOps`]: the module implements it on a VM, `cargo test` with a fake
//! that records every call. A vCPU may fault between two calls and be mapped what the view
//! grants at that moment, so every sequence here keeps one of two rules:
//!
//! - A view that is built (a new view, a domain's view rebuilt from scratch) is reset first, so
//!   that it grants nothing, then given its code and regions with their final rights, and its
//!   default last: at every step a page has no more than its final rights. Another domain's
//!   region is never mapped in it, not even for a moment.
//! - A change to views in use (a code range or region added, a domain gone, a mode changed)
//!   sets each page once, to its new rights: at every step a page has its old rights or its new
//!   ones, never a right that neither grants.
//!
//! On error a sequence stops at the failed call (which changed nothing); a view being built is
//! then reset by the callers that own it, so that it grants nothing.

use crate::abi::{self, Error, Views};
use crate::policy::{self, Code, Engine, Lens, Mode, Region};

/// The operations on a VM's views the functions of this module need. Rights are the ABI's R/W/X
/// bits (`ACCESS_*`); a view is its index. No call changes anything when it fails.
pub trait ViewOps {
    /// Sets the rights of `npages` at `gfn` in `view`.
    fn set(&mut self, view: u8, gfn: u64, npages: u64, rights: u8) -> Result<(), Error>;
    /// Takes every right in `view` away: its pages' own rights are forgotten and its default is
    /// none.
    fn reset(&mut self, view: u8) -> Result<(), Error>;
    /// Sets the rights of the pages of `view` that have none of their own.
    fn set_default(&mut self, view: u8, rights: u8) -> Result<(), Error>;
}

/// Domain views that exist, as view indices.
pub fn domain_views(e: &Engine) -> impl Iterator<Item = u8> + '_ {
    e.domain_ids()
}

/// Lenses that exist, as view indices.
pub fn lens_views(e: &Engine) -> impl Iterator<Item = u8> + '_ {
    e.lenses().iter().map(|l| l.view)
}

/// Views that belong to no domain: view 0 and the guest's ABI v1 views. A domain's regions are
/// hidden in all of them alike, or a guest could read them through a view of its own.
pub fn plain_views(e: &Engine, views: Views) -> impl Iterator<Item = u8> + '_ {
    // CAST: below `MAX_VIEWS`, 256.
    (0..abi::MAX_VIEWS)
        .map(|v| v as u8)
        .filter(move |&v| views.exists(v) && !e.owns_view(v))
}

/// Gives code range `c`'s pages their rights in every view.
pub fn apply_code<O: ViewOps>(
    ops: &mut O,
    e: &Engine,
    views: Views,
    c: &Code,
) -> Result<(), Error> {
    for v in plain_views(e, views) {
        ops.set(v, c.gfn, c.npages, e.code_rights(c, v, false))?;
    }
    for d in domain_views(e).chain(lens_views(e)) {
        ops.set(d, c.gfn, c.npages, e.code_rights(c, d, true))?;
    }
    Ok(())
}

/// Gives region `r` its rights in every view.
pub fn apply_region<O: ViewOps>(
    ops: &mut O,
    e: &Engine,
    views: Views,
    r: &Region,
) -> Result<(), Error> {
    for v in plain_views(e, views) {
        ops.set(v, r.gfn, r.npages, e.view0_rights(r.domain))?;
    }
    for d in domain_views(e) {
        ops.set(d, r.gfn, r.npages, Engine::view_rights(r, d))?;
    }
    for l in e.lenses() {
        ops.set(l.view, r.gfn, r.npages, e.lens_rights(l, r))?;
    }
    Ok(())
}

/// Gives code range `c`, which the engine does not hold yet, its rights in every view
/// ([`apply_code`]); on error gives its pages back the rights of pages of no domain
/// ([`release_pages`], best effort) and returns the error.
pub fn place_code<O: ViewOps>(
    ops: &mut O,
    e: &Engine,
    views: Views,
    c: &Code,
) -> Result<(), Error> {
    let r = apply_code(ops, e, views, c);
    if r.is_err() {
        // Only ENOMEM gets here; put back what the views had (best effort).
        let _ = release_pages(ops, e, views, c.gfn, c.npages, 0);
    }
    r
}

/// Gives region `r`, which the engine does not hold yet, its rights in every view
/// ([`apply_region`]); on error gives its pages back the rights of pages of no domain
/// ([`release_pages`], best effort) and returns the error.
pub fn place_region<O: ViewOps>(
    ops: &mut O,
    e: &Engine,
    views: Views,
    r: &Region,
) -> Result<(), Error> {
    let res = apply_region(ops, e, views, r);
    if res.is_err() {
        // Only ENOMEM gets here; put back what the views had (best effort).
        let _ = release_pages(ops, e, views, r.gfn, r.npages, 0);
    }
    res
}

/// Gives `npages` at `gfn` back the rights a page of no domain has: all in the views of no
/// domain, the default in domains' views (but `except`'s, which is about to go).
pub fn release_pages<O: ViewOps>(
    ops: &mut O,
    e: &Engine,
    views: Views,
    gfn: u64,
    npages: u64,
    except: u8,
) -> Result<(), Error> {
    for v in plain_views(e, views) {
        // CAST: `ACCESS_RWX` is 7.
        ops.set(v, gfn, npages, abi::ACCESS_RWX as u8)?;
    }
    for d in domain_views(e).filter(|&d| d != except) {
        ops.set(d, gfn, npages, policy::DOMAIN_VIEW_DEFAULT)?;
    }
    for l in e.lenses().iter().filter(|l| l.domain != except) {
        ops.set(l.view, gfn, npages, policy::DOMAIN_VIEW_DEFAULT)?;
    }
    Ok(())
}

/// Gives domain `d`'s regions and code back to the other views as pages of no domain
/// ([`release_pages`]), then takes every right in `d`'s view and its lenses away. The engine
/// still holds `d` and its lenses; the caller destroys them after.
pub fn release_domain<O: ViewOps>(
    ops: &mut O,
    e: &Engine,
    views: Views,
    d: u8,
) -> Result<(), Error> {
    for r in e.regions().iter().filter(|r| r.domain == d) {
        release_pages(ops, e, views, r.gfn, r.npages, d)?;
    }
    for c in e.code().iter().filter(|c| c.domain == d) {
        release_pages(ops, e, views, c.gfn, c.npages, d)?;
    }
    for l in e.lenses().iter().filter(|l| l.domain == d) {
        ops.reset(l.view)?;
    }
    ops.reset(d)
}

/// Builds domain `d`'s view from scratch: nothing executable but `d`'s code, no code writable,
/// `d`'s regions with their rights, other domains' regions unmapped. Pages made executable for
/// profile code (`GrantExec`) are dropped; they come back on their next fetch if still allowed.
///
/// On error the view is left reset and partly built (no page has more than its final rights),
/// or untouched if the reset failed.
pub fn build_domain_view<O: ViewOps>(ops: &mut O, e: &Engine, d: u8) -> Result<(), Error> {
    build(ops, e, d, |r| Engine::view_rights(r, d))
}

/// Builds a domain's view or a lens, `v`, with `rights` for each region ([`build_domain_view`]).
fn build<O: ViewOps>(
    ops: &mut O,
    e: &Engine,
    v: u8,
    rights: impl Fn(&Region) -> u8,
) -> Result<(), Error> {
    // No rights until built: the code and regions first, the default (opening the rest) last.
    ops.reset(v)?;
    for c in e.code() {
        ops.set(v, c.gfn, c.npages, e.code_rights(c, v, true))?;
    }
    for r in e.regions() {
        ops.set(v, r.gfn, r.npages, rights(r))?;
    }
    ops.set_default(v, policy::DOMAIN_VIEW_DEFAULT)
}

/// Builds lens `l` from scratch, as a domain's view ([`build_domain_view`]) but with its
/// domain's regions given the lens's rights ([`Engine::lens_rights`]) and no code of its own:
/// profile code becomes executable in it page by page (`GrantExec`). On error the lens is reset
/// (best effort) and the error returned.
pub fn build_lens<O: ViewOps>(ops: &mut O, e: &Engine, l: &Lens) -> Result<(), Error> {
    let r = build(ops, e, l.view, |r| e.lens_rights(l, r));
    if r.is_err() {
        let _ = ops.reset(l.view);
    }
    r
}

/// Rebuilds the lenses on domain `d` (every lens if `d == 0`) after its rules changed: rights
/// from the new rules, and no page executable until profile code with those rights fetches it
/// again. On error the failed lens is left reset and the error returned.
pub fn rebuild_lenses<O: ViewOps>(ops: &mut O, e: &Engine, d: u8) -> Result<(), Error> {
    for l in e.lenses().iter().filter(|l| d == 0 || l.domain == d) {
        build_lens(ops, e, l)?;
    }
    Ok(())
}

/// Builds the view of new domain `d` ([`build_domain_view`]); on error takes every right in it
/// away (best effort) and returns the error.
pub fn new_domain_view<O: ViewOps>(ops: &mut O, e: &Engine, d: u8) -> Result<(), Error> {
    let r = build_domain_view(ops, e, d);
    if r.is_err() {
        let _ = ops.reset(d);
    }
    r
}

/// Builds new view `v`, which belongs to no domain: reset (no rights), domains' regions and code
/// hidden as in view 0, then the rest opened with all rights. On error the view is reset again
/// (best effort), or untouched if the first reset failed, and the error returned.
pub fn new_view<O: ViewOps>(ops: &mut O, e: &Engine, v: u8) -> Result<(), Error> {
    // A view has no rights until it is built (KVM resets it to none): domains' regions are
    // hidden in it as in view 0 first, then the rest is opened.
    ops.reset(v)?;
    let mut hide = || -> Result<(), Error> {
        for r in e.regions() {
            ops.set(v, r.gfn, r.npages, e.view0_rights(r.domain))?;
        }
        for c in e.code() {
            ops.set(v, c.gfn, c.npages, e.code_rights(c, v, false))?;
        }
        Ok(())
    };
    if let Err(err) = hide() {
        let _ = ops.reset(v);
        return Err(err);
    }
    // CAST: `ACCESS_RWX` is 7.
    if let Err(err) = ops.set_default(v, abi::ACCESS_RWX as u8) {
        let _ = ops.reset(v);
        return Err(err);
    }
    Ok(())
}

/// Re-applies, in the views of no domain, the rights of the regions whose protection a mode
/// change switched; `before` is view 0's rights of each domain's regions before the change.
pub fn apply_modes<O: ViewOps>(
    ops: &mut O,
    e: &Engine,
    views: Views,
    before: &[u8; policy::MAX_DOMAINS + 1],
) -> Result<(), Error> {
    for r in e.regions() {
        let now = e.view0_rights(r.domain);
        if before[usize::from(r.domain)] != now {
            for v in plain_views(e, views) {
                ops.set(v, r.gfn, r.npages, now)?;
            }
        }
    }
    // Code follows its domain's protection the same way (`view0_rights` says when it changed).
    for c in e.code() {
        if before[usize::from(c.domain)] != e.view0_rights(c.domain) {
            apply_code(ops, e, views, c)?;
        }
    }
    Ok(())
}

/// Sets a mode of the VM (`d == 0`) or of domain `d` (`None`: inherit), as the guest or the
/// host, and applies it to the views ([`apply_modes`]). Returns the previous mode (`MODE_*`).
///
/// If the views cannot follow (a failed call), the engine goes back to the previous mode and the
/// pages the change had reached get their old rights back (best effort), so that the engine and
/// the views stay in step; the error is returned.
pub fn set_mode<O: ViewOps>(
    ops: &mut O,
    e: &mut Engine,
    views: Views,
    d: u8,
    mode: Option<Mode>,
    guest: bool,
) -> Result<u64, Error> {
    e.check_mode(d, mode, guest)?;
    // CAST: a mode is `MODE_OFF` ..= `MODE_ENFORCE`.
    let prev = if d == 0 {
        e.mode() as u64
    } else {
        e.own_mode(d).map_or(abi::MODE_INHERIT, |m| m as u64)
    };
    let old = if d == 0 { Some(e.mode()) } else { e.own_mode(d) };
    // CAST: below `MAX_DOMAINS + 1`, 256.
    let before = core::array::from_fn(|d| e.view0_rights(d as u8));
    e.set_mode(d, mode);
    if let Err(err) = apply_modes(ops, e, views, &before) {
        // CAST: as above.
        let after = core::array::from_fn(|d| e.view0_rights(d as u8));
        e.set_mode(d, old);
        let _ = apply_modes(ops, e, views, &after);
        return Err(err);
    }
    Ok(prev)
}
