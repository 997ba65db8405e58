# SPDX-License-Identifier: GPL-2.0
# kvm-isolate selftests, included by tools/testing/selftests/kvm/Makefile.kvm (patches/0004).
TEST_GEN_PROGS_x86 += x86/kvm_isolate/caps_test
TEST_PROGS_x86 += x86/kvm_isolate/module_test.sh
TEST_PROGS_x86 += x86/kvm_isolate/l2_guest_test.sh
TEST_GEN_PROGS_x86 += x86/kvm_isolate/views_test
TEST_GEN_PROGS_x86 += x86/kvm_isolate/views_demo
TEST_GEN_PROGS_x86 += x86/kvm_isolate/domains_test
TEST_GEN_PROGS_x86 += x86/kvm_isolate/domains_demo
TEST_GEN_PROGS_x86 += x86/kvm_isolate/bypass_test
TEST_GEN_PROGS_x86 += x86/kvm_isolate/gates_test
TEST_GEN_PROGS_x86 += x86/kvm_isolate/limits_test
TEST_GEN_PROGS_x86 += x86/kvm_isolate/scale_test
TEST_GEN_PROGS_x86 += x86/kvm_isolate/fuzz_test
TEST_GEN_PROGS_x86 += x86/kvm_isolate/vmfunc_test
TEST_GEN_PROGS_x86 += x86/kvm_isolate/ve_test
TEST_GEN_PROGS_x86 += x86/kvm_isolate/race_test
