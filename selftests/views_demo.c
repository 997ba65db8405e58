// SPDX-License-Identifier: GPL-2.0
/*
 * kvm-isolate demo (the project's main job): a guest hides a secret in a
 * memory view and shows that the rest of the guest cannot read it.  Prints
 * what happens, step by step; exits non-zero if any step goes otherwise.
 */
#include <errno.h>
#include <stdio.h>

#include <linux/kvm_isolate.h>
#include <linux/sizes.h>

#include "kvm_util.h"
#include "processor.h"
#include "ucall_common.h"

#define SLOT		10
#define SLOT_GPA	SZ_1G
#define SECRET_GPA	(SZ_1G + 0x5000)
#define SECRET		0x5ec2e7c0ffee1234ull

enum step { FOUND = 1, HIDDEN, DENIED, SWITCHED, READ_IN_OWNER_VIEW };

static u64 hc(u64 nr, u64 a0, u64 a1, u64 a2, u64 a3)
{
	return kvm_hypercall(nr, a0, a1, a2, a3);
}

static void guest_code(void)
{
	volatile u64 *secret = (volatile u64 *)SECRET_GPA;
	u64 v;

	GUEST_SYNC2(FOUND, hc(KVM_HC_ISOLATE_PROBE, 0, 0, 0, 0) == KVM_ISOLATE_MAGIC ?
		    hc(KVM_HC_ISOLATE_VERSION, 0, 0, 0, 0) : 0);

	/* The owner's view: 1.  Write the secret there, hide it from view 0. */
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_VIEW_CREATE, 0, 0, 0, 0), 1);
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_SWITCH, 1, 0, 0, 0), 0);
	*secret = SECRET;
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_SET_ACCESS, 0, SECRET_GPA, 1, 0), 0);
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_SWITCH, 0, 0, 0, 0), 1);
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_ON_VIOLATION, KVM_ISOLATE_ON_VIOLATION_GP, 0, 0, 0), 0);
	GUEST_SYNC2(HIDDEN, hc(KVM_HC_ISOLATE_QUERY, KVM_ISOLATE_QUERY_ACCESS, 0, SECRET_GPA, 0));

	/* Any other code, in view 0: the read faults, nothing is disclosed. */
	v = 0;
	GUEST_SYNC2(DENIED, kvm_asm_safe("mov (%[p]), %%rax", [p] "r"(secret)));

	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_SWITCH, 1, 0, 0, 0), 0);
	GUEST_SYNC2(SWITCHED, hc(KVM_HC_ISOLATE_QUERY, KVM_ISOLATE_QUERY_VIEW, 0, 0, 0));
	v = *secret;
	GUEST_SYNC2(READ_IN_OWNER_VIEW, v);

	/* Back in view 0, with violations stopping the vCPU: the host sees it. */
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_SWITCH, 0, 0, 0, 0), 1);
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_ON_VIOLATION, KVM_ISOLATE_ON_VIOLATION_EXIT, 0, 0, 0), 0);
	v = *secret;
	GUEST_FAIL("read the secret from view 0: %lx", v);
}

int main(void)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	struct ucall uc;
	int ret;

	vm = vm_create_with_one_vcpu(&vcpu, guest_code);
	vm_userspace_mem_region_add(vm, VM_MEM_SRC_ANONYMOUS, SLOT_GPA, SLOT, 16, 0);
	virt_map(vm, SLOT_GPA, SLOT_GPA, 16);

	printf("host: started a VM (1 vCPU) with an unmodified KVM user-space API\n");
	for (;;) {
		vcpu_run(vcpu);
		switch (get_ucall(vcpu, &uc)) {
		case UCALL_ABORT:
			REPORT_GUEST_ASSERT(uc);
		case UCALL_SYNC:
			break;
		default:
			TEST_FAIL("unexpected exit %s", exit_reason_str(vcpu->run->exit_reason));
		}
		switch (uc.args[0]) {
		case FOUND:
			TEST_ASSERT(uc.args[1] == KVM_ISOLATE_ABI_VERSION, "kvm-isolate not found");
			printf("guest: kvm-isolate found by its probe hypercall, ABI v%lu\n", uc.args[1]);
			continue;
		case HIDDEN:
			TEST_ASSERT_EQ(uc.args[1], 0);
			printf("guest: wrote the secret %#llx at gpa %#x in view 1 (the owner's view);\n"
			       "       view 0 (everything else) now has no rights on that page\n",
			       SECRET, SECRET_GPA);
			continue;
		case DENIED:
			TEST_ASSERT_EQ(uc.args[1], GP_VECTOR);
			printf("guest, view 0: reading the secret raised #GP; the read returned nothing\n");
			continue;
		case SWITCHED:
			TEST_ASSERT_EQ(uc.args[1], 1);
			printf("guest: switched to view 1 by hypercall\n");
			continue;
		case READ_IN_OWNER_VIEW:
			TEST_ASSERT_EQ(uc.args[1], SECRET);
			printf("guest, view 1: read the secret: %#lx\n", uc.args[1]);
			break;
		}
		break;
	}

	ret = _vcpu_run(vcpu);
	TEST_ASSERT(ret == -1 && errno == EFAULT &&
		    vcpu->run->exit_reason == KVM_EXIT_MEMORY_FAULT &&
		    vcpu->run->memory_fault.gpa == SECRET_GPA,
		    "the read from view 0 did not stop at the secret's page");
	printf("host: guest read from view 0 again: KVM_EXIT_MEMORY_FAULT, gpa %#llx, flags %#llx (view)\n",
	       vcpu->run->memory_fault.gpa, vcpu->run->memory_fault.flags);
	printf("host: KVM stats: %lu view switches, %lu violations, %lu #GP injected, %lu exits to user space\n",
	       vcpu_get_stat(vcpu, isolate_view_switches), vcpu_get_stat(vcpu, isolate_violations),
	       vcpu_get_stat(vcpu, isolate_injects), vcpu_get_stat(vcpu, isolate_exits));
	kvm_vm_free(vm);
	printf("host: the secret never left view 1\n");
	return 0;
}
