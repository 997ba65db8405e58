#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# kvm_isolate module life cycle, with the users' commands: modprobe loads it
# and its KVM dependency, the caps file follows KVM's vendor module live, and
# modprobe -r removes it and its debugfs files cleanly. TAP output.

CAPS=/sys/kernel/debug/kvm_isolate/caps
n=0
failed=0

ok() { n=$((n + 1)); echo "ok $n $1"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n $1"; }
check() { # description command...
	desc=$1; shift
	if "$@" >/tmp/module_test.out 2>&1; then ok "$desc"; else
		not_ok "$desc"; sed 's/^/# /' /tmp/module_test.out; fi
}
# caps_is LINE...: every LINE is a line of the caps file.
caps_is() {
	for l in "$@"; do
		grep -qx "$l" "$CAPS" || { echo "caps lacks '$l':"; cat "$CAPS"; return 1; }
	done
}

if grep -qw vmx /proc/cpuinfo; then vendor=kvm_intel; tdp=ept
elif grep -qw svm /proc/cpuinfo; then vendor=kvm_amd; tdp=npt
else echo "1..0 # SKIP no VMX or SVM on this CPU"; exit 4; fi

echo "TAP version 13"
echo "1..9"
modprobe -r kvm_isolate 2>/dev/null
check "vendor module $vendor loads" modprobe "$vendor"
check "modprobe kvm_isolate" modprobe kvm_isolate
check "kvm_isolate holds kvm (dependency resolved by modprobe)" \
	test -e /sys/module/kvm/holders/kvm_isolate
check "caps reports $tdp in use by KVM" caps_is "tdp: $tdp" "kvm_paging: tdp" "views: possible"
modprobe -r "$vendor"
check "caps follows KVM: $vendor unloaded" \
	caps_is "kvm_paging: no-vendor-module" "views: unavailable"
modprobe "$vendor"
check "caps follows KVM: $vendor reloaded" caps_is "kvm_paging: tdp" "views: possible"
check "modprobe -r kvm_isolate" modprobe -r kvm_isolate
gone() { ! test -e /sys/module/kvm_isolate && ! test -e /sys/kernel/debug/kvm_isolate; }
check "module and its debugfs directory are gone" gone
check "reload after unload" sh -c "modprobe kvm_isolate && test -r $CAPS"
[ $failed = 0 ] || exit 1
exit 0
