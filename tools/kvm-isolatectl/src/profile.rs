// SPDX-License-Identifier: GPL-2.0

//! The profile file: a JSON rendering of a VM's `kvm_isolate_ctl_rule` array.
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
//!   ]
//! }
//! ```
//!
//! A rule lets its accessor run in the owner's view when the owner calls it; `"trusted": true`
//! (`KVM_ISOLATE_RULE_TRUSTED` in the kernel's `access`) also lets it in on its own, from any
//! other view. `trusted` is optional (default `false`), and export writes it only when it is
//! true, so files without trusted rules read and write as before.
//!
//! Parsing checks everything the tool can check, so that a bad file is reported by rule index
//! and field and never reaches the kernel.

use std::fmt;

use kvm_isolate_core::ctl::{CtlRule, MAX_RULES, RULE_TRUSTED};
use serde::{Deserialize, Serialize};
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
/// Domains are views 1..=15.
pub const MAX_DOMAIN: u32 = 15;

/// A profile-file error; `rule` is the index into `rules`, if it concerns one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileError {
    pub rule: Option<usize>,
    pub field: Option<&'static str>,
    pub msg: String,
}

impl ProfileError {
    fn file(msg: impl Into<String>) -> Self {
        ProfileError {
            rule: None,
            field: None,
            msg: msg.into(),
        }
    }

    fn field(field: &'static str, msg: impl Into<String>) -> Self {
        ProfileError {
            rule: None,
            field: Some(field),
            msg: msg.into(),
        }
    }

    fn rule(rule: usize, field: &'static str, msg: impl Into<String>) -> Self {
        ProfileError {
            rule: Some(rule),
            field: Some(field),
            msg: msg.into(),
        }
    }
}

impl fmt::Display for ProfileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.rule, self.field) {
            (Some(i), Some(field)) => write!(f, "rule {}: {}: {}", i, field, self.msg),
            (Some(i), None) => write!(f, "rule {}: {}", i, self.msg),
            (None, Some(field)) => write!(f, "{}: {}", field, self.msg),
            (None, None) => write!(f, "{}", self.msg),
        }
    }
}

/// The top level of the file; rules are checked field by field in [`parse`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    format: Value,
    version: Value,
    rules: Value,
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

/// A profile as written to a file.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct FileProfile {
    pub format: &'static str,
    pub version: u64,
    pub rules: Vec<FileRule>,
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

/// Renders `rules` as a profile file (sorted, pretty-printed, ending in a newline).
pub fn export(rules: &[CtlRule]) -> Result<String, serde_json::Error> {
    let mut sorted = rules.to_vec();
    sort_rules(&mut sorted);
    let p = FileProfile {
        format: FORMAT,
        version: VERSION,
        rules: sorted.iter().map(to_file_rule).collect(),
    };
    let mut s = serde_json::to_string_pretty(&p)?;
    s.push('\n');
    Ok(s)
}

/// An address: a `0x` hex string or a JSON integer.
fn parse_addr(i: usize, field: &'static str, v: &Value) -> Result<u64, ProfileError> {
    match v {
        Value::String(s) => {
            let digits = s
                .strip_prefix("0x")
                .or_else(|| s.strip_prefix("0X"))
                .ok_or_else(|| {
                    ProfileError::rule(i, field, format!("{:?} is not a hex string (0x...)", s))
                })?;
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ProfileError::rule(
                    i,
                    field,
                    format!("{:?} is not a hex number", s),
                ));
            }
            u64::from_str_radix(digits, 16).map_err(|_| {
                ProfileError::rule(i, field, format!("{:?} does not fit in 64 bits", s))
            })
        }
        Value::Number(n) => n.as_u64().ok_or_else(|| {
            ProfileError::rule(i, field, format!("{} is not an unsigned 64-bit integer", n))
        }),
        other => Err(ProfileError::rule(
            i,
            field,
            format!("expected a hex string or an integer, found {}", kind(other)),
        )),
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

fn parse_rule(i: usize, v: &Value) -> Result<CtlRule, ProfileError> {
    let obj = match v {
        Value::Object(o) => o,
        other => {
            return Err(ProfileError {
                rule: Some(i),
                field: None,
                msg: format!("expected an object, found {}", kind(other)),
            })
        }
    };
    if let Some(k) = obj.keys().find(|k| !RULE_FIELDS.contains(&k.as_str())) {
        return Err(ProfileError {
            rule: Some(i),
            field: None,
            msg: format!(
                "unknown field {:?} (expected {})",
                k,
                RULE_FIELDS.join(", ")
            ),
        });
    }
    let get = |field: &'static str| {
        obj.get(field)
            .ok_or_else(|| ProfileError::rule(i, field, "missing"))
    };

    let domain = match get("domain")? {
        Value::Number(n) => match n.as_u64() {
            Some(d) if (1..=u64::from(MAX_DOMAIN)).contains(&d) => d as u32,
            _ => {
                return Err(ProfileError::rule(
                    i,
                    "domain",
                    format!("{} is out of range (1..={})", n, MAX_DOMAIN),
                ))
            }
        },
        other => {
            return Err(ProfileError::rule(
                i,
                "domain",
                format!("expected an integer, found {}", kind(other)),
            ))
        }
    };

    let region_gpa = page_aligned(
        i,
        "region_gpa",
        parse_addr(i, "region_gpa", get("region_gpa")?)?,
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
        parse_addr(i, "accessor_start", get("accessor_start")?)?,
    )?;
    let accessor_end = page_aligned(
        i,
        "accessor_end",
        parse_addr(i, "accessor_end", get("accessor_end")?)?,
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

/// Parses and validates a profile file.  The rules keep the file's order.
pub fn parse(text: &str) -> Result<Vec<CtlRule>, ProfileError> {
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
    if list.len() > MAX_RULES as usize {
        return Err(ProfileError::field(
            "rules",
            format!("{} rules, at most {} allowed", list.len(), MAX_RULES),
        ));
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
    Ok(rules)
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
        let rules = parse(VALID).unwrap();
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
        assert_eq!(parse(text).unwrap(), vec![]);
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
        for bad in ["0", "16", "-1", "1.5", "\"1\""] {
            let e = err(&with_field("domain", bad));
            assert_eq!(
                (e.rule, e.field),
                (Some(0), Some("domain")),
                "{}: {}",
                bad,
                e
            );
        }
        assert!(err(&with_field("domain", "16"))
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
            parse(&with_field("access", "\"xwr\"")).unwrap()[0].access,
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

    #[test]
    fn rejects_too_many_rules() {
        let rules: Vec<CtlRule> = (0..=u64::from(MAX_RULES))
            .map(|i| rule(1, i * PAGE_SIZE, 1, 0x1000, 0x2000))
            .collect();
        let e = err(&export(&rules).unwrap());
        assert_eq!(e.field, Some("rules"));
        assert!(e.to_string().contains("at most 4096"), "{}", e);
        // Exactly MAX_RULES is fine.
        assert_eq!(
            parse(&export(&rules[1..]).unwrap()).unwrap().len(),
            MAX_RULES as usize
        );
    }

    #[test]
    fn rejects_overlapping_accessors() {
        let rules = [
            rule(1, 0x200000, 1, 0x3000, 0x5000),
            rule(1, 0x201000, 1, 0x4000, 0x5000), // other region: fine
            rule(2, 0x200000, 1, 0x4000, 0x5000), // other domain: fine
            rule(1, 0x200000, 2, 0x5000, 0x6000), // adjacent: fine
        ];
        parse(&export(&rules).unwrap()).unwrap();
        let mut bad = rules.to_vec();
        bad.push(rule(1, 0x200000, 4, 0x4000, 0x8000));
        let e = err(&export(&bad).unwrap());
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
        })
        .unwrap();
        assert_eq!(parse(&text).unwrap(), vec![r, t]);
    }

    #[test]
    fn trusted_is_optional_and_sets_rule_trusted() {
        // Absent (the valid file), false, true.
        assert_eq!(parse(VALID).unwrap()[0].access, 3);
        assert_eq!(parse(&with_field("trusted", "false")).unwrap()[0].access, 3);
        let rules = parse(&with_field("trusted", "true")).unwrap();
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
            export(&[plain]).unwrap(),
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
        let text = export(&[trusted, plain]).unwrap();
        assert_eq!(text.matches("\"trusted\"").count(), 1, "{}", text);
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["rules"][0].get("trusted"), None);
        assert_eq!(v["rules"][1]["trusted"], true);
        // The bit is not one of the access letters.
        assert_eq!(v["rules"][1]["access"], "rw");
        // And back.
        assert_eq!(parse(&text).unwrap(), vec![plain, trusted]);
        assert_eq!(export(&parse(&text).unwrap()).unwrap(), text);
    }

    #[test]
    fn export_is_sorted_and_stable() {
        let rules = vec![
            rule(2, 0x1000, 1, 0x1000, 0x2000),
            rule(1, 0x3000, 2, 0x1000, 0x2000),
            rule(1, 0x2000, 7, 0x5000, 0x6000),
            rule(1, 0x2000, 1, 0x1000, 0x2000),
        ];
        let text = export(&rules).unwrap();
        let back = parse(&text).unwrap();
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
        assert_eq!(export(&back).unwrap(), text);
        assert!(text.ends_with("}\n"));
        assert!(text.contains("\"region_gpa\": \"0x2000\""));
    }
}
