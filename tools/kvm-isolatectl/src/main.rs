// SPDX-License-Identifier: GPL-2.0

//! `kvm-isolatectl`: the host control tool of kvm-isolate.
//!
//! It talks to the `kvm_isolate` module through the ioctls of `/dev/kvm-isolate` (root only;
//! `include/uapi/linux/kvm_isolate.h`, mirrored in `kvm_isolate_core::ctl`):
//!
//! ```text
//! kvm-isolatectl list                                  one row per VM
//! kvm-isolatectl show VM                               a VM, its usage and capacities, its domains
//! kvm-isolatectl mode VM off|learn|enforce [--deny exit|gp|pf]
//! kvm-isolatectl mode VM off|learn|enforce|inherit --domain D
//! kvm-isolatectl lock VM [--unlock]
//! kvm-isolatectl profile export VM [-o FILE]          JSON profile file (rules, entry points)
//! kvm-isolatectl profile import VM FILE               validated, then replaces the profile
//! kvm-isolatectl log VM [--follow] [--max N]          reads (and consumes) the violation log
//! kvm-isolatectl stats                                 totals over all VMs
//! ```
//!
//! Global flags: `--json` (machine output) and `--device PATH` (or `KVM_ISOLATE_DEVICE`).
//! Exit status: 0 on success, 1 on a runtime error, 2 on a usage error.
//!
//! The device is reached only through the [`device::Ctl`] trait; [`device::Device`] is the ioctl
//! implementation (the only `unsafe` code) and the tests use a fake.

mod cmd;
mod device;
mod output;
mod profile;

#[cfg(test)]
mod tests;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cmd::Cli::parse();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut err = std::io::stderr();
    let result = cmd::run(&cli, &cmd::open_device, &mut out, &mut err);
    let flushed = out.flush();
    match result.and(flushed.map_err(cmd::Error::from)) {
        Ok(()) | Err(cmd::Error::BrokenPipe) => ExitCode::SUCCESS,
        Err(e @ cmd::Error::Usage(_)) => {
            let _ = writeln!(err, "kvm-isolatectl: {}", e);
            ExitCode::from(2)
        }
        Err(e) => {
            let _ = writeln!(err, "kvm-isolatectl: {}", e);
            ExitCode::from(1)
        }
    }
}
