#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Tests of the build scripts' error paths, on fake kernel packages (fast, no network): a local
# .deb that is corrupt, of the wrong package or another version; a patch series that applies,
# is recognised as applied, or does not apply. TAP output.
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/scripts/config.sh"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
n=0 failed=0
ok() { n=$((n + 1)); echo "ok $n $1"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n $1"; sed 's/^/# /' "$tmp/out"; }
# expect DESC STATUS(0|fail) GREP-PATTERN command...: exit status and output must match.
expect() {
	local desc=$1 want=$2 pat=$3; shift 3
	"$@" >"$tmp/out" 2>&1; local rc=$?
	if { [ "$want" = 0 ] && [ $rc = 0 ]; } || { [ "$want" = fail ] && [ $rc != 0 ]; }; then
		grep -q -E "$pat" "$tmp/out" && { ok "$desc"; return; }
	fi
	not_ok "$desc (exit $rc)"
}
# fake_deb NAME PACKAGE VERSION: a linux-source-like package holding a two-file "kernel".
fake_deb() {
	local d=$tmp/pkg-$1
	mkdir -p "$d/DEBIAN" "$d/usr/src" "$tmp/src/$KI_KPKG/arch/x86/kvm"
	echo "int kvm;" >"$tmp/src/$KI_KPKG/arch/x86/kvm/x86.c"
	echo "# Makefile" >"$tmp/src/$KI_KPKG/Makefile"
	tar -cJf "$d/usr/src/$KI_KPKG.tar.xz" -C "$tmp/src" "$KI_KPKG"
	printf 'Package: %s\nVersion: %s\nArchitecture: all\nMaintainer: test <t@t>\nDescription: fake\n' \
		"$2" "$3" >"$d/DEBIAN/control"
	dpkg-deb -b -Zgzip "$d" "$tmp/$1.deb" >/dev/null
}
# A copy of the repository with PATCHES as its series, so the real scripts run on it.
repo_with() {
	rm -rf "$tmp/repo"; mkdir -p "$tmp/repo"
	cp -a "$top/scripts" "$top/rust" "$top/kvm-isolate" "$top/guest-side" "$top/selftests" \
		"$top/include" "$tmp/repo/"
	mkdir -p "$tmp/repo/patches"
	for p in "$@"; do cp "$tmp/$p" "$tmp/repo/patches/"; echo "$p" >>"$tmp/repo/patches/series"; done
}
mkpatch() { # NAME OLD NEW: a patch of arch/x86/kvm/x86.c
	printf -- '--- a/arch/x86/kvm/x86.c\n+++ b/arch/x86/kvm/x86.c\n@@ -1 +1 @@\n-%s\n+%s\n' "$2" "$3" >"$tmp/$1"
}
export KVM_ISOLATE_CACHE=$tmp/cache

echo "TAP version 13"
fake_deb pinned "$KI_KPKG" "$KI_KPKG_VERSION"
fake_deb other "$KI_KPKG" 7.3.99-1
fake_deb wrongpkg linux-source-6.12 "$KI_KPKG_VERSION"
echo "not a package" >"$tmp/junk.deb"
expect "local .deb of the pinned version with a wrong SHA256 is refused" fail "SHA256 .* differs" \
	env KVM_ISOLATE_KERNEL_DEB="$tmp/pinned.deb" "$top/scripts/fetch-kernel.sh"
expect "local .deb of another package is refused" fail "is linux-source-6.12, expected $KI_KPKG" \
	env KVM_ISOLATE_KERNEL_DEB="$tmp/wrongpkg.deb" "$top/scripts/fetch-kernel.sh"
expect "local file that is not a package is refused" fail "is not a Debian package" \
	env KVM_ISOLATE_KERNEL_DEB="$tmp/junk.deb" "$top/scripts/fetch-kernel.sh"
expect "missing local .deb is refused" fail "no such file" \
	env KVM_ISOLATE_KERNEL_DEB="$tmp/none.deb" "$top/scripts/fetch-kernel.sh"
expect "local .deb of another version is used, with a warning naming both" 0 \
	"WARNING: using local $KI_KPKG 7.3.99-1 instead of the pinned 7\.3\.4" \
	env KVM_ISOLATE_KERNEL_DEB="$tmp/other.deb" "$top/scripts/fetch-kernel.sh"

export KVM_ISOLATE_KERNEL_DEB=$tmp/other.deb
mkpatch 0001-good.patch "int kvm;" "int kvm = 1;"
mkpatch 0002-bad.patch "int nothing;" "int kvm = 2;"
repo_with 0001-good.patch
expect "a series is applied in order" 0 "applying \[1\] 0001-good.patch" "$tmp/repo/scripts/prepare-tree.sh"
tree=$(tail -n 1 "$tmp/out")
expect "the applied patch is in the tree" 0 "int kvm = 1;" cat "$tree/arch/x86/kvm/x86.c"
expect "re-running recognises the applied series" 0 "series already applied: 1 patches" \
	"$tmp/repo/scripts/prepare-tree.sh"
expect "our sources are placed into the tree" 0 "kvm_isolate" \
	ls "$tree/arch/x86/kvm/isolate/" "$tree/rust/kernel/" "$tree/drivers/virt/kvm_isolate_guest/" \
	"$tree/include/uapi/linux/kvm_isolate.h"
repo_with 0001-good.patch 0002-bad.patch
expect "a patch that does not apply fails, naming the patch" fail "patch 0002-bad.patch does not apply" \
	"$tmp/repo/scripts/prepare-tree.sh"
repo_with 0001-good.patch
echo 0003-missing.patch >>"$tmp/repo/patches/series"
expect "a series naming a missing patch fails" fail "names 0003-missing.patch, which does not exist" \
	"$tmp/repo/scripts/prepare-tree.sh"

# The test runner of the emulated hosts: a test that times out is killed with every process it
# started (a kselftest's test runs in a child that would outlive its killed parent).
stray=$((90000 + $$ % 9000))
printf 'orphan 2 (sleep %d &); sleep 600\nafter 5 echo time $KI_TIMEOUT\n' "$stray" >"$tmp/plan"
mkdir -p "$tmp/plan.d" "$tmp/bb"
# With the emulated host's busybox applets, whose timeout kills only the process it started.
for a in timeout setsid sleep; do ln -s /bin/busybox "$tmp/bb/$a"; done
expect "run-plan: a test over its timeout fails as timed out" fail "not ok 1 orphan # timed out after 2s" \
	env PATH="$tmp/bb:$PATH" KI_PLAN_TMP="$tmp/plan.d" KI_PLAN_LEAKS=/nonexistent bash "$top/scripts/initramfs/run-plan.sh" "$tmp/plan"
cp "$tmp/out" "$tmp/plan.out"
expect "run-plan: the next test runs, told its time (KI_TIMEOUT)" 0 "^@ki # time 5$" cat "$tmp/plan.out"
expect "run-plan: the timed-out test left no process running" 0 "none left" \
	sh -c '! pgrep -f "^sleep $1\$" && echo none left' _ "$stray"

echo "1..$n"
[ $failed = 0 ]
