// SPDX-License-Identifier: GPL-2.0

//! The profile file: a JSON rendering of a VM's `kvm_isolate_ctl_rule` array and of its
//! `kvm_isolate_ctl_entry` array (the domains' entry points).
//!
//! ```json
//! {
//!   "format": "kvm-isolate-profile",
//!   "version": 1,
//!   "rules": [
//!     { "domain": 1, "region_gpa": "0x200000", "access": "rw",
//!       "accessor_start": "0xffffffff81000000", "accessor_end": "0xffffffff81001000" },
//!     { "domain": 1, "region_gpa": "0x200000", "access": "r",
//!       "accessor_start": "0xffffffff81400000", "accessor_end": "0xffffffff81401000",
//!       "trusted": true }
//!   ],
//!   "entries": [
//!     { "domain": 1, "gva": "0xffffffffc0001040", "gpa": "0x4321040" }
//!   ]
//! }
//! ```
//!
//! A rule lets its accessor run in the owner's view when the owner calls it; `"trusted": true`
//! (`KVM_ISOLATE_RULE_TRUSTED` in the kernel's `access`) also lets it in on its own, from any
//! other view. `trusted` is optional (default `false`), and export writes it only when it is
//! true, so files without trusted rules read and write as before.
//!
//! `entries` are the domains' entry points (registered by the guest or learned): the instruction
//! at `gva`, which the domain's code maps to `gpa`. It is optional, and export writes it only when
//! the VM has entry points, so files of VMs without any read and write as before. A file without
//! `entries` leaves a VM's entry points as they are on import; a file with `entries` (even empty)
//! replaces them.
//!
//! Addresses change from boot to boot (module memory is allocated anew, and with KASLR the
//! kernel moves), so `profile export` also names what it can by (module, offset), for the
//! domains the guest named (`KVM_HC_ISOLATE_DOMAIN_NAME`: the module's name):
//!
//! ```json
//!     { "domain": 1, "region_gpa": "0x29a5000", "access": "r",
//!       "accessor_start": "0xffffffffa0010000", "accessor_end": "0xffffffffa0011000",
//!       "module": "ki_keeper", "region": 0,
//!       "accessor_module": "ki_helper", "accessor_offset": "0x1000" }
//!     { "domain": 1, "gva": "0xffffffffa0004000", "gpa": "0x2d13000",
//!       "module": "ki_keeper", "offset": "0x0" }
//! ```
//!
//! `module` and `region`: the region's domain by name, and the region by its number among the
//! domain's regions in the order the guest gave them; `accessor_module` and `accessor_offset`:
//! the accessor range's start as an offset into that domain's code (its length stays); an entry
//! point's `module` and `offset` likewise. On import, what is named is looked up in the VM as it
//! is now, and wins over the addresses; accessors outside every named domain's code (the
//! kernel's own) stay addresses. All of these are optional, pair by pair.
//!
//! Parsing checks everything the tool can check from the file alone, so that a bad file is
//! reported by rule or entry index and field and never reaches the kernel. How many rules and entry
//! points a VM holds is the VM's (the module parameters when it was created, in its `LIST` entry):
//! `profile import` checks that against the VM; here the bound is [`Limits::CEILING`], more than
//! any VM can hold.

use std::fmt;

use kvm_isolate_core::ctl::{
    CtlCodeName, CtlDomain, CtlEntry, CtlRegion, CtlRule, GPA_FROM_CODE, RULE_TRUSTED,
};
use kvm_isolate_core::policy::Limits;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::output::{self, access_from_str, access_str};

/// `format` of a profile file.
pub const FORMAT: &str = "kvm-isolate-profile";
/// `version` of a profile file.
pub const VERSION: u64 = 1;
/// Page size the kernel requires addresses to be aligned to.
pub const PAGE_SIZE: u64 = 4096;
/// Guest physical addresses are below this (52-bit physical address space).
pub const GPA_LIMIT: u64 = 1 << 52;
/// Domains are views 1..=255.
pub const MAX_DOMAIN: u32 = kvm_isolate_core::abi::MAX_VIEWS as u32 - 1;

/// A profile-file error; `rule` is the index into `rules`, `entry` the index into `entries`, if
/// it concerns one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileError {
    pub rule: Option<usize>,
    pub entry: Option<usize>,
    pub field: Option<&'static str>,
    pub msg: String,
}

/// What in the file an error is about: a rule or an entry point, by index.
#[derive(Debug, Clone, Copy)]
enum Item {
    Rule(usize),
    Entry(usize),
}

impl ProfileError {
    fn file(msg: impl Into<String>) -> Self {
        ProfileError {
            rule: None,
            entry: None,
            field: None,
            msg: msg.into(),
        }
    }

    fn field(field: &'static str, msg: impl Into<String>) -> Self {
        ProfileError {
            field: Some(field),
            ..Self::file(msg)
        }
    }

    /// About `item`, and its `field` if any.
    fn at(item: Item, field: Option<&'static str>, msg: impl Into<String>) -> Self {
        let (rule, entry) = match item {
            Item::Rule(i) => (Some(i), None),
            Item::Entry(i) => (None, Some(i)),
        };
        ProfileError {
            rule,
            entry,
            field,
            msg: msg.into(),
        }
    }

    fn rule(rule: usize, field: &'static str, msg: impl Into<String>) -> Self {
        Self::at(Item::Rule(rule), Some(field), msg)
    }

    fn entry(entry: usize, field: &'static str, msg: impl Into<String>) -> Self {
        Self::at(Item::Entry(entry), Some(field), msg)
    }
}

impl fmt::Display for ProfileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let item = match (self.rule, self.entry) {
            (Some(i), _) => Some(("rule", i)),
            (None, Some(i)) => Some(("entry", i)),
            (None, None) => None,
        };
        match (item, self.field) {
            (Some((what, i)), Some(field)) => write!(f, "{} {}: {}: {}", what, i, field, self.msg),
            (Some((what, i)), None) => write!(f, "{} {}: {}", what, i, self.msg),
            (None, Some(field)) => write!(f, "{}: {}", field, self.msg),
            (None, None) => write!(f, "{}", self.msg),
        }
    }
}

/// The top level of the file; rules and entries are checked field by field in [`parse`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    format: Value,
    version: Value,
    rules: Value,
    /// `None` when absent; `"entries": null` is `Some(Value::Null)`, which is refused.
    #[serde(default, deserialize_with = "present")]
    entries: Option<Value>,
}

/// Deserializes a field that is there, whatever its value (`null` included).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// One rule as written to a file; `trusted` only when true, the names only when known.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct FileRule {
    pub domain: u32,
    pub region_gpa: String,
    pub access: String,
    pub accessor_start: String,
    pub accessor_end: String,
    #[serde(skip_serializing_if = "is_false")]
    pub trusted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accessor_module: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accessor_offset: Option<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// One entry point as written to a file; the name only when known.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    pub domain: u32,
    pub gva: String,
    pub gpa: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<String>,
}

/// A place in a module: its name (its domain's) and an offset.
pub type Named = Option<(String, u64)>;

/// What a rule names by module.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleNames {
    /// The region's module and its number among the module's regions.
    pub region: Option<(String, u32)>,
    /// The module whose code the accessor range lies in, and the range's offset in it.
    pub accessor: Named,
}

/// A profile as written to a file; `entries` only when there are some.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct FileProfile {
    pub format: &'static str,
    pub version: u64,
    pub rules: Vec<FileRule>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub entries: Vec<FileEntry>,
}

/// A parsed profile file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// The rules, in the file's order.
    pub rules: Vec<CtlRule>,
    /// The entry points, in the file's order; `None` when the file has no `entries`.
    pub entries: Option<Vec<CtlEntry>>,
    /// What each rule names by module, in the same order.
    pub rule_names: Vec<RuleNames>,
    /// What each entry point names by module, in the same order (empty without `entries`).
    pub entry_names: Vec<Named>,
}

/// The fields of a rule: the first five are required, `trusted` optional, and the names go in
/// pairs.
const RULE_FIELDS: [&str; 10] = [
    "domain",
    "region_gpa",
    "access",
    "accessor_start",
    "accessor_end",
    "trusted",
    "module",
    "region",
    "accessor_module",
    "accessor_offset",
];

/// The fields of an entry point: the first three required, the name's two together.
const ENTRY_FIELDS: [&str; 5] = ["domain", "gva", "gpa", "module", "offset"];

/// `0x...` in lower case, the form the file uses for addresses.
pub fn hex(v: u64) -> String {
    format!("{:#x}", v)
}

/// Whether a kernel rule is trusted on its own (`KVM_ISOLATE_RULE_TRUSTED`).
pub fn is_trusted(r: &CtlRule) -> bool {
    r.access & RULE_TRUSTED != 0
}

/// Converts a kernel rule to its file form: `KVM_ISOLATE_RULE_TRUSTED` in `access` becomes
/// `trusted`.
pub fn to_file_rule(r: &CtlRule) -> FileRule {
    FileRule {
        domain: r.domain,
        region_gpa: hex(r.region_gpa),
        access: access_str(r.access & !RULE_TRUSTED),
        accessor_start: hex(r.accessor_start),
        accessor_end: hex(r.accessor_end),
        trusted: is_trusted(r),
        module: None,
        region: None,
        accessor_module: None,
        accessor_offset: None,
    }
}

/// Converts a kernel entry point to its file form.
pub fn to_file_entry(e: &CtlEntry) -> FileEntry {
    FileEntry {
        domain: e.domain,
        gva: hex(e.gva),
        gpa: hex(e.gpa),
        module: None,
        offset: None,
    }
}

/// A VM's layout as its control plane reports it: what (module, offset) names are looked up in.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    pub domains: Vec<CtlDomain>,
    pub regions: Vec<CtlRegion>,
    /// The code the guest names now (`CODE_NAMES_GET`, live names): an accessor outside the
    /// domains' code (the kernel's, a module not protected) is named by these.
    pub code_names: Vec<CtlCodeName>,
}

/// A domain's name: the guest's; `None` if it gave none.
fn domain_name(d: &CtlDomain) -> Option<String> {
    Some(output::domain_name(d)).filter(|n| !n.is_empty())
}

impl Layout {
    /// The named domain whose code contains `gva`, and the offset of `gva` from its code start.
    fn module_at(&self, gva: u64) -> Named {
        self.domains
            .iter()
            .filter(|d| d.code_end > d.code_start && (d.code_start..d.code_end).contains(&gva))
            .find_map(|d| Some((domain_name(d)?, gva - d.code_start)))
    }

    /// As [`Layout::module_at`], and else the code the guest names that contains `gva`
    /// (`vmlinux`: offsets from the kernel's `_stext`, wherever KASLR put it).
    fn code_named_at(&self, gva: u64) -> Named {
        self.module_at(gva).or_else(|| {
            self.code_names
                .iter()
                .find(|x| gva.wrapping_sub(x.start) < x.size)
                .map(|x| (output::name_str(&x.name), gva - x.start))
                .filter(|(n, _)| !n.is_empty())
        })
    }

    /// The number of the region of domain `d` at `gpa`.
    fn region_index(&self, d: u32, gpa: u64) -> Option<u32> {
        self.regions
            .iter()
            .find(|r| r.domain == d && r.gpa == gpa)
            .map(|r| r.index)
    }

    /// The one domain named `name`.
    fn by_name(&self, name: &str) -> Result<&CtlDomain, String> {
        let mut named = self
            .domains
            .iter()
            .filter(|d| domain_name(d).as_deref() == Some(name));
        match (named.next(), named.next()) {
            (Some(d), None) => Ok(d),
            (None, _) => Err(format!("no domain of the VM is named {:?}", name)),
            (Some(a), Some(b)) => Err(format!(
                "domains {} and {} are both named {:?}",
                a.id, b.id, name
            )),
        }
    }

    /// As [`Layout::code_at`] for a domain named `name`; else in the one range of code the guest
    /// names `name` now.
    fn named_code_at(&self, name: &str, offset: u64, len: u64) -> Result<u64, String> {
        if self
            .domains
            .iter()
            .any(|d| domain_name(d).as_deref() == Some(name))
        {
            return self.code_at(name, offset, len).map(|(_, gva)| gva);
        }
        let mut named = self
            .code_names
            .iter()
            .filter(|x| output::name_str(&x.name) == name);
        let x = match (named.next(), named.next()) {
            (Some(x), None) => x,
            (None, _) => {
                return Err(format!(
                    "no domain of the VM is named {:?}, nor code its guest names",
                    name
                ))
            }
            (Some(_), Some(_)) => {
                return Err(format!("the guest names two ranges of code {:?}", name))
            }
        };
        if offset.checked_add(len).is_none_or(|end| end > x.size) {
            return Err(format!(
                "{} (+{:#x} bytes) is beyond the {:#x} bytes of {}'s code",
                hex(offset),
                len,
                x.size,
                name
            ));
        }
        Ok(x.start + offset)
    }

    /// Where `offset` into module `name`'s code is, `len` bytes from there included.
    fn code_at(&self, name: &str, offset: u64, len: u64) -> Result<(&CtlDomain, u64), String> {
        let d = self.by_name(name)?;
        let size = d.code_end.saturating_sub(d.code_start);
        if offset.checked_add(len).is_none_or(|end| end > size) {
            return Err(format!(
                "{} (+{:#x} bytes) is beyond the {:#x} bytes of {}'s code",
                hex(offset),
                len,
                size,
                name
            ));
        }
        Ok((d, d.code_start + offset))
    }
}

/// `rules` and `entries` named by (module, offset) where `layout` knows the module: the file
/// forms [`export`] writes.
pub fn name(
    rules: &[CtlRule],
    entries: &[CtlEntry],
    layout: &Layout,
) -> (Vec<FileRule>, Vec<FileEntry>) {
    let rules = rules
        .iter()
        .map(|r| {
            let mut f = to_file_rule(r);
            let owner = layout.domains.iter().find(|d| d.id == r.domain);
            if let (Some(m), Some(k)) = (
                owner.and_then(domain_name),
                layout.region_index(r.domain, r.region_gpa),
            ) {
                f.module = Some(m);
                f.region = Some(k);
            }
            if let Some((m, off)) = layout.code_named_at(r.accessor_start) {
                f.accessor_module = Some(m);
                f.accessor_offset = Some(hex(off));
            }
            f
        })
        .collect();
    let entries = entries
        .iter()
        .map(|e| {
            let mut f = to_file_entry(e);
            if let Some((m, off)) = layout.module_at(e.gva) {
                f.module = Some(m);
                f.offset = Some(hex(off));
            }
            f
        })
        .collect();
    (rules, entries)
}

/// The profile `p` for the VM whose layout is `layout`: what it names by module looked up there
/// (and winning over its addresses), the rest as in the file. An entry point named so gets
/// [`GPA_FROM_CODE`]: the kernel takes the gpa from the domain's code.
pub fn resolve(p: &Profile, layout: &Layout) -> Result<Profile, ProfileError> {
    let mut out = p.clone();
    for (i, (r, names)) in out.rules.iter_mut().zip(&p.rule_names).enumerate() {
        if let Some((m, k)) = &names.region {
            let d = layout
                .by_name(m)
                .map_err(|e| ProfileError::rule(i, "module", e))?;
            let region = layout
                .regions
                .iter()
                .find(|x| x.domain == d.id && x.index == *k)
                .ok_or_else(|| {
                    let n = layout.regions.iter().filter(|x| x.domain == d.id).count();
                    ProfileError::rule(
                        i,
                        "region",
                        format!("{} has no region {} (it has {})", m, k, n),
                    )
                })?;
            r.domain = d.id;
            r.region_gpa = region.gpa;
        }
        if let Some((m, off)) = &names.accessor {
            let len = r.accessor_end - r.accessor_start;
            let start = layout
                .named_code_at(m, *off, len)
                .map_err(|e| ProfileError::rule(i, "accessor_offset", e))?;
            r.accessor_start = start;
            r.accessor_end = start + len;
        }
    }
    if let Some(entries) = &mut out.entries {
        for (i, (e, name)) in entries.iter_mut().zip(&p.entry_names).enumerate() {
            if let Some((m, off)) = name {
                let (d, gva) = layout
                    .code_at(m, *off, 1)
                    .map_err(|e| ProfileError::entry(i, "offset", e))?;
                e.domain = d.id;
                e.gva = gva;
                e.gpa = GPA_FROM_CODE;
            }
        }
    }
    Ok(out)
}

/// Sorts rules the way files list them: by domain, region, accessor start.
pub fn sort_rules(rules: &mut [CtlRule]) {
    rules.sort_by_key(|r| {
        (
            r.domain,
            r.region_gpa,
            r.accessor_start,
            r.accessor_end,
            r.access,
        )
    });
}

/// Sorts entry points the way files list them: by domain, then address (the kernel lists them by
/// guest-physical address).
pub fn sort_entries(entries: &mut [CtlEntry]) {
    entries.sort_by_key(|e| (e.domain, e.gva, e.gpa));
}

/// Renders `rules` and `entries` as a profile file (sorted, pretty-printed, ending in a newline),
/// named by (module, offset) where `layout` knows the module. Without entry points the file has
/// no `entries`, as before they were exported.
pub fn export(
    rules: &[CtlRule],
    entries: &[CtlEntry],
    layout: &Layout,
) -> Result<String, serde_json::Error> {
    let mut sorted = rules.to_vec();
    sort_rules(&mut sorted);
    let mut sorted_entries = entries.to_vec();
    sort_entries(&mut sorted_entries);
    let (rules, entries) = name(&sorted, &sorted_entries, layout);
    let p = FileProfile {
        format: FORMAT,
        version: VERSION,
        rules,
        entries,
    };
    let mut s = serde_json::to_string_pretty(&p)?;
    s.push('\n');
    Ok(s)
}

/// An address: a `0x` hex string or a JSON integer.
fn parse_addr(at: Item, field: &'static str, v: &Value) -> Result<u64, ProfileError> {
    let err = |msg: String| ProfileError::at(at, Some(field), msg);
    match v {
        Value::String(s) => {
            let digits = s
                .strip_prefix("0x")
                .or_else(|| s.strip_prefix("0X"))
                .ok_or_else(|| err(format!("{:?} is not a hex string (0x...)", s)))?;
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(err(format!("{:?} is not a hex number", s)));
            }
            u64::from_str_radix(digits, 16)
                .map_err(|_| err(format!("{:?} does not fit in 64 bits", s)))
        }
        Value::Number(n) => n
            .as_u64()
            .ok_or_else(|| err(format!("{} is not an unsigned 64-bit integer", n))),
        other => Err(err(format!(
            "expected a hex string or an integer, found {}",
            kind(other)
        ))),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn page_aligned(i: usize, field: &'static str, v: u64) -> Result<u64, ProfileError> {
    if v % PAGE_SIZE != 0 {
        return Err(ProfileError::rule(
            i,
            field,
            format!("{} is not page aligned ({} bytes)", hex(v), PAGE_SIZE),
        ));
    }
    Ok(v)
}

/// The object of a rule or an entry point, with only the `known` fields.
fn object<'a>(
    at: Item,
    v: &'a Value,
    known: &[&str],
) -> Result<&'a serde_json::Map<String, Value>, ProfileError> {
    let obj = match v {
        Value::Object(o) => o,
        other => {
            return Err(ProfileError::at(
                at,
                None,
                format!("expected an object, found {}", kind(other)),
            ))
        }
    };
    if let Some(k) = obj.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(ProfileError::at(
            at,
            None,
            format!("unknown field {:?} (expected {})", k, known.join(", ")),
        ));
    }
    Ok(obj)
}

/// A required field of `obj`.
fn required<'a>(
    at: Item,
    obj: &'a serde_json::Map<String, Value>,
    field: &'static str,
) -> Result<&'a Value, ProfileError> {
    obj.get(field)
        .ok_or_else(|| ProfileError::at(at, Some(field), "missing"))
}

/// `domain`: an integer 1..=255.
fn parse_domain(at: Item, v: &Value) -> Result<u32, ProfileError> {
    match v {
        Value::Number(n) => match n.as_u64() {
            Some(d) if (1..=u64::from(MAX_DOMAIN)).contains(&d) => Ok(d as u32),
            _ => Err(ProfileError::at(
                at,
                Some("domain"),
                format!("{} is out of range (1..={})", n, MAX_DOMAIN),
            )),
        },
        other => Err(ProfileError::at(
            at,
            Some("domain"),
            format!("expected an integer, found {}", kind(other)),
        )),
    }
}

/// A module's name: what the guest may name a domain (`KVM_HC_ISOLATE_DOMAIN_NAME`), 1 to 64
/// printable ASCII characters.
fn parse_module(at: Item, field: &'static str, v: &Value) -> Result<String, ProfileError> {
    let err = |msg: String| ProfileError::at(at, Some(field), msg);
    match v {
        Value::String(s)
            if !s.is_empty()
                && s.len() <= kvm_isolate_core::abi::NAME_LEN
                && s.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            Ok(s.clone())
        }
        Value::String(s) => Err(err(format!(
            "{:?} is not a module name (1 to {} printable ASCII characters)",
            s,
            kvm_isolate_core::abi::NAME_LEN
        ))),
        other => Err(err(format!("expected a string, found {}", kind(other)))),
    }
}

/// A (module, offset) pair of fields, both or neither: `Some` with both.
fn parse_named(
    at: Item,
    obj: &serde_json::Map<String, Value>,
    module: &'static str,
    offset: &'static str,
) -> Result<Named, ProfileError> {
    match (obj.get(module), obj.get(offset)) {
        (None, None) => Ok(None),
        (Some(m), Some(o)) => Ok(Some((
            parse_module(at, module, m)?,
            parse_addr(at, offset, o)?,
        ))),
        (Some(_), None) => Err(ProfileError::at(
            at,
            Some(offset),
            format!("missing (it goes with {})", module),
        )),
        (None, Some(_)) => Err(ProfileError::at(
            at,
            Some(module),
            format!("missing (it goes with {})", offset),
        )),
    }
}

/// A rule's names by module ([`RuleNames`]).
fn parse_rule_names(
    i: usize,
    obj: &serde_json::Map<String, Value>,
) -> Result<RuleNames, ProfileError> {
    let at = Item::Rule(i);
    let region = match (obj.get("module"), obj.get("region")) {
        (None, None) => None,
        (Some(_), None) => {
            return Err(ProfileError::rule(
                i,
                "region",
                "missing (it goes with module)",
            ))
        }
        (None, Some(_)) => {
            return Err(ProfileError::rule(
                i,
                "module",
                "missing (it goes with region)",
            ))
        }
        (Some(m), Some(k)) => {
            let m = parse_module(at, "module", m)?;
            match k.as_u64() {
                Some(k) if k < Limits::CEILING as u64 => Some((m, k as u32)),
                _ => {
                    return Err(ProfileError::rule(
                        i,
                        "region",
                        format!(
                            "expected a region number (0 to {}), found {}",
                            Limits::CEILING - 1,
                            k
                        ),
                    ))
                }
            }
        }
    };
    let accessor = parse_named(at, obj, "accessor_module", "accessor_offset")?;
    if let Some((_, off)) = &accessor {
        page_aligned(i, "accessor_offset", *off)?;
    }
    Ok(RuleNames { region, accessor })
}

fn parse_rule(i: usize, v: &Value) -> Result<(CtlRule, RuleNames), ProfileError> {
    let at = Item::Rule(i);
    let obj = object(at, v, &RULE_FIELDS)?;
    let get = |field: &'static str| required(at, obj, field);

    let domain = parse_domain(at, get("domain")?)?;

    let region_gpa = page_aligned(
        i,
        "region_gpa",
        parse_addr(at, "region_gpa", get("region_gpa")?)?,
    )?;
    if region_gpa >= GPA_LIMIT {
        return Err(ProfileError::rule(
            i,
            "region_gpa",
            format!("{} is not below 2^52", hex(region_gpa)),
        ));
    }

    let access = match get("access")? {
        Value::String(s) => access_from_str(s).map_err(|e| ProfileError::rule(i, "access", e))?,
        other => {
            return Err(ProfileError::rule(
                i,
                "access",
                format!("expected a string of r, w, x, found {}", kind(other)),
            ))
        }
    };

    let accessor_start = page_aligned(
        i,
        "accessor_start",
        parse_addr(at, "accessor_start", get("accessor_start")?)?,
    )?;
    let accessor_end = page_aligned(
        i,
        "accessor_end",
        parse_addr(at, "accessor_end", get("accessor_end")?)?,
    )?;
    if accessor_start >= accessor_end {
        return Err(ProfileError::rule(
            i,
            "accessor_end",
            format!(
                "{} is not above accessor_start {}",
                hex(accessor_end),
                hex(accessor_start)
            ),
        ));
    }

    let trusted = match obj.get("trusted") {
        None | Some(Value::Bool(false)) => false,
        Some(Value::Bool(true)) => true,
        Some(other) => {
            return Err(ProfileError::rule(
                i,
                "trusted",
                format!("expected true or false, found {}", kind(other)),
            ))
        }
    };

    let names = parse_rule_names(i, obj)?;
    Ok((
        CtlRule {
            domain,
            access: access | if trusted { RULE_TRUSTED } else { 0 },
            region_gpa,
            accessor_start,
            accessor_end,
        },
        names,
    ))
}

/// An entry point: a domain, and an instruction's gva and the gpa the domain's code maps it to.
/// A code range starts on a page, so both lie at the same offset in their pages.
fn parse_entry(i: usize, v: &Value) -> Result<(CtlEntry, Named), ProfileError> {
    let at = Item::Entry(i);
    let obj = object(at, v, &ENTRY_FIELDS)?;
    let get = |field: &'static str| required(at, obj, field);
    let domain = parse_domain(at, get("domain")?)?;
    let gva = parse_addr(at, "gva", get("gva")?)?;
    let gpa = parse_addr(at, "gpa", get("gpa")?)?;
    if gpa >= GPA_LIMIT {
        return Err(ProfileError::entry(
            i,
            "gpa",
            format!("{} is not below 2^52", hex(gpa)),
        ));
    }
    if gpa % PAGE_SIZE != gva % PAGE_SIZE {
        return Err(ProfileError::entry(
            i,
            "gpa",
            format!(
                "{} is not at the offset in its page of gva {} ({:#x})",
                hex(gpa),
                hex(gva),
                gva % PAGE_SIZE
            ),
        ));
    }
    let name = parse_named(at, obj, "module", "offset")?;
    Ok((
        CtlEntry {
            domain,
            pad: 0,
            gva,
            gpa,
        },
        name,
    ))
}

/// `entries`: an array of at most [`Limits::CEILING`] entry points, no two alike.
fn parse_entries(v: &Value) -> Result<(Vec<CtlEntry>, Vec<Named>), ProfileError> {
    let list = match v {
        Value::Array(a) => a,
        other => {
            return Err(ProfileError::field(
                "entries",
                format!("expected an array, found {}", kind(other)),
            ))
        }
    };
    if list.len() > Limits::CEILING {
        return Err(ProfileError::field(
            "entries",
            too_many(list.len(), "entry points"),
        ));
    }
    let (entries, names): (Vec<CtlEntry>, Vec<Named>) = list
        .iter()
        .enumerate()
        .map(|(i, v)| parse_entry(i, v))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .unzip();
    // The same entry point twice (the kernel refuses it with EEXIST).
    let mut idx: Vec<usize> = (0..entries.len()).collect();
    idx.sort_by_key(|&i| (entries[i].gva, entries[i].gpa, entries[i].domain, i));
    for w in idx.windows(2) {
        let (a, b) = (&entries[w[0]], &entries[w[1]]);
        if a == b {
            return Err(ProfileError::entry(
                w[1],
                "gva",
                format!("the same entry point as entry {} ({})", w[0], hex(a.gva)),
            ));
        }
    }
    Ok((entries, names))
}

/// More `what` than any VM can hold: checked before the items, so that a huge file costs no more
/// than reading it.
fn too_many(n: usize, what: &str) -> String {
    format!(
        "{} {}, at most {} allowed (no VM holds more)",
        n,
        what,
        Limits::CEILING
    )
}

/// Parses and validates a profile file.  Rules and entry points keep the file's order.
pub fn parse(text: &str) -> Result<Profile, ProfileError> {
    let raw: RawProfile = serde_json::from_str(text)
        .map_err(|e| ProfileError::file(format!("not a valid profile: {}", e)))?;

    if raw.format.as_str() != Some(FORMAT) {
        return Err(ProfileError::field(
            "format",
            format!("expected \"{}\", found {}", FORMAT, raw.format),
        ));
    }
    if raw.version.as_u64() != Some(VERSION) {
        return Err(ProfileError::field(
            "version",
            format!(
                "unsupported version {} (this tool reads {})",
                raw.version, VERSION
            ),
        ));
    }
    let list = match &raw.rules {
        Value::Array(a) => a,
        other => {
            return Err(ProfileError::field(
                "rules",
                format!("expected an array, found {}", kind(other)),
            ))
        }
    };
    if list.len() > Limits::CEILING {
        return Err(ProfileError::field("rules", too_many(list.len(), "rules")));
    }

    let (rules, rule_names): (Vec<CtlRule>, Vec<RuleNames>) = list
        .iter()
        .enumerate()
        .map(|(i, v)| parse_rule(i, v))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .unzip();

    // No two rules for the same (domain, region) with overlapping accessor ranges.
    let mut idx: Vec<usize> = (0..rules.len()).collect();
    idx.sort_by_key(|&i| {
        (
            rules[i].domain,
            rules[i].region_gpa,
            rules[i].accessor_start,
        )
    });
    for w in idx.windows(2) {
        let (a, b) = (&rules[w[0]], &rules[w[1]]);
        if a.domain == b.domain && a.region_gpa == b.region_gpa && b.accessor_start < a.accessor_end
        {
            let (first, second) = (w[0].min(w[1]), w[0].max(w[1]));
            return Err(ProfileError {
                rule: Some(second),
                entry: None,
                field: Some("accessor_start"),
                msg: format!(
                    "accessor range overlaps rule {} (domain {}, region_gpa {})",
                    first,
                    a.domain,
                    hex(a.region_gpa)
                ),
            });
        }
    }
    let (entries, entry_names) = match raw.entries.as_ref().map(parse_entries).transpose()? {
        Some((e, n)) => (Some(e), n),
        None => (None, Vec::new()),
    };
    Ok(Profile {
        rules,
        entries,
        rule_names,
        entry_names,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = r#"{
  "format": "kvm-isolate-profile",
  "version": 1,
  "rules": [
    { "domain": 1, "region_gpa": "0x200000", "access": "rw",
      "accessor_start": "0xffffffff81000000", "accessor_end": "0xffffffff81001000" },
    { "domain": 2, "region_gpa": 8192, "access": "x",
      "accessor_start": "0xffffffffa0000000", "accessor_end": "0xffffffffa0002000" }
  ]
}"#;

    fn rule(domain: u32, gpa: u64, access: u32, start: u64, end: u64) -> CtlRule {
        CtlRule {
            domain,
            access,
            region_gpa: gpa,
            accessor_start: start,
            accessor_end: end,
        }
    }

    /// The valid file with rule 0's `field` replaced by `value` (raw JSON).
    fn with_field(field: &str, value: &str) -> String {
        let mut v: Value = serde_json::from_str(VALID).unwrap();
        v["rules"][0][field] = serde_json::from_str(value).unwrap();
        v.to_string()
    }

    #[test]
    fn parses_valid_file() {
        let rules = parse(VALID).unwrap().rules;
        assert_eq!(
            rules,
            vec![
                rule(1, 0x200000, 3, 0xffffffff81000000, 0xffffffff81001000),
                rule(2, 0x2000, 4, 0xffffffffa0000000, 0xffffffffa0002000),
            ]
        );
    }

    #[test]
    fn empty_rules_is_valid() {
        let text = r#"{"format":"kvm-isolate-profile","version":1,"rules":[]}"#;
        assert_eq!(
            parse(text).unwrap(),
            Profile {
                rules: vec![],
                entries: None,
                rule_names: vec![],
                entry_names: vec![],
            }
        );
    }

    fn err(text: &str) -> ProfileError {
        parse(text).expect_err("must be rejected")
    }

    #[test]
    fn rejects_bad_format_and_version() {
        let e = err(&VALID.replace("kvm-isolate-profile", "something-else"));
        assert_eq!(e.field, Some("format"));
        assert!(e.to_string().contains("kvm-isolate-profile"), "{}", e);
        let e = err(&VALID.replace("\"version\": 1", "\"version\": 2"));
        assert_eq!(e.field, Some("version"));
        assert!(e.to_string().contains("unsupported version 2"), "{}", e);
        let e = err(&VALID.replace("\"version\": 1", "\"version\": \"1\""));
        assert_eq!(e.field, Some("version"));
    }

    #[test]
    fn rejects_unknown_and_missing_fields() {
        let e = err(&VALID.replace("\"version\": 1,", "\"version\": 1, \"extra\": 0,"));
        assert!(e.to_string().contains("unknown field `extra`"), "{}", e);
        let e = err(&with_field("color", "\"red\""));
        assert_eq!(e.rule, Some(0));
        assert!(e.to_string().contains("unknown field \"color\""), "{}", e);
        let e = err(&VALID.replace("\"access\": \"x\",", ""));
        assert_eq!((e.rule, e.field), (Some(1), Some("access")));
        assert!(e.to_string().contains("rule 1: access: missing"), "{}", e);
        let e = err(r#"{"format":"kvm-isolate-profile","version":1}"#);
        assert!(e.to_string().contains("missing field `rules`"), "{}", e);
    }

    #[test]
    fn rejects_bad_domain() {
        for bad in ["0", "256", "-1", "1.5", "\"1\""] {
            let e = err(&with_field("domain", bad));
            assert_eq!(
                (e.rule, e.field),
                (Some(0), Some("domain")),
                "{}: {}",
                bad,
                e
            );
        }
        assert!(err(&with_field("domain", "256"))
            .to_string()
            .contains("out of range"));
    }

    #[test]
    fn rejects_bad_region_gpa() {
        let e = err(&with_field("region_gpa", "\"0x200001\""));
        assert_eq!((e.rule, e.field), (Some(0), Some("region_gpa")));
        assert!(e.to_string().contains("not page aligned"), "{}", e);
        let e = err(&with_field("region_gpa", "\"0x10000000000000\""));
        assert!(e.to_string().contains("below 2^52"), "{}", e);
        let e = err(&with_field("region_gpa", "\"200000\""));
        assert!(e.to_string().contains("not a hex string"), "{}", e);
        let e = err(&with_field("region_gpa", "\"0xzz\""));
        assert!(e.to_string().contains("not a hex number"), "{}", e);
        let e = err(&with_field("region_gpa", "\"0x10000000000000000\""));
        assert!(e.to_string().contains("64 bits"), "{}", e);
        let e = err(&with_field("region_gpa", "true"));
        assert_eq!(e.field, Some("region_gpa"));
    }

    #[test]
    fn rejects_bad_access() {
        for bad in ["\"\"", "\"rr\"", "\"rwz\"", "\"R\"", "7"] {
            let e = err(&with_field("access", bad));
            assert_eq!(
                (e.rule, e.field),
                (Some(0), Some("access")),
                "{}: {}",
                bad,
                e
            );
        }
        assert!(err(&with_field("access", "\"rr\""))
            .to_string()
            .contains("repeat"));
        assert!(err(&with_field("access", "\"\""))
            .to_string()
            .contains("empty"));
        // Any order is accepted.
        assert_eq!(
            parse(&with_field("access", "\"xwr\"")).unwrap().rules[0].access,
            7
        );
    }

    #[test]
    fn rejects_bad_accessor_range() {
        let e = err(&with_field("accessor_start", "\"0xffffffff81000010\""));
        assert_eq!((e.rule, e.field), (Some(0), Some("accessor_start")));
        assert!(e.to_string().contains("not page aligned"));
        let e = err(&with_field("accessor_end", "\"0xffffffff81000000\""));
        assert_eq!((e.rule, e.field), (Some(0), Some("accessor_end")));
        assert!(e.to_string().contains("not above accessor_start"), "{}", e);
    }

    /// A file whose `rules` (and `entries`, if given) are arrays of that many zeros: cheap to
    /// write and to read up to the count check, whatever the count.
    fn zeros(rules: usize, entries: Option<usize>) -> String {
        let z = |n| vec!["0"; n].join(",");
        let entries = entries.map_or(String::new(), |n| format!(",\"entries\":[{}]", z(n)));
        format!(
            "{{\"format\":\"kvm-isolate-profile\",\"version\":1,\"rules\":[{}]{}}}",
            z(rules),
            entries
        )
    }

    /// More rules than any VM can hold are refused before any rule is read; how many a VM holds is
    /// its own (`max_rules`), which `profile import` checks against the VM.
    #[test]
    fn rejects_more_rules_than_any_vm_holds() {
        let e = err(&zeros(Limits::CEILING + 1, None));
        assert_eq!((e.rule, e.field), (None, Some("rules")));
        assert_eq!(
            e.to_string(),
            format!(
                "rules: {} rules, at most {} allowed (no VM holds more)",
                Limits::CEILING + 1,
                Limits::CEILING
            )
        );
        // Exactly the ceiling passes the count: rule 0 is read (and is no rule). So does more
        // than a VM with the default parameters holds: that bound is the VM's.
        for n in [Limits::CEILING, Limits::DEFAULT.rules + 1] {
            let e = err(&zeros(n, None));
            assert_eq!((e.rule, e.field), (Some(0), None), "{}: {}", n, e);
        }
    }

    #[test]
    fn rejects_overlapping_accessors() {
        let rules = [
            rule(1, 0x200000, 1, 0x3000, 0x5000),
            rule(1, 0x201000, 1, 0x4000, 0x5000), // other region: fine
            rule(2, 0x200000, 1, 0x4000, 0x5000), // other domain: fine
            rule(1, 0x200000, 2, 0x5000, 0x6000), // adjacent: fine
        ];
        parse(&export(&rules, &[], &Layout::default()).unwrap()).unwrap();
        let mut bad = rules.to_vec();
        bad.push(rule(1, 0x200000, 4, 0x4000, 0x8000));
        let e = err(&export(&bad, &[], &Layout::default()).unwrap());
        assert!(e.to_string().contains("overlaps rule"), "{}", e);
    }

    #[test]
    fn rule_conversion_both_ways() {
        let r = rule(3, 0x40005000, 5, 0xffffffffc0000000, 0xffffffffc0003000);
        let f = to_file_rule(&r);
        assert_eq!(
            f,
            FileRule {
                domain: 3,
                region_gpa: "0x40005000".into(),
                access: "rx".into(),
                accessor_start: "0xffffffffc0000000".into(),
                accessor_end: "0xffffffffc0003000".into(),
                trusted: false,
                module: None,
                region: None,
                accessor_module: None,
                accessor_offset: None,
            }
        );
        let t = CtlRule {
            access: 5 | RULE_TRUSTED,
            accessor_start: 0xffffffffc0003000,
            accessor_end: 0xffffffffc0004000,
            ..r
        };
        let ft = to_file_rule(&t);
        assert_eq!(
            ft,
            FileRule {
                accessor_start: "0xffffffffc0003000".into(),
                accessor_end: "0xffffffffc0004000".into(),
                trusted: true,
                ..f.clone()
            }
        );
        let text = serde_json::to_string(&FileProfile {
            format: FORMAT,
            version: 1,
            rules: vec![f, ft],
            entries: vec![],
        })
        .unwrap();
        assert_eq!(parse(&text).unwrap().rules, vec![r, t]);
    }

    #[test]
    fn trusted_is_optional_and_sets_rule_trusted() {
        // Absent (the valid file), false, true.
        assert_eq!(parse(VALID).unwrap().rules[0].access, 3);
        assert_eq!(
            parse(&with_field("trusted", "false")).unwrap().rules[0].access,
            3
        );
        let rules = parse(&with_field("trusted", "true")).unwrap().rules;
        assert_eq!(rules[0].access, 3 | RULE_TRUSTED);
        assert!(is_trusted(&rules[0]) && !is_trusted(&rules[1]));
        // Only rule 0: the other keeps its access.
        assert_eq!(rules[1].access, 4);
    }

    #[test]
    fn rejects_non_boolean_trusted() {
        for (bad, found) in [
            ("1", "a number"),
            ("0", "a number"),
            ("\"true\"", "a string"),
            ("null", "null"),
            ("[]", "an array"),
            ("{}", "an object"),
        ] {
            let e = err(&with_field("trusted", bad));
            assert_eq!(
                (e.rule, e.field),
                (Some(0), Some("trusted")),
                "{}: {}",
                bad,
                e
            );
            assert_eq!(
                e.to_string(),
                format!("rule 0: trusted: expected true or false, found {}", found)
            );
        }
        // Still one field among known ones: a misspelling is an unknown field.
        let e = err(&with_field("trust", "true"));
        assert_eq!((e.rule, e.field), (Some(0), None));
        assert!(e.to_string().contains("unknown field \"trust\""), "{}", e);
        assert!(e.to_string().contains("trusted"), "{}", e);
    }

    #[test]
    fn export_writes_trusted_only_when_set() {
        let plain = rule(1, 0x2000, 1, 0x1000, 0x2000);
        let trusted = rule(1, 0x2000, 3 | RULE_TRUSTED, 0x5000, 0x6000);
        // A profile without trusted rules is written exactly as before `trusted` existed.
        assert_eq!(
            export(&[plain], &[], &Layout::default()).unwrap(),
            r#"{
  "format": "kvm-isolate-profile",
  "version": 1,
  "rules": [
    {
      "domain": 1,
      "region_gpa": "0x2000",
      "access": "r",
      "accessor_start": "0x1000",
      "accessor_end": "0x2000"
    }
  ]
}
"#
        );
        let text = export(&[trusted, plain], &[], &Layout::default()).unwrap();
        assert_eq!(text.matches("\"trusted\"").count(), 1, "{}", text);
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["rules"][0].get("trusted"), None);
        assert_eq!(v["rules"][1]["trusted"], true);
        // The bit is not one of the access letters.
        assert_eq!(v["rules"][1]["access"], "rw");
        // And back.
        assert_eq!(parse(&text).unwrap().rules, vec![plain, trusted]);
        assert_eq!(
            export(&parse(&text).unwrap().rules, &[], &Layout::default()).unwrap(),
            text
        );
    }

    #[test]
    fn export_is_sorted_and_stable() {
        let rules = vec![
            rule(2, 0x1000, 1, 0x1000, 0x2000),
            rule(1, 0x3000, 2, 0x1000, 0x2000),
            rule(1, 0x2000, 7, 0x5000, 0x6000),
            rule(1, 0x2000, 1, 0x1000, 0x2000),
        ];
        let text = export(&rules, &[], &Layout::default()).unwrap();
        let back = parse(&text).unwrap().rules;
        let order: Vec<(u32, u64, u64)> = back
            .iter()
            .map(|r| (r.domain, r.region_gpa, r.accessor_start))
            .collect();
        assert_eq!(
            order,
            vec![
                (1, 0x2000, 0x1000),
                (1, 0x2000, 0x5000),
                (1, 0x3000, 0x1000),
                (2, 0x1000, 0x1000)
            ]
        );
        assert_eq!(export(&back, &[], &Layout::default()).unwrap(), text);
        assert!(text.ends_with("}\n"));
        assert!(text.contains("\"region_gpa\": \"0x2000\""));
    }

    fn entry(domain: u32, gva: u64, gpa: u64) -> CtlEntry {
        CtlEntry {
            domain,
            pad: 0,
            gva,
            gpa,
        }
    }

    /// The valid file with `entries` set to `value` (raw JSON).
    fn with_entries(value: &str) -> String {
        let mut v: Value = serde_json::from_str(VALID).unwrap();
        v["entries"] = serde_json::from_str(value).unwrap();
        v.to_string()
    }

    /// An entry point that parses: domain 1, gva and gpa at the same offset in their pages.
    const GOOD_ENTRY: &str = r#"{"domain": 1, "gva": "0xffffffffc0001040", "gpa": "0x4321040"}"#;

    #[test]
    fn entries_are_optional_and_parsed_in_file_order() {
        // Absent: none (the VM's entry points stay); empty: an empty set (they go).
        assert_eq!(parse(VALID).unwrap().entries, None);
        assert_eq!(parse(&with_entries("[]")).unwrap().entries, Some(vec![]));
        // Hex strings (either case of 0x) or integers, as for the rules' addresses.
        let p = parse(&with_entries(&format!(
            r#"[{}, {{"domain": 15, "gva": 4160, "gpa": "0X7040"}}]"#,
            GOOD_ENTRY
        )))
        .unwrap();
        assert_eq!(
            p.entries,
            Some(vec![
                entry(1, 0xffffffffc0001040, 0x4321040),
                entry(15, 0x1040, 0x7040),
            ])
        );
        // The rules are unaffected.
        assert_eq!(p.rules, parse(VALID).unwrap().rules);
        // Any key order.
        let p = parse(&with_entries(
            r#"[{"gpa": "0x2000", "gva": "0x5000", "domain": 2}]"#,
        ))
        .unwrap();
        assert_eq!(p.entries, Some(vec![entry(2, 0x5000, 0x2000)]));
    }

    #[test]
    fn rejects_bad_entries_naming_index_and_field() {
        let cases: &[(String, Option<usize>, Option<&str>, &str)] = &[
            (
                "null".into(),
                None,
                Some("entries"),
                "entries: expected an array, found null",
            ),
            (
                "{}".into(),
                None,
                Some("entries"),
                "expected an array, found an object",
            ),
            (
                "[1]".into(),
                Some(0),
                None,
                "entry 0: expected an object, found a number",
            ),
            (
                r#"[{"domain": 1, "gva": "0x1000", "gpa": "0x2000", "view": 1}]"#.into(),
                Some(0),
                None,
                "entry 0: unknown field \"view\" (expected domain, gva, gpa, module, offset)",
            ),
            (
                r#"[{"domain": 1, "gva": "0x1000"}]"#.into(),
                Some(0),
                Some("gpa"),
                "entry 0: gpa: missing",
            ),
            (
                r#"[{"gva": "0x1000", "gpa": "0x2000"}]"#.into(),
                Some(0),
                Some("domain"),
                "entry 0: domain: missing",
            ),
            (
                r#"[{"domain": 0, "gva": "0x1000", "gpa": "0x2000"}]"#.into(),
                Some(0),
                Some("domain"),
                "entry 0: domain: 0 is out of range (1..=255)",
            ),
            (
                r#"[{"domain": "1", "gva": "0x1000", "gpa": "0x2000"}]"#.into(),
                Some(0),
                Some("domain"),
                "entry 0: domain: expected an integer, found a string",
            ),
            (
                r#"[{"domain": 256, "gva": "0x1000", "gpa": "0x2000"}]"#.into(),
                Some(0),
                Some("domain"),
                "out of range",
            ),
            (
                format!(
                    r#"[{}, {{"domain": 1, "gva": "1000", "gpa": "0x2000"}}]"#,
                    GOOD_ENTRY
                ),
                Some(1),
                Some("gva"),
                "entry 1: gva: \"1000\" is not a hex string (0x...)",
            ),
            (
                r#"[{"domain": 1, "gva": "0x", "gpa": "0x2000"}]"#.into(),
                Some(0),
                Some("gva"),
                "is not a hex number",
            ),
            (
                r#"[{"domain": 1, "gva": "0x10000000000000000", "gpa": "0x2000"}]"#.into(),
                Some(0),
                Some("gva"),
                "does not fit in 64 bits",
            ),
            (
                r#"[{"domain": 1, "gva": -4096, "gpa": "0x2000"}]"#.into(),
                Some(0),
                Some("gva"),
                "entry 0: gva: -4096 is not an unsigned 64-bit integer",
            ),
            (
                r#"[{"domain": 1, "gva": "0x1000", "gpa": true}]"#.into(),
                Some(0),
                Some("gpa"),
                "entry 0: gpa: expected a hex string or an integer, found a boolean",
            ),
            (
                r#"[{"domain": 1, "gva": "0x1000", "gpa": "0x10000000000000"}]"#.into(),
                Some(0),
                Some("gpa"),
                "entry 0: gpa: 0x10000000000000 is not below 2^52",
            ),
            // A code range starts on a page: an entry point's gva and gpa share the page offset.
            (
                r#"[{"domain": 1, "gva": "0x1040", "gpa": "0x2080"}]"#.into(),
                Some(0),
                Some("gpa"),
                "entry 0: gpa: 0x2080 is not at the offset in its page of gva 0x1040 (0x40)",
            ),
            (
                format!(
                    r#"[{g}, {{"domain": 2, "gva": "0x1000", "gpa": "0x2000"}}, {g}]"#,
                    g = GOOD_ENTRY
                ),
                Some(2),
                Some("gva"),
                "entry 2: gva: the same entry point as entry 0 (0xffffffffc0001040)",
            ),
        ];
        for (value, entry, field, want) in cases {
            let e = err(&with_entries(value));
            assert_eq!(
                (e.rule, e.entry, e.field),
                (None, *entry, *field),
                "{}: {}",
                value,
                e
            );
            assert!(
                e.to_string().contains(want),
                "{}: {:?} lacks {:?}",
                value,
                e.to_string(),
                want
            );
        }
        // The same instruction under two gpas is no duplicate here (the kernel refuses the one
        // the code does not map it to, ENOENT); nor is one gpa at two gvas.
        let two = r#"[{"domain": 1, "gva": "0x1000", "gpa": "0x2000"},
                      {"domain": 1, "gva": "0x1000", "gpa": "0x3000"},
                      {"domain": 1, "gva": "0x5000", "gpa": "0x3000"}]"#;
        assert_eq!(parse(&with_entries(two)).unwrap().entries.unwrap().len(), 3);
        // A bad rule is reported before the entries.
        let mut v: Value = serde_json::from_str(&with_entries("[1]")).unwrap();
        v["rules"][1]["domain"] = Value::from(0);
        assert_eq!(err(&v.to_string()).rule, Some(1));
    }

    /// As for rules: the ceiling here, the VM's `max_entries` on import.
    #[test]
    fn rejects_more_entries_than_any_vm_holds() {
        let e = err(&zeros(0, Some(Limits::CEILING + 1)));
        assert_eq!((e.entry, e.field), (None, Some("entries")));
        assert_eq!(
            e.to_string(),
            format!(
                "entries: {} entry points, at most {} allowed (no VM holds more)",
                Limits::CEILING + 1,
                Limits::CEILING
            )
        );
        for n in [Limits::CEILING, Limits::DEFAULT.entries + 1] {
            let e = err(&zeros(0, Some(n)));
            assert_eq!((e.entry, e.field), (Some(0), None), "{}: {}", n, e);
        }
    }

    #[test]
    fn export_writes_entries_only_when_there_are_some() {
        let plain = rule(1, 0x2000, 1, 0x1000, 0x2000);
        let without = export(&[plain], &[], &Layout::default()).unwrap();
        assert!(!without.contains("entries"), "{}", without);
        assert_eq!(parse(&without).unwrap().entries, None);
        // Sorted by domain, then address (the kernel gives them by gpa).
        let entries = [
            entry(2, 0xffffffffc0100010, 0x1010),
            entry(1, 0xffffffffc0001040, 0x4321040),
            entry(1, 0xffffffffc0000000, 0x5000000),
        ];
        let text = export(&[plain], &entries, &Layout::default()).unwrap();
        assert_eq!(
            text,
            r#"{
  "format": "kvm-isolate-profile",
  "version": 1,
  "rules": [
    {
      "domain": 1,
      "region_gpa": "0x2000",
      "access": "r",
      "accessor_start": "0x1000",
      "accessor_end": "0x2000"
    }
  ],
  "entries": [
    {
      "domain": 1,
      "gva": "0xffffffffc0000000",
      "gpa": "0x5000000"
    },
    {
      "domain": 1,
      "gva": "0xffffffffc0001040",
      "gpa": "0x4321040"
    },
    {
      "domain": 2,
      "gva": "0xffffffffc0100010",
      "gpa": "0x1010"
    }
  ]
}
"#
        );
        // Everything before "entries" is the file without them.
        assert!(text.starts_with(without.trim_end().trim_end_matches('}').trim_end()));
        // And back: the file's order, which export keeps.
        let p = parse(&text).unwrap();
        assert_eq!(p.rules, vec![plain]);
        assert_eq!(p.entries, Some(vec![entries[2], entries[1], entries[0]]));
        assert_eq!(
            export(&p.rules, &p.entries.unwrap(), &Layout::default()).unwrap(),
            text
        );
        // A profile of entry points only.
        let only = export(&[], &entries[..1], &Layout::default()).unwrap();
        assert!(only.contains("\"rules\": []"), "{}", only);
        assert_eq!(parse(&only).unwrap().entries, Some(vec![entries[0]]));
    }

    #[test]
    fn entry_conversion() {
        let e = entry(3, 0xffffffffc0000123, 0x40005123);
        assert_eq!(
            to_file_entry(&e),
            FileEntry {
                domain: 3,
                gva: "0xffffffffc0000123".into(),
                gpa: "0x40005123".into(),
                module: None,
                offset: None,
            }
        );
    }

    // ---- (module, offset) ----

    fn named_domain(id: u32, name: &str, code_start: u64, code_end: u64) -> CtlDomain {
        let mut d = CtlDomain {
            id,
            code_start,
            code_end,
            ..Default::default()
        };
        d.name[..name.len()].copy_from_slice(name.as_bytes());
        d
    }

    fn region(domain: u32, index: u32, gpa: u64) -> CtlRegion {
        CtlRegion {
            domain,
            index,
            gpa,
            npages: 1,
            access: 3,
            pad: 0,
        }
    }

    /// A boot: the keeper (domain 1) and a helper module (domain 2) at `base` and above.
    fn boot(keeper: u32, base: u64, gpa: u64) -> Layout {
        Layout {
            domains: vec![
                named_domain(keeper, "ki_keeper", base, base + 0x3000),
                named_domain(3 - keeper, "ki_helper", base + 0x10000, base + 0x12000),
                // A domain without a name: nothing is named after it.
                named_domain(5, "", base + 0x20000, base + 0x21000),
            ],
            regions: vec![
                region(keeper, 0, gpa),
                region(keeper, 1, gpa + 0x7000),
                region(3 - keeper, 0, gpa + 0x9000),
            ],
            code_names: Vec::new(),
        }
    }

    fn code_name(name: &str, start: u64, size: u64) -> CtlCodeName {
        let mut x = CtlCodeName {
            start,
            size,
            until_ns: u64::MAX,
            ..Default::default()
        };
        x.name[..name.len()].copy_from_slice(name.as_bytes());
        x
    }

    #[test]
    fn accessors_in_code_the_guest_names_are_named_so_and_found_in_the_next_boot() {
        // The kernel's code (KASLR: elsewhere in each boot) and a module nobody protects.
        let mut first = boot(1, 0xffffffffa0000000, 0x2000000);
        first.code_names = vec![
            code_name("vmlinux", 0xffffffff81000000, 0x1f000000),
            code_name("ki_util", 0xffffffffa0040000, 0x3000),
        ];
        let rules = [
            rule(1, 0x2000000, 1, 0xffffffff81234000, 0xffffffff81235000),
            rule(1, 0x2007000, 1, 0xffffffffa0041000, 0xffffffffa0042000),
            // A protected module's code is named by its domain, not by the guest's name.
            rule(2, 0x2009000, 1, 0xffffffffa0000000, 0xffffffffa0001000),
        ];
        let text = export(&rules, &[], &first).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        let named = |i: usize| {
            (
                v["rules"][i]["accessor_module"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                v["rules"][i]["accessor_offset"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
        };
        assert_eq!(named(0), ("vmlinux".into(), "0x234000".into()));
        assert_eq!(named(1), ("ki_util".into(), "0x1000".into()));
        assert_eq!(named(2), ("ki_keeper".into(), "0x0".into()));
        let p = parse(&text).unwrap();
        let mut next = boot(1, 0xffffffffc0200000, 0x2000000);
        next.code_names = vec![
            code_name("ki_util", 0xffffffffc0300000, 0x3000),
            code_name("vmlinux", 0xffffffff8a000000, 0x16000000),
        ];
        let moved = resolve(&p, &next).unwrap();
        let at: Vec<(u64, u64)> = moved
            .rules
            .iter()
            .map(|r| (r.accessor_start, r.accessor_end))
            .collect();
        assert_eq!(
            at,
            [
                (0xffffffff8a234000, 0xffffffff8a235000),
                (0xffffffffc0301000, 0xffffffffc0302000),
                (0xffffffffc0200000, 0xffffffffc0201000),
            ]
        );
        // Names the next boot does not fit: no such code, two ranges of one name, too small.
        let refused = |names: Vec<CtlCodeName>| {
            let mut l = boot(1, 0xffffffffc0200000, 0x2000000);
            l.code_names = names;
            resolve(&p, &l).unwrap_err().to_string()
        };
        let util = code_name("ki_util", 0xffffffffc0300000, 0x3000);
        let e = refused(vec![util]);
        assert!(
            e.contains("rule 0: accessor_offset: no domain of the VM is named \"vmlinux\""),
            "{e}"
        );
        let e = refused(vec![
            util,
            code_name("vmlinux", 0xffffffff81000000, 0x1000000),
            code_name("vmlinux", 0xffffffff91000000, 0x1000000),
        ]);
        assert!(
            e.contains("the guest names two ranges of code \"vmlinux\""),
            "{e}"
        );
        let e = refused(vec![
            util,
            code_name("vmlinux", 0xffffffff81000000, 0x234800),
        ]);
        assert!(
            e.contains("is beyond the 0x234800 bytes of vmlinux's code"),
            "{e}"
        );
    }

    #[test]
    fn export_names_what_the_layout_knows_and_import_finds_it_in_another_boot() {
        let first = boot(1, 0xffffffffa0000000, 0x2000000);
        let rules = [
            // The keeper's region 1, read by the helper's code (its second page).
            rule(1, 0x2007000, 1, 0xffffffffa0011000, 0xffffffffa0012000),
            // The helper's region, read by kernel code: an address, named by nothing.
            rule(2, 0x2009000, 1, 0xffffffff81000000, 0xffffffff81001000),
        ];
        let entries = [
            entry(1, 0xffffffffa0000040, 0x4000040),
            entry(5, 0xffffffffa0020000, 0x5000000),
        ];
        let text = export(&rules, &entries, &first).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["rules"][0]["module"], "ki_keeper");
        assert_eq!(v["rules"][0]["region"], 1);
        assert_eq!(v["rules"][0]["accessor_module"], "ki_helper");
        assert_eq!(v["rules"][0]["accessor_offset"], "0x1000");
        assert_eq!(v["rules"][1]["module"], "ki_helper");
        assert_eq!(v["rules"][1]["region"], 0);
        assert_eq!(v["rules"][1].get("accessor_module"), None);
        assert_eq!(v["entries"][0]["module"], "ki_keeper");
        assert_eq!(v["entries"][0]["offset"], "0x40");
        assert_eq!(v["entries"][1].get("module"), None);
        let p = parse(&text).unwrap();
        // The same boot: names resolve to the addresses themselves.
        let same = resolve(&p, &first).unwrap();
        assert_eq!(same.rules, rules.to_vec());
        let e = same.entries.as_ref().unwrap();
        assert_eq!(
            (e[0].domain, e[0].gva, e[0].gpa),
            (1, 0xffffffffa0000040, GPA_FROM_CODE)
        );
        // The next boot: the modules elsewhere, the domains numbered the other way round, the
        // regions at other gpas.
        let next = boot(2, 0xffffffffc0200000, 0x3000000);
        let moved = resolve(&p, &next).unwrap();
        assert_eq!(
            moved.rules,
            [
                rule(2, 0x3007000, 1, 0xffffffffc0211000, 0xffffffffc0212000),
                rule(1, 0x3009000, 1, 0xffffffff81000000, 0xffffffff81001000),
            ]
        );
        let e = moved.entries.unwrap();
        assert_eq!(
            (e[0].domain, e[0].gva, e[0].gpa),
            (2, 0xffffffffc0200040, GPA_FROM_CODE)
        );
        // What nothing names stays as it was (the unnamed domain's entry point).
        assert_eq!(e[1], entries[1]);
    }

    #[test]
    fn names_that_do_not_fit_the_vm_are_refused_by_rule_or_entry() {
        let first = boot(1, 0xffffffffa0000000, 0x2000000);
        let text = export(
            &[rule(
                1,
                0x2007000,
                1,
                0xffffffffa0011000,
                0xffffffffa0012000,
            )],
            &[entry(1, 0xffffffffa0002ff0, 0x4002ff0)],
            &first,
        )
        .unwrap();
        let p = parse(&text).unwrap();
        // No keeper in this VM.
        let mut other = boot(1, 0xffffffffa0000000, 0x2000000);
        other.domains[0] = named_domain(1, "ki_other", 0xffffffffa0000000, 0xffffffffa0003000);
        let e = resolve(&p, &other).unwrap_err();
        assert_eq!(e.rule, Some(0));
        assert!(
            e.to_string()
                .contains("no domain of the VM is named \"ki_keeper\""),
            "{e}"
        );
        // Two keepers: which one is not for the tool to guess.
        let mut two = boot(1, 0xffffffffa0000000, 0x2000000);
        two.domains[2] = named_domain(5, "ki_keeper", 0xffffffffa0020000, 0xffffffffa0021000);
        assert!(resolve(&p, &two)
            .unwrap_err()
            .to_string()
            .contains("domains 1 and 5 are both named \"ki_keeper\""));
        // The keeper has one region only.
        let mut fewer = boot(1, 0xffffffffa0000000, 0x2000000);
        fewer.regions.remove(1);
        assert_eq!(
            resolve(&p, &fewer).unwrap_err().to_string(),
            "rule 0: region: ki_keeper has no region 1 (it has 1)"
        );
        // The helper's code is smaller: the accessor page is beyond it.
        let mut small = boot(1, 0xffffffffa0000000, 0x2000000);
        small.domains[1].code_end = small.domains[1].code_start + 0x1000;
        let e = resolve(&p, &small).unwrap_err();
        assert_eq!(e.field, Some("accessor_offset"));
        // The keeper's code is smaller: the entry point is beyond it.
        let mut short = boot(1, 0xffffffffa0000000, 0x2000000);
        short.domains[0].code_end = short.domains[0].code_start + 0x2000;
        let e = resolve(&p, &short).unwrap_err();
        assert_eq!((e.entry, e.field), (Some(0), Some("offset")));
    }

    #[test]
    fn named_fields_go_in_pairs_and_are_checked() {
        let base = r#"{"format":"kvm-isolate-profile","version":1,"rules":[
            {"domain":1,"region_gpa":"0x1000","access":"r",
             "accessor_start":"0x2000","accessor_end":"0x3000" EXTRA}]}"#;
        let with = |extra: &str| base.replace("EXTRA", extra);
        let ok = parse(&with(
            r#","module":"ki_keeper","region":2,"accessor_module":"m","accessor_offset":"0x3000""#,
        ))
        .unwrap();
        assert_eq!(
            ok.rule_names,
            [RuleNames {
                region: Some(("ki_keeper".into(), 2)),
                accessor: Some(("m".into(), 0x3000)),
            }]
        );
        for (extra, want) in [
            (
                r#","module":"ki_keeper""#,
                "rule 0: region: missing (it goes with module)",
            ),
            (
                r#","region":0"#,
                "rule 0: module: missing (it goes with region)",
            ),
            (
                r#","accessor_offset":"0x0""#,
                "rule 0: accessor_module: missing",
            ),
            (
                r#","module":"","region":0"#,
                "rule 0: module: \"\" is not a module name",
            ),
            (
                r#","module":"a b","region":0"#,
                "rule 0: module: \"a b\" is not a module name",
            ),
            (
                r#","module":7,"region":0"#,
                "rule 0: module: expected a string, found a number",
            ),
            (
                r#","module":"m","region":-1"#,
                "rule 0: region: expected a region number",
            ),
            (
                r#","module":"m","region":"0""#,
                "rule 0: region: expected a region number",
            ),
            (
                r#","accessor_module":"m","accessor_offset":"0x10""#,
                "rule 0: accessor_offset: 0x10 is not page aligned",
            ),
        ] {
            let e = parse(&with(extra)).unwrap_err().to_string();
            assert!(e.contains(want), "{extra}: {e:?} lacks {want:?}");
        }
        let entries = |extra: &str| {
            format!(
                r#"{{"format":"kvm-isolate-profile","version":1,"rules":[],"entries":[
                {{"domain":1,"gva":"0x1040","gpa":"0x9040"{extra}}}]}}"#
            )
        };
        let p = parse(&entries(r#","module":"ki_keeper","offset":"0x40""#)).unwrap();
        assert_eq!(p.entry_names, [Some(("ki_keeper".to_string(), 0x40))]);
        let e = parse(&entries(r#","offset":"0x40""#))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("entry 0: module: missing (it goes with offset)"),
            "{e}"
        );
    }
}
