#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# A real Linux guest under an unmodified VMM: Debian's QEMU, run inside the
# emulated host (the rig), boots the same kernel as an L2 guest on the host's
# KVM with kvm_isolate loaded; the guest administrator's modprobe loads
# kvm_isolate_guest there, which finds the host's kvm-isolate, its ABI
# version and the features this CPU offers, and where the host offers #VE
# (Bochs) takes one in its self-test: a write a view of its own denies is a
# #VE its handler takes (the guest kernel's vector-20 handler outside TDX,
# patch 0019), switching back to view 0; the host's kvm-isolatectl lists the
# guest's VM while it runs; the guest powers off and the host is clean.
# TAP output.

CAPS=/sys/kernel/debug/kvm_isolate/caps
QEMU=/usr/bin/qemu-system-x86_64
OUT=/tmp/l2_guest_test.out
n=0
failed=0

ok() { n=$((n + 1)); echo "ok $n $1"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n $1"; }
check() { # description command...
	desc=$1; shift
	if "$@" >/tmp/l2_guest_test.chk 2>&1; then ok "$desc"; else
		not_ok "$desc"; sed 's/^/# /' /tmp/l2_guest_test.chk; fi
}
has() { grep -q "$1" "$OUT" || { echo "no '$1' in the L2 console:"; cat "$OUT"; return 1; }; }

if grep -qw vmx /proc/cpuinfo; then vendor=kvm_intel
elif grep -qw svm /proc/cpuinfo; then vendor=kvm_amd
else echo "1..0 # SKIP no VMX or SVM on this CPU"; exit 4; fi
if [ ! -f /l2/bzImage ] || [ ! -x $QEMU ]; then
	echo "1..0 # SKIP no L2 guest in this initramfs (mkinitramfs.sh stages it for this test)"
	exit 4
fi

echo "TAP version 13"
echo "1..7"
modprobe "$vendor" && modprobe kvm_isolate || { echo "Bail out! modprobe failed"; exit 1; }
before=$(dmesg | wc -l)
# VMFUNC is offered to a guest where the host has EPTP switching (caps), nowhere else.
if grep -qx 'vmfunc_eptp_switching: yes' "$CAPS"; then vmfunc=yes; else vmfunc=no; fi

$QEMU -M microvm -accel kvm -cpu host -smp 1 -m 256M -nodefaults -no-user-config \
	-display none -serial stdio -no-reboot -L /usr/share/qemu \
	-kernel /l2/bzImage -initrd /l2/initrd.cpio \
	-append "console=ttyS0 panic=-1 quiet pci=off" >"$OUT" 2>&1 </dev/null &
qemu=$!
# While it runs (it sleeps 2 s after probing), the host lists its VM.
i=0
while ! grep -q '@l2 probed' "$OUT" && kill -0 $qemu 2>/dev/null && [ $i -lt 1200 ]; do
	sleep 0.1; i=$((i + 1))
done
kvm-isolatectl list >/tmp/l2_guest_test.list 2>&1
wait $qemu
rc=$?

check "L2 Linux boots under QEMU on the host's KVM" has '@l2 up'
check "modprobe kvm_isolate_guest in the L2 guest" has '@l2 modprobe ok'
check "the guest module finds the host's kvm-isolate, ABI 1, VMFUNC $vmfunc" \
	has "@l2 dmesg .*kvm_isolate_guest: kvm-isolate ABI 1, features .*(VMFUNC $vmfunc,"
# Where the host offers #VE (Bochs), the guest module checks it end to end before it loads.
if [ $vmfunc = yes ]; then
	check "a #VE in the L2 guest, taken by the guest module's handler (no VM exit)" \
		has "@l2 dmesg .*kvm_isolate_guest: #VE self-test: 1 #VE in view 1 at gpa"
else
	n=$((n + 1))
	echo "ok $n # SKIP a #VE in the L2 guest: the host offers no #VE without EPTP switching"
fi
listed() {
	cat /tmp/l2_guest_test.list
	awk -v pid=$qemu 'NR > 1 && $2 == pid { found = 1 } END { exit !found }' \
		/tmp/l2_guest_test.list
}
check "kvm-isolatectl lists the guest's VM (QEMU's pid $qemu) while it runs" listed
powered_off() { [ $rc = 0 ] && has '@l2 end' && ! grep '@l2 bad' "$OUT"; }
check "the guest's kernel log is clean and it powers off (QEMU exit $rc)" powered_off
# What the rig's last check looks for, in what the host logged since this test began.
host_clean() {
	! dmesg | tail -n +$((before + 1)) | grep -E 'WARNING:|BUG:|Oops|general protection|Call Trace:'
}
check "the host's kernel log is clean after the guest" host_clean
# What the guest module said, for the log.
grep '@l2 dmesg' "$OUT" | sed 's/^@l2 dmesg /# L2: /'
[ $failed = 0 ] || exit 1
exit 0
