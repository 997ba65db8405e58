#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Load KVM for this CPU's vendor and kvm_isolate, as a user would, before the upstream baseline
# (which must pass with kvm_isolate loaded).
if grep -qw vmx /proc/cpuinfo; then vendor=kvm_intel; else vendor=kvm_amd; fi
modprobe "$vendor" && modprobe kvm_isolate || exit 1
test -c /dev/kvm && test -d /sys/module/kvm_isolate
