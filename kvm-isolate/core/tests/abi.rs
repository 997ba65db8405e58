// SPDX-License-Identifier: GPL-2.0

//! The hypercall ABI: the Rust mirror against the C uapi header, and the decoder's validation.

use kvm_isolate_core::abi::{self, Call, Error, OnViolation, Views};
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
        ("KVM_ISOLATE_QUERY_VIEW", abi::QUERY_VIEW),
        ("KVM_ISOLATE_QUERY_ACCESS", abi::QUERY_ACCESS),
        ("KVM_ISOLATE_QUERY_VIEWS", abi::QUERY_VIEWS),
        ("KVM_ISOLATE_QUERY_MAX_VIEWS", abi::QUERY_MAX_VIEWS),
        ("KVM_ISOLATE_ON_VIOLATION_EXIT", abi::ON_VIOLATION_EXIT),
        ("KVM_ISOLATE_ON_VIOLATION_GP", abi::ON_VIOLATION_GP),
        ("KVM_ISOLATE_ON_VIOLATION_UD", abi::ON_VIOLATION_UD),
        ("KVM_ISOLATE_ON_VIOLATION_GRANT", abi::ON_VIOLATION_GRANT),
        ("KVM_ISOLATE_ON_VIOLATION_SWITCH", abi::ON_VIOLATION_SWITCH),
        ("KVM_ISOLATE_MAX_VIEWS", abi::MAX_VIEWS),
        ("KVM_ISOLATE_MAX_PAGES", abi::MAX_PAGES),
        ("KVM_ISOLATE_ACCESS_RWX", abi::ACCESS_RWX),
        ("KVM_ISOLATE_EXIT_FLAG_VIEW", abi::EXIT_FLAG_VIEW),
        ("KVM_ISOLATE_EXIT_FLAG_WRITE", abi::EXIT_FLAG_WRITE),
        ("KVM_ISOLATE_EXIT_FLAG_EXEC", abi::EXIT_FLAG_EXEC),
        ("KVM_ISOLATE_EPERM", Error::Perm as u64),
        ("KVM_ISOLATE_ENOENT", Error::NoEnt as u64),
        ("KVM_ISOLATE_ENOMEM", Error::NoMem as u64),
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
    // Every function number and error code in the header is mirrored.
    let mirrored: Vec<&str> = want.iter().map(|(n, _)| *n).collect();
    for name in h.keys() {
        if name.starts_with("KVM_HC_ISOLATE_") || name.starts_with("KVM_ISOLATE_E") {
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
    assert_eq!(abi::decode(abi::HC_FIRST + 8, [0; 4]), Err(Error::NoSys));
    assert_eq!(abi::decode(abi::HC_LAST, [0; 4]), Err(Error::NoSys));
}

#[test]
fn destroy_and_switch_check_the_view() {
    assert_eq!(
        abi::decode(abi::HC_VIEW_DESTROY, [0, 0, 0, 0]),
        Err(Error::Perm)
    );
    assert_eq!(
        abi::decode(abi::HC_VIEW_DESTROY, [16, 0, 0, 0]),
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
        abi::decode(abi::HC_SWITCH, [16, 0, 0, 0]),
        Err(Error::Inval)
    );
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
        ok([1, 0x1000, 1, 8]),
        Err(Error::Inval),
        "unknown access bit"
    );
    assert_eq!(
        ok([16, 0x1000, 1, 1]),
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
    assert_eq!(q([1, 16, 0, 0]), Err(Error::Inval));
    assert_eq!(q([1, 0, abi::GPA_LIMIT, 0]), Err(Error::Range));
    assert_eq!(q([2, 0, 0, 0]), Ok(Call::QueryViews));
    assert_eq!(q([3, 0, 0, 0]), Ok(Call::QueryMaxViews));
    assert_eq!(q([4, 0, 0, 0]), Err(Error::Inval));
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
    assert_eq!(d([4, 16, 0, 0]), Err(Error::Inval));
    assert_eq!(d([1, 5, 0, 0]), Err(Error::Inval));
    assert_eq!(d([5, 0, 0, 0]), Err(Error::Inval));
}

#[test]
fn views_lifecycle() {
    let mut v = Views::default();
    assert!(v.exists(0));
    assert_eq!(v.bits(), 1);
    for want in 1..16u8 {
        let got = v.free().unwrap();
        assert_eq!(got, want);
        v.insert(got);
    }
    assert_eq!(v.free(), Err(Error::NoSpc));
    assert_eq!(v.check_destroy(0, false), Err(Error::Perm));
    assert_eq!(v.check_destroy(4, true), Err(Error::Busy));
    assert_eq!(v.check_destroy(4, false), Ok(()));
    v.remove(4);
    assert!(!v.exists(4));
    assert_eq!(v.check_destroy(4, false), Err(Error::NoEnt));
    assert_eq!(v.free(), Ok(4));
    v.remove(0);
    assert!(v.exists(0), "view 0 cannot go");
    assert!(!v.exists(16));
}
