#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Rig A, the AMD path: boot the host kernel and the test initramfs under QEMU, SVM + NPT.
# TCG with -cpu EPYC,+svm,+npt; -accel kvm -cpu host where /dev/kvm offers nested VMX or SVM.
#   rig-qemu.sh BUILD_DIR OUT_DIR    (KI_QEMU_TIMEOUT: seconds, default 1800; KI_QEMU_APPEND:
#   more kernel command line; KI_QEMU_SMP: host CPUs, default 2, so that
#   race tests really run at once)
set -euo pipefail
. "$(dirname "$0")/config.sh"
. "$KI_TOP/scripts/rig-lib.sh"

build=$1 out=$2
log=$out/qemu.serial.log
expect=vendor=amd,virtualization=svm,tdp=npt,kvm_paging=tdp,vmfunc_eptp_switching=no,ept_violation_ve=no,views=possible
accel=(-accel tcg -cpu EPYC,+svm,+npt)
if [ -w /dev/kvm ] && grep -q -w -E 'vmx|svm' /proc/cpuinfo &&
	grep -q -s -E '^(Y|1)$' /sys/module/kvm_intel/parameters/nested /sys/module/kvm_amd/parameters/nested; then
	accel=(-accel kvm -cpu host)
	expect=  # the host's CPU decides; caps_test still cross-checks CPUID and MSRs
fi
ki_stage "rig qemu: booting the host kernel (${accel[*]})"
rm -f "$log"
setsid timeout -k 10 "${KI_QEMU_TIMEOUT:-1800}" qemu-system-x86_64 -M q35 "${accel[@]}" -smp "${KI_QEMU_SMP:-2}" -m 1G \
	-kernel "$build/arch/x86/boot/bzImage" -initrd "$out/initramfs.cpio" \
	-append "console=ttyS0 panic=-1 quiet ${KI_QEMU_APPEND:-} KI_RIG=qemu KI_FUZZ_CALLS=${KI_FUZZ_CALLS:-} KI_FUZZ_SEED=${KI_FUZZ_SEED:-} KI_EXPECT=$expect" \
	-display none -monitor none -serial "file:$log" -no-reboot >"$out/qemu.stdout" 2>&1 &
ki_rig_follow qemu $! "$log" "$out"
