// SPDX-License-Identifier: GPL-2.0
/*
 * kvm-isolate memory views, hypercall ABI v1: every call and each class of
 * bad input, secrets a view hides from reads, writes and instruction
 * fetches (observed as the injected vector or as the user exit naming the
 * gpa), switching, two vCPUs in different views, restrictions that survive
 * dirty logging, memslot re-registration and host memory being dropped
 * (MMU-notifier zaps, as under reclaim), ranges across 2M and 1G
 * boundaries, KVM's emulator, the module reference, and VM exits per
 * operation read from the KVM stats.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <linux/kvm_isolate.h>
#include <linux/sizes.h>

#include "kvm_util.h"
#include "processor.h"
#include "ucall_common.h"
#include "kselftest_harness.h"
#include "run.h"

/* A memslot of 4 MiB around the 1 GiB boundary, identity mapped. */
#define SLOT		10
#define SLOT_GPA	(SZ_1G - SZ_2M)
#define SLOT_PAGES	(SZ_4M / PAGE_SIZE)
#define S0		(SZ_1G - PAGE_SIZE)	/* last page below 1G (and 2M) */
#define S1		SZ_1G			/* first page above */
#define U		(SZ_1G + PAGE_SIZE)	/* unrestricted neighbour */
#define SECRET		0x5ec2e7c0ffee1234ull
#define N_OPS		1000
#define CYCLE_VIEWS	5		/* > 1 current + 3 cached roots */

#define E(x)		((u64)-(KVM_ISOLATE_##x))

enum mode {
	ABI, READ_EXIT, WRITE_EXIT, EXEC_EXIT, INJECT, GRANT, SWITCH_VERDICT,
	BOUNDARIES, ZAPS, EMULATOR, TWO_A, TWO_B, BENCH, REFS, XONLY, ALL_VIEWS, LOCKED,
	CACHED,
};

static u64 hc(u64 nr, u64 a0, u64 a1, u64 a2, u64 a3)
{
	return kvm_hypercall(nr, a0, a1, a2, a3);
}

static u64 set_access(u64 view, u64 gpa, u64 npages, u64 access)
{
	return hc(KVM_HC_ISOLATE_SET_ACCESS, view, gpa, npages, access);
}

static u64 sw(u64 view)
{
	return hc(KVM_HC_ISOLATE_SWITCH, view, 0, 0, 0);
}

static u64 query(u64 what, u64 a, u64 b)
{
	return hc(KVM_HC_ISOLATE_QUERY, what, a, b, 0);
}

static u8 read_safe(u64 gva)
{
	return kvm_asm_safe("cmpb $0, (%[p])", [p] "r"(gva));
}

static u8 write_safe(u64 gva)
{
	return kvm_asm_safe("movb $1, (%[p])", [p] "r"(gva));
}

/* View 1 holds the secret at S0; view 0 gets @view0 rights there. */
static void guest_hide_secret(u64 view0)
{
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_VIEW_CREATE, 0, 0, 0, 0), 1);
	GUEST_ASSERT_EQ(sw(1), 0);
	*(volatile u64 *)S0 = SECRET;
	GUEST_ASSERT_EQ(set_access(0, S0, 1, view0), view0);
	GUEST_ASSERT_EQ(sw(0), 1);
}

static void guest_abi(void)
{
	int i;

	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_PROBE, 0, 0, 0, 0), KVM_ISOLATE_MAGIC);
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_VERSION, 0, 0, 0, 0), KVM_ISOLATE_ABI_VERSION);
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_PROBE, 1, 0, 0, 0), E(EINVAL));
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_FIRST + 0xfe, 0, 0, 0, 0), E(ENOSYS));
	GUEST_ASSERT_EQ(query(KVM_ISOLATE_QUERY_MAX_VIEWS, 0, 0), KVM_ISOLATE_MAX_VIEWS);
	GUEST_ASSERT_EQ(query(KVM_ISOLATE_QUERY_VIEW, 0, 0), 0);
	GUEST_ASSERT_EQ(query(KVM_ISOLATE_QUERY_VIEWS, 0, 0), 1);
	GUEST_ASSERT_EQ(query(9, 0, 0), E(EINVAL));

	/* Create and destroy. */
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_VIEW_CREATE, 1, 0, 0, 0), E(EINVAL));
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_VIEW_CREATE, 0, 0, 0, 0), 1);
	GUEST_ASSERT_EQ(query(KVM_ISOLATE_QUERY_VIEWS, 0, 0), 3);
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_VIEW_DESTROY, 0, 0, 0, 0), E(EPERM));
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_VIEW_DESTROY, KVM_ISOLATE_MAX_VIEWS, 0, 0, 0), E(EINVAL));
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_VIEW_DESTROY, 2, 0, 0, 0), E(ENOENT));
	GUEST_ASSERT_EQ(sw(1), 0);
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_VIEW_DESTROY, 1, 0, 0, 0), E(EBUSY));
	GUEST_ASSERT_EQ(sw(0), 1);
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_VIEW_DESTROY, 1, 0, 0, 0), 0);
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_VIEW_DESTROY, 1, 0, 0, 0), E(ENOENT));
	for (i = 1; i < 16; i++)
		GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_VIEW_CREATE, 0, 0, 0, 0), i);
	GUEST_ASSERT_EQ(query(KVM_ISOLATE_QUERY_VIEWS, 0, 0), 0xffff);
	GUEST_ASSERT_EQ(query(KVM_ISOLATE_QUERY_VIEWS, KVM_ISOLATE_MAX_VIEWS / 32, 0), E(EINVAL));
	for (i = 2; i < 16; i++)
		GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_VIEW_DESTROY, i, 0, 0, 0), 0);

	/* Switch. */
	GUEST_ASSERT_EQ(sw(KVM_ISOLATE_MAX_VIEWS), E(EINVAL));
	GUEST_ASSERT_EQ(sw(5), E(ENOENT));
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_SWITCH, 1, 1, 0, 0), E(EINVAL));

	/* Bad ranges and rights change nothing. */
	GUEST_ASSERT_EQ(set_access(1, S0 + 8, 1, 0), E(ERANGE));
	GUEST_ASSERT_EQ(set_access(1, S0, 0, 0), E(ERANGE));
	GUEST_ASSERT_EQ(set_access(1, S0, KVM_ISOLATE_MAX_PAGES + 1, 0), E(ERANGE));
	GUEST_ASSERT_EQ(set_access(1, -4096ull, 1, 0), E(ERANGE));
	GUEST_ASSERT_EQ(set_access(1, (1ull << 52) - 4096, 2, 0), E(ERANGE));
	GUEST_ASSERT_EQ(set_access(1, SLOT_GPA + SZ_4M - PAGE_SIZE, 2, 0), E(ERANGE));
	GUEST_ASSERT_EQ(set_access(1, SZ_2G, 1, 0), E(ERANGE));
	GUEST_ASSERT_EQ(set_access(1, S0, 1, 0x10), E(EINVAL));
	GUEST_ASSERT_EQ(set_access(KVM_ISOLATE_MAX_VIEWS, S0, 1, 0), E(EINVAL));
	GUEST_ASSERT_EQ(set_access(7, S0, 1, 0), E(ENOENT));
	GUEST_ASSERT_EQ(query(KVM_ISOLATE_QUERY_ACCESS, 1, S0), KVM_ISOLATE_ACCESS_RWX);
	GUEST_ASSERT_EQ(query(KVM_ISOLATE_QUERY_ACCESS, 1, SLOT_GPA + SZ_4M - PAGE_SIZE),
			KVM_ISOLATE_ACCESS_RWX);
	GUEST_ASSERT_EQ(query(KVM_ISOLATE_QUERY_ACCESS, KVM_ISOLATE_MAX_VIEWS, S0), E(EINVAL));
	GUEST_ASSERT_EQ(query(KVM_ISOLATE_QUERY_ACCESS, 3, S0), E(ENOENT));

	/* Rounding: nothing without R, except X alone on EPT (execute-only). */
	GUEST_ASSERT_EQ(set_access(1, S0, 1, KVM_ISOLATE_ACCESS_W), 0);
	GUEST_ASSERT_EQ(set_access(1, S0, 1, KVM_ISOLATE_ACCESS_X),
			host_cpu_is_intel ? KVM_ISOLATE_ACCESS_X : 0);
	GUEST_ASSERT_EQ(set_access(1, S0, 1, KVM_ISOLATE_ACCESS_W | KVM_ISOLATE_ACCESS_X),
			host_cpu_is_intel ? KVM_ISOLATE_ACCESS_X : 0);
	GUEST_ASSERT_EQ(set_access(1, S0, 1, KVM_ISOLATE_ACCESS_R | KVM_ISOLATE_ACCESS_X),
			KVM_ISOLATE_ACCESS_R | KVM_ISOLATE_ACCESS_X);
	GUEST_ASSERT_EQ(query(KVM_ISOLATE_QUERY_ACCESS, 1, S0 + 123),
			KVM_ISOLATE_ACCESS_R | KVM_ISOLATE_ACCESS_X);
	GUEST_ASSERT_EQ(query(KVM_ISOLATE_QUERY_ACCESS, 0, S0), KVM_ISOLATE_ACCESS_RWX);

	/* On-violation actions. */
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_ON_VIOLATION, 5, 0, 0, 0), E(EINVAL));
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_ON_VIOLATION, 4, 9, 0, 0), E(ENOENT));
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_ON_VIOLATION, 1, 1, 0, 0), E(EINVAL));
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_ON_VIOLATION, 4, 1, 0, 0), 0);
	GUEST_DONE();
}

/* Every view: 255 created, each entered (its root built by a write in it). */
static void guest_all_views(void)
{
	u64 i;

	GUEST_SYNC(0);
	for (i = 1; i < KVM_ISOLATE_MAX_VIEWS; i++)
		GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_VIEW_CREATE, 0, 0, 0, 0), i);
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_VIEW_CREATE, 0, 0, 0, 0), E(ENOSPC));
	for (i = 0; i < KVM_ISOLATE_MAX_VIEWS / 32; i++)
		GUEST_ASSERT_EQ(query(KVM_ISOLATE_QUERY_VIEWS, i, 0), 0xffffffffull);
	for (i = 1; i < KVM_ISOLATE_MAX_VIEWS; i++) {
		GUEST_ASSERT_EQ(sw(i), i - 1);
		GUEST_ASSERT_EQ(query(KVM_ISOLATE_QUERY_VIEW, 0, 0), i);
		*(volatile u64 *)U = i;
		GUEST_ASSERT_EQ(*(volatile u64 *)U, i);
	}
	GUEST_ASSERT_EQ(sw(0), KVM_ISOLATE_MAX_VIEWS - 1);
	GUEST_ASSERT_EQ(*(volatile u64 *)U, KVM_ISOLATE_MAX_VIEWS - 1);
	GUEST_SYNC(KVM_ISOLATE_MAX_VIEWS - 1);
	for (i = 1; i < KVM_ISOLATE_MAX_VIEWS; i++)
		GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_VIEW_DESTROY, i, 0, 0, 0), 0);
	for (i = 0; i < KVM_ISOLATE_MAX_VIEWS / 32; i++)
		GUEST_ASSERT_EQ(query(KVM_ISOLATE_QUERY_VIEWS, i, 0), !i);
	GUEST_SYNC(1);
	GUEST_DONE();
}

/*
 * Locked, the guest may only tighten: a range is accepted when every page of
 * it grants the new rights already (pages with rights of their own and pages
 * with the view's default alike), and a refused one changes nothing.
 */
static void guest_locked(void)
{
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_VIEW_CREATE, 0, 0, 0, 0), 1);
	GUEST_ASSERT_EQ(set_access(1, S0, 1, KVM_ISOLATE_ACCESS_R), KVM_ISOLATE_ACCESS_R);
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_LOCK, 0, 0, 0, 0), 0);
	/* S0 is R only: the range S0, S1 cannot gain W, S1 keeps its rights. */
	GUEST_ASSERT_EQ(set_access(1, S0, 2, KVM_ISOLATE_ACCESS_R | KVM_ISOLATE_ACCESS_W), E(EPERM));
	GUEST_ASSERT_EQ(query(KVM_ISOLATE_QUERY_ACCESS, 1, S1), KVM_ISOLATE_ACCESS_RWX);
	GUEST_ASSERT_EQ(set_access(1, S1, 1, KVM_ISOLATE_ACCESS_R | KVM_ISOLATE_ACCESS_W),
			KVM_ISOLATE_ACCESS_R | KVM_ISOLATE_ACCESS_W);
	GUEST_ASSERT_EQ(set_access(1, S0, 3, KVM_ISOLATE_ACCESS_RWX), E(EPERM));
	GUEST_ASSERT_EQ(query(KVM_ISOLATE_QUERY_ACCESS, 1, U), KVM_ISOLATE_ACCESS_RWX);
	GUEST_ASSERT_EQ(set_access(1, S0, 3, KVM_ISOLATE_ACCESS_R), KVM_ISOLATE_ACCESS_R);
	GUEST_ASSERT_EQ(query(KVM_ISOLATE_QUERY_ACCESS, 1, S1), KVM_ISOLATE_ACCESS_R);
	GUEST_ASSERT_EQ(query(KVM_ISOLATE_QUERY_ACCESS, 1, U), KVM_ISOLATE_ACCESS_R);
	GUEST_ASSERT_EQ(set_access(1, S1, 2, KVM_ISOLATE_ACCESS_R | KVM_ISOLATE_ACCESS_W), E(EPERM));
	GUEST_DONE();
}

static void guest_code(u64 mode)
{
	u64 i, before, tsc;

	switch (mode) {
	case ABI:
		guest_abi();
		break;
	case ALL_VIEWS:
		guest_all_views();
		break;
	case LOCKED:
		guest_locked();
		break;
	case READ_EXIT:
		guest_hide_secret(0);
		GUEST_SYNC(*(volatile u64 *)S0);	/* must exit first */
		break;
	case WRITE_EXIT:
		guest_hide_secret(KVM_ISOLATE_ACCESS_R);
		GUEST_ASSERT_EQ(*(volatile u64 *)S0, SECRET);
		*(volatile u64 *)S0 = 0;		/* must exit */
		break;
	case EXEC_EXIT:
		GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_VIEW_CREATE, 0, 0, 0, 0), 1);
		*(volatile u8 *)S0 = 0xc3;		/* ret */
		GUEST_ASSERT_EQ(set_access(0, S0, 1, KVM_ISOLATE_ACCESS_R | KVM_ISOLATE_ACCESS_W),
				KVM_ISOLATE_ACCESS_R | KVM_ISOLATE_ACCESS_W);
		GUEST_ASSERT_EQ(*(volatile u8 *)S0, 0xc3);
		((void (*)(void))S0)();			/* must exit */
		break;
	case INJECT:
		guest_hide_secret(0);
		GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_ON_VIOLATION,
				   KVM_ISOLATE_ON_VIOLATION_GP, 0, 0, 0), 0);
		GUEST_ASSERT_EQ(read_safe(S0), GP_VECTOR);
		GUEST_ASSERT_EQ(write_safe(S0), GP_VECTOR);
		GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_ON_VIOLATION,
				   KVM_ISOLATE_ON_VIOLATION_UD, 0, 0, 0), 0);
		GUEST_ASSERT_EQ(read_safe(S0), UD_VECTOR);
		GUEST_ASSERT_EQ(sw(1), 0);
		GUEST_ASSERT_EQ(*(volatile u64 *)S0, SECRET);
		GUEST_ASSERT_EQ(sw(0), 1);
		GUEST_ASSERT_EQ(read_safe(S0), UD_VECTOR);
		GUEST_DONE();
		break;
	case GRANT:
		guest_hide_secret(0);
		GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_ON_VIOLATION,
				   KVM_ISOLATE_ON_VIOLATION_GRANT, 0, 0, 0), 0);
		GUEST_ASSERT_EQ(*(volatile u64 *)S0, SECRET);
		GUEST_ASSERT_EQ(query(KVM_ISOLATE_QUERY_ACCESS, 0, S0), KVM_ISOLATE_ACCESS_R);
		*(volatile u64 *)S0 = 7;
		GUEST_ASSERT_EQ(query(KVM_ISOLATE_QUERY_ACCESS, 0, S0),
				KVM_ISOLATE_ACCESS_R | KVM_ISOLATE_ACCESS_W);
		GUEST_DONE();
		break;
	case SWITCH_VERDICT:
		guest_hide_secret(0);
		GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_ON_VIOLATION,
				   KVM_ISOLATE_ON_VIOLATION_SWITCH, 1, 0, 0), 0);
		GUEST_ASSERT_EQ(*(volatile u64 *)S0, SECRET);
		GUEST_ASSERT_EQ(query(KVM_ISOLATE_QUERY_VIEW, 0, 0), 1);
		GUEST_DONE();
		break;
	case BOUNDARIES:
		/* Touch first, so that the range may be mapped huge. */
		for (i = SLOT_GPA; i < SLOT_GPA + SZ_4M; i += PAGE_SIZE)
			*(volatile u64 *)i = i;
		GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_VIEW_CREATE, 0, 0, 0, 0), 1);
		GUEST_ASSERT_EQ(set_access(0, S0, 2, 0), 0);
		GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_ON_VIOLATION,
				   KVM_ISOLATE_ON_VIOLATION_GP, 0, 0, 0), 0);
		GUEST_ASSERT_EQ(read_safe(S0), GP_VECTOR);
		GUEST_ASSERT_EQ(read_safe(S1), GP_VECTOR);
		GUEST_ASSERT_EQ(read_safe(S1 + PAGE_SIZE - 1), GP_VECTOR);
		GUEST_ASSERT_EQ(*(volatile u64 *)(S0 - PAGE_SIZE), S0 - PAGE_SIZE);
		GUEST_ASSERT_EQ(*(volatile u64 *)U, U);
		GUEST_ASSERT_EQ(*(volatile u64 *)SLOT_GPA, SLOT_GPA);
		GUEST_ASSERT_EQ(sw(1), 0);
		GUEST_ASSERT_EQ(*(volatile u64 *)S0, S0);
		GUEST_ASSERT_EQ(*(volatile u64 *)S1, S1);
		GUEST_DONE();
		break;
	case ZAPS:
		guest_hide_secret(0);
		GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_ON_VIOLATION,
				   KVM_ISOLATE_ON_VIOLATION_GP, 0, 0, 0), 0);
		for (i = 0; i < 5; i++) {
			GUEST_SYNC(i);	/* host zaps: dirty log, slot re-added, reclaim */
			GUEST_ASSERT_EQ(read_safe(S0), GP_VECTOR);
			GUEST_ASSERT_EQ(write_safe(S0), GP_VECTOR);
		}
		GUEST_DONE();
		break;
	case EMULATOR:
		guest_hide_secret(0);
		GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_ON_VIOLATION,
				   KVM_ISOLATE_ON_VIOLATION_GP, 0, 0, 0), 0);
		/* Denied like any violation: the policy's #GP, no data. */
		GUEST_SYNC(kvm_asm_safe_fep("cmpq $0, (%[p])", [p] "r"(S0)));
		GUEST_DONE();
		break;
	case TWO_A:
		guest_hide_secret(0);
		GUEST_ASSERT_EQ(sw(1), 0);
		GUEST_SYNC(query(KVM_ISOLATE_QUERY_VIEW, 0, 0));
		GUEST_ASSERT_EQ(*(volatile u64 *)S0, SECRET);
		GUEST_DONE();
		break;
	case TWO_B:
		GUEST_SYNC(query(KVM_ISOLATE_QUERY_VIEW, 0, 0));
		GUEST_SYNC(*(volatile u64 *)S0);	/* must exit first */
		break;
	case BENCH:
		/* Each phase reports the guest TSC it took (Bochs: instructions). */
		guest_hide_secret(0);
		for (i = 2; i < CYCLE_VIEWS; i++)
			GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_VIEW_CREATE, 0, 0, 0, 0), i);
		GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_ON_VIOLATION,
				   KVM_ISOLATE_ON_VIOLATION_GP, 0, 0, 0), 0);
		for (i = 0; i < CYCLE_VIEWS; i++)	/* every view's root built */
			GUEST_ASSERT_EQ(sw((i + 1) % CYCLE_VIEWS), i);
		GUEST_SYNC2(0, 0);
		tsc = rdtsc();
		for (i = 0; i < N_OPS; i++)
			GUEST_ASSERT_EQ(sw(1 - (i & 1)), i & 1);
		GUEST_SYNC2(1, rdtsc() - tsc);
		tsc = rdtsc();
		for (i = 0; i < N_OPS; i++)
			GUEST_ASSERT_EQ(read_safe(S0), GP_VECTOR);
		GUEST_SYNC2(2, rdtsc() - tsc);
		tsc = rdtsc();
		for (i = 0; i < N_OPS; i++)
			before = hc(KVM_HC_ISOLATE_VERSION, 0, 0, 0, 0);
		GUEST_ASSERT_EQ(before, KVM_ISOLATE_ABI_VERSION);
		GUEST_SYNC2(3, rdtsc() - tsc);
		/* More views in turn than a vCPU keeps roots for: every switch misses. */
		tsc = rdtsc();
		for (i = 0; i < N_OPS; i++)
			GUEST_ASSERT_EQ(sw((i + 1) % CYCLE_VIEWS), i % CYCLE_VIEWS);
		GUEST_SYNC2(4, rdtsc() - tsc);
		GUEST_DONE();
		break;
	case CACHED:
		/* A view changed while its root waits in the vCPU's root cache. */
		*(volatile u64 *)U = U;
		*(volatile u64 *)S1 = S1;
		GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_VIEW_CREATE, 0, 0, 0, 0), 1);
		GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_ON_VIOLATION,
				   KVM_ISOLATE_ON_VIOLATION_GP, 0, 0, 0), 0);
		GUEST_ASSERT_EQ(sw(1), 0);
		GUEST_ASSERT_EQ(*(volatile u64 *)U, U);		/* mapped in view 1 */
		GUEST_ASSERT_EQ(sw(0), 1);
		GUEST_ASSERT_EQ(set_access(1, U, 1, 0), 0);
		GUEST_ASSERT_EQ(*(volatile u64 *)U, U);		/* view 0 untouched */
		GUEST_ASSERT_EQ(sw(1), 0);
		GUEST_ASSERT_EQ(read_safe(U), GP_VECTOR);
		/* And view 0, tightened from view 1, with its root cached. */
		GUEST_ASSERT_EQ(set_access(0, S1, 1, 0), 0);
		GUEST_ASSERT_EQ(*(volatile u64 *)S1, S1);
		GUEST_ASSERT_EQ(sw(0), 1);
		GUEST_ASSERT_EQ(read_safe(S1), GP_VECTOR);
		GUEST_ASSERT_EQ(write_safe(S1), GP_VECTOR);
		GUEST_ASSERT_EQ(sw(1), 0);
		GUEST_ASSERT_EQ(set_access(1, U, 1, KVM_ISOLATE_ACCESS_RWX), KVM_ISOLATE_ACCESS_RWX);
		GUEST_ASSERT_EQ(*(volatile u64 *)U, U);
		GUEST_DONE();
		break;
	case XONLY:
		/* Code that view 0 may run but not read (EPT only). */
		*(volatile u8 *)S0 = 0xc3;		/* ret */
		GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_ON_VIOLATION,
				   KVM_ISOLATE_ON_VIOLATION_GP, 0, 0, 0), 0);
		GUEST_SYNC(set_access(0, S0, 1, KVM_ISOLATE_ACCESS_X));
		((void (*)(void))S0)();			/* runs */
		GUEST_ASSERT_EQ(read_safe(S0), GP_VECTOR);
		GUEST_ASSERT_EQ(write_safe(S0), GP_VECTOR);
		((void (*)(void))S0)();			/* still runs */
		GUEST_DONE();
		break;
	case REFS:
		GUEST_SYNC(0);
		GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_PROBE, 0, 0, 0, 0), KVM_ISOLATE_MAGIC);
		GUEST_DONE();
		break;
	}
	GUEST_FAIL("mode %lu went on after a denied access", mode);
}

static struct kvm_vm *create_vm(struct kvm_vcpu **vcpus, int n, enum mode *modes)
{
	struct kvm_vm *vm = vm_create_with_vcpus(n, guest_code, vcpus);
	int i;

	vm_userspace_mem_region_add(vm, VM_MEM_SRC_ANONYMOUS_THP, SLOT_GPA, SLOT,
				    SLOT_PAGES, 0);
	virt_map(vm, SLOT_GPA, SLOT_GPA, SLOT_PAGES);
	for (i = 0; i < n; i++)
		vcpu_args_set(vcpus[i], 1, modes[i]);
	return vm;
}

static struct kvm_vm *create_vm1(struct kvm_vcpu **vcpu, enum mode mode)
{
	return create_vm(vcpu, 1, &mode);
}

static void expect_done(struct kvm_vcpu *vcpu)
{
	struct ucall uc;

	TEST_ASSERT_EQ(ki_run(vcpu, &uc), UCALL_DONE);
}

/* The next run must stop with a view's memory-fault exit at @gpa. */
static void expect_view_exit(struct kvm_vcpu *vcpu, u64 gpa, u64 flags)
{
	struct kvm_run *r = vcpu->run;
	int ret = _vcpu_run(vcpu);

	TEST_ASSERT(ret == -1 && errno == EFAULT,
		    "KVM_RUN: want -EFAULT, got %d errno %d exit %s", ret, errno,
		    exit_reason_str(r->exit_reason));
	TEST_ASSERT_EQ(r->exit_reason, KVM_EXIT_MEMORY_FAULT);
	TEST_ASSERT_EQ(r->memory_fault.gpa, gpa);
	TEST_ASSERT_EQ(r->memory_fault.size, PAGE_SIZE);
	TEST_ASSERT_EQ(r->memory_fault.flags, KVM_ISOLATE_EXIT_FLAG_VIEW | flags);
	TEST_ASSERT_EQ(vcpu_get_stat(vcpu, isolate_exits), 1);
	TEST_ASSERT_EQ(vcpu_get_stat(vcpu, isolate_violations), 1);
}

/* The host's second-level page-table pages (all VMs), from /proc/meminfo. */
static u64 sec_page_tables(void)
{
	char line[128];
	u64 kb = 0;
	FILE *f = fopen("/proc/sys/vm/stat_refresh", "w");

	/* Fold the per-CPU counter deltas in first, or small changes do not show. */
	if (f) {
		fputs("1", f);
		fclose(f);
	}
	f = fopen("/proc/meminfo", "r");

	TEST_ASSERT(f, "/proc/meminfo");
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "SecPageTables: %lu kB", &kb) == 1)
			break;
	fclose(f);
	return kb / 4;
}

TEST(abi)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = create_vm1(&vcpu, ABI);

	expect_done(vcpu);
	kvm_vm_free(vm);
}

FIXTURE(many) {};
FIXTURE_SETUP(many) {}
FIXTURE_TEARDOWN(many) {}

/*
 * Every view created and entered: a view's root is built when a vCPU enters
 * it and maps only what the vCPU touched there (its code, stack, descriptor
 * tables, page tables and one data page), not a copy of the VM's memory.
 * Each destroy zaps every root, which the emulators take long over.
 */
TEST_F_TIMEOUT(many, views_255_created_and_entered, 600)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = create_vm1(&vcpu, ALL_VIEWS);
	u64 start, view0, views;
	time_t t0, t1, t2;
	struct ucall uc;

	start = sec_page_tables();
	t0 = time(NULL);
	TEST_ASSERT_EQ(ki_run(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[1], 0);
	view0 = sec_page_tables() - start;
	TEST_ASSERT_EQ(ki_run(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[1], KVM_ISOLATE_MAX_VIEWS - 1);
	views = sec_page_tables() - start - view0;
	t1 = time(NULL);
	TEST_ASSERT_EQ(ki_run(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[1], 1);
	t2 = time(NULL);
	ksft_print_msg("page-table pages: view 0 %lu (the VM's setup), %u more views entered: %lu (%.1f per view); %lds to create and enter them, %lds to destroy them\n",
		       view0, KVM_ISOLATE_MAX_VIEWS - 1, views,
		       (double)views / (KVM_ISOLATE_MAX_VIEWS - 1), (long)(t1 - t0), (long)(t2 - t1));
	TEST_ASSERT(views <= 8 * (KVM_ISOLATE_MAX_VIEWS - 1),
		    "%lu page-table pages for %u views entered: a view maps more than it touched",
		    views, KVM_ISOLATE_MAX_VIEWS - 1);
	expect_done(vcpu);
	kvm_vm_free(vm);
}

TEST(read_denied_exits_to_user_space)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = create_vm1(&vcpu, READ_EXIT);

	expect_view_exit(vcpu, S0, 0);
	/* A denied fault never loops: the next run exits again, once. */
	TEST_ASSERT_EQ(_vcpu_run(vcpu), -1);
	TEST_ASSERT_EQ(vcpu->run->exit_reason, KVM_EXIT_MEMORY_FAULT);
	TEST_ASSERT_EQ(vcpu_get_stat(vcpu, isolate_violations), 2);
	kvm_vm_free(vm);
}

TEST(write_denied_exits_to_user_space)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = create_vm1(&vcpu, WRITE_EXIT);

	expect_view_exit(vcpu, S0, KVM_ISOLATE_EXIT_FLAG_WRITE);
	kvm_vm_free(vm);
}

TEST(exec_denied_exits_to_user_space)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = create_vm1(&vcpu, EXEC_EXIT);

	struct kvm_regs regs;

	expect_view_exit(vcpu, S0, KVM_ISOLATE_EXIT_FLAG_EXEC);
	vcpu_regs_get(vcpu, &regs);
	TEST_ASSERT_EQ(regs.rip, S0);
	kvm_vm_free(vm);
}

static void one(enum mode mode)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = create_vm1(&vcpu, mode);

	expect_done(vcpu);
	kvm_vm_free(vm);
}

TEST(locked_vm_only_tightens_whole_ranges)
{
	one(LOCKED);
}

TEST(inject_gp_and_ud_then_switch_reads_secret)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = create_vm1(&vcpu, INJECT);

	expect_done(vcpu);
	TEST_ASSERT_EQ(vcpu_get_stat(vcpu, isolate_injects), 4);
	TEST_ASSERT_EQ(vcpu_get_stat(vcpu, isolate_violations), 4);
	TEST_ASSERT_EQ(vcpu_get_stat(vcpu, isolate_view_switches), 4);
	TEST_ASSERT_EQ(vcpu_get_stat(vcpu, isolate_exits), 0);
	kvm_vm_free(vm);
}

TEST(grant_relaxes_the_view)
{
	one(GRANT);
}

TEST(switch_verdict_moves_into_the_owner_view)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = create_vm1(&vcpu, SWITCH_VERDICT);

	expect_done(vcpu);
	TEST_ASSERT_EQ(vcpu_get_stat(vcpu, isolate_switches), 1);
	kvm_vm_free(vm);
}

TEST(ranges_across_2m_and_1g_boundaries)
{
	one(BOUNDARIES);
}

TEST(restrictions_survive_zaps)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = create_vm1(&vcpu, ZAPS);
	struct ucall uc;

	TEST_ASSERT_EQ(ki_run(vcpu, &uc), UCALL_SYNC);	/* 0: as set */
	vm_mem_region_set_flags(vm, SLOT, KVM_MEM_LOG_DIRTY_PAGES);
	TEST_ASSERT_EQ(ki_run(vcpu, &uc), UCALL_SYNC);	/* 1: dirty logging on */
	vm_mem_region_set_flags(vm, SLOT, 0);
	TEST_ASSERT_EQ(ki_run(vcpu, &uc), UCALL_SYNC);	/* 2: and off */
	vm_mem_region_delete(vm, SLOT);
	vm_userspace_mem_region_add(vm, VM_MEM_SRC_ANONYMOUS_THP, SLOT_GPA, SLOT,
				    SLOT_PAGES, 0);
	TEST_ASSERT_EQ(ki_run(vcpu, &uc), UCALL_SYNC);	/* 3: slot re-added */
	/* Host memory reclaim unmaps through the MMU notifier, as here. */
	TEST_ASSERT(!madvise(addr_gpa2hva(vm, SLOT_GPA), SZ_4M, MADV_DONTNEED), "madvise");
	TEST_ASSERT_EQ(ki_run(vcpu, &uc), UCALL_SYNC);	/* 4: host memory dropped */
	expect_done(vcpu);
	TEST_ASSERT_EQ(vcpu_get_stat(vcpu, isolate_injects), 10);
	kvm_vm_free(vm);
}

#define FEP_PARAM "/sys/module/kvm/parameters/force_emulation_prefix"

TEST(emulator_cannot_read_a_protected_page)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	struct ucall uc;
	char old[16] = "0";
	u64 cmd;
	int fd;

	fd = open(FEP_PARAM, O_RDWR);
	if (fd < 0)
		SKIP(return, "no %s", FEP_PARAM);
	TEST_ASSERT(read(fd, old, sizeof(old) - 1) > 0, "read " FEP_PARAM);
	TEST_ASSERT(pwrite(fd, "1", 1, 0) == 1, "write " FEP_PARAM);

	vm = create_vm1(&vcpu, EMULATOR);
	cmd = ki_run(vcpu, &uc);
	pwrite(fd, old, strlen(old), 0);
	close(fd);
	/* The emulated read is a violation like any other: #GP, as the guest asked. */
	TEST_ASSERT_EQ(cmd, UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[1], GP_VECTOR);
	TEST_ASSERT_EQ(vcpu_get_stat(vcpu, isolate_violations), 1);
	TEST_ASSERT_EQ(vcpu_get_stat(vcpu, isolate_injects), 1);
	expect_done(vcpu);
	kvm_vm_free(vm);
}

TEST(two_vcpus_in_different_views)
{
	enum mode modes[2] = { TWO_A, TWO_B };
	struct kvm_vcpu *vcpus[2];
	struct kvm_vm *vm = create_vm(vcpus, 2, modes);
	struct ucall uc;

	TEST_ASSERT_EQ(ki_run(vcpus[0], &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[1], 1);			/* vCPU 0 in view 1 */
	TEST_ASSERT_EQ(ki_run(vcpus[1], &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[1], 0);			/* vCPU 1 in view 0 */
	expect_view_exit(vcpus[1], S0, 0);
	expect_done(vcpus[0]);				/* reads the secret */
	kvm_vm_free(vm);
}

TEST(execute_only_code_on_ept)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = create_vm1(&vcpu, XONLY);
	struct ucall uc;

	TEST_ASSERT_EQ(ki_run(vcpu, &uc), UCALL_SYNC);
	if (!host_cpu_is_intel) {
		/* NPT cannot express execute-only: rounded to no rights. */
		TEST_ASSERT_EQ(uc.args[1], 0);
		kvm_vm_free(vm);
		SKIP(return, "execute-only needs EPT (rounded to none on NPT, checked)");
	}
	TEST_ASSERT_EQ(uc.args[1], KVM_ISOLATE_ACCESS_X);
	expect_done(vcpu);
	TEST_ASSERT_EQ(vcpu_get_stat(vcpu, isolate_injects), 2);
	kvm_vm_free(vm);
}

static long module_refs(void)
{
	char buf[32] = "";
	long refs = -1;
	FILE *f = fopen("/sys/module/kvm_isolate/refcnt", "r");

	if (f) {
		if (fgets(buf, sizeof(buf), f))
			refs = strtol(buf, NULL, 10);
		fclose(f);
	}
	return refs;
}

TEST(module_held_while_a_vm_uses_views)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	struct ucall uc;
	long before = module_refs();

	if (before < 0)
		SKIP(return, "kvm_isolate is not a loaded module");
	vm = create_vm1(&vcpu, REFS);
	TEST_ASSERT_EQ(ki_run(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(module_refs(), before);		/* no call yet */
	expect_done(vcpu);
	TEST_ASSERT_EQ(module_refs(), before + 1);
	TEST_ASSERT(syscall(__NR_delete_module, "kvm_isolate", O_NONBLOCK) == -1 &&
		    (errno == EWOULDBLOCK || errno == EBUSY),
		    "unloading kvm_isolate in use: errno %d", errno);
	TEST_ASSERT_EQ(module_refs(), before + 1);
	kvm_vm_free(vm);				/* views live until here */
	TEST_ASSERT_EQ(module_refs(), before);
}

TEST(exits_per_operation)
{
	static const char *const what[] = {
		"view switch (hypercall, root cached)", "violation (inject #GP)",
		"plain hypercall (baseline)", "view switch (hypercall, root-cache miss)",
	};
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = create_vm1(&vcpu, BENCH);
	u64 exits[5], tsc[5], nsw[5], inj0;
	struct ucall uc;
	int i;

	for (i = 0; i < 5; i++) {
		TEST_ASSERT_EQ(ki_run(vcpu, &uc), UCALL_SYNC);
		TEST_ASSERT_EQ(uc.args[0], i);
		exits[i] = vcpu_get_stat(vcpu, exits);
		nsw[i] = vcpu_get_stat(vcpu, isolate_view_switches);
		tsc[i] = uc.args[1];
		if (i == 0)
			inj0 = vcpu_get_stat(vcpu, isolate_injects);
	}
	expect_done(vcpu);
	TEST_ASSERT_EQ(nsw[1] - nsw[0], N_OPS);
	TEST_ASSERT_EQ(nsw[4] - nsw[3], N_OPS);
	TEST_ASSERT_EQ(vcpu_get_stat(vcpu, isolate_injects) - inj0, N_OPS);
	/* Per operation: VM exits (KVM stats) and guest TSC (Bochs: instructions, L1's included). */
	for (i = 0; i < 4; i++)
		ksft_print_msg("per %s: %.3f VM exits, %lu TSC\n", what[i],
			       (double)(exits[i + 1] - exits[i] - 1) / N_OPS, tsc[i + 1] / N_OPS);
	/* Each switch is one hypercall exit; each violation one NPF/EPT exit. */
	for (i = 0; i < 4; i++)
		TEST_ASSERT(exits[i + 1] - exits[i] >= N_OPS && exits[i + 1] - exits[i] < 2 * N_OPS,
			    "exits for %d of %s: %lu", N_OPS, what[i], exits[i + 1] - exits[i]);
	kvm_vm_free(vm);
}

TEST(cached_root_sees_tightening)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = create_vm1(&vcpu, CACHED);

	expect_done(vcpu);
	kvm_vm_free(vm);
}

int main(int argc, char **argv)
{
	TEST_REQUIRE(kvm_is_tdp_enabled());
	return test_harness_run(argc, argv);
}
