// SPDX-License-Identifier: GPL-2.0
/*
 * Exit-less view switching on Intel: VMFUNC leaf 0 (EPTP switching) between
 * ABI v1 views, from the per-vCPU EPTP list KVM keeps for a VM that uses
 * views.  A view is listed once the policy let the guest SWITCH to it (by
 * hypercall, or by a VMFUNC that exited and was handled as one) and until it
 * is destroyed; its entry is its root in the vCPU's root cache.
 *
 * Checked: VMFUNC before any hypercall is #UD (VMFUNC is off for VMs that
 * do not use views), and QUERY_FEATURES reports it once they do; a switch to a listed view costs no VM exit (KVM stats)
 * and KVM reads the view back at the next exit (QUERY_VIEW); the views'
 * rights hold after exit-less switches (the secret of view 1 is read
 * there and denied in view 0), also when a listed view was tightened
 * from another and after every root was invalidated (a memslot deleted); an index that is out of range, names no view or
 * a destroyed one, or a function other than 0, exits and fails with #UD,
 * leaving the view as it was.  Prints exits and guest TSC (Bochs: retired
 * instructions) per round trip for VMFUNC, the hypercall switch with cached
 * roots and with root-cache misses.
 *
 * Needs VMX with EPTP switching (IA32_VMX_VMFUNC bit 0): the Bochs rig.
 */
#include <fcntl.h>
#include <unistd.h>

#include <linux/kvm_isolate.h>
#include <linux/sizes.h>

#include "kvm_util.h"
#include "processor.h"
#include "ucall_common.h"
#include "kselftest_harness.h"
#include "run.h"

#define SLOT		10
#define SLOT_GPA	(SZ_1G - SZ_2M)
#define SLOT_PAGES	(SZ_4M / PAGE_SIZE)
#define S0		(SZ_1G - PAGE_SIZE)	/* the secret: view 1 only */
#define U		(SZ_1G + PAGE_SIZE)	/* tightened in view 1 later */
#define SECRET		0x5ec2e7c0ffee1234ull
#define N_OPS		1000
#define CYCLE_VIEWS	5			/* > 1 current + 3 cached roots */
#define E(x)		((u64)-(KVM_ISOLATE_##x))

enum mode { FIRST_USE, SWITCHES, REFUSED, BENCH };

static u64 hc(u64 nr, u64 a0, u64 a1, u64 a2, u64 a3)
{
	return kvm_hypercall(nr, a0, a1, a2, a3);
}

static u64 sw(u64 view)
{
	return hc(KVM_HC_ISOLATE_SWITCH, view, 0, 0, 0);
}

static u64 view_now(void)
{
	return hc(KVM_HC_ISOLATE_QUERY, KVM_ISOLATE_QUERY_VIEW, 0, 0, 0);
}

/* VMFUNC leaf @fn to EPTP list entry @index: the vector it raised, or 0. */
static u8 vmfunc(u64 fn, u64 index)
{
	return kvm_asm_safe(".byte 0x0f, 0x01, 0xd4", "a"(fn), "c"(index));
}

static u8 read_safe(u64 gva)
{
	return kvm_asm_safe("cmpb $0, (%[p])", [p] "r"(gva));
}

/* View 1 holds the secret at S0, view 0 has no rights there; #GP on denial. */
static void guest_views(void)
{
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_VIEW_CREATE, 0, 0, 0, 0), 1);
	GUEST_ASSERT_EQ(sw(1), 0);
	*(volatile u64 *)S0 = SECRET;
	*(volatile u64 *)U = U;
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_SET_ACCESS, 0, S0, 1, 0), 0);
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_ON_VIOLATION, KVM_ISOLATE_ON_VIOLATION_GP, 0, 0, 0), 0);
	GUEST_ASSERT_EQ(sw(0), 1);
}

static void guest_code(u64 mode)
{
	u64 i, tsc;

	switch (mode) {
	case FIRST_USE:
		/* Off until the VM uses views; then a first VMFUNC exits and is handled. */
		GUEST_ASSERT_EQ(vmfunc(0, 0), UD_VECTOR);
		GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_PROBE, 0, 0, 0, 0), KVM_ISOLATE_MAGIC);
		GUEST_ASSERT(hc(KVM_HC_ISOLATE_QUERY, KVM_ISOLATE_QUERY_FEATURES, 0, 0, 0) &
			     KVM_ISOLATE_FEATURE_VMFUNC);
		GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_VIEW_CREATE, 0, 0, 0, 0), 1);
		GUEST_SYNC(0);
		GUEST_ASSERT_EQ(vmfunc(0, 1), 0);		/* exits: not listed yet */
		GUEST_ASSERT_EQ(view_now(), 1);
		GUEST_SYNC(1);
		GUEST_ASSERT_EQ(vmfunc(0, 0), 0);
		GUEST_ASSERT_EQ(vmfunc(0, 1), 0);		/* both listed now */
		GUEST_ASSERT_EQ(vmfunc(0, 0), 0);
		GUEST_SYNC(2);
		GUEST_ASSERT_EQ(view_now(), 0);
		GUEST_DONE();
		break;
	case SWITCHES:
		guest_views();
		GUEST_ASSERT_EQ(read_safe(S0), GP_VECTOR);
		GUEST_SYNC(0);
		for (i = 0; i < N_OPS; i++) {
			GUEST_ASSERT_EQ(vmfunc(0, 1), 0);
			GUEST_ASSERT_EQ(*(volatile u64 *)S0, SECRET);
			GUEST_ASSERT_EQ(vmfunc(0, 0), 0);
		}
		GUEST_SYNC(1);
		/* Meanwhile the host invalidated every root and started dirty logging. */
		GUEST_ASSERT_EQ(read_safe(S0), GP_VECTOR);	/* back in view 0 */
		GUEST_SYNC(2);
		GUEST_ASSERT_EQ(vmfunc(0, 1), 0);
		GUEST_ASSERT_EQ(*(volatile u64 *)S0, SECRET);
		*(volatile u64 *)(S0 - PAGE_SIZE) = 1;		/* a dirty-logged write */
		GUEST_ASSERT_EQ(vmfunc(0, 0), 0);
		GUEST_ASSERT_EQ(read_safe(S0), GP_VECTOR);
		/* KVM's view follows the hardware's. */
		GUEST_ASSERT_EQ(vmfunc(0, 1), 0);
		GUEST_ASSERT_EQ(view_now(), 1);
		GUEST_ASSERT_EQ(vmfunc(0, 0), 0);
		GUEST_ASSERT_EQ(view_now(), 0);
		/* View 1, listed, tightened from view 0: at once on the next VMFUNC. */
		GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_SET_ACCESS, 1, U, 1, 0), 0);
		GUEST_ASSERT_EQ(vmfunc(0, 1), 0);
		GUEST_ASSERT_EQ(read_safe(U), GP_VECTOR);
		GUEST_ASSERT_EQ(*(volatile u64 *)S0, SECRET);
		GUEST_ASSERT_EQ(vmfunc(0, 0), 0);
		GUEST_ASSERT_EQ(*(volatile u64 *)U, U);
		GUEST_DONE();
		break;
	case REFUSED:
		guest_views();
		GUEST_ASSERT_EQ(vmfunc(0, 1), 0);
		GUEST_ASSERT_EQ(vmfunc(0, 0), 0);
		GUEST_ASSERT_EQ(vmfunc(0, 2), UD_VECTOR);	/* no such view */
		GUEST_ASSERT_EQ(vmfunc(0, KVM_ISOLATE_MAX_VIEWS), UD_VECTOR);
		GUEST_ASSERT_EQ(vmfunc(0, 511), UD_VECTOR);
		GUEST_ASSERT_EQ(vmfunc(0, 512), UD_VECTOR);	/* beyond the list */
		GUEST_ASSERT_EQ(vmfunc(1, 1), UD_VECTOR);	/* leaf 1: not enabled */
		GUEST_ASSERT_EQ(view_now(), 0);
		GUEST_ASSERT_EQ(read_safe(S0), GP_VECTOR);
		/* A destroyed view leaves every EPTP list. */
		GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_VIEW_DESTROY, 1, 0, 0, 0), 0);
		GUEST_ASSERT_EQ(vmfunc(0, 1), UD_VECTOR);
		GUEST_ASSERT_EQ(view_now(), 0);
		GUEST_ASSERT_EQ(read_safe(S0), GP_VECTOR);
		/* Re-created under the same number, it is listed again only by a switch. */
		GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_VIEW_CREATE, 0, 0, 0, 0), 1);
		GUEST_ASSERT_EQ(vmfunc(0, 1), 0);
		GUEST_ASSERT_EQ(view_now(), 1);
		GUEST_ASSERT_EQ(vmfunc(0, 0), 0);
		GUEST_DONE();
		break;
	case BENCH:
		guest_views();
		for (i = 2; i < CYCLE_VIEWS; i++)
			GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_VIEW_CREATE, 0, 0, 0, 0), i);
		for (i = 0; i < CYCLE_VIEWS; i++)	/* every view's root built */
			GUEST_ASSERT_EQ(sw((i + 1) % CYCLE_VIEWS), i);
		GUEST_ASSERT_EQ(vmfunc(0, 1), 0);
		GUEST_ASSERT_EQ(vmfunc(0, 0), 0);
		GUEST_SYNC2(0, 0);
		tsc = rdtsc();
		for (i = 0; i < N_OPS; i++) {
			vmfunc(0, 1);
			vmfunc(0, 0);
		}
		GUEST_SYNC2(1, rdtsc() - tsc);
		tsc = rdtsc();
		for (i = 0; i < N_OPS; i++) {
			sw(1);
			sw(0);
		}
		GUEST_SYNC2(2, rdtsc() - tsc);
		tsc = rdtsc();
		for (i = 0; i < 2 * N_OPS; i++)
			sw((i + 1) % CYCLE_VIEWS);
		GUEST_SYNC2(3, rdtsc() - tsc);
		GUEST_DONE();
		break;
	}
	GUEST_FAIL("mode %lu went on", mode);
}

/* ---- host side ---- */

static bool eptp_switching(void)
{
	int fd = open("/dev/cpu/0/msr", O_RDONLY);
	u64 vmfunc = 0;
	bool ok;

	if (fd < 0)
		return false;
	ok = pread(fd, &vmfunc, sizeof(vmfunc), 0x491) == sizeof(vmfunc);
	close(fd);
	return ok && (vmfunc & 1);
}

static struct kvm_vm *create_vm(struct kvm_vcpu **vcpu, enum mode mode)
{
	struct kvm_vm *vm = vm_create_with_one_vcpu(vcpu, guest_code);

	vm_userspace_mem_region_add(vm, VM_MEM_SRC_ANONYMOUS, SLOT_GPA, SLOT, SLOT_PAGES, 0);
	virt_map(vm, SLOT_GPA, SLOT_GPA, SLOT_PAGES);
	vcpu_args_set(*vcpu, 1, mode);
	return vm;
}

FIXTURE(vmfunc) {};

FIXTURE_SETUP(vmfunc)
{
	if (!kvm_cpu_has(X86_FEATURE_VMX) || !eptp_switching())
		SKIP(return, "needs VMX with EPTP switching (IA32_VMX_VMFUNC bit 0): Bochs rig");
	if (access("/dev/kvm-isolate", F_OK))
		SKIP(return, "kvm_isolate is not loaded");
}

FIXTURE_TEARDOWN(vmfunc) {}

TEST_F(vmfunc, first_use_exits_then_listed)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = create_vm(&vcpu, FIRST_USE);
	u64 exits[3];
	struct ucall uc;
	int i;

	for (i = 0; i < 3; i++) {
		TEST_ASSERT_EQ(ki_run(vcpu, &uc), UCALL_SYNC);
		exits[i] = vcpu_get_stat(vcpu, exits);
	}
	TEST_ASSERT_EQ(ki_run(vcpu, &uc), UCALL_DONE);
	/* The first VMFUNC to view 1 exits (and so does the QUERY_VIEW after it). */
	TEST_ASSERT(exits[1] - exits[0] >= 2, "%lu exits for an unlisted VMFUNC",
		    exits[1] - exits[0]);
	/* View 0 needs one more exit to be listed; then no exits (+1: the ucall). */
	TEST_ASSERT(exits[2] - exits[1] <= 3, "%lu exits for 3 VMFUNCs", exits[2] - exits[1]);
	kvm_vm_free(vm);
}

TEST_F(vmfunc, switches_are_exit_less_and_keep_the_rights)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = create_vm(&vcpu, SWITCHES);
	u64 exits, sw;
	struct ucall uc;

	TEST_ASSERT_EQ(ki_run(vcpu, &uc), UCALL_SYNC);
	exits = vcpu_get_stat(vcpu, exits);
	sw = vcpu_get_stat(vcpu, isolate_view_switches);
	TEST_ASSERT_EQ(ki_run(vcpu, &uc), UCALL_SYNC);
	exits = vcpu_get_stat(vcpu, exits) - exits;
	ksft_print_msg("%d VMFUNC round trips with accesses in both views: %lu VM exits\n",
		       N_OPS, exits);
	/* Only the ucall's exit and timer interrupts: not one per switch. */
	TEST_ASSERT(exits < N_OPS / 10, "%lu VM exits for %d round trips", exits, N_OPS);
	TEST_ASSERT_EQ(vcpu_get_stat(vcpu, isolate_view_switches), sw);
	/* Listed roots go away: a memslot's deletion invalidates every root. */
	vm_userspace_mem_region_add(vm, VM_MEM_SRC_ANONYMOUS, SZ_2G, SLOT + 1, 1, 0);
	vm_mem_region_delete(vm, SLOT + 1);
	vm_mem_region_set_flags(vm, SLOT, KVM_MEM_LOG_DIRTY_PAGES);
	TEST_ASSERT_EQ(ki_run(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(ki_run(vcpu, &uc), UCALL_DONE);
	kvm_vm_free(vm);
}

TEST_F(vmfunc, refused_indexes_exit_and_raise_ud)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = create_vm(&vcpu, REFUSED);
	struct ucall uc;

	TEST_ASSERT_EQ(ki_run(vcpu, &uc), UCALL_DONE);
	kvm_vm_free(vm);
}

TEST_F(vmfunc, cost_per_round_trip)
{
	static const char *const what[] = {
		"VMFUNC", "hypercall switch, roots cached", "hypercall switch, root-cache misses",
	};
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = create_vm(&vcpu, BENCH);
	u64 exits[4], tsc[4];
	struct ucall uc;
	int i;

	for (i = 0; i < 4; i++) {
		TEST_ASSERT_EQ(ki_run(vcpu, &uc), UCALL_SYNC);
		TEST_ASSERT_EQ(uc.args[0], i);
		exits[i] = vcpu_get_stat(vcpu, exits);
		tsc[i] = uc.args[1];
	}
	TEST_ASSERT_EQ(ki_run(vcpu, &uc), UCALL_DONE);
	for (i = 0; i < 3; i++)
		ksft_print_msg("per round trip, %s: %.3f VM exits, %lu TSC (Bochs: instructions)\n",
			       what[i], (double)(exits[i + 1] - exits[i] - 1) / N_OPS,
			       tsc[i + 1] / N_OPS);
	TEST_ASSERT(exits[1] - exits[0] < N_OPS / 10, "VMFUNC: %lu exits", exits[1] - exits[0]);
	TEST_ASSERT(exits[2] - exits[1] >= 2 * N_OPS, "hypercalls: %lu exits",
		    exits[2] - exits[1]);
	kvm_vm_free(vm);
}

TEST_HARNESS_MAIN
