#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# make demo (the main job): install what is missing, build the patched host kernel with
# kvm_isolate, boot it in QEMU (SVM + NPT), load KVM and kvm_isolate with modprobe, show what the
# host offers, and run a guest that hides a secret in a memory view (views_demo): the rest of the
# guest cannot read it; a guest module's secret under learning and enforcement (domains_demo);
# and a real Linux guest under Debian's QEMU (l2_guest_test) that protects a key-keeping module
# from a rogue one. KI_DEMO_RIG=bochs shows the Intel path (VMX, EPT, VMFUNC, #VE) instead.
set -euo pipefail
. "$(dirname "$0")/config.sh"

"$KI_TOP/scripts/deps.sh"
build=$("$KI_TOP/scripts/build-kernel.sh")
"$KI_TOP/scripts/build-selftests.sh" "$build" x86/kvm_isolate/views_demo x86/kvm_isolate/domains_demo
out=$KI_OUT/demo
mkdir -p "$out"
echo "demo 900 /ki/demo.sh /ki/tests/x86/kvm_isolate/views_demo /ki/tests/x86/kvm_isolate/domains_demo" \
	"/ki/tests/x86/kvm_isolate/l2_guest_test.sh" >"$out/plan"
"$KI_TOP/scripts/build-tools.sh" "$build"
"$KI_TOP/scripts/mkinitramfs.sh" "$build" "$out" "$out/plan"
rig=${KI_DEMO_RIG:-qemu}
"$KI_TOP/scripts/rig-$rig.sh" "$build" "$out"
grep -q '^ok 1 demo' "$out/$rig.tap" || ki_die "demo failed (console log: $out/$rig.serial.log)"
ki_stage "demo: done; kvm_isolate loaded, reported the host, kept the guest's secret in its view, learned and enforced a guest module's accesses, protected a Linux guest's module from another (through the host's entry gates, then behind the module's own gate: VMFUNC on the Intel path, no VM exit per call), unloaded cleanly"
