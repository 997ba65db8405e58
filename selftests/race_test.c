// SPDX-License-Identifier: GPL-2.0
/*
 * Stress tests for the races of kvm-isolate's views that a test cannot
 * force on a one-CPU rig, run hard enough that they would show if they were
 * likely (issue 9, items 3, 4 and 6; item 7's is gates_test's
 * profile_rebuilds_never_run_foreign_code_in_the_view):
 *
 *  - hugepage_rights_hold_while_views_change: vCPU 0 reads and writes all
 *    over a 2 MiB THP-backed range, which view 0 maps huge while none of it
 *    is restricted; vCPU 1 takes every right from one page of it and reads
 *    the page, which must fault (a huge mapping decided with the old rights
 *    must not outlive the change), then gives them back, again and again;
 *    the host turns dirty logging on and off all the while (eager splits,
 *    then huge pages recovered).  That splits keep a view's rights, X
 *    included, is bypass_test's split_huge_pages_keep_the_view_rights.
 *  - control_plane_survives_vm_teardown: VMs with a domain are created and
 *    destroyed one after the other while a host thread runs every
 *    /dev/kvm-isolate request on each VM the control plane lists, including
 *    PROFILE_SET, which zaps the VM's views.  Each request succeeds or finds
 *    the VM gone (ENOENT); nothing else.  The sanitizer rig runs this with
 *    KASAN and kmemleak.
 *
 * KI_RACE_ROUNDS scales both (default 200 rounds of vCPU 1, 41 VMs; each test may take
 * up to 600 s).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/kvm_isolate.h>
#include <linux/sizes.h>

#include "kvm_util.h"
#include "processor.h"
#include "ucall_common.h"
#include "kselftest_harness.h"
#include "ctl.h"

#define SLOT		10
#define H		SZ_1G			/* the 2 MiB range, 2 MiB aligned */
#define H_PAGES		(SZ_2M / PAGE_SIZE)
#define Q		(H + SZ_1M)		/* the page vCPU 1 toggles */
#define STRIDE		(64 * PAGE_SIZE)	/* vCPU 0 touches a page per stride */
#define RW		(KVM_ISOLATE_ACCESS_R | KVM_ISOLATE_ACCESS_W)
#define RWX		(RW | KVM_ISOLATE_ACCESS_X)

/* No state: a fixture only for the timeout, which scales with KI_RACE_ROUNDS. */
FIXTURE(race) {};
FIXTURE_SETUP(race) {}
FIXTURE_TEARDOWN(race) {}

static u64 hc(u64 nr, u64 a0, u64 a1, u64 a2, u64 a3)
{
	return kvm_hypercall(nr, a0, a1, a2, a3);
}

/* ---- hugepage_rights_hold_while_views_change, guest side ---- */

static volatile u64 race_done;

static void reader(void)
{
	u64 passes = 0, a;

	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_ON_VIOLATION, KVM_ISOLATE_ON_VIOLATION_GP, 0, 0, 0), 0);
	GUEST_SYNC(0);
	while (!READ_ONCE(race_done)) {
		for (a = H; a < H + SZ_2M; a += STRIDE) {
			if (a == Q)
				continue;
			*(volatile u64 *)(a + 8) = *(volatile u64 *)a + passes;
		}
		/* An exit per pass, so that the threads interleave often on a one-CPU host. */
		GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_QUERY, KVM_ISOLATE_QUERY_VIEW, 0, 0, 0), 0);
		passes++;
	}
	GUEST_SYNC_ARGS(passes, 0, 0, 0, 0);
	GUEST_DONE();
}

/* vCPU 1: Q loses every right, must fault, gets them all back (unrestricted); @n times. */
static void toggler(u64 n)
{
	u64 i, leaks = 0, denied_rw = 0;
	u8 vec;

	for (i = 0; i < n; i++) {
		GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_SET_ACCESS, 0, Q, 1, 0), 0);
		vec = kvm_asm_safe("mov (%[q]), %%r11", [q] "r"((u64)Q));
		leaks += vec != GP_VECTOR;
		GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_SET_ACCESS, 0, Q, 1, RWX), RWX);
		vec = kvm_asm_safe("mov (%[q]), %%r11", [q] "r"((u64)Q));
		denied_rw += vec != 0;
	}
	WRITE_ONCE(race_done, 1);
	GUEST_SYNC_ARGS(leaks, denied_rw, 0, 0, 0);
	GUEST_DONE();
}

/* ---- host side ---- */

struct runner {
	struct kvm_vcpu *vcpu;
	u64 args[2];	/* the final GUEST_SYNC's first two arguments */
	volatile bool done;
};

/*
 * Where a vCPU that stopped otherwise than by a ucall was, and what the policy
 * logged for the VM: to tell a denial from anything else should it happen.
 */
static void report_stop(struct kvm_vcpu *vcpu)
{
	static struct kvm_isolate_ctl_record recs[64];
	struct kvm_regs regs;
	int fd = open("/dev/kvm-isolate", O_RDWR);
	u32 i, n;

	vcpu_regs_get(vcpu, &regs);
	ksft_print_msg("vCPU %u stopped at rip %#llx, rsp %#llx\n", vcpu->id, regs.rip, regs.rsp);
	if (fd < 0)
		return;
	n = __ki_ctl_get(fd, KVM_ISOLATE_CTL_LOG_READ, ki_my_vm(fd), recs, 64);
	ksft_print_msg("%u records in the VM's log\n", n);
	for (i = 0; i < n && i < 64; i++)
		ksft_print_msg("vCPU %u view %u rip %#llx gpa %#llx access %u verdict %u, %llu times\n",
			       recs[i].vcpu, recs[i].view, recs[i].rip, recs[i].gpa,
			       recs[i].access, recs[i].verdict, recs[i].count);
	close(fd);
}

/* Runs a vCPU to GUEST_DONE, keeping its last GUEST_SYNC's arguments. */
static void *run_vcpu(void *p)
{
	struct runner *r = p;
	struct ucall uc;

	for (;;) {
		vcpu_run(r->vcpu);
		if (r->vcpu->run->exit_reason != KVM_EXIT_IO)
			report_stop(r->vcpu);
		TEST_ASSERT(r->vcpu->run->exit_reason == KVM_EXIT_IO, "vCPU %u: exit %s",
			    r->vcpu->id, exit_reason_str(r->vcpu->run->exit_reason));
		switch (get_ucall(r->vcpu, &uc)) {
		case UCALL_SYNC:
			r->args[0] = uc.args[1];
			r->args[1] = uc.args[2];
			break;
		case UCALL_DONE:
			WRITE_ONCE(r->done, true);
			return NULL;
		case UCALL_ABORT:
			REPORT_GUEST_ASSERT(uc);
			break;
		default:
			TEST_FAIL("vCPU %u: unexpected ucall", r->vcpu->id);
		}
	}
}

TEST_F_TIMEOUT(race, hugepage_rights_hold_while_views_change, 600)
{
	struct runner r0 = {}, r1 = {};
	pthread_t t0, t1;
	struct kvm_vm *vm;
	u64 flips = 0, h0, huge, huge_max = 0, rounds = ki_race_rounds();

	vm = vm_create_with_one_vcpu(&r0.vcpu, reader);
	r1.vcpu = vm_vcpu_add(vm, 1, toggler);
	vcpu_args_set(r1.vcpu, 1, rounds);
	vm_userspace_mem_region_add(vm, VM_MEM_SRC_ANONYMOUS_THP, H, SLOT, H_PAGES, 0);
	virt_map(vm, H, H, H_PAGES);

	vcpu_run(r0.vcpu);
	TEST_ASSERT_EQ(get_ucall(r0.vcpu, NULL), UCALL_SYNC);
	h0 = vm_get_stat(vm, pages_2m);
	TEST_ASSERT_EQ(pthread_create(&t0, NULL, run_vcpu, &r0), 0);
	TEST_ASSERT_EQ(pthread_create(&t1, NULL, run_vcpu, &r1), 0);
	while (!READ_ONCE(r1.done)) {
		/* 2M mappings of the range come back after each flip, while Q is unrestricted. */
		usleep(1000);
		huge = vm_get_stat(vm, pages_2m) - h0;
		huge_max = huge > huge_max && huge < (1ull << 63) ? huge : huge_max;
		vm_mem_region_set_flags(vm, SLOT, KVM_MEM_LOG_DIRTY_PAGES);
		vm_mem_region_set_flags(vm, SLOT, 0);
		flips++;
	}
	pthread_join(t1, NULL);
	pthread_join(t0, NULL);
	ksft_print_msg("%lu rounds of vCPU 1 against %lu passes of vCPU 0, %lu dirty-log flips, up to %lu 2M mappings\n",
		       rounds, r0.args[0], flips, huge_max);
	TEST_ASSERT(r1.args[0] == 0, "%lu of %lu reads of a page without rights went through",
		    r1.args[0], rounds);
	TEST_ASSERT(r1.args[1] == 0, "%lu of %lu reads of a page given its rights back faulted",
		    r1.args[1], rounds);
	TEST_ASSERT(r0.args[0], "vCPU 0 made no pass over the range");
	TEST_ASSERT(flips, "dirty logging never changed during the race");
	kvm_vm_free(vm);
	if (!huge_max)
		SKIP(return, "no 2M mapping was made (no THP behind the range): no level race");
}

/* ---- control_plane_survives_vm_teardown ---- */

/* A VM with a domain (and so a domain view for PROFILE_SET to rebuild). */
static void churn_guest(u64 gpa)
{
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_DOMAIN_CREATE, 0, 0, 0, 0), 1);
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_DOMAIN_ADD_REGION, 1, gpa, 1, RW), RW);
	GUEST_DONE();
}

struct prober {
	int fd;
	volatile bool stop;
	u64 calls, gone;
	int bad_errno;
	const char *bad;
};

/* One request on VM @id: fine if it worked or the VM is gone, else noted. */
static void probe(struct prober *p, const char *what, unsigned long nr, void *arg)
{
	p->calls++;
	if (!ioctl(p->fd, nr, arg))
		return;
	if (errno == ENOENT) {
		p->gone++;
		return;
	}
	if (!p->bad) {
		p->bad = what;
		p->bad_errno = errno;
	}
}

static void *prober(void *arg)
{
	static struct kvm_isolate_ctl_vm vms[KI_CTL_MAX_VMS];
	struct kvm_isolate_ctl_record recs[8];
	struct kvm_isolate_ctl_domain doms[4];
	struct kvm_isolate_ctl_entry ents[4];
	struct kvm_isolate_ctl_rule rules[4];
	struct prober *p = arg;
	u32 i, n;

	while (!READ_ONCE(p->stop)) {
		n = ki_ctl_get(p->fd, KVM_ISOLATE_CTL_LIST, 0, vms, KI_CTL_MAX_VMS);
		for (i = 0; i < n; i++) {
			u32 id = vms[i].id;
			struct kvm_isolate_ctl_array a;
			struct kvm_isolate_ctl_mode m = {
				.vm = id, .mode = KVM_ISOLATE_MODE_ENFORCE, .deny = ~0u,
			};

			if (vms[i].pid != (u32)getpid())
				continue;
			a = (struct kvm_isolate_ctl_array){ id, 4, (u64)doms };
			probe(p, "DOMAINS", KVM_ISOLATE_CTL_DOMAINS, &a);
			a = (struct kvm_isolate_ctl_array){ id, 4, (u64)rules };
			probe(p, "PROFILE_GET", KVM_ISOLATE_CTL_PROFILE_GET, &a);
			a = (struct kvm_isolate_ctl_array){ id, 0, 0 };
			probe(p, "PROFILE_SET", KVM_ISOLATE_CTL_PROFILE_SET, &a);
			a = (struct kvm_isolate_ctl_array){ id, 4, (u64)ents };
			probe(p, "ENTRIES_GET", KVM_ISOLATE_CTL_ENTRIES_GET, &a);
			a = (struct kvm_isolate_ctl_array){ id, 8, (u64)recs };
			probe(p, "LOG_READ", KVM_ISOLATE_CTL_LOG_READ, &a);
			probe(p, "SET_MODE", KVM_ISOLATE_CTL_SET_MODE, &m);
		}
	}
	return NULL;
}

TEST_F_TIMEOUT(race, control_plane_survives_vm_teardown, 600)
{
	struct prober p = {};
	struct kvm_isolate_ctl_vm *vms;
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	u64 i, page, nvms = ki_race_rounds() / 5 + 1;
	pthread_t t;
	u32 n, left = 0;

	p.fd = open("/dev/kvm-isolate", O_RDWR);
	TEST_ASSERT(p.fd >= 0, "open /dev/kvm-isolate: %s", strerror(errno));
	TEST_ASSERT_EQ(pthread_create(&t, NULL, prober, &p), 0);
	for (i = 0; i < nvms; i++) {
		vm = vm_create_with_one_vcpu(&vcpu, churn_guest);
		page = vm_alloc_page(vm);
		vcpu_args_set(vcpu, 1, addr_gva2gpa(vm, page));
		vcpu_run(vcpu);
		TEST_ASSERT_EQ(get_ucall(vcpu, NULL), UCALL_DONE);
		kvm_vm_free(vm);
	}
	WRITE_ONCE(p.stop, true);
	pthread_join(t, NULL);
	vms = ki_list_vms(p.fd, &n);
	for (i = 0; i < n; i++)
		left += vms[i].pid == (u32)getpid();
	free(vms);
	close(p.fd);
	ksft_print_msg("%lu VMs created and destroyed under %lu control-plane requests (%lu found the VM gone)\n",
		       nvms, p.calls, p.gone);
	TEST_ASSERT(!p.bad, "%s failed with errno %d (%s), want success or ENOENT", p.bad,
		    p.bad_errno, strerror(p.bad_errno));
	TEST_ASSERT(left == 0, "%u destroyed VMs are still listed", left);
	TEST_ASSERT(p.calls, "no request ran while VMs came and went");
}

TEST_HARNESS_MAIN
