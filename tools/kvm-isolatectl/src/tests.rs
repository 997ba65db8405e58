// SPDX-License-Identifier: GPL-2.0

//! End-to-end tests: command lines run against the fake device.

use std::collections::VecDeque;

use clap::error::ErrorKind;
use clap::Parser;
use kvm_isolate_core::ctl::{
    CtlCodeName, CtlDomain, CtlEntry, CtlRecord, CtlRule, CtlVm, DENY_EXIT, DENY_GP, DENY_KEEP,
    DENY_PF, DOMAIN_SWITCHABLE, GVA_UNKNOWN, LOG_ALLOWED, LOG_DENIED, MODE_ENFORCE, MODE_INHERIT,
    MODE_LEARN, MODE_OFF, RULE_TRUSTED,
};
use kvm_isolate_core::policy::Limits;
use serde_json::Value;

use crate::cmd::{self, Cli, DenyArg, Error, ModeArg};
use crate::device::fake::{with_caps, Fake, FakeCode, FakeVm};
use crate::device::Ctl;
use crate::profile;

/// The code of domains 1 and 2 in VMs 1 and 7 (two boots of one guest build): domain 1 at gva
/// 0xffffffffc0000000 (3 pages, gpa 0x40000000), domain 2 at 0xffffffffc0100000 (1 page, gpa
/// 0x40010000).
fn layout() -> Vec<FakeCode> {
    vec![
        FakeCode {
            domain: 1,
            start: 0xffffffffc0000000,
            end: 0xffffffffc0003000,
            gpa: 0x40000000,
        },
        FakeCode {
            domain: 2,
            start: 0xffffffffc0100000,
            end: 0xffffffffc0101000,
            gpa: 0x40010000,
        },
    ]
}

fn entry(domain: u32, gva: u64, gpa: u64) -> CtlEntry {
    CtlEntry {
        domain,
        pad: 0,
        gva,
        gpa,
    }
}

/// VM 1's entry points (one registered, one learned, say), sorted by gpa as the kernel lists them.
fn vm1_entries() -> Vec<CtlEntry> {
    vec![
        entry(1, 0xffffffffc0002010, 0x40002010),
        entry(2, 0xffffffffc0100040, 0x40010040),
    ]
}

fn fake() -> Fake {
    let vm1 = FakeVm {
        vm: CtlVm {
            id: 1,
            pid: 4242,
            mode: MODE_ENFORCE,
            deny: DENY_GP,
            locked: 0,
            domains: 2,
            views: 3,
            rules: 2,
            violations: 10,
            allowed: 7,
            denied: 3,
            learned: 0,
            logged: 10,
            dropped: 1,
            compressed: 19_999,
            // Its domains' 3 code ranges and 4 regions, its 2 entry points, a call out pending.
            code_ranges: 3,
            regions: 4,
            entries: 2,
            return_sites: 1,
            ..with_caps(CtlVm::default(), &Limits::DEFAULT)
        },
        domains: vec![
            CtlDomain {
                id: 2,
                mode: MODE_LEARN,
                code_ranges: 1,
                regions: 3,
                rules: 0,
                left: 9,
                ..Default::default()
            },
            CtlDomain {
                id: 1,
                mode: MODE_INHERIT,
                code_ranges: 2,
                regions: 1,
                rules: 2,
                allowed: 7,
                denied: 3,
                learned: 0,
                left: 5,
                lenses: 1,
                flags: DOMAIN_SWITCHABLE,
                pad: 0,
                name: {
                    let mut n = [0; 64];
                    n[..9].copy_from_slice(b"ki_keeper");
                    n
                },
                // No code span, no regions listed: exports here name nothing by module.
                code_start: 0,
                code_end: 0,
            },
        ],
        rules: vec![
            CtlRule {
                domain: 1,
                access: 3,
                region_gpa: 0x40005000,
                accessor_start: 0xffffffffc0002000,
                accessor_end: 0xffffffffc0003000,
            },
            CtlRule {
                domain: 1,
                access: 1,
                region_gpa: 0x40005000,
                accessor_start: 0xffffffffc0000000,
                accessor_end: 0xffffffffc0001000,
            },
        ],
        log: (0..600u64)
            .map(|i| CtlRecord {
                seq: i,
                time_ns: 5_000_000_007 + i,
                rip: 0xffffffff81234567,
                gva: if i == 0 {
                    GVA_UNKNOWN
                } else {
                    0xffff888040005000
                },
                gpa: 0x40005000,
                vm: 1,
                vcpu: 0,
                view: 0,
                domain: 1,
                access: 1,
                verdict: if i % 2 == 0 { LOG_DENIED } else { LOG_ALLOWED },
                // Record 2 stands for 20,000 identical denials over 3 s.
                last_ns: 5_000_000_007 + i + if i == 2 { 3_000_000_000 } else { 0 },
                count: if i == 2 { 20_000 } else { 1 },
            })
            .collect::<VecDeque<_>>(),
        dropped: 17,
        entries: vm1_entries(),
        code: layout(),
        regions: Vec::new(),
        // The guest named its kernel's text after the first record.
        code_names: vec![CtlCodeName {
            start: 0xffffffff81000000,
            size: 0x1000000,
            since_ns: 5_000_000_008,
            until_ns: u64::MAX,
            name: {
                let mut n = [0; 64];
                n[..7].copy_from_slice(b"vmlinux");
                n
            },
        }],
    };
    let vm2 = FakeVm {
        vm: CtlVm {
            id: 7,
            pid: 99,
            locked: 1,
            violations: 5,
            denied: 5,
            logged: 2,
            dropped: 3,
            domains: 2,
            ..with_caps(CtlVm::default(), &Limits::DEFAULT)
        },
        domains: vec![
            CtlDomain {
                id: 1,
                ..Default::default()
            },
            CtlDomain {
                id: 2,
                ..Default::default()
            },
        ],
        code: layout(),
        ..Default::default()
    };
    Fake::new(vec![vm2, vm1])
}

/// Runs a command line against `fake`: (result, stdout, stderr).
fn run(fake: &Fake, args: &[&str]) -> (Result<(), Error>, String, String) {
    let mut argv = vec!["kvm-isolatectl"];
    argv.extend_from_slice(args);
    let cli = Cli::try_parse_from(argv).expect("valid command line");
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let open = |_: &str| Ok(Box::new(fake) as Box<dyn Ctl + '_>);
    let r = cmd::run(&cli, &open, &mut out, &mut err);
    (
        r,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

fn ok(fake: &Fake, args: &[&str]) -> String {
    let (r, out, _) = run(fake, args);
    r.unwrap();
    out
}

fn runtime_err(fake: &Fake, args: &[&str]) -> String {
    match run(fake, args).0 {
        Err(Error::Runtime(m)) => m,
        other => panic!("{:?}: expected a runtime error, got {:?}", args, other),
    }
}

fn temp_path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "kvm-isolatectl-test-{}-{}",
        std::process::id(),
        name
    ))
}

#[test]
fn list_table_has_columns_and_values() {
    let out = ok(&fake(), &["list"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3);
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        header,
        [
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
            "COMPRESSED"
        ]
    );
    // Sorted by id, values under their headers.
    let row1: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        row1,
        ["1", "4242", "enforce", "gp", "no", "2", "2", "10", "7", "3", "10", "1", "19999"]
    );
    assert!(lines[2].starts_with("7 "));
    // Aligned: every column starts at the same offset in each line.
    let col = lines[0].find("VIOLATIONS").unwrap();
    assert_eq!(&lines[1][col..col + 2], "10");
    assert_eq!(&lines[2][col..col + 1], "5");
}

#[test]
fn list_json_has_struct_field_names() {
    let out = ok(&fake(), &["--json", "list"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    let a = v.as_array().unwrap();
    assert_eq!(a.len(), 2);
    let vm = &a[0];
    for f in [
        "id",
        "pid",
        "mode",
        "deny",
        "locked",
        "domains",
        "views",
        "rules",
        "violations",
        "allowed",
        "denied",
        "learned",
        "logged",
        "dropped",
        "compressed",
        "code_ranges",
        "regions",
        "entries",
        "return_sites",
        "max_code_ranges",
        "max_regions",
        "max_rules",
        "max_entries",
        "max_return_sites",
    ] {
        assert!(vm.get(f).is_some(), "missing {}", f);
    }
    assert_eq!(vm.as_object().unwrap().len(), 24, "and no other (no pad)");
    assert_eq!(vm["compressed"], 19_999);
    assert_eq!(
        (&vm["code_ranges"], &vm["regions"], &vm["entries"]),
        (&Value::from(3), &Value::from(4), &Value::from(2))
    );
    assert_eq!(vm["return_sites"], 1);
    assert_eq!(vm["max_code_ranges"], Limits::DEFAULT.code);
    assert_eq!(vm["max_regions"], Limits::DEFAULT.regions);
    assert_eq!(vm["max_rules"], Limits::DEFAULT.rules);
    assert_eq!(vm["max_entries"], Limits::DEFAULT.entries);
    assert_eq!(vm["max_return_sites"], Limits::DEFAULT.returns);
    assert_eq!(vm["id"], 1);
    assert_eq!(vm["mode"], "enforce");
    assert_eq!(vm["deny"], "gp");
    assert_eq!(vm["locked"], false);
    assert_eq!(a[1]["locked"], true);
}

#[test]
fn show_lists_domains_with_inherited_mode() {
    let out = ok(&fake(), &["show", "1"]);
    let parts: Vec<&str> = out.split("\n\n").collect();
    let [vm_part, usage_part, dom_part, code_part] = parts[..] else {
        panic!(
            "want the VM, its usage, its domains and its code's names: {}",
            out
        );
    };
    assert_eq!(
        code_part.lines().collect::<Vec<_>>(),
        [
            "CODE     START               SIZE",
            "vmlinux  0xffffffff81000000  0x1000000"
        ]
    );
    assert!(vm_part.lines().nth(1).unwrap().starts_with("1 "));
    // What the VM holds, all domains together, of what it may hold (the module parameters).
    let usage: Vec<Vec<&str>> = usage_part
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let caps = Limits::DEFAULT;
    assert_eq!(
        usage,
        [
            vec![
                "CODE_RANGES",
                "REGIONS",
                "RULES",
                "ENTRY_POINTS",
                "RETURN_SITES"
            ],
            vec![
                &*format!("3/{}", caps.code),
                &*format!("4/{}", caps.regions),
                &*format!("2/{}", caps.rules),
                &*format!("2/{}", caps.entries),
                &*format!("1/{}", caps.returns),
            ]
        ]
    );
    let lines: Vec<&str> = dom_part.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        [
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
            "LEFT"
        ]
    );
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        [
            "1",
            "ki_keeper",
            "inherit(enforce)",
            "2",
            "1",
            "2",
            "1",
            "yes",
            "7",
            "3",
            "0",
            "5"
        ]
    );
    assert_eq!(
        lines[2].split_whitespace().collect::<Vec<_>>(),
        ["2", "-", "learn", "1", "3", "0", "0", "no", "0", "0", "0", "9"]
    );

    let v: Value = serde_json::from_str(&ok(&fake(), &["show", "1", "--json"])).unwrap();
    assert_eq!(v["vm"]["pid"], 4242);
    assert_eq!(v["vm"]["rules"], 2);
    assert_eq!(v["vm"]["max_rules"], caps.rules);
    assert_eq!(v["domains"][0]["mode"], "inherit");
    assert_eq!(v["domains"][0]["effective_mode"], "enforce");
    assert_eq!(v["domains"][0]["name"], "ki_keeper");
    assert_eq!(v["domains"][1]["name"], "");
    assert_eq!(v["domains"][1]["code_ranges"], 1);
    assert_eq!(v["domains"][0]["lenses"], 1);
    assert_eq!(v["domains"][1]["lenses"], 0);
    assert_eq!(v["domains"][0]["switchable"], true);
    assert_eq!(v["domains"][1]["switchable"], false);
    assert_eq!(
        v["code"],
        serde_json::json!([{ "name": "vmlinux", "start": 0xffffffff81000000u64, "size": 0x1000000 }])
    );
    // A VM whose guest named nothing shows no table of names.
    assert_eq!(ok(&fake(), &["show", "7"]).split("\n\n").count(), 3);

    assert_eq!(runtime_err(&fake(), &["show", "3"]), "no VM 3");
}

#[test]
fn stats_totals() {
    let out = ok(&fake(), &["stats"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        [
            "VMS",
            "VIOLATIONS",
            "ALLOWED",
            "DENIED",
            "LEARNED",
            "LOGGED",
            "DROPPED",
            "COMPRESSED"
        ]
    );
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        ["2", "15", "7", "8", "0", "12", "4", "19999"]
    );
    assert!(out.lines().any(|l| l.starts_with("7 ")));
    let v: Value = serde_json::from_str(&ok(&fake(), &["stats", "--json"])).unwrap();
    assert_eq!(v["totals"]["vms"], 2);
    assert_eq!(v["totals"]["denied"], 8);
    assert_eq!(v["totals"]["compressed"], 19_999);
    assert_eq!(v["vms"].as_array().unwrap().len(), 2);
}

#[test]
fn mode_sets_vm_and_domain() {
    let f = fake();
    ok(&f, &["mode", "1", "learn", "--deny", "pf"]);
    ok(&f, &["mode", "1", "inherit", "--domain", "2"]);
    ok(&f, &["mode", "1", "off"]);
    let vms = f.vms.borrow();
    let vm = vms.iter().find(|v| v.vm.id == 1).unwrap();
    assert_eq!(vm.vm.deny, DENY_PF, "deny kept when not given");
    assert_eq!(
        vm.domains.iter().find(|d| d.id == 2).unwrap().mode,
        MODE_INHERIT
    );
    let calls = f.calls.borrow();
    assert_eq!(calls.len(), 3);
    assert!(
        calls[2].contains(&format!("deny: {}", DENY_KEEP)),
        "{}",
        calls[2]
    );
}

#[test]
fn mode_argument_validation() {
    // --deny with --domain: clap refuses (exit 2), and so does mode_request.
    let e = Cli::try_parse_from([
        "kvm-isolatectl",
        "mode",
        "1",
        "enforce",
        "--domain",
        "1",
        "--deny",
        "gp",
    ])
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ArgumentConflict);
    assert_eq!(e.exit_code(), 2);
    assert!(matches!(
        cmd::mode_request(1, ModeArg::Enforce, Some(1), Some(DenyArg::Gp)),
        Err(Error::Usage(m)) if m.contains("--deny") && m.contains("--domain")
    ));
    // Unknown mode, unknown deny, domain out of range.
    for argv in [
        &["kvm-isolatectl", "mode", "1", "paranoid"][..],
        &["kvm-isolatectl", "mode", "1", "enforce", "--deny", "panic"][..],
        &["kvm-isolatectl", "mode", "1", "enforce", "--domain", "256"][..],
        &["kvm-isolatectl", "mode", "1", "enforce", "--domain", "0"][..],
    ] {
        let e = Cli::try_parse_from(argv).unwrap_err();
        assert!(
            matches!(
                e.kind(),
                ErrorKind::InvalidValue | ErrorKind::ValueValidation
            ),
            "{:?}: {:?}",
            argv,
            e.kind()
        );
        assert_eq!(e.exit_code(), 2);
    }
    // inherit is for domains only; the device is never asked.
    let f = fake();
    let (r, _, _) = run(&f, &["mode", "1", "inherit"]);
    assert!(matches!(r, Err(Error::Usage(m)) if m.contains("inherit")));
    assert!(f.calls.borrow().is_empty());
}

#[test]
fn mode_and_lock_errors() {
    let f = fake();
    assert_eq!(runtime_err(&f, &["mode", "9", "enforce"]), "no VM 9");
    assert_eq!(
        runtime_err(&f, &["mode", "1", "enforce", "--domain", "5"]),
        "no domain 5 in VM 1"
    );
    assert_eq!(
        runtime_err(&f, &["mode", "9", "enforce", "--domain", "5"]),
        "no VM 9"
    );
    assert_eq!(runtime_err(&f, &["lock", "8"]), "no VM 8");
    assert_eq!(runtime_err(&f, &["lock", "8", "--unlock"]), "no VM 8");
    // Nothing above changed a VM.
    let vms = f.vms.borrow();
    assert_eq!((vms[0].vm.mode, vms[0].vm.locked), (0, 1));
    assert_eq!(vms[1].vm.mode, MODE_ENFORCE);
    assert_eq!(vms[1].domains[0].mode, MODE_LEARN);
}

/// The lock binds the guest only: the host may relax a locked VM (`Engine::check_mode` with
/// `guest = false`, which `KVM_ISOLATE_CTL_SET_MODE` uses), and it stays locked.
#[test]
fn host_relaxes_a_locked_vm() {
    let f = fake();
    assert_eq!(f.vms.borrow()[0].vm.locked, 1);
    ok(&f, &["mode", "7", "enforce", "--deny", "pf"]);
    ok(&f, &["mode", "7", "off"]);
    {
        let vms = f.vms.borrow();
        let vm = &vms[0].vm;
        assert_eq!(
            (vm.id, vm.mode, vm.deny, vm.locked),
            (7, MODE_OFF, DENY_PF, 1)
        );
    }
    // Locking VM 1 does not stop the host either, for the VM or a domain.
    ok(&f, &["lock", "1"]);
    ok(&f, &["mode", "1", "off", "--deny", "exit"]);
    ok(&f, &["mode", "1", "off", "--domain", "2"]);
    ok(&f, &["mode", "1", "inherit", "--domain", "1"]);
    let vms = f.vms.borrow();
    let vm = &vms[1];
    assert_eq!(
        (vm.vm.mode, vm.vm.deny, vm.vm.locked),
        (MODE_OFF, DENY_EXIT, 1)
    );
    assert_eq!(vm.domains[0].mode, MODE_OFF);
    assert_eq!(vm.domains[1].mode, MODE_INHERIT);
    // And it may unlock.
    drop(vms);
    ok(&f, &["lock", "7", "--unlock"]);
    assert_eq!(f.vms.borrow()[0].vm.locked, 0);
}

/// The fake refuses what the kernel refuses, in the kernel's order (arguments, then the VM).
#[test]
fn fake_checks_mode_arguments_like_the_kernel() {
    use kvm_isolate_core::ctl::{CtlLock, CtlMode, MODE_INHERIT};
    let f = fake();
    let m = |vm, domain, mode, deny| CtlMode {
        vm,
        domain,
        mode,
        deny,
    };
    let errno = |r: std::io::Result<()>| r.unwrap_err().raw_os_error();
    assert_eq!(
        errno(f.set_mode(&m(1, 0, 7, DENY_KEEP))),
        Some(libc::EINVAL)
    );
    assert_eq!(
        errno(f.set_mode(&m(1, 0, MODE_INHERIT, DENY_KEEP))),
        Some(libc::EINVAL)
    );
    assert_eq!(
        errno(f.set_mode(&m(1, 1, MODE_OFF, DENY_GP))),
        Some(libc::EINVAL)
    );
    assert_eq!(errno(f.set_mode(&m(1, 0, MODE_OFF, 9))), Some(libc::EINVAL));
    assert_eq!(
        errno(f.set_mode(&m(1, 256, MODE_OFF, DENY_KEEP))),
        Some(libc::EINVAL)
    );
    assert_eq!(
        errno(f.set_mode(&m(9, 256, MODE_OFF, DENY_KEEP))),
        Some(libc::EINVAL)
    );
    assert_eq!(
        errno(f.set_mode(&m(9, 0, MODE_OFF, DENY_KEEP))),
        Some(libc::ENOENT)
    );
    assert_eq!(
        errno(f.set_mode(&m(1, 9, MODE_OFF, DENY_KEEP))),
        Some(libc::ENOENT)
    );
    assert_eq!(
        errno(f.lock(&CtlLock { vm: 1, lock: 2 })),
        Some(libc::EINVAL)
    );
    assert_eq!(
        errno(f.lock(&CtlLock { vm: 9, lock: 1 })),
        Some(libc::ENOENT)
    );
    // A locked VM: accepted.
    f.set_mode(&m(7, 0, MODE_OFF, DENY_KEEP)).unwrap();
    assert_eq!(f.vms.borrow()[0].vm.mode, MODE_OFF);
}

#[test]
fn profile_export_import_round_trip() {
    let f = fake();
    let exported = ok(&f, &["profile", "export", "1"]);
    let v: Value = serde_json::from_str(&exported).unwrap();
    assert_eq!(v["format"], "kvm-isolate-profile");
    assert_eq!(v["version"], 1);
    // Sorted by accessor_start.
    assert_eq!(v["rules"][0]["accessor_start"], "0xffffffffc0000000");
    assert_eq!(v["rules"][0]["access"], "r");
    assert_eq!(v["rules"][1]["access"], "rw");
    // No rule is trusted on its own: the file has no `trusted` at all.
    assert!(!exported.contains("trusted"), "{}", exported);

    let path = temp_path("roundtrip.json");
    std::fs::write(&path, &exported).unwrap();
    let p = path.to_str().unwrap();
    ok(&f, &["profile", "import", "7", p]);
    assert_eq!(f.calls.borrow().last().unwrap(), "profile_set 7 2");
    let again = ok(&f, &["profile", "export", "7"]);
    assert_eq!(again, exported);

    let out_path = temp_path("roundtrip-out.json");
    ok(
        &f,
        &["profile", "export", "7", "-o", out_path.to_str().unwrap()],
    );
    assert_eq!(std::fs::read_to_string(&out_path).unwrap(), exported);
    let _ = std::fs::remove_file(path);
    let _ = std::fs::remove_file(out_path);
}

#[test]
fn profile_import_rejects_bad_files_without_ioctl() {
    let good = r#"{"format":"kvm-isolate-profile","version":1,"rules":[
        {"domain":1,"region_gpa":"0x200000","access":"rw","accessor_start":"0x1000","accessor_end":"0x2000"}]}"#;
    let with_entries = |entries: &str| good.replace("]}", &format!("],\"entries\":{}}}", entries));
    let entry = r#"{"domain":1,"gva":"0xffffffffc0002010","gpa":"0x40002010"}"#;
    let cases: [(&str, String, &str); 14] = [
        (
            "format",
            good.replace("kvm-isolate-profile", "kvm-isolate"),
            "format:",
        ),
        (
            "version",
            good.replace("\"version\":1", "\"version\":3"),
            "version:",
        ),
        (
            "domain",
            good.replace("\"domain\":1", "\"domain\":0"),
            "rule 0: domain:",
        ),
        (
            "gpa",
            good.replace("0x200000", "0x200800"),
            "rule 0: region_gpa: 0x200800 is not page aligned",
        ),
        (
            "access",
            good.replace("\"rw\"", "\"rwq\""),
            "rule 0: access:",
        ),
        (
            "range",
            good.replace("\"0x2000\"", "\"0x1000\""),
            "rule 0: accessor_end:",
        ),
        (
            "unknown",
            good.replace("\"domain\":1,", "\"domain\":1,\"view\":2,"),
            "rule 0: unknown field \"view\"",
        ),
        (
            "trusted",
            good.replace("\"rw\",", "\"rw\",\"trusted\":\"yes\","),
            "rule 0: trusted: expected true or false, found a string",
        ),
        (
            "trusted-number",
            good.replace("\"rw\",", "\"rw\",\"trusted\":1,"),
            "rule 0: trusted: expected true or false, found a number",
        ),
        ("syntax", good.replace("]}", "]"), "not a valid profile"),
        (
            "entries",
            with_entries("{}"),
            "entries: expected an array, found an object",
        ),
        (
            "entry-field",
            with_entries(&format!(
                "[{},{}]",
                entry,
                entry.replace("\"gva\"", "\"rip\"")
            )),
            "entry 1: unknown field \"rip\"",
        ),
        (
            "entry-offset",
            with_entries(&format!("[{}]", entry.replace("0x40002010", "0x40002000"))),
            "entry 0: gpa: 0x40002000 is not at the offset in its page of gva 0xffffffffc0002010",
        ),
        (
            "entry-twice",
            with_entries(&format!("[{},{}]", entry, entry)),
            "entry 1: gva: the same entry point as entry 0",
        ),
    ];
    let f = fake();
    for (name, text, want) in cases {
        let path = temp_path(&format!("bad-{}.json", name));
        std::fs::write(&path, text).unwrap();
        let msg = runtime_err(&f, &["profile", "import", "1", path.to_str().unwrap()]);
        assert!(
            msg.contains(want),
            "{}: {:?} does not contain {:?}",
            name,
            msg,
            want
        );
        assert!(
            msg.starts_with(path.to_str().unwrap()),
            "{}: names the file: {}",
            name,
            msg
        );
        let _ = std::fs::remove_file(path);
    }
    assert!(
        f.calls.borrow().is_empty(),
        "no PROFILE_SET, no ENTRIES_GET/SET: {:?}",
        f.calls.borrow()
    );
    assert_eq!(f.vms.borrow()[1].rules.len(), 2);
    assert_eq!(f.vms.borrow()[1].entries, vm1_entries());
    // And a good file does reach the device.
    let path = temp_path("good.json");
    std::fs::write(&path, good).unwrap();
    ok(&f, &["profile", "import", "1", path.to_str().unwrap()]);
    assert_eq!(f.calls.borrow().as_slice(), ["profile_set 1 1"]);
    let _ = std::fs::remove_file(path);
}

/// `"trusted": true` in a file is `KVM_ISOLATE_RULE_TRUSTED` in the rule the kernel gets, and
/// back: import, export and import again change nothing.
#[test]
fn profile_trusted_rules_round_trip() {
    let f = fake();
    let text = r#"{"format":"kvm-isolate-profile","version":1,"rules":[
        {"domain":1,"region_gpa":"0x40005000","access":"r","accessor_start":"0xffffffff81000000",
         "accessor_end":"0xffffffff81001000","trusted":true},
        {"domain":1,"region_gpa":"0x40005000","access":"rw","accessor_start":"0xffffffff81001000",
         "accessor_end":"0xffffffff81002000","trusted":false},
        {"domain":1,"region_gpa":"0x40005000","access":"w","accessor_start":"0xffffffff81002000",
         "accessor_end":"0xffffffff81003000"}]}"#;
    let path = temp_path("trusted.json");
    std::fs::write(&path, text).unwrap();
    let p = path.to_str().unwrap();
    let out = ok(&f, &["profile", "import", "7", p]);
    assert_eq!(
        out,
        "VM 7: profile replaced, 3 rules (1 trusted on its own)\n"
    );
    let rules = f.vms.borrow()[0].rules.clone();
    assert_eq!(
        rules.iter().map(|r| r.access).collect::<Vec<_>>(),
        [1 | RULE_TRUSTED, 3, 2]
    );
    let exported = ok(&f, &["profile", "export", "7"]);
    let v: Value = serde_json::from_str(&exported).unwrap();
    assert_eq!(v["rules"][0]["trusted"], true);
    assert_eq!(v["rules"][0]["access"], "r");
    assert_eq!(v["rules"][1].get("trusted"), None);
    assert_eq!(v["rules"][2].get("trusted"), None);
    assert_eq!(exported.matches("\"trusted\": true").count(), 1);
    std::fs::write(&path, &exported).unwrap();
    ok(&f, &["profile", "import", "7", p]);
    assert_eq!(f.vms.borrow()[0].rules, rules);
    assert_eq!(ok(&f, &["profile", "export", "7"]), exported);
    // Two trusted rules: plural.
    let both = text.replace("\"trusted\":false", "\"trusted\":true");
    std::fs::write(&path, both).unwrap();
    assert_eq!(
        ok(&f, &["profile", "import", "7", p]),
        "VM 7: profile replaced, 3 rules (2 trusted on their own)\n"
    );
    let _ = std::fs::remove_file(path);
}

/// VM 1 with its rules and without entry points: the file written before entry points were
/// exported.
const VM1_RULES_ONLY: &str = r#"{
  "format": "kvm-isolate-profile",
  "version": 1,
  "rules": [
    {
      "domain": 1,
      "region_gpa": "0x40005000",
      "access": "r",
      "accessor_start": "0xffffffffc0000000",
      "accessor_end": "0xffffffffc0001000"
    },
    {
      "domain": 1,
      "region_gpa": "0x40005000",
      "access": "rw",
      "accessor_start": "0xffffffffc0002000",
      "accessor_end": "0xffffffffc0003000"
    }
  ]
}
"#;

#[test]
fn profile_export_writes_entry_points_only_when_the_vm_has_some() {
    let f = fake();
    // No entry points: byte for byte the file of a tool that did not know them.
    f.vms.borrow_mut()[1].entries.clear();
    assert_eq!(ok(&f, &["profile", "export", "1"]), VM1_RULES_ONLY);
    // With entry points: the same, then "entries", by domain and address.
    f.vms.borrow_mut()[1].entries = vm1_entries();
    let exported = ok(&f, &["profile", "export", "1"]);
    assert_eq!(
        exported,
        VM1_RULES_ONLY.replace(
            "  ]\n}\n",
            r#"  ],
  "entries": [
    {
      "domain": 1,
      "gva": "0xffffffffc0002010",
      "gpa": "0x40002010"
    },
    {
      "domain": 2,
      "gva": "0xffffffffc0100040",
      "gpa": "0x40010040"
    }
  ]
}
"#
        )
    );
    // Reading only.
    assert_eq!(
        f.calls.borrow().as_slice(),
        ["entries_get 1", "entries_get 1"]
    );
    assert_eq!(runtime_err(&f, &["profile", "export", "3"]), "no VM 3");
}

/// Writes `text` to a temporary file for `profile import`; removed on drop.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn new(name: &str, text: &str) -> Self {
        let path = temp_path(name);
        std::fs::write(&path, text).unwrap();
        TempFile(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// VM 1's profile with `entries` (JSON) in place of its entry points.
fn vm1_profile_with(entries: &str) -> String {
    let mut v: Value = serde_json::from_str(VM1_RULES_ONLY).unwrap();
    v["entries"] = serde_json::from_str(entries).unwrap();
    v.to_string()
}

fn vm(f: &Fake, id: u32) -> FakeVm {
    f.vms
        .borrow()
        .iter()
        .find(|v| v.vm.id == id)
        .unwrap()
        .clone()
}

/// Gives VM `id` room for `n` rules and `n` entry points, as if the module parameters
/// `max_rules` and `max_entry_points` had been `n` when it was created: small, so that tests of
/// the capacities stay fast.
fn small_caps(f: &Fake, id: u32, n: usize) {
    let mut vms = f.vms.borrow_mut();
    let v = vms.iter_mut().find(|v| v.vm.id == id).unwrap();
    let limits = Limits {
        rules: n,
        entries: n,
        ..Limits::DEFAULT
    };
    v.vm = with_caps(v.vm, &limits);
}

/// A profile of more rules or entry points than the VM holds is refused before any ioctl that
/// changes something, with the module parameter to raise; exactly as many fit.
#[test]
fn profile_import_over_the_vms_capacity_is_refused() {
    let f = fake();
    small_caps(&f, 7, 8);
    let old = vec![entry(2, 0xffffffffc0100000, 0x40010000)];
    f.vms.borrow_mut()[0].entries = old.clone();
    // Nine rules of other accessor pages, nine entry points in domain 1's code.
    let rules: Vec<CtlRule> = (0..9u64)
        .map(|i| CtlRule {
            domain: 1,
            access: 1,
            region_gpa: 0x40005000,
            accessor_start: 0xffffffff81000000 + i * 0x1000,
            accessor_end: 0xffffffff81001000 + i * 0x1000,
        })
        .collect();
    let entries: Vec<CtlEntry> = (0..9u64)
        .map(|i| entry(1, 0xffffffffc0000000 + i * 16, 0x40000000 + i * 16))
        .collect();
    let file = TempFile::new(
        "over.json",
        &profile::export(&rules, &[], &profile::Layout::default()).unwrap(),
    );
    assert_eq!(
        runtime_err(&f, &["profile", "import", "7", file.path()]),
        "VM 7: the profile has 9 rules, the VM holds at most 8 (the module parameter max_rules \
         when the VM was created); nothing changed"
    );
    std::fs::write(
        &file.0,
        profile::export(&rules[..8], &entries, &profile::Layout::default()).unwrap(),
    )
    .unwrap();
    assert_eq!(
        runtime_err(&f, &["profile", "import", "7", file.path()]),
        "VM 7: the profile has 9 entry points, the VM holds at most 8 (the module parameter \
         max_entry_points when the VM was created); nothing changed"
    );
    assert!(f.calls.borrow().is_empty(), "{:?}", f.calls.borrow());
    let vm7 = vm(&f, 7);
    assert!(vm7.rules.is_empty());
    assert_eq!(vm7.entries, old);
    assert_eq!(
        (vm7.vm.rules, vm7.vm.max_rules, vm7.vm.max_entries),
        (0, 8, 8)
    );
    // Exactly the capacity fits, and LIST reports it used.
    std::fs::write(
        &file.0,
        profile::export(&rules[..8], &entries[..8], &profile::Layout::default()).unwrap(),
    )
    .unwrap();
    assert_eq!(
        ok(&f, &["profile", "import", "7", file.path()]),
        "VM 7: profile replaced, 8 rules, 8 entry points\n"
    );
    let vm7 = vm(&f, 7);
    assert_eq!((vm7.rules.len(), vm7.entries.len()), (8, 8));
    assert_eq!((vm7.vm.rules, vm7.vm.entries), (8, 8));
    // A VM with the default capacities takes all nine.
    std::fs::write(
        &file.0,
        profile::export(&rules, &entries, &profile::Layout::default()).unwrap(),
    )
    .unwrap();
    assert_eq!(
        ok(&f, &["profile", "import", "1", file.path()]),
        "VM 1: profile replaced, 9 rules, 9 entry points\n"
    );
}

/// Should the kernel refuse a count all the same (E2BIG), the message names the parameter.
#[test]
fn e2big_names_the_module_parameter() {
    let f = fake();
    small_caps(&f, 7, 1);
    let rules = vm(&f, 1).rules;
    assert_eq!(
        cmd::profile_set(&f, 7, &rules),
        Err(Error::Runtime(
            "VM 7: more rules than the VM holds (the module parameter max_rules)".into()
        ))
    );
    assert!(vm(&f, 7).rules.is_empty());
    let file = TempFile::new("e2big.json", &ok(&f, &["profile", "export", "1"]));
    f.fail.borrow_mut().push(("entries_set", libc::E2BIG));
    assert_eq!(
        runtime_err(&f, &["profile", "import", "1", file.path()]),
        "VM 1: more entry points than the VM holds (the module parameter max_entry_points)"
    );
}

#[test]
fn profile_import_sets_entry_points_then_rules() {
    let f = fake();
    let file = TempFile::new("entries.json", &ok(&f, &["profile", "export", "1"]));
    f.calls.borrow_mut().clear();
    // The next boot of the same build: the entry points, then the rules.
    assert_eq!(
        ok(&f, &["profile", "import", "7", file.path()]),
        "VM 7: profile replaced, 2 rules, 2 entry points\n"
    );
    assert_eq!(
        f.calls.borrow().as_slice(),
        ["entries_get 7", "entries_set 7 2", "profile_set 7 2"]
    );
    let vm7 = vm(&f, 7);
    assert_eq!(vm7.entries, vm1_entries());
    assert_eq!(vm7.rules.len(), 2);
    assert_eq!(
        ok(&f, &["profile", "export", "7"]),
        ok(&f, &["profile", "export", "1"])
    );
    // One entry point, its gpa a number, next to a trusted rule.
    let one =
        vm1_profile_with(r#"[{"domain": 2, "gva": "0xffffffffc0100ffc", "gpa": 1073811452}]"#)
            .replace("\"access\":\"r\",", "\"access\":\"r\",\"trusted\":true,");
    std::fs::write(&file.0, one).unwrap();
    assert_eq!(
        ok(&f, &["profile", "import", "7", file.path()]),
        "VM 7: profile replaced, 2 rules (1 trusted on its own), 1 entry point\n"
    );
    assert_eq!(
        vm(&f, 7).entries,
        [entry(2, 0xffffffffc0100ffc, 0x40010ffc)]
    );
    // A file without entries (written before they were exported) leaves them as they are.
    f.calls.borrow_mut().clear();
    std::fs::write(&file.0, VM1_RULES_ONLY).unwrap();
    assert_eq!(
        ok(&f, &["profile", "import", "7", file.path()]),
        "VM 7: profile replaced, 2 rules\n"
    );
    assert_eq!(f.calls.borrow().as_slice(), ["profile_set 7 2"]);
    assert_eq!(
        vm(&f, 7).entries,
        [entry(2, 0xffffffffc0100ffc, 0x40010ffc)]
    );
    // An empty list removes them.
    std::fs::write(&file.0, vm1_profile_with("[]")).unwrap();
    assert_eq!(
        ok(&f, &["profile", "import", "7", file.path()]),
        "VM 7: profile replaced, 2 rules, 0 entry points\n"
    );
    assert!(vm(&f, 7).entries.is_empty());
    // --json prints nothing.
    std::fs::write(
        &file.0,
        vm1_profile_with(r#"[{"domain": 1, "gva": "0xffffffffc0000000", "gpa": "0x40000000"}]"#),
    )
    .unwrap();
    assert_eq!(
        ok(&f, &["--json", "profile", "import", "7", file.path()]),
        ""
    );
    assert_eq!(vm(&f, 7).entries.len(), 1);
}

/// The rules are refused after the entry points were set: the old ones are put back, and the
/// user is told that nothing changed.
#[test]
fn profile_import_puts_the_entry_points_back_when_the_rules_are_refused() {
    let f = fake();
    let old = vec![entry(1, 0xffffffffc0000000, 0x40000000)];
    f.vms.borrow_mut()[0].entries = old.clone();
    let file = TempFile::new("rollback.json", &ok(&f, &["profile", "export", "1"]));
    for (errno, why) in [
        (
            libc::ENOENT,
            "rules name regions the VM does not have (a profile made for another layout?)",
        ),
        (libc::EINVAL, "invalid argument"),
        (libc::EPERM, "not allowed"),
    ] {
        f.calls.borrow_mut().clear();
        f.fail.borrow_mut().push(("profile_set", errno));
        assert_eq!(
            runtime_err(&f, &["profile", "import", "7", file.path()]),
            format!(
                "VM 7: {} (nothing changed: the old entry points are back)",
                why
            )
        );
        assert_eq!(
            f.calls.borrow().as_slice(),
            [
                "entries_get 7",
                "entries_set 7 2",
                "profile_set 7 2",
                "entries_set 7 1"
            ]
        );
        let vm7 = vm(&f, 7);
        assert_eq!(vm7.entries, old);
        assert!(vm7.rules.is_empty());
    }
    // Putting them back fails too: say what the VM is left with.
    f.fail.borrow_mut().extend([
        ("entries_set", 0),
        ("profile_set", libc::ENOSPC),
        ("entries_set", libc::ENOMEM),
    ]);
    assert_eq!(
        runtime_err(&f, &["profile", "import", "7", file.path()]),
        "VM 7: No space left on device; putting the old entry points back failed too (Cannot \
         allocate memory): the VM has the file's entry points and its old rules"
    );
    let vm7 = vm(&f, 7);
    assert_eq!(vm7.entries, vm1_entries());
    assert!(vm7.rules.is_empty());
    assert!(f.fail.borrow().is_empty());
}

/// The entry points are refused: nothing was set, the rules are not tried.
#[test]
fn profile_import_stops_when_the_entry_points_are_refused() {
    let f = fake();
    let old = vec![entry(2, 0xffffffffc0100000, 0x40010000)];
    f.vms.borrow_mut()[0].entries = old.clone();
    let layout_entry = |domain: u32, gva: &str, gpa: &str| {
        vm1_profile_with(&format!(
            r#"[{{"domain": {}, "gva": "{}", "gpa": "{}"}}]"#,
            domain, gva, gpa
        ))
    };
    let cases = [
        // Another layout: the module loaded a page further (the tool cannot tell).
        (
            layout_entry(1, "0xffffffffc0002010", "0x40003010"),
            "VM 7: entry points that are not in their domain's code at those addresses (a profile \
             made for another layout?)",
        ),
        (
            layout_entry(1, "0xffffffffc0003010", "0x40003010"),
            "VM 7: entry points that are not in their domain's code at those addresses (a profile \
             made for another layout?)",
        ),
        (
            layout_entry(3, "0xffffffffc0002010", "0x40002010"),
            "VM 7: entry points of domain 3, which the VM does not have",
        ),
    ];
    let file = TempFile::new("refused.json", VM1_RULES_ONLY);
    for (text, want) in &cases {
        std::fs::write(&file.0, text).unwrap();
        f.calls.borrow_mut().clear();
        assert_eq!(
            runtime_err(&f, &["profile", "import", "7", file.path()]),
            *want
        );
        assert_eq!(
            f.calls.borrow().as_slice(),
            ["entries_get 7", "entries_set 7 1"]
        );
        let vm7 = vm(&f, 7);
        assert_eq!(vm7.entries, old);
        assert!(vm7.rules.is_empty());
    }
    // No such VM: reading its capacities says so, before any other call.
    f.calls.borrow_mut().clear();
    assert_eq!(
        runtime_err(&f, &["profile", "import", "9", file.path()]),
        "no VM 9"
    );
    assert!(f.calls.borrow().is_empty(), "{:?}", f.calls.borrow());
    // A file without entry points: the rules alone, as before.
    std::fs::write(&file.0, VM1_RULES_ONLY).unwrap();
    assert_eq!(
        runtime_err(&f, &["profile", "import", "9", file.path()]),
        "no VM 9"
    );
    f.fail.borrow_mut().push(("profile_set", libc::ENOENT));
    assert_eq!(
        runtime_err(&f, &["profile", "import", "7", file.path()]),
        "VM 7: rules name regions the VM does not have (a profile made for another layout?)"
    );
    assert_eq!(f.calls.borrow().last().unwrap(), "profile_set 7 2");
    std::fs::write(&file.0, &cases[0].0).unwrap();
    // A kernel without ENTRIES_GET (ENOTTY): nothing is set.
    f.fail.borrow_mut().push(("entries_get", libc::ENOTTY));
    let msg = runtime_err(&f, &["profile", "import", "7", file.path()]);
    assert!(msg.starts_with("VM 7: "), "{}", msg);
    assert_eq!(f.calls.borrow().last().unwrap(), "entries_get 7");
    assert_eq!(vm(&f, 7).entries, old);
}

/// The fake refuses what `KVM_ISOLATE_CTL_ENTRIES_SET` refuses, in the kernel's order.
#[test]
fn fake_checks_entry_points_like_the_kernel() {
    let f = fake();
    let errno = |r: std::io::Result<()>| r.unwrap_err().raw_os_error();
    let good = vm1_entries();
    // The VM first (its capacity is its own), then the count: more than max_entries.
    small_caps(&f, 7, 8);
    let too_many = vec![good[0]; 9];
    assert_eq!(errno(f.entries_set(9, &too_many)), Some(libc::ENOENT));
    assert_eq!(errno(f.entries_set(7, &too_many)), Some(libc::E2BIG));
    assert_eq!(errno(f.entries_set(9, &good)), Some(libc::ENOENT));
    let pad = CtlEntry { pad: 1, ..good[0] };
    assert_eq!(errno(f.entries_set(7, &[good[1], pad])), Some(libc::EINVAL));
    let d3 = CtlEntry {
        domain: 3,
        ..good[0]
    };
    assert_eq!(errno(f.entries_set(7, &[d3])), Some(libc::EINVAL));
    let moved = CtlEntry {
        gpa: good[0].gpa + 0x1000,
        ..good[0]
    };
    assert_eq!(errno(f.entries_set(7, &[moved])), Some(libc::ENOENT));
    let other_domain = CtlEntry {
        domain: 2,
        ..good[0]
    };
    assert_eq!(errno(f.entries_set(7, &[other_domain])), Some(libc::ENOENT));
    assert_eq!(
        errno(f.entries_set(7, &[good[0], good[1], good[0]])),
        Some(libc::EEXIST)
    );
    assert!(vm(&f, 7).entries.is_empty());
    // Accepted in any order, kept by gpa.
    f.entries_set(7, &[good[1], good[0]]).unwrap();
    assert_eq!(f.entries_get(7).unwrap(), good);
}

#[test]
fn profile_import_checks_file_before_opening_device() {
    let cli = Cli::try_parse_from([
        "kvm-isolatectl",
        "profile",
        "import",
        "1",
        "/nonexistent/profile.json",
    ])
    .unwrap();
    let open = |_: &str| -> Result<Box<dyn Ctl>, Error> { panic!("device opened") };
    let r = cmd::run(&cli, &open, &mut Vec::new(), &mut Vec::new());
    assert!(matches!(r, Err(Error::Runtime(m)) if m.starts_with("/nonexistent/profile.json: ")));
}

#[test]
fn log_reads_in_batches_and_prints_dropped() {
    let f = fake();
    let out = ok(&f, &["log", "1"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1 + 600 + 1);
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        [
            "SEQ", "TIME", "VCPU", "VIEW", "DOMAIN", "NAME", "RIP", "GVA", "GPA", "ACCESS",
            "VERDICT", "COUNT", "LAST", "CODE"
        ]
    );
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        [
            "0",
            "5.000000007",
            "0",
            "0",
            "1",
            "ki_keeper",
            "0xffffffff81234567",
            "-",
            "0x0000000040005000",
            "r",
            "denied",
            "1",
            "5.000000007",
            "-"
        ]
    );
    // Record 0 is older than the guest's name for the kernel's text; record 1 is not.
    assert!(lines[2].ends_with("  vmlinux+0x234567"), "{}", lines[2]);
    assert!(lines[2].contains("0xffff888040005000") && lines[2].contains(" allowed "));
    // A compressed record: its count and the time of its last occurrence.
    let row3: Vec<&str> = lines[3].split_whitespace().collect();
    assert_eq!(
        (row3[0], row3[1], row3[11], row3[12]),
        ("2", "5.000000009", "20000", "8.000000009")
    );
    // Columns line up with the header.
    let col = lines[0].find("COUNT").unwrap();
    assert_eq!(&lines[3][col..col + 6], "20000 ");
    assert_eq!(lines[601], "dropped: 17");
    // 256 + 256 + 88, then one empty read.
    assert_eq!(f.log_reads.borrow().as_slice(), [256, 256, 256, 256]);
    assert!(f.vms.borrow()[1].log.is_empty(), "reading consumes");
}

#[test]
fn log_json_and_max() {
    let f = fake();
    let out = ok(&f, &["--json", "log", "1", "--max", "300"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 301);
    let r0: Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(r0["seq"], 0);
    assert_eq!(r0["gva"], Value::Null);
    assert_eq!(r0["verdict"], "denied");
    assert_eq!(r0["access"], "r");
    assert_eq!(r0["time_ns"], 5_000_000_007u64);
    assert_eq!(r0["last_ns"], 5_000_000_007u64);
    assert_eq!(r0["count"], 1);
    assert_eq!(r0["domain"], 1);
    assert_eq!(r0["domain_name"], "ki_keeper");
    assert_eq!(r0["code"], Value::Null, "older than the name");
    assert!(
        lines[0].contains(r#""domain":1,"domain_name":"ki_keeper","rip":"#),
        "{}",
        lines[0]
    );
    let r1: Value = serde_json::from_str(lines[1]).unwrap();
    assert_eq!(r1["gva"], 0xffff888040005000u64);
    assert_eq!(r1["code"], "vmlinux+0x234567");
    let r2: Value = serde_json::from_str(lines[2]).unwrap();
    assert_eq!(
        (&r2["time_ns"], &r2["last_ns"], &r2["count"]),
        (
            &Value::from(5_000_000_009u64),
            &Value::from(8_000_000_009u64),
            &Value::from(20_000)
        )
    );
    // The new fields come after the old ones: a consumer matching the old text still matches.
    assert!(lines[2].contains(
        "\"verdict\":\"denied\",\"last_ns\":8000000009,\"count\":20000,\"code\":\"vmlinux+0x234567\"}"
    ));
    let last: Value = serde_json::from_str(lines[300]).unwrap();
    assert_eq!(last, serde_json::json!({ "dropped": 17 }));
    assert_eq!(f.log_reads.borrow().as_slice(), [256, 44]);
    assert_eq!(
        f.vms.borrow()[1].log.len(),
        300,
        "the rest stays in the log"
    );
    assert_eq!(runtime_err(&f, &["log", "3"]), "no VM 3");
}

#[test]
fn open_errors_are_clear() {
    use crate::device::OpenError;
    use std::io;
    let e = cmd::open_error(
        "/dev/kvm-isolate",
        OpenError::Open(io::Error::from_raw_os_error(libc::ENOENT)),
    );
    assert_eq!(
        e,
        Error::Runtime(
            "/dev/kvm-isolate: not found (is kvm_isolate loaded? modprobe kvm_isolate)".into()
        )
    );
    let e = cmd::open_error(
        "/dev/x",
        OpenError::Open(io::Error::from_raw_os_error(libc::EACCES)),
    );
    assert!(e.to_string().contains("needs root"));
    // A kernel of control-plane version 7 (no CODE_NAMES_GET, which `log` asks) is refused:
    // this tool speaks 8.
    assert_eq!(kvm_isolate_core::ctl::CTL_VERSION_NR, 8);
    assert_eq!(
        cmd::open_error("/dev/x", OpenError::Mismatch(7)),
        Error::Runtime("/dev/x: control plane version 7, this tool speaks 8".into())
    );
    // The real device on a path that does not exist.
    let cli = Cli::try_parse_from([
        "kvm-isolatectl",
        "--device",
        "/nonexistent/kvm-isolate",
        "list",
    ])
    .unwrap();
    let r = cmd::run(&cli, &cmd::open_device, &mut Vec::new(), &mut Vec::new());
    assert_eq!(
        r,
        Err(Error::Runtime(
            "/nonexistent/kvm-isolate: not found (is kvm_isolate loaded? modprobe kvm_isolate)"
                .into()
        ))
    );
}

/// One boot of a guest (VM `id`) whose keeper (domain `keeper`) has its code at `base` (3 pages,
/// from gpa `gpa`) and its key, region 0, at `key`, with one entry point, and whose helper module
/// (the other domain, 1 page at `base + 0x10000`) may read the key (one rule).
fn named_boot(id: u32, keeper: u32, base: u64, gpa: u64, key: u64) -> FakeVm {
    let named = |id: u32, name: &str, start: u64, pages: u64| {
        let mut d = CtlDomain {
            id,
            code_ranges: 1,
            code_start: start,
            code_end: start + pages * 0x1000,
            ..Default::default()
        };
        d.name[..name.len()].copy_from_slice(name.as_bytes());
        d
    };
    let helper = 3 - keeper;
    FakeVm {
        vm: CtlVm {
            id,
            domains: 2,
            ..with_caps(CtlVm::default(), &Limits::DEFAULT)
        },
        domains: vec![
            named(keeper, "ki_keeper", base, 3),
            named(helper, "ki_helper", base + 0x10000, 1),
        ],
        rules: vec![CtlRule {
            domain: keeper,
            access: 1,
            region_gpa: key,
            accessor_start: base + 0x10000,
            accessor_end: base + 0x11000,
        }],
        entries: vec![entry(keeper, base + 0x1040, gpa + 0x1040)],
        code: vec![
            FakeCode {
                domain: keeper,
                start: base,
                end: base + 0x3000,
                gpa,
            },
            FakeCode {
                domain: helper,
                start: base + 0x10000,
                end: base + 0x11000,
                gpa: gpa + 0x10000,
            },
        ],
        regions: vec![kvm_isolate_core::ctl::CtlRegion {
            domain: keeper,
            index: 0,
            gpa: key,
            npages: 1,
            access: 3,
            pad: 0,
        }],
        ..Default::default()
    }
}

#[test]
fn a_profile_named_by_module_imports_into_the_next_boot() {
    // VM 1 is the first boot; VM 2 the next, everything elsewhere and the domains swapped.
    let f = Fake::new(vec![
        named_boot(1, 1, 0xffffffffa0000000, 0x4000000, 0x5000000),
        named_boot(2, 2, 0xffffffffc0400000, 0x6000000, 0x7000000),
    ]);
    f.vms.borrow_mut()[1].rules.clear();
    f.vms.borrow_mut()[1].entries.clear();
    let exported = ok(&f, &["profile", "export", "1"]);
    let v: Value = serde_json::from_str(&exported).unwrap();
    assert_eq!(v["rules"][0]["module"], "ki_keeper");
    assert_eq!(v["rules"][0]["accessor_module"], "ki_helper");
    assert_eq!(v["entries"][0]["offset"], "0x1040");
    let path = temp_path("named.json");
    std::fs::write(&path, &exported).unwrap();
    let p = path.to_str().unwrap();
    let said = ok(&f, &["profile", "import", "2", p]);
    assert!(
        said.contains("(2 named by module, found where they are now)"),
        "{said}"
    );
    // The rule and the entry point where the modules are in VM 2.
    let vm2 = f.vms.borrow()[1].clone();
    assert_eq!(
        vm2.rules,
        [CtlRule {
            domain: 2,
            access: 1,
            region_gpa: 0x7000000,
            accessor_start: 0xffffffffc0410000,
            accessor_end: 0xffffffffc0411000,
        }]
    );
    assert_eq!(vm2.entries, [entry(2, 0xffffffffc0401040, 0x6001040)]);
    // Without the names, the same file is refused by VM 2 and changes nothing: its addresses
    // are VM 1's.
    let mut unnamed: Value = serde_json::from_str(&exported).unwrap();
    for r in unnamed["rules"].as_array_mut().unwrap() {
        for k in ["module", "region", "accessor_module", "accessor_offset"] {
            r.as_object_mut().unwrap().remove(k);
        }
    }
    for e in unnamed["entries"].as_array_mut().unwrap() {
        for k in ["module", "offset"] {
            e.as_object_mut().unwrap().remove(k);
        }
    }
    std::fs::write(&path, unnamed.to_string()).unwrap();
    let e = runtime_err(&f, &["profile", "import", "2", p]);
    assert!(e.contains("not in their domain's code"), "{e}");
    assert_eq!(f.vms.borrow()[1].rules, vm2.rules);
    // A module the VM does not have: refused before anything is set.
    std::fs::write(&path, exported.replace("ki_helper", "ki_gone")).unwrap();
    let calls = f.calls.borrow().len();
    let e = runtime_err(&f, &["profile", "import", "2", p]);
    assert!(
        e.contains(
            "rule 0: accessor_offset: no domain of the VM is named \"ki_gone\", nor code its \
             guest names"
        ),
        "{e}"
    );
    assert!(e.ends_with("nothing changed"), "{e}");
    assert_eq!(f.calls.borrow().len(), calls);
    let _ = std::fs::remove_file(path);
}
