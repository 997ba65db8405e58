// SPDX-License-Identifier: GPL-2.0

//! The hypercall ABI: the Rust mirror against the C uapi header, and the decoder's validation.

use kvm_isolate_core::abi::{self, Call, Error, OnViolation, Views};
use kvm_isolate_core::ctl;
use std::collections::HashMap;

/// Evaluates the header's `#define`s: integers, names, `(A + B)` and `(A << B)`.
fn header() -> HashMap<String, u64> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../include/uapi/linux/kvm_isolate.h"
    );
    let text = std::fs::read_to_string(path).expect("read the uapi header");
    let mut defs = HashMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("#define ") else {
            continue;
        };
        let rest = rest.split("/*").next().unwrap().trim();
        let Some((name, value)) = rest.split_once(char::is_whitespace) else {
            continue;
        };
        // ioctl numbers and ~0 are checked by compiling C against the header (ctl_matches_c).
        if value.starts_with("_IO") || value.contains('~') {
            continue;
        }
        let value = value.trim().trim_start_matches('(').trim_end_matches(')');
        let num = |t: &str, defs: &HashMap<String, u64>| -> u64 {
            let t = t.trim().trim_end_matches("ULL").trim_end_matches("UL");
            if let Some(h) = t.strip_prefix("0x") {
                u64::from_str_radix(h, 16).unwrap()
            } else if let Ok(n) = t.parse() {
                n
            } else {
                *defs
                    .get(t)
                    .unwrap_or_else(|| panic!("unknown name {t} in {name}"))
            }
        };
        let v = if let Some((a, b)) = value.split_once(" + ") {
            num(a, &defs) + num(b, &defs)
        } else if let Some((a, b)) = value.split_once(" << ") {
            num(a, &defs) << num(b, &defs)
        } else {
            num(value, &defs)
        };
        defs.insert(name.to_string(), v);
    }
    defs
}

#[test]
fn rust_mirror_matches_c_header() {
    let h = header();
    let want = [
        ("KVM_ISOLATE_ABI_VERSION", abi::ABI_VERSION),
        ("KVM_ISOLATE_MAGIC", abi::MAGIC),
        ("KVM_HC_ISOLATE_FIRST", abi::HC_FIRST),
        ("KVM_HC_ISOLATE_LAST", abi::HC_LAST),
        ("KVM_HC_ISOLATE_PROBE", abi::HC_PROBE),
        ("KVM_HC_ISOLATE_VERSION", abi::HC_VERSION),
        ("KVM_HC_ISOLATE_VIEW_CREATE", abi::HC_VIEW_CREATE),
        ("KVM_HC_ISOLATE_VIEW_DESTROY", abi::HC_VIEW_DESTROY),
        ("KVM_HC_ISOLATE_SET_ACCESS", abi::HC_SET_ACCESS),
        ("KVM_HC_ISOLATE_SWITCH", abi::HC_SWITCH),
        ("KVM_HC_ISOLATE_QUERY", abi::HC_QUERY),
        ("KVM_HC_ISOLATE_ON_VIOLATION", abi::HC_ON_VIOLATION),
        ("KVM_HC_ISOLATE_DOMAIN_CREATE", abi::HC_DOMAIN_CREATE),
        ("KVM_HC_ISOLATE_DOMAIN_ADD_CODE", abi::HC_DOMAIN_ADD_CODE),
        (
            "KVM_HC_ISOLATE_DOMAIN_ADD_REGION",
            abi::HC_DOMAIN_ADD_REGION,
        ),
        ("KVM_HC_ISOLATE_DOMAIN_DESTROY", abi::HC_DOMAIN_DESTROY),
        ("KVM_HC_ISOLATE_SET_MODE", abi::HC_SET_MODE),
        ("KVM_HC_ISOLATE_LOCK", abi::HC_LOCK),
        ("KVM_HC_ISOLATE_DOMAIN_ADD_ENTRY", abi::HC_DOMAIN_ADD_ENTRY),
        ("KVM_HC_ISOLATE_VE_INFO", abi::HC_VE_INFO),
        (
            "KVM_HC_ISOLATE_DOMAIN_SWITCHABLE",
            abi::HC_DOMAIN_SWITCHABLE,
        ),
        ("KVM_HC_ISOLATE_DOMAIN_NAME", abi::HC_DOMAIN_NAME),
        ("KVM_ISOLATE_NAME_LEN", abi::NAME_LEN as u64),
        ("KVM_HC_ISOLATE_CODE_NAME", abi::HC_CODE_NAME),
        ("KVM_ISOLATE_MAX_CODE_NAMES", abi::MAX_CODE_NAMES as u64),
        ("KVM_ISOLATE_CODE_NAME_MAX_SIZE", abi::CODE_NAME_MAX_SIZE),
        ("KVM_ISOLATE_MODE_OFF", abi::MODE_OFF),
        ("KVM_ISOLATE_MODE_LEARN", abi::MODE_LEARN),
        ("KVM_ISOLATE_MODE_ENFORCE", abi::MODE_ENFORCE),
        ("KVM_ISOLATE_MODE_INHERIT", abi::MODE_INHERIT),
        ("KVM_ISOLATE_MODE_OFF", u64::from(ctl::MODE_OFF)),
        ("KVM_ISOLATE_MODE_LEARN", u64::from(ctl::MODE_LEARN)),
        ("KVM_ISOLATE_MODE_ENFORCE", u64::from(ctl::MODE_ENFORCE)),
        ("KVM_ISOLATE_MODE_INHERIT", u64::from(ctl::MODE_INHERIT)),
        ("KVM_ISOLATE_DENY_EXIT", u64::from(ctl::DENY_EXIT)),
        ("KVM_ISOLATE_DENY_GP", u64::from(ctl::DENY_GP)),
        ("KVM_ISOLATE_DENY_PF", u64::from(ctl::DENY_PF)),
        ("KVM_ISOLATE_LOG_ALLOWED", u64::from(ctl::LOG_ALLOWED)),
        ("KVM_ISOLATE_LOG_LEARNED", u64::from(ctl::LOG_LEARNED)),
        ("KVM_ISOLATE_LOG_DENIED", u64::from(ctl::LOG_DENIED)),
        ("KVM_ISOLATE_CTL_TYPE", u64::from(ctl::CTL_TYPE)),
        ("KVM_ISOLATE_CTL_VERSION_NR", u64::from(ctl::CTL_VERSION_NR)),
        ("KVM_ISOLATE_RULE_TRUSTED", u64::from(ctl::RULE_TRUSTED)),
        ("KVM_ISOLATE_LOG_RECORDS", ctl::LOG_RECORDS as u64),
        ("KVM_ISOLATE_QUERY_VIEW", abi::QUERY_VIEW),
        ("KVM_ISOLATE_QUERY_ACCESS", abi::QUERY_ACCESS),
        ("KVM_ISOLATE_QUERY_VIEWS", abi::QUERY_VIEWS),
        ("KVM_ISOLATE_QUERY_MAX_VIEWS", abi::QUERY_MAX_VIEWS),
        ("KVM_ISOLATE_QUERY_FEATURES", abi::QUERY_FEATURES),
        ("KVM_ISOLATE_FEATURE_VMFUNC", abi::FEATURE_VMFUNC),
        ("KVM_ISOLATE_FEATURE_VE", abi::FEATURE_VE),
        ("KVM_ISOLATE_ON_VIOLATION_EXIT", abi::ON_VIOLATION_EXIT),
        ("KVM_ISOLATE_ON_VIOLATION_GP", abi::ON_VIOLATION_GP),
        ("KVM_ISOLATE_ON_VIOLATION_UD", abi::ON_VIOLATION_UD),
        ("KVM_ISOLATE_ON_VIOLATION_GRANT", abi::ON_VIOLATION_GRANT),
        ("KVM_ISOLATE_ON_VIOLATION_SWITCH", abi::ON_VIOLATION_SWITCH),
        ("KVM_ISOLATE_MAX_VIEWS", abi::MAX_VIEWS),
        ("KVM_ISOLATE_MAX_PAGES", abi::MAX_PAGES),
        ("KVM_ISOLATE_ACCESS_R", abi::ACCESS_R),
        ("KVM_ISOLATE_ACCESS_W", abi::ACCESS_W),
        ("KVM_ISOLATE_ACCESS_X", abi::ACCESS_X),
        ("KVM_ISOLATE_ACCESS_RWX", abi::ACCESS_RWX),
        ("KVM_ISOLATE_ACCESS_VE", abi::ACCESS_VE),
        ("KVM_ISOLATE_EXIT_FLAG_VIEW", abi::EXIT_FLAG_VIEW),
        ("KVM_ISOLATE_EXIT_FLAG_WRITE", abi::EXIT_FLAG_WRITE),
        ("KVM_ISOLATE_EXIT_FLAG_EXEC", abi::EXIT_FLAG_EXEC),
        ("KVM_ISOLATE_EPERM", Error::Perm as u64),
        ("KVM_ISOLATE_ENOENT", Error::NoEnt as u64),
        ("KVM_ISOLATE_ENOMEM", Error::NoMem as u64),
        ("KVM_ISOLATE_EEXIST", Error::Exist as u64),
        ("KVM_ISOLATE_EBUSY", Error::Busy as u64),
        ("KVM_ISOLATE_EINVAL", Error::Inval as u64),
        ("KVM_ISOLATE_ENOSPC", Error::NoSpc as u64),
        ("KVM_ISOLATE_ERANGE", Error::Range as u64),
        ("KVM_ISOLATE_EOPNOTSUPP", Error::OpNotSupp as u64),
        ("KVM_ISOLATE_ENOSYS", Error::NoSys as u64),
    ];
    for (name, value) in want {
        assert_eq!(h.get(name).copied(), Some(value), "{name}");
    }
    // Version 4: capacities per VM (module parameters), no static rule or entry point limit;
    // version 5: a domain's flags (switchable); version 6: its name; version 7: its code start,
    // its regions (REGIONS_GET) and GPA_FROM_CODE (profiles by module and offset); version 8:
    // the guest's names of its code (CODE_NAMES_GET).
    assert_eq!(ctl::CTL_VERSION_NR, 8);
    assert_eq!(h.get("KVM_ISOLATE_CTL_VERSION_NR").copied(), Some(8));
    for gone in ["KVM_ISOLATE_MAX_RULES", "KVM_ISOLATE_MAX_ENTRIES"] {
        assert!(!h.contains_key(gone), "{gone} is gone in version 4");
    }
    // Rules trusted on their own (RULE_TRUSTED, version 3): a bit no right uses.
    assert_eq!(ctl::RULE_TRUSTED, 0x100);
    assert_eq!(u64::from(ctl::RULE_TRUSTED) & abi::ACCESS_RWX, 0);
    // Every function number and error code in the header is mirrored.
    let mirrored: Vec<&str> = want.iter().map(|(n, _)| *n).collect();
    for name in h.keys() {
        if [
            "KVM_HC_ISOLATE_",
            "KVM_ISOLATE_E",
            "KVM_ISOLATE_MODE_",
            "KVM_ISOLATE_DENY_",
            "KVM_ISOLATE_RULE_",
        ]
        .iter()
        .any(|p| name.starts_with(p))
        {
            assert!(
                mirrored.contains(&name.as_str()),
                "{name} is not mirrored in abi.rs"
            );
        }
    }
}

#[test]
fn errors_are_negated_codes() {
    assert_eq!(Error::Inval.to_ret() as i64, -22);
    assert_eq!(Error::NoSys.to_ret() as i64, -1000);
}

#[test]
fn probe_version_create_take_no_arguments() {
    assert_eq!(abi::decode(abi::HC_PROBE, [0; 4]), Ok(Call::Probe));
    assert_eq!(abi::decode(abi::HC_VERSION, [0; 4]), Ok(Call::Version));
    assert_eq!(
        abi::decode(abi::HC_VIEW_CREATE, [0; 4]),
        Ok(Call::ViewCreate)
    );
    for i in 0..4 {
        let mut a = [0; 4];
        a[i] = 1;
        assert_eq!(abi::decode(abi::HC_PROBE, a), Err(Error::Inval));
        assert_eq!(abi::decode(abi::HC_VIEW_CREATE, a), Err(Error::Inval));
    }
}

#[test]
fn unknown_functions_are_enosys() {
    assert_eq!(
        abi::decode(abi::HC_CODE_NAME + 1, [0; 4]),
        Err(Error::NoSys)
    );
    assert_eq!(abi::decode(abi::HC_LAST, [0; 4]), Err(Error::NoSys));
}

#[test]
fn destroy_and_switch_check_the_view() {
    assert_eq!(
        abi::decode(abi::HC_VIEW_DESTROY, [0, 0, 0, 0]),
        Err(Error::Perm)
    );
    assert_eq!(
        abi::decode(abi::HC_VIEW_DESTROY, [256, 0, 0, 0]),
        Err(Error::Inval)
    );
    assert_eq!(
        abi::decode(abi::HC_VIEW_DESTROY, [u64::MAX, 0, 0, 0]),
        Err(Error::Inval)
    );
    assert_eq!(
        abi::decode(abi::HC_VIEW_DESTROY, [3, 0, 0, 0]),
        Ok(Call::ViewDestroy(3))
    );
    assert_eq!(
        abi::decode(abi::HC_VIEW_DESTROY, [3, 1, 0, 0]),
        Err(Error::Inval)
    );
    assert_eq!(
        abi::decode(abi::HC_SWITCH, [15, 0, 0, 0]),
        Ok(Call::Switch(15))
    );
    assert_eq!(
        abi::decode(abi::HC_SWITCH, [256, 0, 0, 0]),
        Err(Error::Inval)
    );
}

#[test]
fn a_name_is_printable_ascii_in_16_byte_chunks() {
    let d = |a| abi::decode(abi::HC_DOMAIN_NAME, a);
    let ki = u64::from_le_bytes(*b"ki_keepe");
    assert_eq!(
        d([3, 0, ki, u64::from(b'r')]),
        Ok(Call::DomainName {
            domain: 3,
            chunk: 0,
            bytes: [ki, u64::from(b'r')]
        })
    );
    assert_eq!(
        d([3, 48, 0, 0]),
        Ok(Call::DomainName {
            domain: 3,
            chunk: 3,
            bytes: [0, 0]
        })
    );
    assert_eq!(d([0, 0, ki, 0]), Err(Error::Inval), "view 0 is no domain");
    assert_eq!(d([256, 0, ki, 0]), Err(Error::Inval), "no such view");
    for offset in [8, 17, 64, 1 << 40] {
        assert_eq!(d([3, offset, ki, 0]), Err(Error::Inval), "offset {offset}");
    }
    // Control characters, DEL and bytes above 0x7f are refused, in either word.
    for bad in [0x0a_u64, 0x7f, 0x80, 0xff << 56, 0x1b << 8] {
        assert_eq!(d([3, 0, bad, 0]), Err(Error::Inval), "{bad:#x}");
        assert_eq!(d([3, 0, 0, bad]), Err(Error::Inval), "{bad:#x}");
    }
}

#[test]
fn a_code_name_is_a_range_and_8_printable_bytes_at_a_time() {
    let d = |a| abi::decode(abi::HC_CODE_NAME, a);
    let ki = u64::from_le_bytes(*b"ki_rogue");
    let code = |start, size, chunk, bytes| {
        Ok(Call::CodeName {
            start,
            size,
            chunk,
            bytes,
        })
    };
    let m = 0xffff_ffff_a000_0000_u64;
    assert_eq!(d([m, 0x3000, 0, ki]), code(m, 0x3000, 0, ki));
    assert_eq!(d([m, 0x3000, 56, 0]), code(m, 0x3000, 7, 0));
    // Size 0 removes the range at start (offset 0 only), and with start 0 every range.
    assert_eq!(d([m, 0, 0, 0]), code(m, 0, 0, 0));
    assert_eq!(d([0, 0, 0, 0]), code(0, 0, 0, 0));
    assert_eq!(d([m, 0, 8, ki]), Err(Error::Inval), "a name for no range");
    for bad in [
        [0, 0x1000, 0, ki],                      // start 0 names nothing
        [0, 0, 0, ki],                           // nor with bytes
        [m, abi::CODE_NAME_MAX_SIZE + 1, 0, ki], // too large
        [u64::MAX - 0xfff, 0x2000, 0, ki],       // wraps
        [m, 0x1000, 4, ki],                      // not a multiple of 8
        [m, 0x1000, abi::NAME_LEN as u64, ki],   // past the name
        [m, 0x1000, 0, 0x0a],                    // a control character
        [m, 0x1000, 0, 0x80 << 56],              // not ASCII
    ] {
        assert_eq!(d(bad), Err(Error::Inval), "{bad:x?}");
    }
    assert_eq!(
        d([m, abi::CODE_NAME_MAX_SIZE, 0, ki]),
        code(m, abi::CODE_NAME_MAX_SIZE, 0, ki)
    );
}

#[test]
fn switchable_takes_a_domain() {
    let d = |a| abi::decode(abi::HC_DOMAIN_SWITCHABLE, a);
    assert_eq!(d([3, 0, 0, 0]), Ok(Call::DomainSwitchable(3)));
    assert_eq!(d([0, 0, 0, 0]), Err(Error::Inval), "view 0 is no domain");
    assert_eq!(d([256, 0, 0, 0]), Err(Error::Inval), "no such view");
    for i in 1..4 {
        let mut a = [3, 0, 0, 0];
        a[i] = 1;
        assert_eq!(d(a), Err(Error::Inval), "unused argument {i}");
    }
}

#[test]
fn ve_info_takes_a_page_or_none() {
    let d = |a| abi::decode(abi::HC_VE_INFO, a);
    assert_eq!(d([0x5000, 0, 0, 0]), Ok(Call::VeInfo(Some(5))));
    assert_eq!(d([0, 0, 0, 0]), Ok(Call::VeInfo(Some(0))));
    assert_eq!(d([u64::MAX, 0, 0, 0]), Ok(Call::VeInfo(None)));
    assert_eq!(d([0x5008, 0, 0, 0]), Err(Error::Range), "unaligned");
    assert_eq!(
        d([abi::GPA_LIMIT, 0, 0, 0]),
        Err(Error::Range),
        "above 2^52"
    );
    assert_eq!(d([0x5000, 1, 0, 0]), Err(Error::Inval), "unused argument");
}

#[test]
fn set_access_validates_range_and_access() {
    let ok = |a| abi::decode(abi::HC_SET_ACCESS, a);
    assert_eq!(
        ok([1, 0x20_0000, 3, 1]),
        Ok(Call::SetAccess {
            view: 1,
            gfn: 0x200,
            npages: 3,
            access: 1
        })
    );
    assert_eq!(
        ok([1, 0x1000, 1, 0x10]),
        Err(Error::Inval),
        "unknown access bit"
    );
    assert_eq!(
        ok([1, 0x1000, 1, 0x9]),
        Ok(Call::SetAccess {
            view: 1,
            gfn: 1,
            npages: 1,
            access: 0x9
        }),
        "#VE"
    );
    assert_eq!(
        ok([256, 0x1000, 1, 1]),
        Err(Error::Inval),
        "view out of range"
    );
    assert_eq!(ok([1, 0x1001, 1, 1]), Err(Error::Range), "unaligned");
    assert_eq!(ok([1, 0x1000, 0, 1]), Err(Error::Range), "empty");
    assert_eq!(
        ok([1, 0x1000, abi::MAX_PAGES + 1, 1]),
        Err(Error::Range),
        "too long"
    );
    assert_eq!(ok([1, 0x1000, abi::MAX_PAGES, 1]).is_ok(), true);
    assert_eq!(
        ok([1, u64::MAX & !0xfff, 1, 1]),
        Err(Error::Range),
        "above 2^52"
    );
    assert_eq!(
        ok([1, abi::GPA_LIMIT - 0x1000, 2, 1]),
        Err(Error::Range),
        "crosses 2^52"
    );
    assert!(ok([1, abi::GPA_LIMIT - 0x1000, 1, 1]).is_ok());
}

#[test]
fn query_selectors() {
    let q = |a| abi::decode(abi::HC_QUERY, a);
    assert_eq!(q([0, 0, 0, 0]), Ok(Call::QueryView));
    assert_eq!(
        q([1, 2, 0x3fff, 0]),
        Ok(Call::QueryAccess { view: 2, gfn: 3 })
    );
    assert_eq!(
        q([1, 255, 0, 0]),
        Ok(Call::QueryAccess { view: 255, gfn: 0 })
    );
    assert_eq!(q([1, 256, 0, 0]), Err(Error::Inval));
    assert_eq!(q([1, 0, abi::GPA_LIMIT, 0]), Err(Error::Range));
    assert_eq!(q([2, 0, 0, 0]), Ok(Call::QueryViews(0)));
    assert_eq!(q([2, 7, 0, 0]), Ok(Call::QueryViews(7)));
    assert_eq!(q([2, 8, 0, 0]), Err(Error::Inval));
    assert_eq!(q([2, 0, 1, 0]), Err(Error::Inval));
    assert_eq!(q([3, 0, 0, 0]), Ok(Call::QueryMaxViews));
    assert_eq!(q([4, 0, 0, 0]), Ok(Call::QueryFeatures));
    assert_eq!(q([4, 1, 0, 0]), Err(Error::Inval));
    assert_eq!(q([5, 0, 0, 0]), Err(Error::Inval));
    assert_eq!(q([0, 1, 0, 0]), Err(Error::Inval));
}

#[test]
fn on_violation_actions() {
    let d = |a| abi::decode(abi::HC_ON_VIOLATION, a);
    assert_eq!(d([0, 0, 0, 0]), Ok(Call::OnViolation(OnViolation::Exit)));
    assert_eq!(
        d([1, 0, 0, 0]),
        Ok(Call::OnViolation(OnViolation::InjectGp))
    );
    assert_eq!(
        d([2, 0, 0, 0]),
        Ok(Call::OnViolation(OnViolation::InjectUd))
    );
    assert_eq!(d([3, 0, 0, 0]), Ok(Call::OnViolation(OnViolation::Grant)));
    assert_eq!(
        d([4, 5, 0, 0]),
        Ok(Call::OnViolation(OnViolation::Switch(5)))
    );
    assert_eq!(d([4, 256, 0, 0]), Err(Error::Inval));
    assert_eq!(d([1, 5, 0, 0]), Err(Error::Inval));
    assert_eq!(d([5, 0, 0, 0]), Err(Error::Inval));
}

#[test]
fn views_lifecycle() {
    let mut v = Views::default();
    assert!(v.exists(0));
    assert_eq!((v.word(0), v.count()), (1, 1));
    for want in 1..=255u8 {
        let got = v.free().unwrap();
        assert_eq!(got, want);
        v.insert(got);
    }
    assert_eq!(v.free(), Err(Error::NoSpc));
    assert_eq!(v.count(), 256);
    assert_eq!(
        (0..8).map(|i| v.word(i)).collect::<Vec<_>>(),
        [0xffff_ffff; 8]
    );
    assert_eq!(v.word(8), 0);
    v.remove(200);
    assert_eq!((v.word(6), v.free()), (0xffff_ffff & !(1 << 8), Ok(200)));
    v.insert(200);
    assert_eq!(v.check_destroy(0, false), Err(Error::Perm));
    assert_eq!(v.check_destroy(4, true), Err(Error::Busy));
    assert_eq!(v.check_destroy(4, false), Ok(()));
    v.remove(4);
    assert!(!v.exists(4));
    assert_eq!(v.check_destroy(4, false), Err(Error::NoEnt));
    assert_eq!(v.free(), Ok(4));
    v.remove(0);
    assert!(v.exists(0), "view 0 cannot go");
    assert!(v.exists(255));
}

#[test]
fn domain_calls_validate_every_argument() {
    let d = abi::decode;
    assert_eq!(d(abi::HC_DOMAIN_CREATE, [0; 4]), Ok(Call::DomainCreate));
    assert_eq!(d(abi::HC_DOMAIN_CREATE, [1, 0, 0, 0]), Err(Error::Inval));
    let code = |a| d(abi::HC_DOMAIN_ADD_CODE, a);
    assert_eq!(
        code([2, 0xffff_ffff_c000_0000, 0x10_0000, 2]),
        Ok(Call::DomainAddCode {
            domain: 2,
            gva: 0xffff_ffff_c000_0000,
            gfn: 0x100,
            npages: 2
        })
    );
    assert_eq!(code([0, 0x1000, 0x1000, 1]), Err(Error::Inval), "domain 0");
    assert_eq!(
        code([256, 0x1000, 0x1000, 1]),
        Err(Error::Inval),
        "domain 256"
    );
    assert_eq!(
        code([1, 0x1001, 0x1000, 1]),
        Err(Error::Range),
        "gva unaligned"
    );
    assert_eq!(
        code([1, 0x1000, 0x1001, 1]),
        Err(Error::Range),
        "gpa unaligned"
    );
    assert_eq!(code([1, 0x1000, 0x1000, 0]), Err(Error::Range), "empty");
    assert_eq!(
        code([1, u64::MAX & !0xfff, 0x1000, 2]),
        Err(Error::Range),
        "gva wraps"
    );
    assert_eq!(code([1, 0x1000, abi::GPA_LIMIT, 1]), Err(Error::Range));
    let region = |a| d(abi::HC_DOMAIN_ADD_REGION, a);
    assert_eq!(
        region([1, 0x20_0000, 4, 3]),
        Ok(Call::DomainAddRegion {
            domain: 1,
            gfn: 0x200,
            npages: 4,
            access: 3
        })
    );
    assert_eq!(region([1, 0x20_0000, 4, 0]), Err(Error::Inval), "no rights");
    assert_eq!(region([1, 0x20_0000, 4, 9]), Err(Error::Inval), "bad bit");
    assert_eq!(region([1, 0x20_0800, 4, 1]), Err(Error::Range));
    assert_eq!(
        region([1, 0x20_0000, abi::MAX_PAGES + 1, 1]),
        Err(Error::Range)
    );
    assert_eq!(
        d(abi::HC_DOMAIN_DESTROY, [3, 0, 0, 0]),
        Ok(Call::DomainDestroy(3))
    );
    assert_eq!(d(abi::HC_DOMAIN_DESTROY, [0, 0, 0, 0]), Err(Error::Inval));
    assert_eq!(d(abi::HC_DOMAIN_DESTROY, [3, 1, 0, 0]), Err(Error::Inval));
    let mode = |a| d(abi::HC_SET_MODE, a);
    assert_eq!(
        mode([0, 2, 0, 0]),
        Ok(Call::SetMode {
            domain: 0,
            mode: Some(2)
        })
    );
    assert_eq!(
        mode([4, 3, 0, 0]),
        Ok(Call::SetMode {
            domain: 4,
            mode: None
        })
    );
    assert_eq!(
        mode([0, 3, 0, 0]),
        Err(Error::Inval),
        "the VM cannot inherit"
    );
    assert_eq!(mode([0, 4, 0, 0]), Err(Error::Inval));
    assert_eq!(mode([256, 1, 0, 0]), Err(Error::Inval));
    assert_eq!(mode([1, 1, 1, 0]), Err(Error::Inval));
    assert_eq!(d(abi::HC_LOCK, [0; 4]), Ok(Call::Lock));
    assert_eq!(d(abi::HC_LOCK, [0, 0, 0, 1]), Err(Error::Inval));
    // ADD_ENTRY: domain 1 ..= 15 and any gva (the engine checks it lies in the domain's code);
    // a2 and a3 must be zero.
    let entry = |a| d(abi::HC_DOMAIN_ADD_ENTRY, a);
    for (domain, gva) in [(1u8, 0xffff_ffff_c000_0123u64), (15, 0), (7, u64::MAX)] {
        assert_eq!(
            entry([u64::from(domain), gva, 0, 0]),
            Ok(Call::DomainAddEntry { domain, gva }),
            "{domain} {gva:#x}"
        );
    }
    assert_eq!(entry([0, 0x1000, 0, 0]), Err(Error::Inval), "domain 0");
    assert_eq!(entry([256, 0x1000, 0, 0]), Err(Error::Inval), "domain 256");
    assert_eq!(entry([u64::MAX, 0x1000, 0, 0]), Err(Error::Inval));
    assert_eq!(entry([1, 0x1000, 1, 0]), Err(Error::Inval), "a2");
    assert_eq!(entry([1, 0x1000, 0, 1]), Err(Error::Inval), "a3");
}

/// Compiles a C program against the uapi header and compares what it prints (ioctl numbers,
/// struct sizes and field offsets) with the Rust mirror in `ctl.rs`.
#[test]
fn ctl_matches_c() {
    use std::mem::{offset_of, size_of};
    let cc = ["cc", "clang-19", "clang", "gcc"]
        .into_iter()
        .find(|c| {
            std::process::Command::new(c)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .expect("a C compiler (cc, clang-19 or gcc) for the ABI parity test");
    let dir = std::env::temp_dir().join(format!("ki-ctl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("ctl.c");
    let inc = concat!(env!("CARGO_MANIFEST_DIR"), "/../../include/uapi");
    let mut c = String::from(
        "#include <stdio.h>\n#include <stddef.h>\n#include <linux/kvm_isolate.h>\n\
         #define P(x) printf(\"%s %llu\\n\", #x, (unsigned long long)(x));\nint main(void) {\n",
    );
    let exprs = [
        "KVM_ISOLATE_CTL_VERSION",
        "KVM_ISOLATE_CTL_LIST",
        "KVM_ISOLATE_CTL_DOMAINS",
        "KVM_ISOLATE_CTL_SET_MODE",
        "KVM_ISOLATE_CTL_LOCK",
        "KVM_ISOLATE_CTL_PROFILE_GET",
        "KVM_ISOLATE_CTL_PROFILE_SET",
        "KVM_ISOLATE_CTL_LOG_READ",
        "KVM_ISOLATE_CTL_ENTRIES_GET",
        "KVM_ISOLATE_CTL_ENTRIES_SET",
        "KVM_ISOLATE_CTL_REGIONS_GET",
        "KVM_ISOLATE_CTL_CODE_NAMES_GET",
        "sizeof(struct kvm_isolate_ctl_code_name)",
        "offsetof(struct kvm_isolate_ctl_code_name, size)",
        "offsetof(struct kvm_isolate_ctl_code_name, since_ns)",
        "offsetof(struct kvm_isolate_ctl_code_name, name)",
        "KVM_ISOLATE_GPA_FROM_CODE",
        "KVM_ISOLATE_GVA_UNKNOWN",
        "KVM_ISOLATE_CTL_VERSION_NR",
        "KVM_ISOLATE_RULE_TRUSTED",
        "KVM_ISOLATE_DOMAIN_SWITCHABLE",
        "sizeof(struct kvm_isolate_ctl_array)",
        "sizeof(struct kvm_isolate_ctl_vm)",
        "sizeof(struct kvm_isolate_ctl_domain)",
        "sizeof(struct kvm_isolate_ctl_rule)",
        "sizeof(struct kvm_isolate_ctl_record)",
        "sizeof(struct kvm_isolate_ctl_mode)",
        "sizeof(struct kvm_isolate_ctl_lock)",
        "sizeof(struct kvm_isolate_ctl_entry)",
        "sizeof(struct kvm_isolate_ctl_region)",
        "offsetof(struct kvm_isolate_ctl_region, gpa)",
        "offsetof(struct kvm_isolate_ctl_region, npages)",
        "offsetof(struct kvm_isolate_ctl_region, access)",
        "offsetof(struct kvm_isolate_ctl_domain, code_start)",
        "offsetof(struct kvm_isolate_ctl_domain, code_end)",
        "offsetof(struct kvm_isolate_ctl_array, dropped)",
        "offsetof(struct kvm_isolate_ctl_vm, violations)",
        "offsetof(struct kvm_isolate_ctl_vm, dropped)",
        "offsetof(struct kvm_isolate_ctl_vm, compressed)",
        "offsetof(struct kvm_isolate_ctl_vm, code_ranges)",
        "offsetof(struct kvm_isolate_ctl_vm, regions)",
        "offsetof(struct kvm_isolate_ctl_vm, entries)",
        "offsetof(struct kvm_isolate_ctl_vm, return_sites)",
        "offsetof(struct kvm_isolate_ctl_vm, max_code_ranges)",
        "offsetof(struct kvm_isolate_ctl_vm, max_regions)",
        "offsetof(struct kvm_isolate_ctl_vm, max_rules)",
        "offsetof(struct kvm_isolate_ctl_vm, max_entries)",
        "offsetof(struct kvm_isolate_ctl_vm, max_return_sites)",
        "offsetof(struct kvm_isolate_ctl_vm, pad)",
        "offsetof(struct kvm_isolate_ctl_domain, allowed)",
        "offsetof(struct kvm_isolate_ctl_domain, left)",
        "offsetof(struct kvm_isolate_ctl_domain, flags)",
        "offsetof(struct kvm_isolate_ctl_domain, name)",
        "offsetof(struct kvm_isolate_ctl_rule, region_gpa)",
        "offsetof(struct kvm_isolate_ctl_rule, accessor_end)",
        "offsetof(struct kvm_isolate_ctl_record, gpa)",
        "offsetof(struct kvm_isolate_ctl_record, vm)",
        "offsetof(struct kvm_isolate_ctl_record, verdict)",
        "offsetof(struct kvm_isolate_ctl_record, last_ns)",
        "offsetof(struct kvm_isolate_ctl_record, count)",
        "offsetof(struct kvm_isolate_ctl_mode, deny)",
        "offsetof(struct kvm_isolate_ctl_lock, lock)",
        "offsetof(struct kvm_isolate_ctl_entry, pad)",
        "offsetof(struct kvm_isolate_ctl_entry, gva)",
        "offsetof(struct kvm_isolate_ctl_entry, gpa)",
    ];
    for e in exprs {
        c += &format!("P({e})\n");
    }
    c += "return 0; }\n";
    std::fs::write(&src, c).unwrap();
    let exe = dir.join("ctl");
    let out = std::process::Command::new(cc)
        .args(["-I", inc, "-o"])
        .arg(&exe)
        .arg(&src)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = std::process::Command::new(&exe).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let got: HashMap<&str, u64> = text
        .lines()
        .filter_map(|l| l.rsplit_once(' '))
        .map(|(k, v)| (k, v.parse().unwrap()))
        .collect();
    use ctl::*;
    let want: [(&str, u64); 65] = [
        ("KVM_ISOLATE_CTL_VERSION", CTL_VERSION.into()),
        ("KVM_ISOLATE_CTL_LIST", CTL_LIST.into()),
        ("KVM_ISOLATE_CTL_DOMAINS", CTL_DOMAINS.into()),
        ("KVM_ISOLATE_CTL_SET_MODE", CTL_SET_MODE.into()),
        ("KVM_ISOLATE_CTL_LOCK", CTL_LOCK.into()),
        ("KVM_ISOLATE_CTL_PROFILE_GET", CTL_PROFILE_GET.into()),
        ("KVM_ISOLATE_CTL_PROFILE_SET", CTL_PROFILE_SET.into()),
        ("KVM_ISOLATE_CTL_LOG_READ", CTL_LOG_READ.into()),
        ("KVM_ISOLATE_CTL_ENTRIES_GET", CTL_ENTRIES_GET.into()),
        ("KVM_ISOLATE_CTL_ENTRIES_SET", CTL_ENTRIES_SET.into()),
        ("KVM_ISOLATE_CTL_REGIONS_GET", CTL_REGIONS_GET.into()),
        ("KVM_ISOLATE_CTL_CODE_NAMES_GET", CTL_CODE_NAMES_GET.into()),
        (
            "sizeof(struct kvm_isolate_ctl_code_name)",
            size_of::<CtlCodeName>() as u64,
        ),
        (
            "offsetof(struct kvm_isolate_ctl_code_name, size)",
            offset_of!(CtlCodeName, size) as u64,
        ),
        (
            "offsetof(struct kvm_isolate_ctl_code_name, since_ns)",
            offset_of!(CtlCodeName, since_ns) as u64,
        ),
        (
            "offsetof(struct kvm_isolate_ctl_code_name, name)",
            offset_of!(CtlCodeName, name) as u64,
        ),
        ("KVM_ISOLATE_GPA_FROM_CODE", GPA_FROM_CODE),
        ("KVM_ISOLATE_GVA_UNKNOWN", GVA_UNKNOWN),
        ("KVM_ISOLATE_CTL_VERSION_NR", CTL_VERSION_NR.into()),
        ("KVM_ISOLATE_RULE_TRUSTED", RULE_TRUSTED.into()),
        ("KVM_ISOLATE_DOMAIN_SWITCHABLE", DOMAIN_SWITCHABLE.into()),
        (
            "sizeof(struct kvm_isolate_ctl_array)",
            size_of::<CtlArray>() as u64,
        ),
        (
            "sizeof(struct kvm_isolate_ctl_vm)",
            size_of::<CtlVm>() as u64,
        ),
        (
            "sizeof(struct kvm_isolate_ctl_domain)",
            size_of::<CtlDomain>() as u64,
        ),
        (
            "sizeof(struct kvm_isolate_ctl_rule)",
            size_of::<CtlRule>() as u64,
        ),
        (
            "sizeof(struct kvm_isolate_ctl_record)",
            size_of::<CtlRecord>() as u64,
        ),
        (
            "sizeof(struct kvm_isolate_ctl_mode)",
            size_of::<CtlMode>() as u64,
        ),
        (
            "sizeof(struct kvm_isolate_ctl_lock)",
            size_of::<CtlLock>() as u64,
        ),
        (
            "sizeof(struct kvm_isolate_ctl_entry)",
            size_of::<CtlEntry>() as u64,
        ),
        (
            "sizeof(struct kvm_isolate_ctl_region)",
            size_of::<CtlRegion>() as u64,
        ),
        (
            "offsetof(struct kvm_isolate_ctl_region, gpa)",
            offset_of!(CtlRegion, gpa) as u64,
        ),
        (
            "offsetof(struct kvm_isolate_ctl_region, npages)",
            offset_of!(CtlRegion, npages) as u64,
        ),
        (
            "offsetof(struct kvm_isolate_ctl_region, access)",
            offset_of!(CtlRegion, access) as u64,
        ),
        (
            "offsetof(struct kvm_isolate_ctl_domain, code_start)",
            offset_of!(CtlDomain, code_start) as u64,
        ),
        (
            "offsetof(struct kvm_isolate_ctl_domain, code_end)",
            offset_of!(CtlDomain, code_end) as u64,
        ),
        (
            "offsetof(struct kvm_isolate_ctl_array, dropped)",
            offset_of!(CtlArray, dropped) as u64,
        ),
        (
            "offsetof(struct kvm_isolate_ctl_vm, violations)",
            offset_of!(CtlVm, violations) as u64,
        ),
        (
            "offsetof(struct kvm_isolate_ctl_vm, dropped)",
            offset_of!(CtlVm, dropped) as u64,
        ),
        (
            "offsetof(struct kvm_isolate_ctl_vm, compressed)",
            offset_of!(CtlVm, compressed) as u64,
        ),
        (
            "offsetof(struct kvm_isolate_ctl_vm, code_ranges)",
            offset_of!(CtlVm, code_ranges) as u64,
        ),
        (
            "offsetof(struct kvm_isolate_ctl_vm, regions)",
            offset_of!(CtlVm, regions) as u64,
        ),
        (
            "offsetof(struct kvm_isolate_ctl_vm, entries)",
            offset_of!(CtlVm, entries) as u64,
        ),
        (
            "offsetof(struct kvm_isolate_ctl_vm, return_sites)",
            offset_of!(CtlVm, return_sites) as u64,
        ),
        (
            "offsetof(struct kvm_isolate_ctl_vm, max_code_ranges)",
            offset_of!(CtlVm, max_code_ranges) as u64,
        ),
        (
            "offsetof(struct kvm_isolate_ctl_vm, max_regions)",
            offset_of!(CtlVm, max_regions) as u64,
        ),
        (
            "offsetof(struct kvm_isolate_ctl_vm, max_rules)",
            offset_of!(CtlVm, max_rules) as u64,
        ),
        (
            "offsetof(struct kvm_isolate_ctl_vm, max_entries)",
            offset_of!(CtlVm, max_entries) as u64,
        ),
        (
            "offsetof(struct kvm_isolate_ctl_vm, max_return_sites)",
            offset_of!(CtlVm, max_return_sites) as u64,
        ),
        (
            "offsetof(struct kvm_isolate_ctl_vm, pad)",
            offset_of!(CtlVm, pad) as u64,
        ),
        (
            "offsetof(struct kvm_isolate_ctl_domain, allowed)",
            offset_of!(CtlDomain, allowed) as u64,
        ),
        (
            "offsetof(struct kvm_isolate_ctl_domain, left)",
            offset_of!(CtlDomain, left) as u64,
        ),
        (
            "offsetof(struct kvm_isolate_ctl_domain, flags)",
            offset_of!(CtlDomain, flags) as u64,
        ),
        (
            "offsetof(struct kvm_isolate_ctl_domain, name)",
            offset_of!(CtlDomain, name) as u64,
        ),
        (
            "offsetof(struct kvm_isolate_ctl_rule, region_gpa)",
            offset_of!(CtlRule, region_gpa) as u64,
        ),
        (
            "offsetof(struct kvm_isolate_ctl_rule, accessor_end)",
            offset_of!(CtlRule, accessor_end) as u64,
        ),
        (
            "offsetof(struct kvm_isolate_ctl_record, gpa)",
            offset_of!(CtlRecord, gpa) as u64,
        ),
        (
            "offsetof(struct kvm_isolate_ctl_record, vm)",
            offset_of!(CtlRecord, vm) as u64,
        ),
        (
            "offsetof(struct kvm_isolate_ctl_record, verdict)",
            offset_of!(CtlRecord, verdict) as u64,
        ),
        (
            "offsetof(struct kvm_isolate_ctl_record, last_ns)",
            offset_of!(CtlRecord, last_ns) as u64,
        ),
        (
            "offsetof(struct kvm_isolate_ctl_record, count)",
            offset_of!(CtlRecord, count) as u64,
        ),
        (
            "offsetof(struct kvm_isolate_ctl_mode, deny)",
            offset_of!(CtlMode, deny) as u64,
        ),
        (
            "offsetof(struct kvm_isolate_ctl_lock, lock)",
            offset_of!(CtlLock, lock) as u64,
        ),
        (
            "offsetof(struct kvm_isolate_ctl_entry, pad)",
            offset_of!(CtlEntry, pad) as u64,
        ),
        (
            "offsetof(struct kvm_isolate_ctl_entry, gva)",
            offset_of!(CtlEntry, gva) as u64,
        ),
        (
            "offsetof(struct kvm_isolate_ctl_entry, gpa)",
            offset_of!(CtlEntry, gpa) as u64,
        ),
    ];
    for (k, v) in want {
        assert_eq!(got.get(k).copied(), Some(v), "{k}");
    }
    // Every expression printed is compared: none is left out of `want`.
    assert_eq!(got.len(), exprs.len(), "{text}");
    assert_eq!(want.len(), exprs.len());
    let _ = std::fs::remove_dir_all(&dir);
}
