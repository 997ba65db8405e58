// SPDX-License-Identifier: GPL-2.0
/*
 * kvm-isolate at the scale of a real guest: one VM with 160 domains, each
 * with scattered code and several regions, all enforced.
 *
 * Each domain is a tiny "module" of two code pages, a read function and a
 * write function, that are neither adjacent in guest-physical memory (domain
 * d has pages d and d + 160 of one block) nor in guest-virtual memory, and
 * three one-page regions (pages d, d + 160 and d + 320 of another block).
 * The guest registers them all (code, regions, entry points) in enforce
 * mode and finds the 161 views in the QUERY_VIEWS bitmap.  Then each owner
 * writes a secret into each of its regions through its write function and
 * reads it back through its read function.  Then 480 attacks, all of which
 * must be denied: view 0 code reads region (d, 0) of every domain d, and
 * domains (d + 1) % 160 and (d + 80) % 160 read regions (d, 0) and (d, 2)
 * with their own read functions.
 *
 * The VM keeps the default violation action, an exit to user space:
 * KVM_RUN fails with a memory-fault exit naming the page.  The host checks
 * that the page is the one under attack, skips the 3-byte read and makes it
 * return POISON, which the guest checks it got instead of the secret.
 *
 * Along the way the host prints its memory (second-level page tables and
 * slab) with 0, 1, 16 and 160 domains, and with the 160 entered once, and
 * at the end checks what the control plane reports about the VM and each
 * domain.  Every domain's view is built only when a vCPU first enters it,
 * so all registration comes before any domain code runs.
 *
 * KI_SCALE_DOMAINS=N (32 to 160) registers N domains instead: the sanitizer
 * rig runs 48, as registering 160 under KASAN and kmemleak takes minutes.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <linux/kvm_isolate.h>

#include "kvm_util.h"
#include "processor.h"
#include "ucall_common.h"
#include "kselftest_harness.h"
#include "ctl.h"

#define MAX_DOMAINS	160		/* and the default; KI_SCALE_DOMAINS=32..160 runs fewer */
#define CODE_PER_DOMAIN	2		/* pages: the read function, the write function */
#define REGIONS_PER_DOMAIN 3		/* one page each */
#define CODE_PAGES	(nr_domains * CODE_PER_DOMAIN)
#define REGION_PAGES	(nr_domains * REGIONS_PER_DOMAIN)
#define ATTACKS		(3 * nr_domains)
#define SCALE_SLOT	10		/* the memslot of the code and regions */
#define SCALE_GPA	(1ull << 30)
#define READ_FN		0		/* code page k of a domain */
#define WRITE_FN	1
#define RW		(KVM_ISOLATE_ACCESS_R | KVM_ISOLATE_ACCESS_W)
#define POISON		0xdeadbeefdeadbeefull	/* what the host makes a denied read return */
/* The 3 bytes of "mov (%rdi), %rax", the access every attack makes, then "ret". */
#define READ_BYTES	"\x48\x8b\x07\xc3"
#define READ_LEN	3

/*
 * The template of every domain's code: each function on a page of its own,
 * which the host copies into the domains' code pages.  ki_s_read itself,
 * which no domain owns, is also the view 0 code that attacks the regions.
 */
asm(".pushsection .text.ki_scale, \"ax\"\n"
    ".balign 4096\n"
    ".global ki_s_read\n"
    "ki_s_read: mov (%rdi), %rax\n ret\n"
    ".balign 4096\n"
    ".global ki_s_write\n"
    "ki_s_write: mov %rsi, (%rdi)\n ret\n"
    ".balign 4096\n"
    ".popsection\n");

u64 ki_s_read(u64 gva);
void ki_s_write(u64 gva, u64 val);

typedef u64 (*read_fn)(u64 gva);
typedef void (*write_fn)(u64 gva, u64 val);

/* Creating a domain brings the guest to a checkpoint when this many exist. */
static u32 checkpoints[] = { 0, 1, 16, MAX_DOMAINS };

/* How many domains this run registers (checkpoints[3] too). */
static u32 nr_domains = MAX_DOMAINS;

/* Where the blocks are, set by the host before the guest runs. */
static u64 code_gva0, code_gpa0, region_gva0, region_gpa0;

/*
 * The attack under way: the guest sets it before each attempt, the host
 * checks a denial against it and clears gpa, so the guest can tell that its
 * access was denied (and denied once) rather than answered with POISON.
 */
static struct {
	u64 gpa;	/* the page the access must be denied at; 0: no attack */
	u64 rip;	/* the instruction making it */
} attack;

/*
 * Domain d's code page k is page d + k * nr_domains of the code block, mapped
 * at every second page from code_gva0: no two code pages are adjacent.
 */
static u64 code_gva(u32 d, u32 k)
{
	return code_gva0 + 2 * (d + k * nr_domains) * PAGE_SIZE;
}

static u64 code_gpa(u32 d, u32 k)
{
	return code_gpa0 + (d + k * nr_domains) * PAGE_SIZE;
}

/* Domain d's region k is page d + k * nr_domains of the region block. */
static u64 region_gva(u32 d, u32 k)
{
	return region_gva0 + (d + k * nr_domains) * PAGE_SIZE;
}

static u64 region_gpa(u32 d, u32 k)
{
	return region_gpa0 + (d + k * nr_domains) * PAGE_SIZE;
}

static u64 secret(u32 d, u32 k)
{
	return 0x5ec2e7c000000000ull | (u64)d << 8 | k;
}

/* ---- guest side ---- */

static u64 hc(u64 nr, u64 a0, u64 a1, u64 a2, u64 a3)
{
	return kvm_hypercall(nr, a0, a1, a2, a3);
}

static bool is_checkpoint(u32 n)
{
	u32 i;

	for (i = 0; i < ARRAY_SIZE(checkpoints); i++)
		if (checkpoints[i] == n)
			return true;
	return false;
}

/* Domain d (view d + 1): its code, its regions, an entry point at each function. */
static void add_domain(u32 d)
{
	u64 dom = d + 1, r;
	u32 k;

	r = hc(KVM_HC_ISOLATE_DOMAIN_CREATE, 0, 0, 0, 0);
	__GUEST_ASSERT(r == dom, "DOMAIN_CREATE returned %ld, want %lu", (long)r, dom);
	for (k = 0; k < CODE_PER_DOMAIN; k++) {
		r = hc(KVM_HC_ISOLATE_DOMAIN_ADD_CODE, dom, code_gva(d, k), code_gpa(d, k), 1);
		__GUEST_ASSERT(!r, "domain %lu: ADD_CODE(0x%lx, 0x%lx, 1) returned %ld, want 0",
			       dom, code_gva(d, k), code_gpa(d, k), (long)r);
	}
	for (k = 0; k < REGIONS_PER_DOMAIN; k++) {
		r = hc(KVM_HC_ISOLATE_DOMAIN_ADD_REGION, dom, region_gpa(d, k), 1, RW);
		__GUEST_ASSERT(r == RW, "domain %lu: ADD_REGION(0x%lx, 1, RW) returned %ld, want %d",
			       dom, region_gpa(d, k), (long)r, RW);
	}
	for (k = 0; k < CODE_PER_DOMAIN; k++) {
		r = hc(KVM_HC_ISOLATE_DOMAIN_ADD_ENTRY, dom, code_gva(d, k), 0, 0);
		__GUEST_ASSERT(!r, "domain %lu: ADD_ENTRY(0x%lx) returned %ld, want 0", dom,
			       code_gva(d, k), (long)r);
	}
}

/* Word @w of the bitmap of the views that exist: view 0 and the domains' 1 .. nr_domains. */
static u64 views_word(u32 w)
{
	u64 mask = 0;
	u32 b;

	for (b = 0; b < 32; b++)
		if (w * 32 + b <= nr_domains)
			mask |= 1ull << b;
	return mask;
}

/* The read function at @fn reads region (d, k): the host must deny it. */
static void guest_attack(u64 fn, u32 d, u32 k)
{
	u64 v;

	WRITE_ONCE(attack.rip, fn);
	WRITE_ONCE(attack.gpa, region_gpa(d, k));
	v = ((read_fn)fn)(region_gva(d, k));
	__GUEST_ASSERT(v == POISON, "the read at 0x%lx of region %u of domain %u returned 0x%lx, want POISON",
		       fn, k, d + 1, v);
	__GUEST_ASSERT(!READ_ONCE(attack.gpa),
		       "the read at 0x%lx of region %u of domain %u returned without a denial exit",
		       fn, k, d + 1);
}

static void guest_code(void)
{
	u32 d, k;
	u64 v;

	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_PROBE, 0, 0, 0, 0), KVM_ISOLATE_MAGIC);
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_VERSION, 0, 0, 0, 0), KVM_ISOLATE_ABI_VERSION);
	GUEST_SYNC2(0, 0);
	for (d = 0; d < nr_domains; d++) {
		add_domain(d);
		if (is_checkpoint(d + 1))
			GUEST_SYNC2(d + 1, 0);
	}
	for (k = 0; k < KVM_ISOLATE_MAX_VIEWS / 32; k++) {
		v = hc(KVM_HC_ISOLATE_QUERY, KVM_ISOLATE_QUERY_VIEWS, k, 0, 0);
		__GUEST_ASSERT(v == views_word(k), "QUERY_VIEWS word %u: 0x%lx, want 0x%lx", k, v,
			       views_word(k));
	}

	/* Each owner, entered at its entry points from view 0, writes and reads its regions. */
	for (d = 0; d < nr_domains; d++) {
		for (k = 0; k < REGIONS_PER_DOMAIN; k++)
			((write_fn)code_gva(d, WRITE_FN))(region_gva(d, k), secret(d, k));
		for (k = 0; k < REGIONS_PER_DOMAIN; k++) {
			v = ((read_fn)code_gva(d, READ_FN))(region_gva(d, k));
			__GUEST_ASSERT(v == secret(d, k),
				       "domain %u read 0x%lx from its region %u, want 0x%lx", d + 1,
				       v, k, secret(d, k));
		}
	}
	GUEST_SYNC2(nr_domains, 1);

	/* Nobody else reads them: view 0, and two other domains each. */
	for (d = 0; d < nr_domains; d++) {
		guest_attack((u64)ki_s_read, d, 0);
		guest_attack(code_gva((d + 1) % nr_domains, READ_FN), d, 0);
		guest_attack(code_gva((d + nr_domains / 2) % nr_domains, READ_FN), d, 2);
	}
	GUEST_DONE();
}

/* ---- host side ---- */

struct meminfo {
	long sec_kb;	/* SecPageTables: KVM's second-level page tables */
	long slab_kb;	/* Slab */
};

/* The host's memory, from /proc/meminfo, with the per-CPU counter deltas folded in. */
static struct meminfo host_memory(void)
{
	struct meminfo m = { -1, -1 };
	FILE *f = fopen("/proc/sys/vm/stat_refresh", "w");
	char line[128];

	/* Small changes do not show otherwise. */
	if (f) {
		fputs("1", f);
		fclose(f);
	}
	f = fopen("/proc/meminfo", "r");
	TEST_ASSERT(f, "/proc/meminfo: %s", strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		sscanf(line, "SecPageTables: %ld kB", &m.sec_kb);
		sscanf(line, "Slab: %ld kB", &m.slab_kb);
	}
	fclose(f);
	TEST_ASSERT(m.sec_kb >= 0 && m.slab_kb > 0,
		    "/proc/meminfo: SecPageTables %ld kB, Slab %ld kB (-1: not found)", m.sec_kb,
		    m.slab_kb);
	return m;
}

static void print_memory(struct meminfo base, u32 domains, bool entered)
{
	struct meminfo now = host_memory();

	ksft_print_msg("host memory with %u domains%s: page tables %ld KiB, slab %ld KiB\n",
		       domains, entered ? ", each entered" : "", now.sec_kb - base.sec_kb,
		       now.slab_kb - base.slab_kb);
}

/*
 * The VM as it starts to use kvm-isolate: enforcing, denials exit to user
 * space, no domain yet, and room for what the guest will register.
 */
static void check_new_vm(int fd, u32 id)
{
	struct kvm_isolate_ctl_vm v = ki_vm_info(fd, id);

	TEST_ASSERT(v.mode == KVM_ISOLATE_MODE_ENFORCE && v.deny == KVM_ISOLATE_DENY_EXIT &&
		    v.domains == 0,
		    "new VM %u: mode %u, deny %u, %u domains; want %d (enforce), %d (exit), 0", id,
		    v.mode, v.deny, v.domains, KVM_ISOLATE_MODE_ENFORCE, KVM_ISOLATE_DENY_EXIT);
	TEST_ASSERT(v.max_code_ranges >= CODE_PAGES && v.max_regions >= REGION_PAGES &&
		    v.max_entries >= CODE_PAGES,
		    "VM %u's capacities (max_code_ranges %u, max_regions %u, max_entry_points %u) are below what %d domains need (%d, %d, %d): kvm_isolate is loaded with smaller ones",
		    id, v.max_code_ranges, v.max_regions, v.max_entries, nr_domains, CODE_PAGES,
		    REGION_PAGES, CODE_PAGES);
}

/*
 * A denial: KVM_RUN failed with a view's memory-fault exit.  It must name the
 * page under attack, at the attacking instruction; then the read is skipped
 * and returns POISON, and the attack is marked as seen.
 */
static void deny_attack(struct kvm_vm *vm, struct kvm_vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	struct kvm_regs regs;

	vcpu_regs_get(vcpu, &regs);
	sync_global_from_guest(vm, attack);
	TEST_ASSERT(attack.gpa,
		    "an access at rip 0x%llx to gpa 0x%llx (flags 0x%llx) was denied outside any attack",
		    regs.rip, run->memory_fault.gpa, run->memory_fault.flags);
	TEST_ASSERT(run->memory_fault.gpa == attack.gpa && regs.rip == attack.rip,
		    "denied at rip 0x%llx, gpa 0x%llx; want the attack at rip 0x%lx, gpa 0x%lx",
		    regs.rip, run->memory_fault.gpa, attack.rip, attack.gpa);
	TEST_ASSERT(run->memory_fault.size == PAGE_SIZE &&
		    run->memory_fault.flags == KVM_ISOLATE_EXIT_FLAG_VIEW,
		    "the denial at gpa 0x%llx: size %llu, flags 0x%llx; want %llu, 0x%llx (a view, a read)",
		    run->memory_fault.gpa, run->memory_fault.size, run->memory_fault.flags,
		    PAGE_SIZE, KVM_ISOLATE_EXIT_FLAG_VIEW);
	regs.rip += READ_LEN;
	regs.rax = POISON;
	vcpu_regs_set(vcpu, &regs);
	write_guest_global(vm, attack.gpa, 0);
}

/* The guest's memory: each domain's code pages copied from the template, its regions. */
static void layout(struct kvm_vm *vm)
{
	u32 d, i;

	TEST_ASSERT(!memcmp(addr_gva2hva(vm, (u64)ki_s_read), READ_BYTES, READ_LEN + 1),
		    "ki_s_read is not \"mov (%%rdi), %%rax; ret\": the host could not skip its read");

	/* One physically contiguous block each, in a memslot of their own. */
	vm_userspace_mem_region_add(vm, VM_MEM_SRC_ANONYMOUS, SCALE_GPA, SCALE_SLOT,
				    CODE_PAGES + REGION_PAGES, 0);
	code_gpa0 = SCALE_GPA;
	region_gpa0 = SCALE_GPA + CODE_PAGES * PAGE_SIZE;
	/* One gap of virtual addresses for both: the code's, spaced, then the regions'. */
	code_gva0 = vm_unused_gva_gap(vm, (2 * CODE_PAGES + REGION_PAGES) * PAGE_SIZE,
				      KVM_UTIL_MIN_VADDR);
	region_gva0 = code_gva0 + 2 * CODE_PAGES * PAGE_SIZE;
	for (i = 0; i < CODE_PAGES; i++)
		virt_pg_map(vm, code_gva0 + 2 * i * PAGE_SIZE, code_gpa0 + i * PAGE_SIZE);
	for (i = 0; i < REGION_PAGES; i++)
		virt_pg_map(vm, region_gva0 + i * PAGE_SIZE, region_gpa0 + i * PAGE_SIZE);
	for (d = 0; d < nr_domains; d++) {
		memcpy(addr_gpa2hva(vm, code_gpa(d, READ_FN)), addr_gva2hva(vm, (u64)ki_s_read),
		       PAGE_SIZE);
		memcpy(addr_gpa2hva(vm, code_gpa(d, WRITE_FN)), addr_gva2hva(vm, (u64)ki_s_write),
		       PAGE_SIZE);
	}
	sync_global_to_guest(vm, nr_domains);
	sync_global_to_guest(vm, checkpoints);
	sync_global_to_guest(vm, code_gva0);
	sync_global_to_guest(vm, code_gpa0);
	sync_global_to_guest(vm, region_gva0);
	sync_global_to_guest(vm, region_gpa0);
}

/* What the control plane says about the VM and each domain after the run. */
static void check_control_plane(int fd, u32 id)
{
	struct kvm_isolate_ctl_domain dom[KVM_ISOLATE_MAX_VIEWS];
	struct kvm_isolate_ctl_vm v = ki_vm_info(fd, id);
	bool seen[MAX_DOMAINS + 1] = {};
	u64 denied = 0;
	u32 i;

	TEST_ASSERT(v.domains == nr_domains && v.code_ranges == CODE_PAGES &&
		    v.regions == REGION_PAGES && v.entries == CODE_PAGES &&
		    v.views == nr_domains + 1,
		    "VM %u: %u domains, %u code ranges, %u regions, %u entry points, %u views; want %d, %d, %d, %d, %d",
		    id, v.domains, v.code_ranges, v.regions, v.entries, v.views, nr_domains,
		    CODE_PAGES, REGION_PAGES, CODE_PAGES, nr_domains + 1);
	TEST_ASSERT(v.denied == ATTACKS && v.rules == 0,
		    "VM %u: %lu denials, %u rules; want %d (the attacks), 0 (nothing learned)", id,
		    (u64)v.denied, v.rules, ATTACKS);

	TEST_ASSERT_EQ(ki_ctl_get(fd, KVM_ISOLATE_CTL_DOMAINS, id, dom, ARRAY_SIZE(dom)),
		       nr_domains);
	for (i = 0; i < nr_domains; i++) {
		TEST_ASSERT(dom[i].id >= 1 && dom[i].id <= nr_domains && !seen[dom[i].id],
			    "DOMAINS entry %u: domain %u, a number out of 1..%d or listed twice", i,
			    dom[i].id, nr_domains);
		seen[dom[i].id] = true;
		/*
		 * Denials count to the region's owner (policy.rs): each domain's regions
		 * were attacked 3 times.  Its view was entered by its 6 calls and the 2
		 * attacks made with its read function.
		 */
		TEST_ASSERT(dom[i].code_ranges == CODE_PER_DOMAIN &&
			    dom[i].regions == REGIONS_PER_DOMAIN && dom[i].denied == 3 &&
			    dom[i].allowed >= 8 && dom[i].learned == 0 && dom[i].rules == 0,
			    "domain %u: %u code ranges, %u regions, %lu denied, %lu allowed, %lu learned, %u rules; want %d, %d, 3, 8 or more, 0, 0",
			    dom[i].id, dom[i].code_ranges, dom[i].regions, (u64)dom[i].denied,
			    (u64)dom[i].allowed, (u64)dom[i].learned, dom[i].rules, CODE_PER_DOMAIN,
			    REGIONS_PER_DOMAIN);
		denied += dom[i].denied;
	}
	TEST_ASSERT(denied == ATTACKS, "the domains' denials sum to %lu, want %d", denied,
		    ATTACKS);
}

/*
 * The guest's checkpoint number @stage: with checkpoints[stage] domains, or
 * with all of them entered (the last).  The first finds the VM in the
 * control plane, as its guest has just made its first hypercalls.
 */
static void checkpoint(int fd, u32 *id, u32 stage, struct ucall *uc, struct meminfo base)
{
	bool entered = stage == ARRAY_SIZE(checkpoints);
	u64 want;

	TEST_ASSERT(stage <= ARRAY_SIZE(checkpoints), "a checkpoint too many");
	want = entered ? nr_domains : checkpoints[stage];
	TEST_ASSERT(uc->args[0] == want && uc->args[1] == entered,
		    "checkpoint %u: %lu domains, entered %lu; want %lu, %d", stage, uc->args[0],
		    uc->args[1], want, entered);
	if (!stage) {
		*id = ki_my_vm(fd);
		check_new_vm(fd, *id);
	}
	TEST_ASSERT_EQ(ki_vm_info(fd, *id).domains, want);
	print_memory(base, want, entered);
}

FIXTURE(scale) {};
FIXTURE_SETUP(scale) {}
FIXTURE_TEARDOWN(scale) {}

TEST_F_TIMEOUT(scale, domains_160_each_own_their_regions, 800)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	struct meminfo base;
	struct ucall uc;
	u32 stage = 0, denials = 0, id = 0, d, k;
	time_t t0, t_setup = 0, t_owners = 0;
	int fd, ret;

	fd = open("/dev/kvm-isolate", O_RDWR);
	TEST_ASSERT(fd >= 0, "open /dev/kvm-isolate: %s", strerror(errno));
	vm = vm_create_with_one_vcpu(&vcpu, guest_code);
	layout(vm);

	base = host_memory();
	t0 = time(NULL);
	for (;;) {
		ret = _vcpu_run(vcpu);
		if (ret == -1 && errno == EFAULT &&
		    vcpu->run->exit_reason == KVM_EXIT_MEMORY_FAULT) {
			TEST_ASSERT(stage > ARRAY_SIZE(checkpoints),
				    "a denial before the owners ran (stage %u)", stage);
			deny_attack(vm, vcpu);
			denials++;
			continue;
		}
		TEST_ASSERT(!ret, "KVM_RUN: %d, errno %d, exit %s", ret, errno,
			    exit_reason_str(vcpu->run->exit_reason));
		switch (get_ucall(vcpu, &uc)) {
		case UCALL_SYNC:
			checkpoint(fd, &id, stage++, &uc, base);
			if (stage == ARRAY_SIZE(checkpoints))
				t_setup = time(NULL);
			else if (stage == ARRAY_SIZE(checkpoints) + 1)
				t_owners = time(NULL);
			break;
		case UCALL_DONE:
			goto done;
		case UCALL_ABORT:
			REPORT_GUEST_ASSERT(uc);
			break;
		default:
			TEST_FAIL("unexpected exit %s", exit_reason_str(vcpu->run->exit_reason));
		}
	}
done:
	TEST_ASSERT(stage == ARRAY_SIZE(checkpoints) + 1, "done after %u checkpoints, want %zu",
		    stage, ARRAY_SIZE(checkpoints) + 1);
	TEST_ASSERT(denials == ATTACKS, "%u denials, want %d", denials, ATTACKS);
	ksft_print_msg("%d domains: %lds to register them, %lds for the owners' %d calls, %lds for the %d denials\n",
		       nr_domains, (long)(t_setup - t0), (long)(t_owners - t_setup),
		       nr_domains * 2 * REGIONS_PER_DOMAIN, (long)(time(NULL) - t_owners),
		       ATTACKS);

	/* The owners' writes are where they belong, and no attack changed them. */
	for (d = 0; d < nr_domains; d++)
		for (k = 0; k < REGIONS_PER_DOMAIN; k++)
			TEST_ASSERT(*(u64 *)addr_gpa2hva(vm, region_gpa(d, k)) == secret(d, k),
				    "region %u of domain %u holds 0x%lx, want 0x%lx", k, d + 1,
				    *(u64 *)addr_gpa2hva(vm, region_gpa(d, k)), secret(d, k));

	check_control_plane(fd, id);
	close(fd);
	kvm_vm_free(vm);
}

int main(int argc, char **argv)
{
	const char *n = getenv("KI_SCALE_DOMAINS");

	if (n && *n) {
		nr_domains = strtoul(n, NULL, 0);
		TEST_ASSERT(nr_domains >= 32 && nr_domains <= MAX_DOMAINS,
			    "KI_SCALE_DOMAINS=%s: want 32 to %d", n, MAX_DOMAINS);
		checkpoints[ARRAY_SIZE(checkpoints) - 1] = nr_domains;
	}
	TEST_REQUIRE(kvm_is_tdp_enabled());
	__TEST_REQUIRE(!access("/dev/kvm-isolate", F_OK),
		       "kvm_isolate is not loaded (no /dev/kvm-isolate)");
	return test_harness_run(argc, argv);
}
