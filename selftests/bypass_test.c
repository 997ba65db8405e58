// SPDX-License-Identifier: GPL-2.0
/*
 * Ways around a memory view, each written as an attack by guest code that is
 * not allowed to see a protected page: KVM's own accesses to guest memory on
 * the guest's behalf (the instruction emulator's fetch, its locked
 * write-back and descriptor stores, its software page walker, kvmclock,
 * steal time, KVM_HC_CLOCK_PAIRING) and nested virtualization.  Every test
 * checks that the secret neither reaches the attacker nor changes, and
 * that the denial is counted as a view violation.
 *
 * The secret lives at S0 in view 1; view 0, where the attacker runs, has no
 * rights on it (or R only, for the write attacks).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <linux/kvm_isolate.h>
#include <linux/sizes.h>

#include "kvm_util.h"
#include "processor.h"
#include "ucall_common.h"
#include "kselftest_harness.h"

#define SLOT		10
#define SLOT_GPA	(SZ_1G - SZ_2M)
#define SLOT_PAGES	(SZ_4M / PAGE_SIZE)
#define S0		(SZ_1G - PAGE_SIZE)	/* the protected page */
#define CODE		(S0 - PAGE_SIZE)	/* view 0's page just below it */
#define SECRET		0x5ec2e7c0ffee1234ull
/* A secret that also reads as a present page-table entry (bit 0). */
#define SECRET_PTE	0x000000003ee11003ull	/* P, RW; A and D clear */
#define SCRATCH		(SZ_1G + 8 * PAGE_SIZE)	/* unprotected */

#define E(x)		((u64)-(KVM_ISOLATE_##x))
#define KVM_HC_CLOCK_PAIRING_NR		9
#define KVM_ENOSYS_RET			((u64)-1000)

enum mode {
	FETCH, CMPXCHG, SGDT, PAGE_WALK, KVMCLOCK, KVMCLOCK_BEFORE, STEAL_TIME,
	CLOCK_PAIRING, NESTED_AFTER_VIEWS, VIEWS_AFTER_NESTED, SPLIT,
};

/*
 * A protected module's code page: enter its view by touching its region,
 * then touch @b (ki_split_touch) or call @b (ki_split_call) from there.
 */
asm(".pushsection .text.ki_split, \"ax\"\n"
    ".balign 4096\n"
    ".global ki_split_touch\n"
    "ki_split_touch: mov (%rdi), %rax\n mov (%rsi), %rcx\n ret\n"
    ".global ki_split_call\n"
    "ki_split_call: mov (%rdi), %rax\n call *%rsi\n ret\n"
    ".balign 4096\n"
    ".popsection\n");

u64 ki_split_touch(u64 region, u64 b);
u64 ki_split_call(u64 region, u64 b);

/* Foreign code in a 2M range of its own: reads the region for its caller. */
#define FOREIGN		(SZ_1G + SZ_1M)
static u64 owner_gpa;

static u64 hc(u64 nr, u64 a0, u64 a1, u64 a2, u64 a3)
{
	return kvm_hypercall(nr, a0, a1, a2, a3);
}

static u64 sw(u64 view)
{
	return hc(KVM_HC_ISOLATE_SWITCH, view, 0, 0, 0);
}

/* View 1 holds @secret at S0; view 0 gets @view0 rights there; #GP on violations. */
static void guest_hide(u64 secret, u64 view0)
{
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_VIEW_CREATE, 0, 0, 0, 0), 1);
	GUEST_ASSERT_EQ(sw(1), 0);
	*(volatile u64 *)S0 = secret;
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_SET_ACCESS, 0, S0, 1, view0), view0);
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_ON_VIOLATION, KVM_ISOLATE_ON_VIOLATION_GP,
			   0, 0, 0), 0);
	GUEST_ASSERT_EQ(sw(0), 1);
}

/* The owner's view of the secret, reported to the host. */
static void guest_report_secret(void)
{
	u64 v;

	GUEST_ASSERT_EQ(sw(1), 0);
	v = *(volatile u64 *)S0;
	GUEST_ASSERT_EQ(sw(0), 1);
	GUEST_SYNC(v);
}

static volatile u64 gp_rax, gp_rip;

static void landing(void)
{
	guest_report_secret();
	GUEST_DONE();
}

/* A #GP from the view policy: note what the attacker holds, then land. */
static void gp_handler(struct ex_regs *regs)
{
	gp_rax = regs->rax;
	gp_rip = regs->rip;
	regs->rip = (u64)landing;
}

static void guest_code(u64 mode)
{
	u64 v, efer;
	u8 vec;

	switch (mode) {
	case FETCH:
		/*
		 * FEP + movabs $imm64, %rax ends at the page boundary: the
		 * immediate is the protected page's first 8 bytes.  The
		 * emulator fetches them unless it honours the view.
		 */
		memcpy((void *)(S0 - 7), "\x0f\x0bkvm\x48\xb8", 7);
		guest_hide(SECRET, 0);
		asm volatile("xor %%eax, %%eax; call *%[f]"
			     : : [f] "r"(S0 - 7) : "rax", "memory");
		break;
	case CMPXCHG:
		guest_hide(SECRET, KVM_ISOLATE_ACCESS_R);
		GUEST_ASSERT_EQ(*(volatile u64 *)S0, SECRET);	/* R is allowed */
		vec = kvm_asm_safe_fep("lock cmpxchgq %[n], (%[p])",
				       "a"(SECRET), [n] "r"(0xbadull), [p] "r"(S0));
		GUEST_SYNC(vec);
		guest_report_secret();
		GUEST_DONE();
		break;
	case SGDT:
		guest_hide(SECRET, KVM_ISOLATE_ACCESS_R);
		vec = kvm_asm_safe_fep("sgdt (%[p])", [p] "r"(S0));
		GUEST_SYNC(vec);
		guest_report_secret();
		GUEST_DONE();
		break;
	case PAGE_WALK:
		guest_hide(SECRET_PTE, 0);
		GUEST_SYNC(0);
		/* The host made S0 the page table of [SLOT_GPA, SLOT_GPA + 2M). */
		vec = kvm_asm_safe_fep("cmpb $0, (%[p])", [p] "r"(SLOT_GPA));
		GUEST_SYNC(vec);		/* the host puts the PDE back */
		guest_report_secret();
		GUEST_DONE();
		break;
	case KVMCLOCK:
		guest_hide(SECRET, 0);
		wrmsr(MSR_KVM_SYSTEM_TIME_NEW, S0 | 1);
		GUEST_SYNC(0);			/* host sets the clock */
		guest_report_secret();
		GUEST_DONE();
		break;
	case KVMCLOCK_BEFORE:
		wrmsr(MSR_KVM_SYSTEM_TIME_NEW, S0 | 1);
		GUEST_SYNC(0);
		guest_hide(SECRET, 0);
		GUEST_SYNC(0);			/* host sets the clock */
		guest_report_secret();
		GUEST_DONE();
		break;
	case STEAL_TIME:
		guest_hide(SECRET, 0);
		vec = wrmsr_safe(MSR_KVM_STEAL_TIME, S0 | KVM_MSR_ENABLED);
		GUEST_SYNC(vec);		/* re-entry records steal time */
		guest_report_secret();
		GUEST_DONE();
		break;
	case CLOCK_PAIRING:
		guest_hide(SECRET, 0);
		/* Does the host's clock allow pairing at all? */
		v = hc(KVM_HC_CLOCK_PAIRING_NR, SCRATCH, KVM_CLOCK_PAIRING_WALLCLOCK, 0, 0);
		GUEST_SYNC(v);
		v = hc(KVM_HC_CLOCK_PAIRING_NR, S0, KVM_CLOCK_PAIRING_WALLCLOCK, 0, 0);
		GUEST_SYNC(v);
		guest_report_secret();
		GUEST_DONE();
		break;
	case NESTED_AFTER_VIEWS:
		guest_hide(SECRET, 0);
		if (this_cpu_has(X86_FEATURE_VMX))
			vec = kvm_asm_safe("mov %[v], %%cr4",
					   [v] "r"(get_cr4() | X86_CR4_VMXE));
		else
			vec = wrmsr_safe(MSR_EFER, rdmsr(MSR_EFER) | EFER_SVME);
		GUEST_SYNC(vec);
		GUEST_DONE();
		break;
	case SPLIT:
		/* The host wrote the foreign code: only the module's view maps its 2M. */
		GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_DOMAIN_CREATE, 0, 0, 0, 0), 1);
		GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_DOMAIN_ADD_CODE, 1, (u64)ki_split_touch,
				   owner_gpa, 1), 0);
		GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_DOMAIN_ADD_ENTRY, 1, (u64)ki_split_touch, 0, 0), 0);
		GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_DOMAIN_ADD_ENTRY, 1, (u64)ki_split_call, 0, 0), 0);
		GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_DOMAIN_ADD_REGION, 1, S0, 1, 3), 3);
		GUEST_SYNC(0);
		/* In the module's view, the foreign range is mapped huge, RW, not X. */
		ki_split_touch(S0, FOREIGN + 64);
		GUEST_SYNC(0);		/* the host starts dirty logging: huge pages split */
		/* Must leave the module's view at the first foreign instruction. */
		GUEST_SYNC(ki_split_call(S0, FOREIGN));
		break;
	case VIEWS_AFTER_NESTED:
		if (this_cpu_has(X86_FEATURE_VMX)) {
			set_cr4(get_cr4() | X86_CR4_VMXE);
		} else {
			efer = rdmsr(MSR_EFER);
			wrmsr(MSR_EFER, efer | EFER_SVME);
		}
		GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_PROBE, 0, 0, 0, 0), KVM_ISOLATE_MAGIC);
		GUEST_SYNC(hc(KVM_HC_ISOLATE_VIEW_CREATE, 0, 0, 0, 0));
		GUEST_SYNC(hc(KVM_HC_ISOLATE_DOMAIN_CREATE, 0, 0, 0, 0));
		GUEST_DONE();
		break;
	}
	GUEST_FAIL("mode %lu went on after a denied access", mode);
}

static struct kvm_vm *create_vm(struct kvm_vcpu **vcpu, enum mode mode)
{
	struct kvm_vm *vm = vm_create_with_one_vcpu(vcpu, guest_code);

	vm_userspace_mem_region_add(vm, VM_MEM_SRC_ANONYMOUS, SLOT_GPA, SLOT, SLOT_PAGES, 0);
	virt_map(vm, SLOT_GPA, SLOT_GPA, SLOT_PAGES);
	if (mode == FETCH)
		vm_install_exception_handler(vm, GP_VECTOR, gp_handler);
	vcpu_args_set(*vcpu, 1, mode);
	owner_gpa = addr_gva2gpa(vm, (u64)ki_split_touch);
	sync_global_to_guest(vm, owner_gpa);
	return vm;
}

/* Runs to the next ucall, which must be @want; returns its first argument. */
static u64 run_to(struct kvm_vcpu *vcpu, u64 want)
{
	struct ucall uc;
	u64 cmd;

	vcpu_run(vcpu);
	TEST_ASSERT(vcpu->run->exit_reason == KVM_EXIT_IO,
		    "unexpected exit %s (gpa 0x%llx)", exit_reason_str(vcpu->run->exit_reason),
		    vcpu->run->exit_reason == KVM_EXIT_MMIO ? vcpu->run->mmio.phys_addr : 0);
	cmd = get_ucall(vcpu, &uc);
	if (cmd == UCALL_ABORT)
		REPORT_GUEST_ASSERT(uc);
	TEST_ASSERT_EQ(cmd, want);
	return uc.args[1];
}

/* The owner's secret as the guest's owner view reads it; then the guest is done. */
static void expect_secret(struct kvm_vcpu *vcpu, u64 secret)
{
	u64 seen = run_to(vcpu, UCALL_SYNC);

	TEST_ASSERT(seen == secret, "the secret changed: 0x%lx, want 0x%lx", seen, secret);
	run_to(vcpu, UCALL_DONE);
}

static u64 violations(struct kvm_vcpu *vcpu)
{
	return vcpu_get_stat(vcpu, isolate_violations);
}

#define FEP_PARAM "/sys/module/kvm/parameters/force_emulation_prefix"

/* Forced emulation on for the test (restored by fep_off). */
static int fep_on(char *old, size_t n)
{
	int fd = open(FEP_PARAM, O_RDWR);

	if (fd < 0)
		return -1;
	memset(old, 0, n);
	TEST_ASSERT(read(fd, old, n - 1) > 0, "read " FEP_PARAM);
	TEST_ASSERT(pwrite(fd, "1", 1, 0) == 1, "write " FEP_PARAM);
	return fd;
}

static void fep_off(int fd, const char *old)
{
	pwrite(fd, old, strlen(old), 0);
	close(fd);
}

FIXTURE(fep) {
	int fd;
	char old[16];
};

FIXTURE_SETUP(fep)
{
	self->fd = fep_on(self->old, sizeof(self->old));
	if (self->fd < 0)
		SKIP(return, "no %s", FEP_PARAM);
}

FIXTURE_TEARDOWN(fep)
{
	if (self->fd >= 0)
		fep_off(self->fd, self->old);
}

TEST_F(fep, emulator_fetch_does_not_read_a_protected_page)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = create_vm(&vcpu, FETCH);
	u64 rax, rip;

	expect_secret(vcpu, SECRET);		/* reported from landing() */
	rax = *(u64 *)addr_gva2hva(vm, (u64)&gp_rax);
	rip = *(u64 *)addr_gva2hva(vm, (u64)&gp_rip);
	TEST_ASSERT(rax != SECRET,
		    "the emulator fetched the protected bytes into rax (#GP at 0x%lx)", rip);
	/* Denied at the emulated instruction (after the prefix), not after it. */
	TEST_ASSERT_EQ(rip, S0 - 2);
	TEST_ASSERT_EQ(violations(vcpu), 1);
	kvm_vm_free(vm);
}

/* The emulated write raised the policy's #GP, once, and stored nothing. */
static void expect_write_denied(enum mode mode)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = create_vm(&vcpu, mode);

	TEST_ASSERT_EQ(run_to(vcpu, UCALL_SYNC), GP_VECTOR);
	TEST_ASSERT_EQ(violations(vcpu), 1);
	expect_secret(vcpu, SECRET);
	kvm_vm_free(vm);
}

TEST_F(fep, emulator_locked_cmpxchg_honours_write_rights)
{
	expect_write_denied(CMPXCHG);
}

TEST_F(fep, emulator_descriptor_store_honours_write_rights)
{
	expect_write_denied(SGDT);
}

/* The page-directory entry that maps @gva (4-level paging, identity page tables). */
static u64 *pde_of(struct kvm_vm *vm, u64 gva)
{
	u64 *t = addr_gpa2hva(vm, vm->mmu.pgd);

	t = addr_gpa2hva(vm, t[(gva >> 39) & 511] & PHYSICAL_PAGE_MASK);
	t = addr_gpa2hva(vm, t[(gva >> 30) & 511] & PHYSICAL_PAGE_MASK);
	return &t[(gva >> 21) & 511];
}

TEST_F(fep, emulator_page_walk_does_not_use_a_protected_page)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = create_vm(&vcpu, PAGE_WALK);
	u64 *pde, old;
	u64 vec;

	if (vm->mmu.pgtable_levels != 4) {
		kvm_vm_free(vm);
		SKIP(return, "needs 4-level guest paging");
	}
	/* [SLOT_GPA, SLOT_GPA + 2M) now takes its page table from S0. */
	run_to(vcpu, UCALL_SYNC);
	pde = pde_of(vm, SLOT_GPA);
	old = *pde;
	TEST_ASSERT(old & PTE_PRESENT_MASK(&vm->mmu), "no PDE");
	*pde = S0 | PTE_PRESENT_MASK(&vm->mmu) | PTE_WRITABLE_MASK(&vm->mmu);
	/* KVM's walker must neither translate through the secret nor set its A bit. */
	vec = run_to(vcpu, UCALL_SYNC);
	*pde = old;
	TEST_ASSERT_EQ(vec, GP_VECTOR);
	TEST_ASSERT_EQ(violations(vcpu), 1);
	expect_secret(vcpu, SECRET_PTE);
	kvm_vm_free(vm);
}

TEST(kvmclock_is_not_written_into_a_protected_page)
{
	struct kvm_clock_data clock = {};
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = create_vm(&vcpu, KVMCLOCK);

	TEST_REQUIRE(kvm_has_cap(KVM_CAP_ADJUST_CLOCK));
	run_to(vcpu, UCALL_SYNC);
	vm_ioctl(vm, KVM_SET_CLOCK, &clock);	/* every vCPU updates its kvmclock */
	expect_secret(vcpu, SECRET);
	kvm_vm_free(vm);
}

TEST(kvmclock_registered_before_protection_stops_writing)
{
	struct kvm_clock_data clock = {};
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = create_vm(&vcpu, KVMCLOCK_BEFORE);

	TEST_REQUIRE(kvm_has_cap(KVM_CAP_ADJUST_CLOCK));
	run_to(vcpu, UCALL_SYNC);
	/* KVM did write the page while it was not protected. */
	TEST_ASSERT(*(u32 *)addr_gpa2hva(vm, S0) != 0, "kvmclock never written");
	run_to(vcpu, UCALL_SYNC);
	vm_ioctl(vm, KVM_SET_CLOCK, &clock);
	expect_secret(vcpu, SECRET);
	kvm_vm_free(vm);
}

TEST(steal_time_is_not_written_into_a_protected_page)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = create_vm(&vcpu, STEAL_TIME);
	u64 vec = run_to(vcpu, UCALL_SYNC);

	if (vec == GP_VECTOR) {
		kvm_vm_free(vm);
		SKIP(return, "the host refuses MSR_KVM_STEAL_TIME (no CONFIG_SCHED_INFO)");
	}
	TEST_ASSERT_EQ(vec, 0);
	expect_secret(vcpu, SECRET);
	kvm_vm_free(vm);
}

TEST(clock_pairing_is_not_written_into_a_protected_page)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = create_vm(&vcpu, CLOCK_PAIRING);
	u64 ret = run_to(vcpu, UCALL_SYNC);

	if (ret != 0) {
		kvm_vm_free(vm);
		SKIP(return, "KVM_HC_CLOCK_PAIRING unavailable here (%ld): host clock is not the TSC",
		     (long)ret);
	}
	TEST_ASSERT_EQ(run_to(vcpu, UCALL_SYNC), (u64)-KVM_EFAULT);
	expect_secret(vcpu, SECRET);
	kvm_vm_free(vm);
}

#define NX_HUGE "/sys/module/kvm/parameters/nx_huge_pages"

/*
 * With the NX hugepage mitigation on, splitting a huge SPTE to 4K used to
 * make every child executable if the root's role allowed it: in a module's
 * view, whose pages are not executable except the module's code, foreign
 * code then ran with the module's rights.
 */
TEST(split_huge_pages_keep_the_view_rights)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	char old[16] = "";
	u64 h0, huge, split, ret;
	int fd = open(NX_HUGE, O_RDWR);

	if (fd < 0 || read(fd, old, sizeof(old) - 1) <= 0 || pwrite(fd, "force", 5, 0) != 5)
		SKIP(return, "cannot force %s", NX_HUGE);
	vm = vm_create_with_one_vcpu(&vcpu, guest_code);
	vm_userspace_mem_region_add(vm, VM_MEM_SRC_ANONYMOUS_THP, SLOT_GPA, SLOT, SLOT_PAGES, 0);
	virt_map(vm, SLOT_GPA, SLOT_GPA, SLOT_PAGES);
	vcpu_args_set(vcpu, 1, SPLIT);
	owner_gpa = addr_gva2gpa(vm, (u64)ki_split_touch);
	sync_global_to_guest(vm, owner_gpa);
	*(u64 *)addr_gpa2hva(vm, S0) = SECRET;
	memcpy(addr_gpa2hva(vm, FOREIGN), "\x48\x8b\x07\xc3", 4);	/* mov (%rdi), %rax; ret */

	run_to(vcpu, UCALL_SYNC);
	h0 = vm_get_stat(vm, pages_2m);
	run_to(vcpu, UCALL_SYNC);
	huge = vm_get_stat(vm, pages_2m);	/* + the module view's mapping of FOREIGN */
	vm_mem_region_set_flags(vm, SLOT, KVM_MEM_LOG_DIRTY_PAGES);
	split = vm_get_stat(vm, pages_2m);
	ksft_print_msg("2M mappings: %lu, %lu after the module's touch, %lu after dirty logging\n",
		       h0, huge, split);
	ret = _vcpu_run(vcpu);
	pwrite(fd, old, strlen(old), 0);
	close(fd);
	if (huge <= h0 || split >= huge) {
		kvm_vm_free(vm);
		SKIP(return, "the module's view got no 2M mapping to split (no THP or eager split)");
	}
	/* The foreign read runs in view 0 and is denied there (deny by exit). */
	TEST_ASSERT(ret == -1 && errno == EFAULT && vcpu->run->exit_reason == KVM_EXIT_MEMORY_FAULT,
		    "foreign code ran in the module's view (exit %s, ucall arg 0x%lx)",
		    exit_reason_str(vcpu->run->exit_reason),
		    vcpu->run->exit_reason == KVM_EXIT_IO ?
		    ({ struct ucall uc; get_ucall(vcpu, &uc); uc.args[1]; }) : 0ul);
	TEST_ASSERT_EQ(vcpu->run->memory_fault.gpa, S0);
	kvm_vm_free(vm);
}

static bool guest_can_nest(struct kvm_vcpu *vcpu)
{
	return vcpu_cpuid_has(vcpu, X86_FEATURE_VMX) || vcpu_cpuid_has(vcpu, X86_FEATURE_SVM);
}

TEST(nested_virtualization_is_refused_in_a_vm_with_views)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = create_vm(&vcpu, NESTED_AFTER_VIEWS);

	if (!guest_can_nest(vcpu)) {
		kvm_vm_free(vm);
		SKIP(return, "KVM offers its guests neither VMX nor SVM (nested=0)");
	}
	/* CR4.VMXE or EFER.SVME: the first step to an L2 guest. */
	TEST_ASSERT_EQ(run_to(vcpu, UCALL_SYNC), GP_VECTOR);
	run_to(vcpu, UCALL_DONE);
	kvm_vm_free(vm);
}

TEST(views_are_refused_in_a_vm_using_nested_virtualization)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = create_vm(&vcpu, VIEWS_AFTER_NESTED);

	if (!guest_can_nest(vcpu)) {
		kvm_vm_free(vm);
		SKIP(return, "KVM offers its guests neither VMX nor SVM (nested=0)");
	}
	TEST_ASSERT_EQ(run_to(vcpu, UCALL_SYNC), E(EOPNOTSUPP));
	TEST_ASSERT_EQ(run_to(vcpu, UCALL_SYNC), E(EOPNOTSUPP));
	run_to(vcpu, UCALL_DONE);
	kvm_vm_free(vm);
}

int main(int argc, char **argv)
{
	TEST_REQUIRE(kvm_is_tdp_enabled());
	return test_harness_run(argc, argv);
}
