// SPDX-License-Identifier: GPL-2.0

//! The subcommands, written against [`Ctl`] so that the tests can run them on a fake device.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Write};
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use kvm_isolate_core::ctl::{
    CtlEntry, CtlLock, CtlMode, CtlRule, CtlVm, DENY_EXIT, DENY_GP, DENY_KEEP, DENY_PF,
    MODE_ENFORCE, MODE_INHERIT, MODE_LEARN, MODE_OFF,
};
use serde::Serialize;

use crate::device::{Ctl, Device, OpenError};
use crate::output::{self, DomainJson, RecordJson, VmJson};
use crate::profile;

/// Default control device.
pub const DEFAULT_DEVICE: &str = "/dev/kvm-isolate";
/// Records asked for per LOG_READ.
pub const LOG_BATCH: u32 = 256;
/// `log --follow` polling interval.
pub const FOLLOW_INTERVAL: Duration = Duration::from_millis(200);

/// Control kvm-isolate: VMs, modes, locks, profiles and the violation log.
#[derive(Parser, Debug)]
#[command(name = "kvm-isolatectl", version, about)]
pub struct Cli {
    /// Machine-readable output (JSON).
    #[arg(long, global = true)]
    pub json: bool,
    /// The control device.
    #[arg(long, global = true, value_name = "PATH", env = "KVM_ISOLATE_DEVICE", default_value = DEFAULT_DEVICE)]
    pub device: String,
    #[command(subcommand)]
    pub cmd: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// One row per VM.
    List,
    /// A VM, what it holds of its capacities (the module parameters), and its domains.
    Show {
        /// VM id.
        vm: u32,
    },
    /// Set the mode of a VM or of one of its domains.
    Mode {
        /// VM id.
        vm: u32,
        /// off, learn, enforce; for a domain also inherit.
        mode: ModeArg,
        /// Set this domain's mode instead of the VM's.
        #[arg(long, value_name = "D", value_parser = clap::value_parser!(u32).range(1..=255))]
        domain: Option<u32>,
        /// What a denied access does (VM only; default: keep the current action).
        #[arg(long, conflicts_with = "domain")]
        deny: Option<DenyArg>,
    },
    /// Lock a VM's configuration (or unlock it).
    Lock {
        /// VM id.
        vm: u32,
        /// Unlock instead.
        #[arg(long)]
        unlock: bool,
    },
    /// Export or import a VM's profile.
    #[command(subcommand)]
    Profile(ProfileCmd),
    /// Read (and consume) a VM's violation log.
    Log {
        /// VM id.
        vm: u32,
        /// Keep polling until the VM goes away or SIGINT.
        #[arg(long, short)]
        follow: bool,
        /// Stop after N records.
        #[arg(long, value_name = "N")]
        max: Option<u64>,
    },
    /// Totals over all VMs, and one line per VM.
    Stats,
}

#[derive(Subcommand, Debug)]
pub enum ProfileCmd {
    /// Write a VM's profile (rules and entry points) as a JSON profile file.
    Export {
        /// VM id.
        vm: u32,
        /// Output file (default: stdout).
        #[arg(short, long, value_name = "FILE")]
        output: Option<String>,
    },
    /// Replace a VM's profile with the rules (and the entry points, if it has them) of a profile
    /// file (validated first; all or nothing).
    Import {
        /// VM id.
        vm: u32,
        /// Profile file.
        file: String,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModeArg {
    Off,
    Learn,
    Enforce,
    Inherit,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DenyArg {
    Exit,
    Gp,
    Pf,
}

/// A failed command: usage errors exit 2, the rest 1.
#[derive(Debug, PartialEq, Eq)]
pub enum Error {
    Usage(String),
    Runtime(String),
    /// Output went to a closed pipe: stop quietly.
    BrokenPipe,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(m) | Error::Runtime(m) => f.write_str(m),
            Error::BrokenPipe => f.write_str("broken pipe"),
        }
    }
}

impl From<io::Error> for Error {
    /// Errors writing the output.
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::BrokenPipe {
            Error::BrokenPipe
        } else {
            Error::Runtime(format!("writing output: {}", strerror(&e)))
        }
    }
}

/// The OS's text for an error, without Rust's " (os error N)".
pub fn strerror(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// What an ioctl was about, to name it in errors.
#[derive(Clone, Copy)]
enum Subject {
    Any,
    Vm(u32),
    Domain(u32, u32),
}

/// Maps an ioctl's errno to a message.  `guarded`: SET_MODE, LOCK, PROFILE_SET and ENTRIES_SET,
/// whose EPERM means the kernel refused (e.g. a locked VM), not missing privileges.
fn ioctl_error(ctl: &dyn Ctl, e: io::Error, subject: Subject, guarded: bool) -> Error {
    let msg = match (e.raw_os_error(), subject) {
        (Some(libc::ENOENT), Subject::Vm(vm)) => format!("no VM {}", vm),
        (Some(libc::ENOENT), Subject::Domain(vm, d)) => {
            // ENOENT does not say which is missing; ask.
            match ctl.list() {
                Ok(vms) if !vms.iter().any(|v| v.id == vm) => format!("no VM {}", vm),
                _ => format!("no domain {} in VM {}", d, vm),
            }
        }
        (Some(libc::EINVAL), _) => "invalid argument".to_string(),
        (Some(libc::EPERM), _) if guarded => "not allowed".to_string(),
        // Only SET_MODE returns it: `--deny pf` on a host whose CPU reports no linear address.
        (Some(libc::EOPNOTSUPP), _) if guarded => {
            "not supported on this host (--deny pf needs VMX: SVM reports no faulting address)"
                .to_string()
        }
        (Some(libc::EPERM | libc::EACCES), _) => "permission denied (run as root)".to_string(),
        _ => strerror(&e),
    };
    let prefix = match subject {
        Subject::Any => String::new(),
        Subject::Vm(vm) if !msg.starts_with("no VM") => format!("VM {}: ", vm),
        Subject::Domain(vm, d) if !msg.starts_with("no ") => format!("VM {} domain {}: ", vm, d),
        _ => String::new(),
    };
    Error::Runtime(format!("{}{}", prefix, msg))
}

/// Maps a failure to open the device to a message.
pub fn open_error(path: &str, e: OpenError) -> Error {
    Error::Runtime(match e {
        OpenError::Open(e) => match e.raw_os_error() {
            Some(libc::ENOENT) => format!(
                "{}: not found (is kvm_isolate loaded? modprobe kvm_isolate)",
                path
            ),
            Some(libc::EACCES | libc::EPERM) => format!("{}: permission denied (needs root)", path),
            _ => format!("{}: {}", path, strerror(&e)),
        },
        OpenError::Version(e) => format!(
            "{}: version query failed: {} (not a kvm-isolate device?)",
            path,
            strerror(&e)
        ),
        OpenError::Mismatch(v) => format!(
            "{}: control plane version {}, this tool speaks {}",
            path,
            v,
            kvm_isolate_core::ctl::CTL_VERSION_NR
        ),
    })
}

/// Opens the real device.
pub fn open_device(path: &str) -> Result<Box<dyn Ctl>, Error> {
    Device::open(path)
        .map(|d| Box::new(d) as Box<dyn Ctl>)
        .map_err(|e| open_error(path, e))
}

fn json_line<T: Serialize + ?Sized>(out: &mut dyn Write, v: &T) -> Result<(), Error> {
    let s = serde_json::to_string(v).map_err(|e| Error::Runtime(format!("JSON: {}", e)))?;
    writeln!(out, "{}", s)?;
    Ok(())
}

fn json_pretty<T: Serialize + ?Sized>(out: &mut dyn Write, v: &T) -> Result<(), Error> {
    let s = serde_json::to_string_pretty(v).map_err(|e| Error::Runtime(format!("JSON: {}", e)))?;
    writeln!(out, "{}", s)?;
    Ok(())
}

/// Checks `mode`'s arguments and builds the ioctl argument.  Runs before the device is opened.
pub fn mode_request(
    vm: u32,
    mode: ModeArg,
    domain: Option<u32>,
    deny: Option<DenyArg>,
) -> Result<CtlMode, Error> {
    if domain.is_some() && deny.is_some() {
        return Err(Error::Usage(
            "--deny sets the VM's action and cannot be used with --domain".into(),
        ));
    }
    if domain == Some(0) {
        return Err(Error::Usage(
            "--domain must be 1..15 (leave it out to set the VM's mode)".into(),
        ));
    }
    if mode == ModeArg::Inherit && domain.is_none() {
        return Err(Error::Usage(
            "mode inherit is only valid for a domain (--domain D)".into(),
        ));
    }
    Ok(CtlMode {
        vm,
        domain: domain.unwrap_or(0),
        mode: match mode {
            ModeArg::Off => MODE_OFF,
            ModeArg::Learn => MODE_LEARN,
            ModeArg::Enforce => MODE_ENFORCE,
            ModeArg::Inherit => MODE_INHERIT,
        },
        deny: match deny {
            None => DENY_KEEP,
            Some(DenyArg::Exit) => DENY_EXIT,
            Some(DenyArg::Gp) => DENY_GP,
            Some(DenyArg::Pf) => DENY_PF,
        },
    })
}

/// Opens the device at a path.
pub type Opener<'a> = dyn Fn(&str) -> Result<Box<dyn Ctl + 'a>, Error> + 'a;

/// Runs a parsed command line.  `open` opens the device; it is called only once the arguments
/// (and, for `profile import`, the file) have been checked.
pub fn run<'a>(
    cli: &Cli,
    open: &Opener<'a>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), Error> {
    let json = cli.json;
    match &cli.cmd {
        Command::List => list(&*open(&cli.device)?, json, out),
        Command::Show { vm } => show(&*open(&cli.device)?, *vm, json, out),
        Command::Stats => stats(&*open(&cli.device)?, json, out),
        Command::Mode {
            vm,
            mode,
            domain,
            deny,
        } => {
            let req = mode_request(*vm, *mode, *domain, *deny)?;
            let ctl = open(&cli.device)?;
            let subject = if req.domain == 0 {
                Subject::Vm(*vm)
            } else {
                Subject::Domain(*vm, req.domain)
            };
            ctl.set_mode(&req)
                .map_err(|e| ioctl_error(&*ctl, e, subject, true))?;
            if !json {
                let what = if req.domain == 0 {
                    format!("VM {}", vm)
                } else {
                    format!("VM {} domain {}", vm, req.domain)
                };
                let deny = if req.deny == DENY_KEEP {
                    String::new()
                } else {
                    format!(", deny {}", output::deny_str(req.deny))
                };
                writeln!(out, "{}: mode {}{}", what, output::mode_str(req.mode), deny)?;
            }
            Ok(())
        }
        Command::Lock { vm, unlock } => {
            let ctl = open(&cli.device)?;
            let req = CtlLock {
                vm: *vm,
                lock: u32::from(!unlock),
            };
            ctl.lock(&req)
                .map_err(|e| ioctl_error(&*ctl, e, Subject::Vm(*vm), true))?;
            if !json {
                writeln!(
                    out,
                    "VM {}: {}",
                    vm,
                    if *unlock { "unlocked" } else { "locked" }
                )?;
            }
            Ok(())
        }
        Command::Profile(ProfileCmd::Export { vm, output }) => {
            let text = profile_export(&*open(&cli.device)?, *vm)?;
            match output {
                None => out.write_all(text.as_bytes())?,
                Some(path) => std::fs::write(path, text)
                    .map_err(|e| Error::Runtime(format!("{}: {}", path, strerror(&e))))?,
            }
            Ok(())
        }
        Command::Profile(ProfileCmd::Import { vm, file }) => {
            let text = std::fs::read_to_string(file)
                .map_err(|e| Error::Runtime(format!("{}: {}", file, strerror(&e))))?;
            let p =
                profile::parse(&text).map_err(|e| Error::Runtime(format!("{}: {}", file, e)))?;
            let ctl = open(&cli.device)?;
            profile_import(&*ctl, *vm, &p)?;
            if !json {
                // Trust is what the administrator adds by hand: say how much of it went in.
                let trusted = p.rules.iter().filter(|r| profile::is_trusted(r)).count();
                let trusted = match trusted {
                    0 => String::new(),
                    n => format!(
                        " ({} trusted on {} own)",
                        n,
                        if n == 1 { "its" } else { "their" }
                    ),
                };
                // Only a file with entry points replaced the VM's.
                let entries = match &p.entries {
                    None => String::new(),
                    Some(e) => format!(
                        ", {} entry point{}",
                        e.len(),
                        if e.len() == 1 { "" } else { "s" }
                    ),
                };
                let named = match named_count(&p) {
                    0 => String::new(),
                    n => format!(" ({} named by module, found where they are now)", n),
                };
                writeln!(
                    out,
                    "VM {}: profile replaced, {} rules{}{}{}",
                    vm,
                    p.rules.len(),
                    trusted,
                    entries,
                    named
                )?;
            }
            Ok(())
        }
        Command::Log { vm, follow, max } => {
            let ctl = open(&cli.device)?;
            log(&*ctl, *vm, *follow, *max, json, out, err)
        }
    }
}

fn list_vms(ctl: &dyn Ctl) -> Result<Vec<CtlVm>, Error> {
    let mut vms = ctl
        .list()
        .map_err(|e| ioctl_error(ctl, e, Subject::Any, false))?;
    vms.sort_by_key(|v| v.id);
    Ok(vms)
}

/// `list`.
pub fn list(ctl: &dyn Ctl, json: bool, out: &mut dyn Write) -> Result<(), Error> {
    let vms = list_vms(ctl)?;
    if json {
        let v: Vec<VmJson> = vms.iter().map(VmJson::from).collect();
        return json_pretty(out, &v);
    }
    let rows: Vec<Vec<String>> = vms.iter().map(output::vm_row).collect();
    out.write_all(output::table(&output::VM_HEADERS, &rows).as_bytes())?;
    Ok(())
}

#[derive(Serialize)]
struct ShowJson {
    vm: VmJson,
    domains: Vec<DomainJson>,
    /// The code its guest names now (`CODE_NAMES_GET`, live names only), by start.
    code: Vec<output::CodeNameJson>,
}

/// `show VM`.
pub fn show(ctl: &dyn Ctl, vm: u32, json: bool, out: &mut dyn Write) -> Result<(), Error> {
    let vms = list_vms(ctl)?;
    let v = vms
        .iter()
        .find(|v| v.id == vm)
        .ok_or_else(|| Error::Runtime(format!("no VM {}", vm)))?;
    let mut domains = ctl
        .domains(vm)
        .map_err(|e| ioctl_error(ctl, e, Subject::Vm(vm), false))?;
    domains.sort_by_key(|d| d.id);
    let code: Vec<_> = ctl
        .code_names_get(vm)
        .map_err(|e| ioctl_error(ctl, e, Subject::Vm(vm), false))?
        .into_iter()
        .filter(|x| x.until_ns == u64::MAX)
        .collect();
    if json {
        return json_pretty(
            out,
            &ShowJson {
                vm: VmJson::from(v),
                domains: domains.iter().map(|d| DomainJson::new(d, v.mode)).collect(),
                code: code.iter().map(output::CodeNameJson::from).collect(),
            },
        );
    }
    out.write_all(output::table(&output::VM_HEADERS, &[output::vm_row(v)]).as_bytes())?;
    writeln!(out)?;
    out.write_all(output::table(&output::USAGE_HEADERS, &[output::usage_row(v)]).as_bytes())?;
    writeln!(out)?;
    let rows: Vec<Vec<String>> = domains
        .iter()
        .map(|d| output::domain_row(d, v.mode))
        .collect();
    out.write_all(output::table(&output::DOMAIN_HEADERS, &rows).as_bytes())?;
    if !code.is_empty() {
        writeln!(out)?;
        let rows: Vec<Vec<String>> = code.iter().map(output::code_name_row).collect();
        out.write_all(output::table(&output::CODE_NAME_HEADERS, &rows).as_bytes())?;
    }
    Ok(())
}

/// Totals of `stats`.
#[derive(Serialize, Default, Debug, PartialEq, Eq)]
pub struct Totals {
    pub vms: u64,
    pub violations: u64,
    pub allowed: u64,
    pub denied: u64,
    pub learned: u64,
    pub logged: u64,
    pub dropped: u64,
    pub compressed: u64,
}

impl Totals {
    pub fn of(vms: &[CtlVm]) -> Self {
        let mut t = Totals {
            vms: vms.len() as u64,
            ..Default::default()
        };
        for v in vms {
            t.violations = t.violations.saturating_add(v.violations);
            t.allowed = t.allowed.saturating_add(v.allowed);
            t.denied = t.denied.saturating_add(v.denied);
            t.learned = t.learned.saturating_add(v.learned);
            t.logged = t.logged.saturating_add(v.logged);
            t.dropped = t.dropped.saturating_add(v.dropped);
            t.compressed = t.compressed.saturating_add(v.compressed);
        }
        t
    }
}

#[derive(Serialize)]
struct StatsJson {
    totals: Totals,
    vms: Vec<VmJson>,
}

const STATS_HEADERS: [&str; 8] = [
    "VMS",
    "VIOLATIONS",
    "ALLOWED",
    "DENIED",
    "LEARNED",
    "LOGGED",
    "DROPPED",
    "COMPRESSED",
];
const STATS_VM_HEADERS: [&str; 10] = [
    "ID",
    "MODE",
    "RULES",
    "VIOLATIONS",
    "ALLOWED",
    "DENIED",
    "LEARNED",
    "LOGGED",
    "DROPPED",
    "COMPRESSED",
];

/// `stats`.
pub fn stats(ctl: &dyn Ctl, json: bool, out: &mut dyn Write) -> Result<(), Error> {
    let vms = list_vms(ctl)?;
    let t = Totals::of(&vms);
    if json {
        return json_pretty(
            out,
            &StatsJson {
                totals: t,
                vms: vms.iter().map(VmJson::from).collect(),
            },
        );
    }
    let total_row = vec![
        t.vms.to_string(),
        t.violations.to_string(),
        t.allowed.to_string(),
        t.denied.to_string(),
        t.learned.to_string(),
        t.logged.to_string(),
        t.dropped.to_string(),
        t.compressed.to_string(),
    ];
    out.write_all(output::table(&STATS_HEADERS, &[total_row]).as_bytes())?;
    if !vms.is_empty() {
        writeln!(out)?;
        let rows: Vec<Vec<String>> = vms
            .iter()
            .map(|v| {
                vec![
                    v.id.to_string(),
                    output::mode_str(v.mode),
                    v.rules.to_string(),
                    v.violations.to_string(),
                    v.allowed.to_string(),
                    v.denied.to_string(),
                    v.learned.to_string(),
                    v.logged.to_string(),
                    v.dropped.to_string(),
                    v.compressed.to_string(),
                ]
            })
            .collect();
        out.write_all(output::table(&STATS_VM_HEADERS, &rows).as_bytes())?;
    }
    Ok(())
}

/// `profile export VM`: the file's text, with the rules and the entry points.
pub fn profile_export(ctl: &dyn Ctl, vm: u32) -> Result<String, Error> {
    let rules = ctl
        .profile_get(vm)
        .map_err(|e| ioctl_error(ctl, e, Subject::Vm(vm), false))?;
    let entries = ctl
        .entries_get(vm)
        .map_err(|e| ioctl_error(ctl, e, Subject::Vm(vm), false))?;
    let layout = layout(ctl, vm)?;
    profile::export(&rules, &entries, &layout).map_err(|e| Error::Runtime(format!("JSON: {}", e)))
}

/// What VM `vm`'s profile names by (module, offset) are looked up in: its domains, regions
/// and the code its guest names now.
fn layout(ctl: &dyn Ctl, vm: u32) -> Result<profile::Layout, Error> {
    let err = |e| ioctl_error(ctl, e, Subject::Vm(vm), false);
    let domains = ctl.domains(vm).map_err(err)?;
    let regions = ctl.regions_get(vm).map_err(err)?;
    let mut code_names = ctl.code_names_get(vm).map_err(err)?;
    code_names.retain(|x| x.until_ns == u64::MAX);
    Ok(profile::Layout {
        domains,
        regions,
        code_names,
    })
}

/// How many of `p`'s rules and entry points name something by module.
pub fn named_count(p: &profile::Profile) -> usize {
    let rules = p.rule_names.iter();
    let rules = rules.filter(|n| n.region.is_some() || n.accessor.is_some());
    rules.count() + p.entry_names.iter().filter(|n| n.is_some()).count()
}

/// Whether VM `vm` exists (if the list cannot be read, assume it does).
fn vm_exists(ctl: &dyn Ctl, vm: u32) -> bool {
    ctl.list()
        .map_or(true, |vms| vms.iter().any(|v| v.id == vm))
}

/// PROFILE_SET: replace the rules of `vm`.
pub fn profile_set(ctl: &dyn Ctl, vm: u32, rules: &[CtlRule]) -> Result<(), Error> {
    let e = match ctl.profile_set(vm, rules) {
        Ok(()) => return Ok(()),
        Err(e) => e,
    };
    // ENOENT is also a rule naming a region the VM does not have: that one, if the VM exists.
    if e.raw_os_error() == Some(libc::ENOENT) && vm_exists(ctl, vm) {
        return Err(Error::Runtime(format!(
            "VM {}: rules name regions the VM does not have (a profile made for another layout?)",
            vm
        )));
    }
    if e.raw_os_error() == Some(libc::E2BIG) {
        return Err(Error::Runtime(format!(
            "VM {}: more rules than the VM holds (the module parameter max_rules)",
            vm
        )));
    }
    Err(ioctl_error(ctl, e, Subject::Vm(vm), true))
}

/// ENTRIES_SET: replace the entry points of `vm`. The file was checked: what the kernel refuses
/// is what only it knows, the VM's domains and code.
fn entries_set(ctl: &dyn Ctl, vm: u32, entries: &[CtlEntry]) -> Result<(), Error> {
    let e = match ctl.entries_set(vm, entries) {
        Ok(()) => return Ok(()),
        Err(e) => e,
    };
    let why = match e.raw_os_error() {
        Some(libc::EINVAL) => {
            let missing = ctl.domains(vm).ok().and_then(|ds| {
                entries
                    .iter()
                    .map(|x| x.domain)
                    .find(|&d| !ds.iter().any(|x| x.id == d))
            });
            match missing {
                Some(d) => format!("entry points of domain {}, which the VM does not have", d),
                None => "entry points of a domain the VM does not have".to_string(),
            }
        }
        Some(libc::ENOENT) if vm_exists(ctl, vm) => {
            "entry points that are not in their domain's code at those addresses (a profile made \
             for another layout?)"
                .to_string()
        }
        Some(libc::EEXIST) => "an entry point twice".to_string(),
        Some(libc::E2BIG) => {
            "more entry points than the VM holds (the module parameter max_entry_points)"
                .to_string()
        }
        _ => return Err(ioctl_error(ctl, e, Subject::Vm(vm), true)),
    };
    Err(Error::Runtime(format!("VM {}: {}", vm, why)))
}

/// Whether `p` fits in VM `vm`: its rules and entry points at most the VM's capacities, which
/// are the module parameters `max_rules` and `max_entry_points` when the VM was created (the
/// kernel refuses more with `E2BIG`; this says which and changes nothing).
fn check_fits(ctl: &dyn Ctl, vm: u32, p: &profile::Profile) -> Result<(), Error> {
    let vms = list_vms(ctl)?;
    let v = vms
        .iter()
        .find(|v| v.id == vm)
        .ok_or_else(|| Error::Runtime(format!("no VM {}", vm)))?;
    let over = |n: usize, what: &str, cap: u32, param: &str| {
        Error::Runtime(format!(
            "VM {}: the profile has {} {}, the VM holds at most {} (the module parameter {} when \
             the VM was created); nothing changed",
            vm, n, what, cap, param
        ))
    };
    if p.rules.len() > v.max_rules as usize {
        return Err(over(p.rules.len(), "rules", v.max_rules, "max_rules"));
    }
    match &p.entries {
        Some(e) if e.len() > v.max_entries as usize => Err(over(
            e.len(),
            "entry points",
            v.max_entries,
            "max_entry_points",
        )),
        _ => Ok(()),
    }
}

/// `profile import VM` once the file is parsed: all or nothing, as far as the user can tell.
///
/// The file must fit in the VM ([`check_fits`]). A file with entry points replaces them before
/// the rules, each kernel call checking all it gets before changing anything: the VM's entry
/// points are read, the file's set, then the rules; if the rules are refused, the old entry
/// points are put back. A file without entry points (from before they were exported) leaves the
/// VM's as they are.
pub fn profile_import(ctl: &dyn Ctl, vm: u32, p: &profile::Profile) -> Result<(), Error> {
    check_fits(ctl, vm, p)?;
    // What the file names by module is where the module is now, in this VM.
    let resolved;
    let p = if named_count(p) > 0 {
        let layout = layout(ctl, vm)?;
        resolved = profile::resolve(p, &layout)
            .map_err(|e| Error::Runtime(format!("VM {}: {}; nothing changed", vm, e)))?;
        &resolved
    } else {
        p
    };
    let Some(entries) = &p.entries else {
        return profile_set(ctl, vm, &p.rules);
    };
    let old = ctl
        .entries_get(vm)
        .map_err(|e| ioctl_error(ctl, e, Subject::Vm(vm), false))?;
    entries_set(ctl, vm, entries)?;
    let refused = match profile_set(ctl, vm, &p.rules) {
        Ok(()) => return Ok(()),
        Err(Error::Runtime(m)) => m,
        Err(e) => return Err(e),
    };
    Err(Error::Runtime(match ctl.entries_set(vm, &old) {
        Ok(()) => format!(
            "{} (nothing changed: the old entry points are back)",
            refused
        ),
        Err(e) => format!(
            "{}; putting the old entry points back failed too ({}): the VM has the file's entry \
             points and its old rules",
            refused,
            strerror(&e)
        ),
    }))
}

/// `log VM`: drains the log in batches; with `follow`, polls until the VM goes away.
pub fn log(
    ctl: &dyn Ctl,
    vm: u32,
    follow: bool,
    max: Option<u64>,
    json: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), Error> {
    let mut seen: u64 = 0;
    let mut dropped: u64 = 0;
    let mut first = true;
    // Domains' names, read again when a record names a domain not seen yet (the guest may
    // register more while `--follow` runs); none if the VM is gone.
    let mut names: HashMap<u32, String> = HashMap::new();
    let mut name_of = |d: u32| -> String {
        if d != 0 && !names.contains_key(&d) {
            if let Ok(ds) = ctl.domains(vm) {
                names = ds.iter().map(|x| (x.id, output::domain_name(x))).collect();
            }
        }
        names.get(&d).cloned().unwrap_or_default()
    };
    if !json {
        let headers: Vec<String> = output::RECORD_HEADERS
            .iter()
            .map(|h| h.to_string())
            .collect();
        out.write_all(output::fixed_line(&headers).as_bytes())?;
    }
    loop {
        let want = match max {
            Some(m) => m.saturating_sub(seen).min(u64::from(LOG_BATCH)) as u32,
            None => LOG_BATCH,
        };
        if want == 0 {
            break;
        }
        let (records, d) = match ctl.log_read(vm, want) {
            Ok(r) => r,
            Err(e) if follow && !first && e.raw_os_error() == Some(libc::ENOENT) => {
                writeln!(err, "kvm-isolatectl: VM {} is gone", vm)?;
                break;
            }
            Err(e) => return Err(ioctl_error(ctl, e, Subject::Vm(vm), false)),
        };
        first = false;
        dropped = d;
        // The code the guest named, read again for each batch (the guest names modules as it
        // loads them); none if the VM is gone.
        let code = if records.is_empty() {
            Vec::new()
        } else {
            ctl.code_names_get(vm).unwrap_or_default()
        };
        for r in &records {
            let name = name_of(r.domain);
            let at = output::code_at(&code, r.rip, r.time_ns);
            if json {
                json_line(out, &RecordJson::new(r, &name, &at))?;
            } else {
                out.write_all(output::fixed_line(&output::record_row(r, &name, &at)).as_bytes())?;
            }
        }
        seen += records.len() as u64;
        if records.is_empty() {
            if !follow {
                break;
            }
            out.flush()?;
            std::thread::sleep(FOLLOW_INTERVAL);
        }
    }
    if json {
        json_line(out, &serde_json::json!({ "dropped": dropped }))?;
    } else {
        writeln!(out, "dropped: {}", dropped)?;
    }
    out.flush()?;
    Ok(())
}
