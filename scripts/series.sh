#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# make series: export kvm-isolate as one upstream-style patch series (git format-patch output)
# against the pinned kernel: the first patch of patches/series (the KVM interface and the
# MAINTAINERS entry), then patches that add this repository's sources where prepare-tree.sh places
# them (inert until wired in), then the rest of patches/series.
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
add "rust: kvm_isolate: add x86 host facts and KVM abstractions" \
	"Safe wrappers over CPUID, the VMX capability MSRs and KVM's kvm_isolate
interface, for the kvm_isolate module." \
	rust/kernel rust/kernel/kvm_isolate.rs rust/kernel/kvm_isolate
mkdir -p "$tmp/rust/helpers"; cp "$KI_TOP/rust/helpers/kvm_isolate.c" "$tmp/rust/helpers/"
g add -A; g commit -q --amend --no-edit
add "KVM: x86: kvm_isolate: add the host module" \
	"The policy module for guest memory views; this version probes and
reports the host's memory-view paths." \
	arch/x86/kvm/isolate "kvm-isolate/"
add "virt: kvm_isolate_guest: add the guest module" \
	"The guest side of kvm-isolate; this version checks that it runs under KVM." \
	drivers/virt/kvm_isolate_guest "guest-side/"
add "KVM: selftests: add the kvm_isolate tests" \
	"Capability report and module life cycle tests, in the kselftest harness." \
	tools/testing/selftests/kvm/x86/kvm_isolate "selftests/"
g format-patch -q --start-number 2 -o "$out" HEAD~4
n=0
for p in $(grep -v -e '^#' -e '^[[:space:]]*$' "$KI_TOP/patches/series"); do
	n=$((n + 1))
	[ $n = 2 ] && n=6
	cp "$KI_TOP/patches/$p" "$out/$(printf %04d $n)-${p#????-}"
done
ls "$out" | sed 's/^/    /'
ki_info "series: $n patches in $out (apply with git am onto $KI_KPKG $KI_KPKG_VERSION)"
