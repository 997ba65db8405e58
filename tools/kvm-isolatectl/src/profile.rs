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
//! Parsing checks everything the tool can check from the file alone, so that a bad file is
//! reported by rule or entry index and field and never reaches the kernel. How many rules and entry
//! points a VM holds is the VM's (the module parameters when it was created, in its `LIST` entry):
//! `profile import` checks that against the VM; here the bound is [`Limits::CEILING`], more than
//! any VM can hold.

use std::fmt;

use kvm_isolate_core::ctl::{CtlEntry, CtlRule, RULE_TRUSTED};
use kvm_isolate_core::policy::Limits;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::output::{access_from_str, access_str};

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

/// One rule as written to a file; `trusted` only when true.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct FileRule {
    pub domain: u32,
    pub region_gpa: String,
    pub access: String,
    pub accessor_start: String,
    pub accessor_end: String,
    #[serde(skip_serializing_if = "is_false")]
    pub trusted: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// One entry point as written to a file.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    pub domain: u32,
    pub gva: String,
    pub gpa: String,
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
}

/// The fields of a rule; all but `trusted` are required.
const RULE_FIELDS: [&str; 6] = [
    "domain",
    "region_gpa",
    "access",
    "accessor_start",
    "accessor_end",
    "trusted",
];

/// The fields of an entry point, all required.
const ENTRY_FIELDS: [&str; 3] = ["domain", "gva", "gpa"];

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
    }
}

/// Converts a kernel entry point to its file form.
pub fn to_file_entry(e: &CtlEntry) -> FileEntry {
    FileEntry {
        domain: e.domain,
        gva: hex(e.gva),
        gpa: hex(e.gpa),
    }
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

/// Renders `rules` and `entries` as a profile file (sorted, pretty-printed, ending in a newline).
/// Without entry points the file has no `entries`, as before they were exported.
pub fn export(rules: &[CtlRule], entries: &[CtlEntry]) -> Result<String, serde_json::Error> {
    let mut sorted = rules.to_vec();
    sort_rules(&mut sorted);
    let mut sorted_entries = entries.to_vec();
    sort_entries(&mut sorted_entries);
    let p = FileProfile {
        format: FORMAT,
        version: VERSION,
        rules: sorted.iter().map(to_file_rule).collect(),
        entries: sorted_entries.iter().map(to_file_entry).collect(),
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

fn parse_rule(i: usize, v: &Value) -> Result<CtlRule, ProfileError> {
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

    Ok(CtlRule {
        domain,
        access: access | if trusted { RULE_TRUSTED } else { 0 },
        region_gpa,
        accessor_start,
        accessor_end,
    })
}

/// An entry point: a domain, and an instruction's gva and the gpa the domain's code maps it to.
/// A code range starts on a page, so both lie at the same offset in their pages.
fn parse_entry(i: usize, v: &Value) -> Result<CtlEntry, ProfileError> {
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
    Ok(CtlEntry {
        domain,
        pad: 0,
        gva,
        gpa,
    })
}

/// `entries`: an array of at most [`Limits::CEILING`] entry points, no two alike.
fn parse_entries(v: &Value) -> Result<Vec<CtlEntry>, ProfileError> {
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
    let entries = list
        .iter()
        .enumerate()
        .map(|(i, v)| parse_entry(i, v))
        .collect::<Result<Vec<_>, _>>()?;
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
    Ok(entries)
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

    let rules = list
        .iter()
        .enumerate()
        .map(|(i, v)| parse_rule(i, v))
        .collect::<Result<Vec<_>, _>>()?;

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
    let entries = raw.entries.as_ref().map(parse_entries).transpose()?;
    Ok(Profile { rules, entries })
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
                entries: None
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
        parse(&export(&rules, &[]).unwrap()).unwrap();
        let mut bad = rules.to_vec();
        bad.push(rule(1, 0x200000, 4, 0x4000, 0x8000));
        let e = err(&export(&bad, &[]).unwrap());
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
            export(&[plain], &[]).unwrap(),
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
        let text = export(&[trusted, plain], &[]).unwrap();
        assert_eq!(text.matches("\"trusted\"").count(), 1, "{}", text);
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["rules"][0].get("trusted"), None);
        assert_eq!(v["rules"][1]["trusted"], true);
        // The bit is not one of the access letters.
        assert_eq!(v["rules"][1]["access"], "rw");
        // And back.
        assert_eq!(parse(&text).unwrap().rules, vec![plain, trusted]);
        assert_eq!(export(&parse(&text).unwrap().rules, &[]).unwrap(), text);
    }

    #[test]
    fn export_is_sorted_and_stable() {
        let rules = vec![
            rule(2, 0x1000, 1, 0x1000, 0x2000),
            rule(1, 0x3000, 2, 0x1000, 0x2000),
            rule(1, 0x2000, 7, 0x5000, 0x6000),
            rule(1, 0x2000, 1, 0x1000, 0x2000),
        ];
        let text = export(&rules, &[]).unwrap();
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
        assert_eq!(export(&back, &[]).unwrap(), text);
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
                "entry 0: unknown field \"view\" (expected domain, gva, gpa)",
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
        let without = export(&[plain], &[]).unwrap();
        assert!(!without.contains("entries"), "{}", without);
        assert_eq!(parse(&without).unwrap().entries, None);
        // Sorted by domain, then address (the kernel gives them by gpa).
        let entries = [
            entry(2, 0xffffffffc0100010, 0x1010),
            entry(1, 0xffffffffc0001040, 0x4321040),
            entry(1, 0xffffffffc0000000, 0x5000000),
        ];
        let text = export(&[plain], &entries).unwrap();
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
        assert_eq!(export(&p.rules, &p.entries.unwrap()).unwrap(), text);
        // A profile of entry points only.
        let only = export(&[], &entries[..1]).unwrap();
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
            }
        );
    }
}
