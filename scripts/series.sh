#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# make series: export kvm-isolate as one upstream-style patch series (git format-patch output)
# against the pinned kernel: the KVM patches of patches/series, with the hypercall ABI header
# (include/uapi/linux/kvm_isolate.h) added before the first patch that uses it, then patches that
# add this repository's sources where prepare-tree.sh places them (inert until wired in), then the
# rest of patches/series (Rust wiring, Kconfig/Kbuild, selftests build).
#   series.sh OUT_DIR
set -euo pipefail
. "$(dirname "$0")/config.sh"

out=$(realpath -m "$1")
rm -rf "$out"; mkdir -p "$out"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
g() { git -C "$tmp" -c user.name="kvm-isolate developers" -c user.email="kvm-isolate@localhost" \
	-c commit.gpgsign=false "$@"; }
g init -q
g commit -q --allow-empty -m base
add() { # subject body dest-in-tree source-in-repo...
	local subject=$1 body=$2 dest=$3; shift 3
	mkdir -p "$tmp/$dest"
	for src in "$@"; do
		rsync -a --exclude target --exclude Cargo.lock "$KI_TOP/$src" "$tmp/$dest/"
	done
	g add -A
	g commit -q -m "$subject" -m "$body" -m "Signed-off-by: kvm-isolate developers <kvm-isolate@localhost>"
}
add "KVM: x86: Add the kvm-isolate hypercall ABI header" \
	"The one definition of kvm-isolate's hypercall ABI v1: the reserved
hypercall range, function numbers, limits, access bits, exit flags and
error codes, for guests, selftests and KVM itself.  The host module's Rust
mirror is checked against it by a test." \
	include/uapi/linux include/uapi/linux/kvm_isolate.h
add "rust: kvm_isolate: add x86 host facts and KVM abstractions" \
	"Safe wrappers over CPUID, the VMX capability MSRs and KVM's kvm_isolate
interface (views, rights, the policy registration), for the kvm_isolate
module." \
	rust/kernel rust/kernel/kvm_isolate.rs rust/kernel/kvm_isolate
mkdir -p "$tmp/rust/helpers"; cp "$KI_TOP/rust/helpers/kvm_isolate.c" "$tmp/rust/helpers/"
g add -A; g commit -q --amend --no-edit
add "KVM: x86: kvm_isolate: add the host module" \
	"The policy module for guest memory views: it probes and reports the
host's memory-view paths, serves hypercall ABI v1 (views, rights,
switching, domains), runs the policy engine that learns, enforces and
logs each domain's accesses, and offers /dev/kvm-isolate to the host's
administrator." \
	arch/x86/kvm/isolate "kvm-isolate/"
add "virt: kvm_isolate_guest: add the guest module" \
	"The guest side of kvm-isolate; this version checks that it runs under KVM." \
	drivers/virt/kvm_isolate_guest "guest-side/"
add "KVM: selftests: add the kvm_isolate tests" \
	"Capability report, module life cycle and memory-view tests, in the
kselftest harness." \
	tools/testing/selftests/kvm/x86/kvm_isolate "selftests/"
series=($(grep -v -e '^#' -e '^[[:space:]]*$' "$KI_TOP/patches/series"))
# The ABI header goes before the first patch that includes it.
first_user=$(grep -l '^+#include <uapi/linux/kvm_isolate.h>' "${series[@]/#/$KI_TOP/patches/}" | head -n 1)
n=0
emit() { n=$((n + 1)); cp "$KI_TOP/patches/$1" "$out/$(printf %04d $n)-${1#????-}"; }
for p in "${series[@]}"; do
	[ "$KI_TOP/patches/$p" = "$first_user" ] && break
	emit "$p"
done
n=$((n + 1)); g format-patch -q --zero-commit --start-number $n -o "$out" -1 HEAD~4
rest=0
for p in "${series[@]}"; do
	case $p in rust:*|*-rust-*) break ;; esac
	[ $rest = 1 ] || { [ "$KI_TOP/patches/$p" = "$first_user" ] && rest=1; }
	[ $rest = 1 ] && emit "$p"
done
g format-patch -q --zero-commit --start-number $((n + 1)) -o "$out" HEAD~4..HEAD~0
n=$((n + 4))
for p in "${series[@]}"; do
	case $p in *-rust-*) rest=2 ;; esac
	[ $rest = 2 ] && emit "$p"
done
ls "$out" | sed 's/^/    /'
ki_info "series: $n patches in $out (apply with git am onto $KI_KPKG $KI_KPKG_VERSION)"
