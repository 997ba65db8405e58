// SPDX-License-Identifier: GPL-2.0
/*
 * View violations the guest handles itself, as EPT-violation #VE (Intel):
 * a vCPU registers a #VE information page (KVM_HC_ISOLATE_VE_INFO), and
 * pages set with KVM_ISOLATE_ACCESS_VE in a view raise #VE there instead of
 * exiting to the host.
 *
 * Checked: the #VE arrives with the exit reason, qualification, linear and
 * physical address and EPTP index of the write, and costs no VM exit and no
 * host-side violation (KVM stats); a page not yet mapped in the view is
 * mapped by its first violation, which then raises #VE; a busy #VE page
 * (semaphore set), a page without KVM_ISOLATE_ACCESS_VE (which W drops), or
 * a vCPU that unregistered its page exit to the host instead, whose
 * on-violation action applies; the page must be
 * writable in every view (a domain's region is refused: the CPU would write
 * #VE information into it), stays so (EBUSY for a view, a domain's region or
 * code that would take W: the attack of a rogue that registers a page a
 * module is about to protect), and bad arguments change nothing; after lock no
 * new page and no new #VE page.  Where the host offers no #VE (the QEMU
 * rig), both calls are EOPNOTSUPP.  Prints exits and guest TSC (Bochs:
 * retired instructions) per round trip through a #VE and through an
 * EPT-violation exit.
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
#define VE_PAGE		(SLOT_GPA + 2 * PAGE_SIZE)	/* the #VE information page */
#define T		(SLOT_GPA + 16 * PAGE_SIZE)	/* R + #VE in view 1 */
#define T2		(T + PAGE_SIZE)			/* R in view 1, no #VE */
#define Q		(T + 2 * PAGE_SIZE)		/* R in view 1 (REFUSED) */
#define F		(T + 3 * PAGE_SIZE)		/* R + #VE in view 1, first touch a write */
#define P		(T + 4 * PAGE_SIZE)		/* a domain's region (ATTACK) */
#define SECRET		0x5ec2e7c0ffee1234ull
#define VE_VECTOR	20
#define EXIT_REASON_EPT_VIOLATION	48
#define N_OPS		1000
#define E(x)		((u64)-(KVM_ISOLATE_##x))

enum mode { DELIVERY, REFUSED, NO_VE, BENCH, ATTACK };

/* The #VE information area (SDM 26.5.7.2); Bochs may leave garbage after the EPTP index. */
struct ve_info {
	u32 reason;
	u32 semaphore;
	u64 qualification;
	u64 gla;
	u64 gpa;
	u16 eptp_index;
} __packed;

static volatile struct ve_info *const ve = (struct ve_info *)VE_PAGE;
static volatile u64 ves;
static struct ve_info seen;

static u64 hc(u64 nr, u64 a0, u64 a1, u64 a2, u64 a3)
{
	return kvm_hypercall(nr, a0, a1, a2, a3);
}

static u64 view_now(void)
{
	return hc(KVM_HC_ISOLATE_QUERY, KVM_ISOLATE_QUERY_VIEW, 0, 0, 0);
}

static u64 access_of(u64 view, u64 gpa)
{
	return hc(KVM_HC_ISOLATE_QUERY, KVM_ISOLATE_QUERY_ACCESS, view, gpa, 0);
}

static void vmfunc(u64 view)
{
	asm volatile(".byte 0x0f, 0x01, 0xd4" : : "a"(0), "c"(view) : "memory");
}

/*
 * Records what the CPU reported, goes back to view 0 (where the page is
 * writable, so the write retries there) and re-arms: what a guest's #VE
 * handler does when it lets an access through another view.
 */
static void ve_handler(struct ex_regs *regs)
{
	seen.reason = ve->reason;
	seen.qualification = ve->qualification;
	seen.gla = ve->gla;
	seen.gpa = ve->gpa;
	seen.eptp_index = ve->eptp_index;
	ves++;
	vmfunc(0);
	ve->semaphore = 0;
}

/* View 1: T and F readable with #VE, T2 readable; denials switch to view 0. */
static void guest_views(void)
{
	*(volatile u64 *)T = 1;
	*(volatile u64 *)T2 = 1;
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_VIEW_CREATE, 0, 0, 0, 0), 1);
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_SET_ACCESS, 1, T, 1,
			   KVM_ISOLATE_ACCESS_R | KVM_ISOLATE_ACCESS_VE),
			KVM_ISOLATE_ACCESS_R | KVM_ISOLATE_ACCESS_VE);
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_SET_ACCESS, 1, F, 1,
			   KVM_ISOLATE_ACCESS_R | KVM_ISOLATE_ACCESS_VE),
			KVM_ISOLATE_ACCESS_R | KVM_ISOLATE_ACCESS_VE);
	/* W takes #VE away: KVM must see its own write faults (dirty logging). */
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_SET_ACCESS, 1, Q, 1,
			   KVM_ISOLATE_ACCESS_R | KVM_ISOLATE_ACCESS_W | KVM_ISOLATE_ACCESS_VE),
			KVM_ISOLATE_ACCESS_R | KVM_ISOLATE_ACCESS_W);
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_SET_ACCESS, 1, T2, 1, KVM_ISOLATE_ACCESS_R),
			KVM_ISOLATE_ACCESS_R);
	GUEST_ASSERT_EQ(access_of(1, T), KVM_ISOLATE_ACCESS_R | KVM_ISOLATE_ACCESS_VE);
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_ON_VIOLATION, KVM_ISOLATE_ON_VIOLATION_SWITCH, 0, 0, 0),
			0);
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_VE_INFO, VE_PAGE, 0, 0, 0), 0);
	/* Both views listed for VMFUNC. */
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_SWITCH, 1, 0, 0, 0), 0);
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_SWITCH, 0, 0, 0, 0), 1);
}

static void guest_code(u64 mode)
{
	u64 features, i, tsc;

	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_PROBE, 0, 0, 0, 0), KVM_ISOLATE_MAGIC);
	features = hc(KVM_HC_ISOLATE_QUERY, KVM_ISOLATE_QUERY_FEATURES, 0, 0, 0);
	switch (mode) {
	case DELIVERY:
		GUEST_ASSERT_EQ(features, KVM_ISOLATE_FEATURE_VMFUNC | KVM_ISOLATE_FEATURE_VE);
		guest_views();
		/* The first #VE maps what its delivery touches in view 1 (IDT, stack, handler). */
		vmfunc(1);
		GUEST_ASSERT_EQ(*(volatile u64 *)T, 1);		/* R: no #VE */
		*(volatile u64 *)T = 2;				/* #VE, back in view 0 */
		GUEST_ASSERT_EQ(ves, 1);
		GUEST_SYNC(0);
		vmfunc(1);
		*(volatile u64 *)T = 2;
		GUEST_ASSERT_EQ(ves, 2);
		GUEST_SYNC(1);
		GUEST_ASSERT_EQ(*(volatile u64 *)T, 2);
		GUEST_ASSERT_EQ(view_now(), 0);
		GUEST_ASSERT_EQ(seen.reason, EXIT_REASON_EPT_VIOLATION);
		GUEST_ASSERT_EQ(seen.gpa, T);
		GUEST_ASSERT_EQ(seen.gla, T);
		/* A data write (bit 1), the page readable (bit 3), the linear address valid (bit 7). */
		GUEST_ASSERT_EQ(seen.qualification & 0x8f, 0x8a);
		GUEST_ASSERT_EQ(seen.eptp_index, 1);
		/* A busy #VE page: the violation exits and the host switches to view 0. */
		ve->semaphore = ~0u;
		vmfunc(1);
		*(volatile u64 *)T = 3;
		GUEST_ASSERT_EQ(ves, 2);
		GUEST_ASSERT_EQ(ve->semaphore, ~0u);
		ve->semaphore = 0;
		GUEST_SYNC(2);
		/* No #VE where the view does not ask for it. */
		vmfunc(1);
		*(volatile u64 *)T2 = 3;
		GUEST_ASSERT_EQ(ves, 2);
		GUEST_SYNC(3);
		/* Nor without a registered page. */
		GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_VE_INFO, -1ull, 0, 0, 0), 0);
		vmfunc(1);
		*(volatile u64 *)T = 4;
		GUEST_ASSERT_EQ(ves, 2);
		GUEST_SYNC(4);
		/* Registered again, #VE again. */
		GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_VE_INFO, VE_PAGE, 0, 0, 0), 0);
		GUEST_ASSERT_EQ(view_now(), 0);	/* an exit: the page is mapped before entry */
		vmfunc(1);
		*(volatile u64 *)T = 5;
		GUEST_ASSERT_EQ(ves, 3);
		GUEST_ASSERT_EQ(*(volatile u64 *)T, 5);
		/* A page not mapped in view 1 yet: mapped by an exit, then the #VE. */
		vmfunc(1);
		*(volatile u64 *)F = 6;
		GUEST_ASSERT_EQ(ves, 4);
		GUEST_ASSERT_EQ(seen.gpa, F);
		GUEST_ASSERT_EQ(*(volatile u64 *)F, 6);
		GUEST_SYNC(5);
		GUEST_DONE();
		break;
	case REFUSED:
		GUEST_ASSERT(features & KVM_ISOLATE_FEATURE_VE);
		GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_VIEW_CREATE, 0, 0, 0, 0), 1);
		GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_VE_INFO, VE_PAGE + 8, 0, 0, 0), E(ERANGE));
		GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_VE_INFO, 1ull << 40, 0, 0, 0), E(ERANGE));
		GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_VE_INFO, 1ull << 52, 0, 0, 0), E(ERANGE));
		GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_VE_INFO, VE_PAGE, 1, 0, 0), E(EINVAL));
		GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_SET_ACCESS, 1, T, 1, 0x11), E(EINVAL));
		/* Not writable in some view: refused. */
		GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_SET_ACCESS, 1, Q, 1, KVM_ISOLATE_ACCESS_R), 1);
		GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_VE_INFO, Q, 0, 0, 0), E(EPERM));
		/* Registered: it keeps W everywhere, and nothing else changes on a refusal. */
		GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_VE_INFO, VE_PAGE, 0, 0, 0), 0);
		GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_SET_ACCESS, 1, VE_PAGE, 1, KVM_ISOLATE_ACCESS_R),
				E(EBUSY));
		GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_SET_ACCESS, 1, VE_PAGE - PAGE_SIZE, 3, 0), E(EBUSY));
		GUEST_ASSERT_EQ(access_of(1, VE_PAGE - PAGE_SIZE), KVM_ISOLATE_ACCESS_RWX);
		GUEST_ASSERT_EQ(access_of(1, VE_PAGE), KVM_ISOLATE_ACCESS_RWX);
		GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_SET_ACCESS, 1, VE_PAGE, 1, 3), 3);
		GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_DOMAIN_CREATE, 0, 0, 0, 0), 2);
		GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_DOMAIN_ADD_REGION, 2, VE_PAGE - PAGE_SIZE, 2, 3),
				E(EBUSY));
		GUEST_ASSERT_EQ(access_of(0, VE_PAGE - PAGE_SIZE), KVM_ISOLATE_ACCESS_RWX);
		GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_DOMAIN_ADD_CODE, 2, VE_PAGE, VE_PAGE, 1), E(EBUSY));
		GUEST_ASSERT_EQ(access_of(0, VE_PAGE), KVM_ISOLATE_ACCESS_RWX);
		/* A domain's region is no #VE page: the CPU would write into it. */
		GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_DOMAIN_ADD_REGION, 2, F, 1, 3), 3);
		GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_VE_INFO, F, 0, 0, 0), E(EPERM));
		/* Unregistered, the page can be protected again. */
		GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_VE_INFO, -1ull, 0, 0, 0), 0);
		GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_SET_ACCESS, 1, VE_PAGE, 1, KVM_ISOLATE_ACCESS_R),
				KVM_ISOLATE_ACCESS_R);
		/* After lock, no new #VE page and no new #VE rights. */
		GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_LOCK, 0, 0, 0, 0), 0);
		GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_VE_INFO, T, 0, 0, 0), E(EPERM));
		GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_SET_ACCESS, 1, T, 1,
				   KVM_ISOLATE_ACCESS_R | KVM_ISOLATE_ACCESS_VE), E(EPERM));
		GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_VE_INFO, -1ull, 0, 0, 0), 0);
		GUEST_DONE();
		break;
	case ATTACK:
		/*
		 * Rogue code registers as its #VE page a page a module is about to
		 * protect as its region, and raises a #VE once it is protected.
		 */
		for (i = 0; i < PAGE_SIZE / 8; i++)
			((volatile u64 *)P)[i] = SECRET;
		((volatile u32 *)P)[1] = 0;		/* where the semaphore would be */
		guest_views();
		GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_VE_INFO, P, 0, 0, 0), 0);
		GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_DOMAIN_CREATE, 0, 0, 0, 0), 2);
		GUEST_SYNC(hc(KVM_HC_ISOLATE_DOMAIN_ADD_REGION, 2, P, 1, 3));
		vmfunc(1);
		*(volatile u64 *)T = 7;		/* #VE: its information goes to the page registered */
		GUEST_DONE();
		break;
	case NO_VE:
		GUEST_ASSERT(!(features & KVM_ISOLATE_FEATURE_VE));
		GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_VIEW_CREATE, 0, 0, 0, 0), 1);
		GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_VE_INFO, VE_PAGE, 0, 0, 0), E(EOPNOTSUPP));
		GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_SET_ACCESS, 1, T, 1,
				   KVM_ISOLATE_ACCESS_R | KVM_ISOLATE_ACCESS_VE), E(EOPNOTSUPP));
		GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_SET_ACCESS, 1, T, 1, KVM_ISOLATE_ACCESS_VE),
				E(EOPNOTSUPP));
		GUEST_ASSERT_EQ(access_of(1, T), KVM_ISOLATE_ACCESS_RWX);
		GUEST_DONE();
		break;
	case BENCH:
		guest_views();
		GUEST_SYNC2(0, 0);
		tsc = rdtsc();
		for (i = 0; i < N_OPS; i++) {
			vmfunc(1);
			*(volatile u64 *)T = i;		/* #VE, back in view 0 */
		}
		GUEST_SYNC2(1, rdtsc() - tsc);
		GUEST_ASSERT_EQ(ves, N_OPS);
		tsc = rdtsc();
		for (i = 0; i < N_OPS; i++) {
			vmfunc(1);
			*(volatile u64 *)T2 = i;	/* exit, the host switches to view 0 */
		}
		GUEST_SYNC2(2, rdtsc() - tsc);
		GUEST_ASSERT_EQ(ves, N_OPS);
		GUEST_DONE();
		break;
	}
	GUEST_FAIL("mode %lu went on", mode);
}

/* ---- host side ---- */

static u64 rdmsr_host(u32 msr)
{
	int fd = open("/dev/cpu/0/msr", O_RDONLY);
	u64 v = 0;

	if (fd < 0)
		return 0;
	if (pread(fd, &v, sizeof(v), msr) != sizeof(v))
		v = 0;
	close(fd);
	return v;
}

/* EPTP switching (IA32_VMX_VMFUNC bit 0) and EPT-violation #VE allowed (PROCBASED_CTLS2). */
static bool host_has_ve(void)
{
	return kvm_cpu_has(X86_FEATURE_VMX) && (rdmsr_host(0x491) & 1) &&
	       (rdmsr_host(0x48b) >> 32 & (1u << 18));
}

static struct kvm_vm *create_vm(struct kvm_vcpu **vcpu, enum mode mode)
{
	struct kvm_vm *vm = vm_create_with_one_vcpu(vcpu, guest_code);

	vm_userspace_mem_region_add(vm, VM_MEM_SRC_ANONYMOUS, SLOT_GPA, SLOT, SLOT_PAGES, 0);
	virt_map(vm, SLOT_GPA, SLOT_GPA, SLOT_PAGES);
	vm_install_exception_handler(vm, VE_VECTOR, ve_handler);
	vcpu_args_set(*vcpu, 1, mode);
	return vm;
}

FIXTURE(ve) {};

FIXTURE_SETUP(ve)
{
	if (access("/dev/kvm-isolate", F_OK))
		SKIP(return, "kvm_isolate is not loaded");
	if (!kvm_is_tdp_enabled())
		SKIP(return, "views need TDP");
}

FIXTURE_TEARDOWN(ve) {}

TEST_F(ve, delivered_without_an_exit_else_the_host_decides)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	u64 exits[6], violations[6];
	struct ucall uc;
	int i;

	if (!host_has_ve())
		SKIP(return, "needs VMX with EPTP switching and EPT-violation #VE: Bochs rig");
	vm = create_vm(&vcpu, DELIVERY);
	for (i = 0; i < 6; i++) {
		TEST_ASSERT_EQ(ki_run(vcpu, &uc), UCALL_SYNC);
		exits[i] = vcpu_get_stat(vcpu, exits);
		violations[i] = vcpu_get_stat(vcpu, isolate_violations);
	}
	TEST_ASSERT_EQ(ki_run(vcpu, &uc), UCALL_DONE);
	/* The #VE: no violation on the host, no exit but the ucall's (and a timer's). */
	TEST_ASSERT_EQ(violations[1], violations[0]);
	TEST_ASSERT(exits[1] - exits[0] <= 2, "%lu VM exits around a #VE", exits[1] - exits[0]);
	/* Busy page, page without #VE, no registered page: one host violation each. */
	for (i = 2; i < 5; i++)
		TEST_ASSERT_EQ(violations[i] - violations[i - 1], 1);
	/* Re-registered; and a first touch is mapped, not decided. */
	TEST_ASSERT_EQ(violations[5], violations[4]);
	kvm_vm_free(vm);
}

TEST_F(ve, bad_pages_and_arguments_change_nothing)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	struct ucall uc;

	if (!host_has_ve())
		SKIP(return, "needs VMX with EPTP switching and EPT-violation #VE: Bochs rig");
	vm = create_vm(&vcpu, REFUSED);
	TEST_ASSERT_EQ(ki_run(vcpu, &uc), UCALL_DONE);
	kvm_vm_free(vm);
}

TEST_F(ve, a_ve_page_never_becomes_a_domain_s_region)
{
	u64 *p, i, ret, changed = 0, first = 0;
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	struct ucall uc;

	if (!host_has_ve())
		SKIP(return, "needs VMX with EPTP switching and EPT-violation #VE: Bochs rig");
	vm = create_vm(&vcpu, ATTACK);
	TEST_ASSERT_EQ(ki_run(vcpu, &uc), UCALL_SYNC);
	ret = uc.args[1];
	TEST_ASSERT_EQ(ki_run(vcpu, &uc), UCALL_DONE);
	/*
	 * The CPU writes the #VE page around the views (reason 48, the gpa...):
	 * had the region been added, the module's data would now be those words.
	 * Refused, the page stays the rogue's own #VE page.
	 */
	p = addr_gpa2hva(vm, P);
	for (i = 0; i < PAGE_SIZE / 8; i++) {
		if (p[i] != (i ? SECRET : (u32)SECRET) && !changed++)
			first = p[i];
	}
	TEST_ASSERT(ret == E(EBUSY),
		    "a region over a #VE page: %ld, and #VE wrote %lu of its words (the first 0x%lx)",
		    (long)ret, changed, first);
	kvm_vm_free(vm);
}

TEST_F(ve, not_offered_without_hardware_ve)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	struct ucall uc;

	if (host_has_ve())
		SKIP(return, "the host offers #VE (checked by the other tests)");
	vm = create_vm(&vcpu, NO_VE);
	TEST_ASSERT_EQ(ki_run(vcpu, &uc), UCALL_DONE);
	kvm_vm_free(vm);
}

TEST_F(ve, cost_per_round_trip)
{
	static const char *const what[] = { "#VE", "EPT-violation exit" };
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	u64 exits[3], tsc[3];
	struct ucall uc;
	int i;

	if (!host_has_ve())
		SKIP(return, "needs VMX with EPTP switching and EPT-violation #VE: Bochs rig");
	vm = create_vm(&vcpu, BENCH);
	for (i = 0; i < 3; i++) {
		TEST_ASSERT_EQ(ki_run(vcpu, &uc), UCALL_SYNC);
		TEST_ASSERT_EQ(uc.args[0], i);
		exits[i] = vcpu_get_stat(vcpu, exits);
		tsc[i] = uc.args[1];
	}
	TEST_ASSERT_EQ(ki_run(vcpu, &uc), UCALL_DONE);
	for (i = 0; i < 2; i++)
		ksft_print_msg("per violation round trip (VMFUNC in, write, back to view 0), %s: "
			       "%.3f VM exits, %lu TSC (Bochs: instructions)\n", what[i],
			       (double)(exits[i + 1] - exits[i] - 1) / N_OPS, tsc[i + 1] / N_OPS);
	TEST_ASSERT(exits[1] - exits[0] < N_OPS / 10, "#VE: %lu exits", exits[1] - exits[0]);
	TEST_ASSERT(exits[2] - exits[1] >= N_OPS, "exits: %lu", exits[2] - exits[1]);
	kvm_vm_free(vm);
}

TEST_HARNESS_MAIN
