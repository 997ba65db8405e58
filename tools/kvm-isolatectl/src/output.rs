// SPDX-License-Identifier: GPL-2.0

//! Names of the ABI's numbers, aligned tables and the JSON shapes of the structs.

use kvm_isolate_core::ctl::{
    CtlCodeName, CtlDomain, CtlRecord, CtlVm, DENY_EXIT, DENY_GP, DENY_KEEP, DENY_PF,
    DOMAIN_SWITCHABLE, GVA_UNKNOWN, LOG_ALLOWED, LOG_DENIED, LOG_LEARNED, MODE_ENFORCE,
    MODE_INHERIT, MODE_LEARN, MODE_OFF,
};
use serde::Serialize;

/// `KVM_ISOLATE_ACCESS_R`.
pub const ACCESS_R: u32 = 0x1;
/// `KVM_ISOLATE_ACCESS_W`.
pub const ACCESS_W: u32 = 0x2;
/// `KVM_ISOLATE_ACCESS_X`.
pub const ACCESS_X: u32 = 0x4;

const ACCESS_LETTERS: [(char, u32); 3] = [('r', ACCESS_R), ('w', ACCESS_W), ('x', ACCESS_X)];

/// `MODE_*` as a word.
pub fn mode_str(mode: u32) -> String {
    match mode {
        MODE_OFF => "off".into(),
        MODE_LEARN => "learn".into(),
        MODE_ENFORCE => "enforce".into(),
        MODE_INHERIT => "inherit".into(),
        n => format!("mode({})", n),
    }
}

/// `DENY_*` as a word.
pub fn deny_str(deny: u32) -> String {
    match deny {
        DENY_EXIT => "exit".into(),
        DENY_GP => "gp".into(),
        DENY_PF => "pf".into(),
        DENY_KEEP => "keep".into(),
        n => format!("deny({})", n),
    }
}

/// `LOG_*` as a word.
pub fn verdict_str(v: u32) -> String {
    match v {
        LOG_ALLOWED => "allowed".into(),
        LOG_LEARNED => "learned".into(),
        LOG_DENIED => "denied".into(),
        n => format!("verdict({})", n),
    }
}

/// `ACCESS_*` bits as letters in `rwx` order; unknown bits as `+0x..`.
pub fn access_str(a: u32) -> String {
    let mut s: String = ACCESS_LETTERS
        .iter()
        .filter(|(_, bit)| a & bit != 0)
        .map(|(c, _)| *c)
        .collect();
    let rest = a & !(ACCESS_R | ACCESS_W | ACCESS_X);
    if rest != 0 {
        s.push_str(&format!("+{:#x}", rest));
    }
    s
}

/// Parses `rwx` letters: non-empty, each at most once, any order.
pub fn access_from_str(s: &str) -> Result<u32, String> {
    if s.is_empty() {
        return Err("empty (expected some of r, w, x)".into());
    }
    let mut bits = 0;
    for c in s.chars() {
        let bit = ACCESS_LETTERS
            .iter()
            .find(|(l, _)| *l == c)
            .map(|(_, b)| *b)
            .ok_or_else(|| format!("{:?}: unknown letter {:?} (expected r, w, x)", s, c))?;
        if bits & bit != 0 {
            return Err(format!("{:?}: repeats {:?}", s, c));
        }
        bits |= bit;
    }
    Ok(bits)
}

/// `0x` and 16 hex digits.
pub fn addr(v: u64) -> String {
    format!("{:#018x}", v)
}

/// Nanoseconds as `s.nnnnnnnnn`.
pub fn time_str(ns: u64) -> String {
    format!("{}.{:09}", ns / 1_000_000_000, ns % 1_000_000_000)
}

/// Left-aligned columns separated by two spaces, header first, no trailing blanks.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut width: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.zip(&width).enumerate() {
            if i > 0 {
                s.push_str("  ");
            }
            s.push_str(&format!("{:<w$}", cell, w = w));
        }
        let mut s = s.trim_end().to_string();
        s.push('\n');
        s
    };
    let mut out = line(&mut headers.iter().copied());
    for row in rows {
        out.push_str(&line(&mut row.iter().map(String::as_str)));
    }
    out
}

/// JSON form of `kvm_isolate_ctl_vm`: the struct's fields but `pad`, the usage and capacities
/// (control-plane version 4) after the counters.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct VmJson {
    pub id: u32,
    pub pid: u32,
    pub mode: String,
    pub deny: String,
    pub locked: bool,
    pub domains: u32,
    pub views: u32,
    pub rules: u32,
    pub violations: u64,
    pub allowed: u64,
    pub denied: u64,
    pub learned: u64,
    pub logged: u64,
    pub dropped: u64,
    pub compressed: u64,
    pub code_ranges: u32,
    pub regions: u32,
    pub entries: u32,
    pub return_sites: u32,
    pub max_code_ranges: u32,
    pub max_regions: u32,
    pub max_rules: u32,
    pub max_entries: u32,
    pub max_return_sites: u32,
}

impl From<&CtlVm> for VmJson {
    fn from(v: &CtlVm) -> Self {
        VmJson {
            id: v.id,
            pid: v.pid,
            mode: mode_str(v.mode),
            deny: deny_str(v.deny),
            locked: v.locked != 0,
            domains: v.domains,
            views: v.views,
            rules: v.rules,
            violations: v.violations,
            allowed: v.allowed,
            denied: v.denied,
            learned: v.learned,
            logged: v.logged,
            dropped: v.dropped,
            compressed: v.compressed,
            code_ranges: v.code_ranges,
            regions: v.regions,
            entries: v.entries,
            return_sites: v.return_sites,
            max_code_ranges: v.max_code_ranges,
            max_regions: v.max_regions,
            max_rules: v.max_rules,
            max_entries: v.max_entries,
            max_return_sites: v.max_return_sites,
        }
    }
}

/// JSON form of `kvm_isolate_ctl_domain`; `effective_mode` resolves `inherit`.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct DomainJson {
    pub id: u32,
    /// The name the guest gave it (its module's), empty if none.
    pub name: String,
    pub mode: String,
    pub effective_mode: String,
    pub code_ranges: u32,
    pub regions: u32,
    pub rules: u32,
    pub lenses: u32,
    /// Entered by `SWITCH`/`VMFUNC` with no check (`KVM_HC_ISOLATE_DOMAIN_SWITCHABLE`).
    pub switchable: bool,
    pub allowed: u64,
    pub denied: u64,
    pub learned: u64,
    pub left: u64,
}

impl DomainJson {
    pub fn new(d: &CtlDomain, vm_mode: u32) -> Self {
        DomainJson {
            id: d.id,
            name: domain_name(d),
            mode: mode_str(d.mode),
            effective_mode: mode_str(if d.mode == MODE_INHERIT {
                vm_mode
            } else {
                d.mode
            }),
            code_ranges: d.code_ranges,
            regions: d.regions,
            rules: d.rules,
            lenses: d.lenses,
            switchable: d.flags & DOMAIN_SWITCHABLE != 0,
            allowed: d.allowed,
            denied: d.denied,
            learned: d.learned,
            left: d.left,
        }
    }
}

/// JSON form of `kvm_isolate_ctl_record`; `gva` is null when unknown.  `time_ns` is the first
/// occurrence, `last_ns` the last, `count` how many there were (repeats are compressed).
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct RecordJson {
    pub seq: u64,
    pub time_ns: u64,
    pub vm: u32,
    pub vcpu: u32,
    pub view: u32,
    pub domain: u32,
    /// The domain's name, if the guest gave it one (left out otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain_name: Option<String>,
    pub rip: u64,
    pub gva: Option<u64>,
    pub gpa: u64,
    pub access: String,
    pub verdict: String,
    pub last_ns: u64,
    pub count: u64,
    /// Where `rip` is in the code the guest named, `name+0xoffset` (left out if in none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

impl RecordJson {
    /// The record, with its domain's name and where its RIP is (empty: none).
    pub fn new(r: &CtlRecord, name: &str, code: &str) -> Self {
        RecordJson {
            seq: r.seq,
            time_ns: r.time_ns,
            vm: r.vm,
            vcpu: r.vcpu,
            view: r.view,
            domain: r.domain,
            domain_name: (!name.is_empty()).then(|| name.to_string()),
            rip: r.rip,
            gva: (r.gva != GVA_UNKNOWN).then_some(r.gva),
            gpa: r.gpa,
            access: access_str(r.access),
            verdict: verdict_str(r.verdict),
            last_ns: r.last_ns,
            count: r.count,
            code: (!code.is_empty()).then(|| code.to_string()),
        }
    }
}

/// Columns of `list`.
pub const VM_HEADERS: [&str; 13] = [
    "ID",
    "PID",
    "MODE",
    "DENY",
    "LOCKED",
    "DOMAINS",
    "RULES",
    "VIOLATIONS",
    "ALLOWED",
    "DENIED",
    "LOGGED",
    "DROPPED",
    "COMPRESSED",
];

/// One `list` row.
pub fn vm_row(v: &CtlVm) -> Vec<String> {
    vec![
        v.id.to_string(),
        v.pid.to_string(),
        mode_str(v.mode),
        deny_str(v.deny),
        if v.locked != 0 { "yes" } else { "no" }.into(),
        v.domains.to_string(),
        v.rules.to_string(),
        v.violations.to_string(),
        v.allowed.to_string(),
        v.denied.to_string(),
        v.logged.to_string(),
        v.dropped.to_string(),
        v.compressed.to_string(),
    ]
}

/// Columns of `show`'s table of what the VM holds, all domains together: used/capacity, the
/// capacities being the module parameters (`max_code_ranges`, `max_regions`, `max_rules`,
/// `max_entry_points`, `max_return_sites`) when the VM was created.
pub const USAGE_HEADERS: [&str; 5] = [
    "CODE_RANGES",
    "REGIONS",
    "RULES",
    "ENTRY_POINTS",
    "RETURN_SITES",
];

/// The row of [`USAGE_HEADERS`]: `used/capacity` each.
pub fn usage_row(v: &CtlVm) -> Vec<String> {
    [
        (v.code_ranges, v.max_code_ranges),
        (v.regions, v.max_regions),
        (v.rules, v.max_rules),
        (v.entries, v.max_entries),
        (v.return_sites, v.max_return_sites),
    ]
    .iter()
    .map(|(used, cap)| format!("{}/{}", used, cap))
    .collect()
}

/// A domain's name up to the first NUL. The kernel passes printable ASCII only; anything
/// else would show as `?`.
pub fn domain_name(d: &CtlDomain) -> String {
    name_str(&d.name)
}

/// A NUL-padded name from the guest as text: up to its first NUL, `?` for anything not
/// printable ASCII (the kernel lets none through; the tool does not rely on it).
pub fn name_str(name: &[u8]) -> String {
    name.iter()
        .take_while(|&&b| b != 0)
        .map(|&b| {
            if (0x20..0x7f).contains(&b) {
                b as char
            } else {
                '?'
            }
        })
        .collect()
}

/// Where `rip` was, at `time_ns`, in the code the guest named (`names`, as `CODE_NAMES_GET`
/// gives them): `name+0xoffset` by the name the range had then, or empty if none did.
pub fn code_at(names: &[CtlCodeName], rip: u64, time_ns: u64) -> String {
    names
        .iter()
        .find(|x| {
            rip.wrapping_sub(x.start) < x.size && x.since_ns <= time_ns && time_ns < x.until_ns
        })
        .map(|x| format!("{}+{:#x}", name_str(&x.name), rip - x.start))
        .unwrap_or_default()
}

/// Columns of `show`'s table of the code the guest names.
pub const CODE_NAME_HEADERS: [&str; 3] = ["CODE", "START", "SIZE"];

/// One row of that table.
pub fn code_name_row(x: &CtlCodeName) -> Vec<String> {
    vec![name_str(&x.name), addr(x.start), format!("{:#x}", x.size)]
}

/// JSON form of a code name in `show`.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct CodeNameJson {
    pub name: String,
    pub start: u64,
    pub size: u64,
}

impl From<&CtlCodeName> for CodeNameJson {
    fn from(x: &CtlCodeName) -> Self {
        CodeNameJson {
            name: name_str(&x.name),
            start: x.start,
            size: x.size,
        }
    }
}

/// A name for a table cell: `-` if there is none.
pub fn name_cell(name: &str) -> String {
    if name.is_empty() {
        "-".into()
    } else {
        name.into()
    }
}

/// Columns of `show`'s domain table.
pub const DOMAIN_HEADERS: [&str; 12] = [
    "DOMAIN",
    "NAME",
    "MODE",
    "CODE_RANGES",
    "REGIONS",
    "RULES",
    "LENSES",
    "SWITCHABLE",
    "ALLOWED",
    "DENIED",
    "LEARNED",
    "LEFT",
];

/// One domain row; an inheriting domain's mode reads `inherit(<vm mode>)`.
pub fn domain_row(d: &CtlDomain, vm_mode: u32) -> Vec<String> {
    let mode = if d.mode == MODE_INHERIT {
        format!("inherit({})", mode_str(vm_mode))
    } else {
        mode_str(d.mode)
    };
    vec![
        d.id.to_string(),
        name_cell(&domain_name(d)),
        mode,
        d.code_ranges.to_string(),
        d.regions.to_string(),
        d.rules.to_string(),
        d.lenses.to_string(),
        if d.flags & DOMAIN_SWITCHABLE != 0 {
            "yes"
        } else {
            "no"
        }
        .into(),
        d.allowed.to_string(),
        d.denied.to_string(),
        d.learned.to_string(),
        d.left.to_string(),
    ]
}

/// Columns of `log`: `TIME` is the first occurrence, `LAST` the last, `COUNT` how many; `NAME`
/// the domain's (its module's, as the guest named it); `CODE` where `RIP` is in the code the
/// guest named (a module's or its kernel's name, and the offset).
pub const RECORD_HEADERS: [&str; 14] = [
    "SEQ", "TIME", "VCPU", "VIEW", "DOMAIN", "NAME", "RIP", "GVA", "GPA", "ACCESS", "VERDICT",
    "COUNT", "LAST", "CODE",
];

/// One `log` row; `name` is the record's domain's name, `code` where its RIP is (empty if
/// none).
pub fn record_row(r: &CtlRecord, name: &str, code: &str) -> Vec<String> {
    vec![
        r.seq.to_string(),
        time_str(r.time_ns),
        r.vcpu.to_string(),
        r.view.to_string(),
        r.domain.to_string(),
        name_cell(name),
        addr(r.rip),
        if r.gva == GVA_UNKNOWN {
            "-".into()
        } else {
            addr(r.gva)
        },
        addr(r.gpa),
        access_str(r.access),
        verdict_str(r.verdict),
        r.count.to_string(),
        time_str(r.last_ns),
        name_cell(code),
    ]
}

/// Fixed widths for the streamed log (records arrive in batches, so the table cannot be sized
/// over all of them).
pub const RECORD_WIDTHS: [usize; 14] = [8, 20, 4, 4, 6, 12, 18, 18, 18, 6, 7, 8, 20, 0];

/// One streamed log line, padded to [`RECORD_WIDTHS`].
pub fn fixed_line(cells: &[String]) -> String {
    let mut s = String::new();
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            s.push_str("  ");
        }
        let w = RECORD_WIDTHS.get(i).copied().unwrap_or(0);
        s.push_str(&format!("{:<w$}", cell, w = w));
    }
    let mut s = s.trim_end().to_string();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(mode_str(MODE_ENFORCE), "enforce");
        assert_eq!(mode_str(9), "mode(9)");
        assert_eq!(deny_str(DENY_GP), "gp");
        assert_eq!(verdict_str(LOG_LEARNED), "learned");
        assert_eq!(access_str(3), "rw");
        assert_eq!(access_str(7), "rwx");
        assert_eq!(access_str(0x14), "x+0x10");
        assert_eq!(access_from_str("wr"), Ok(3));
        assert!(access_from_str("rwr").is_err());
        assert_eq!(time_str(12_000_000_345), "12.000000345");
        assert_eq!(addr(0x1000), "0x0000000000001000");
    }

    #[test]
    fn code_at_names_a_rip_by_the_range_it_is_in_if_the_name_is_not_newer() {
        let named = |start: u64, size: u64, since_ns: u64, until_ns: u64, name: &[u8]| {
            let mut x = CtlCodeName {
                start,
                size,
                since_ns,
                until_ns,
                ..Default::default()
            };
            x.name[..name.len()].copy_from_slice(name);
            x
        };
        let m = 0xffff_ffff_a000_0000;
        let live = u64::MAX;
        let names = [
            named(0xffff_ffff_8100_0000, 0x100_0000, 5, live, b"vmlinux"),
            named(m, 0x4000, 7, live, b"kvm_isolate_guest"),
            // The rogue's first load (until its second, at 9), where the keeper was before.
            named(m + 0x7000, 0x2000, 3, 6, b"ki_keeper"),
            named(m + 0x8000, 0x2000, 6, 9, b"ki_rogue"),
            named(m + 0x8000, 0x2000, 9, live, b"ki_rogue"),
        ];
        assert_eq!(code_at(&names, m + 0x801b, 10), "ki_rogue+0x1b");
        assert_eq!(code_at(&names, m, 10), "kvm_isolate_guest+0x0");
        assert_eq!(
            code_at(&names, 0xffff_ffff_8123_4567, 10),
            "vmlinux+0x234567"
        );
        // Between ranges, below all, past the last: none.
        assert_eq!(code_at(&names, m + 0x4000, 10), "");
        assert_eq!(code_at(&names, 0x1000, 10), "");
        assert_eq!(code_at(&names, m + 0xa000, 10), "");
        // Older records, by the name of their time: the rogue's first load, the keeper
        // before it; none before anything was named there.
        assert_eq!(code_at(&names, m + 0x801b, 8), "ki_rogue+0x1b");
        assert_eq!(code_at(&names, m + 0x801b, 5), "ki_keeper+0x101b");
        assert_eq!(code_at(&names, m + 0x801b, 2), "");
        assert_eq!(code_at(&[], m, 10), "");
    }

    #[test]
    fn table_aligns_columns() {
        let t = table(
            &["A", "LONGER"],
            &[
                vec!["12345".into(), "x".into()],
                vec!["1".into(), "yy".into()],
            ],
        );
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines, vec!["A      LONGER", "12345  x", "1      yy"]);
    }

    #[test]
    fn record_row_marks_unknown_gva() {
        let r = CtlRecord {
            gva: GVA_UNKNOWN,
            access: ACCESS_W,
            verdict: LOG_DENIED,
            time_ns: 1_000_000_001,
            last_ns: 3_000_000_002,
            count: 20_000,
            ..Default::default()
        };
        let row = record_row(&r, "", "");
        assert_eq!(row[1], "1.000000001");
        assert_eq!(row[5], "-", "no name");
        assert_eq!(row[7], "-");
        assert_eq!(row[9], "w");
        assert_eq!(row[10], "denied");
        assert_eq!(row[11], "20000");
        assert_eq!(row[12], "3.000000002");
        assert_eq!(row[13], "-", "in no code the guest named");
        assert_eq!(record_row(&r, "ki_keeper", "")[5], "ki_keeper");
        assert_eq!(record_row(&r, "", "ki_rogue+0x1b")[13], "ki_rogue+0x1b");
        let j = RecordJson::new(&r, "", "");
        assert_eq!(j.gva, None);
        assert_eq!(j.domain_name, None);
        assert!(!serde_json::to_string(&j).unwrap().contains("domain_name"));
        assert!(!serde_json::to_string(&j).unwrap().contains("code"));
        assert_eq!(
            RecordJson::new(&r, "ki_keeper", "").domain_name.as_deref(),
            Some("ki_keeper")
        );
        assert_eq!(
            RecordJson::new(&r, "", "vmlinux+0x10").code.as_deref(),
            Some("vmlinux+0x10")
        );
        assert_eq!(
            (j.time_ns, j.last_ns, j.count),
            (1_000_000_001, 3_000_000_002, 20_000)
        );
    }
}
