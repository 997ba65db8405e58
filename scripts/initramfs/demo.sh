#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The main job's plan: what a user sees on a kvm-isolate host. Lines for the user are "@ki-show".
show() { sed 's/^/@ki-show /'; }
run() { echo "# $*" | show; "$@" 2>&1 | show; }

if grep -qw vmx /proc/cpuinfo; then vendor=kvm_intel; else vendor=kvm_amd; fi
run modprobe "$vendor"
run modprobe kvm_isolate
run sh -c 'lsmod | grep -E "^(kvm|kvm_amd|kvm_intel|kvm_isolate|irqbypass) "'
run cat /sys/kernel/debug/kvm_isolate/caps
run sh -c 'dmesg | grep -E "kvm_isolate|kvm_amd|kvm_intel" | grep -v -i "tcg"'
# A guest hides a secret in a memory view; the rest of the guest cannot read it.
echo "# views_demo" | show
${1:?usage: demo.sh VIEWS_DEMO DOMAINS_DEMO} >/tmp/views_demo.out 2>&1
rc=$?
show </tmp/views_demo.out
# A guest module's secret under learning and enforcement, steered with kvm-isolatectl.
echo "# domains_demo" | show
${2:?usage: demo.sh VIEWS_DEMO DOMAINS_DEMO} >/tmp/domains_demo.out 2>&1
rc2=$?
show </tmp/domains_demo.out
# A real Linux guest under Debian's QEMU: its administrator protects a key-keeping module
# (ki_keeper) from a rogue one (ki_rogue) with kvm_isolate_guest, the host learns and enforces;
# after a reboot the keeper protects itself behind its gate (VMFUNC on Intel: no VM exit).
# What the guest and the host said, then the verdicts.
echo "# a Linux guest (L2) under QEMU: kvm_isolate_guest protects ki_keeper from ki_rogue" | show
${3:?usage: demo.sh VIEWS_DEMO DOMAINS_DEMO L2_GUEST_TEST} >/tmp/l2_guest_test.tap 2>&1
rc3=$?
grep -E '^# (L2 [0-9.]*s\| @l2 (keeper|gate|domain|region|wait|bad|dmesg (ki_rogue: |kvm_isolate_guest: ki_keeper))|host |per keeper call)' \
	/tmp/l2_guest_test.tap | grep -v '@l2 bad RIP' |
	sed 's/^# L2 [0-9.]*s| @l2 /guest: /; s/^# host /host: /; s/^# per /cost: per /' | show
echo "# the host's view of the guest: kvm-isolatectl show, kvm-isolatectl log" | show
show </tmp/l2_guest_test.show
show </tmp/l2_guest_test.log
echo "# the checks" | show
grep -E '^(not )?ok ' /tmp/l2_guest_test.tap | show
run modprobe -r kvm_isolate
test ! -e /sys/module/kvm_isolate && [ "$rc" = 0 ] && [ "$rc2" = 0 ] && [ "$rc3" = 0 ]
