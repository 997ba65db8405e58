// SPDX-License-Identifier: GPL-2.0
/*
 * A seeded, structure-aware fuzzer of the kvm-isolate hypercalls (ABI v1 and
 * domains), run by a guest against the host.  Every call gets arguments
 * drawn from the values each position cares about (view numbers around the
 * limits, gpas in, around and outside the memslot, aligned or not, page
 * counts around the limits, every access and mode value) or random ones.
 * After every call the guest checks:
 *
 *   - the answer is a result or one of the ABI's error codes, nothing else;
 *   - a rejected call changed nothing it could have changed: the set of
 *     views, the vCPU's view, and the rights of the pages it named in the
 *     view it named and in view 0;
 *   - queries agree with what the guest observed;
 *   - an accepted SET_MODE returns the mode the guest last set for that
 *     domain (or the VM), so a rejected SET_MODE, or any other call, that
 *     changed a mode is caught at the next accepted one.
 *
 * The guest never touches the fuzzed memslot, so no violation is expected;
 * the rig checks afterwards that the host logged no warning, bug or lockdep
 * report.  One call in eight is a VMFUNC instead (leaf 0 or 1, a view
 * argument), which must do what SWITCH does, SWITCH agreeing, or raise #UD
 * and change nothing.  Seed and count: KI_FUZZ_SEED, KI_FUZZ_CALLS (default 20000,
 * 5000 under Bochs); a failure names the seed and the call index.
 */
#include <stdlib.h>

#include <linux/kvm_isolate.h>
#include <linux/sizes.h>

#include "kvm_util.h"
#include "processor.h"
#include "ucall_common.h"

#define SLOT		10
#define SLOT_GPA	(SZ_1G - SZ_2M)
#define SLOT_PAGES	(SZ_4M / PAGE_SIZE)
#define FIRST		KVM_HC_ISOLATE_FIRST
#define NFUNCS		(KVM_HC_ISOLATE_CODE_NAME - FIRST + 1)

static u64 state;

/* The guest's model of each domain's own mode (0: the VM's): what it last set, or unknown. */
#define MODE_UNKNOWN	(~0ull)
static u64 mode_of[KVM_ISOLATE_MAX_VIEWS];
/* Domains the guest made switchable: a switch there lands on the fuzzer's code, and leaves. */
static bool switchable[KVM_ISOLATE_MAX_VIEWS];

static u64 rnd(void)
{
	/* xorshift64*: small, seeded, the same sequence on every host. */
	state ^= state >> 12;
	state ^= state << 25;
	state ^= state >> 27;
	return state * 0x2545f4914f6cdd1dull;
}

static u64 pick(const u64 *v, int n)
{
	return (rnd() & 7) ? v[rnd() % n] : rnd();
}

static const u64 views[] = { 0, 1, 2, 3, 7, 14, 15, 16, 17, 63, 64, 255, 256, 1ull << 32, -1ull };
static const u64 gpas[] = {
	SLOT_GPA, SLOT_GPA + PAGE_SIZE, SLOT_GPA + 17 * PAGE_SIZE, SZ_1G - PAGE_SIZE, SZ_1G,
	SLOT_GPA + SZ_4M - PAGE_SIZE, SLOT_GPA + SZ_4M, SLOT_GPA + 8, SLOT_GPA - PAGE_SIZE, SZ_2G,
	(1ull << 52) - PAGE_SIZE, 1ull << 52, -PAGE_SIZE,
};
static const u64 counts[] = { 1, 1, 2, 3, 16, 511, 512, 1024, 0, 1025, 1 << 20, (1 << 20) + 1,
			      -1ull };
static const u64 accesses[] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 15 };
static const u64 modes[] = { 0, 1, 2, 3, 4, KVM_ISOLATE_MODE_INHERIT, 255 };

/* Mostly views that may exist, now and then any. */
static u64 view_arg(void)
{
	return (rnd() & 3) ? rnd() % 5 : pick(views, ARRAY_SIZE(views));
}

/*
 * Mostly pages of the fuzzed slot. Never the memory the guest runs from (memslot 0: code,
 * stack, page tables, a few MiB at gpa 0): a gpa below 256 MiB is moved out of every memslot.
 */
static u64 gpa_arg(void)
{
	u64 v = (rnd() & 1) ? SLOT_GPA + (rnd() % SLOT_PAGES) * PAGE_SIZE :
			      pick(gpas, ARRAY_SIZE(gpas));

	return v < SZ_256M ? v + SZ_2G : v;
}

static bool known_error(u64 r)
{
	switch (-r) {
	case KVM_ISOLATE_EPERM: case KVM_ISOLATE_ENOENT: case KVM_ISOLATE_ENOMEM:
	case KVM_ISOLATE_EEXIST: case KVM_ISOLATE_EBUSY: case KVM_ISOLATE_EINVAL:
	case KVM_ISOLATE_ENOSPC: case KVM_ISOLATE_ERANGE: case KVM_ISOLATE_EOPNOTSUPP:
	case KVM_ISOLATE_ENOSYS:
		return true;
	}
	return false;
}

static u64 query(u64 what, u64 a, u64 b)
{
	return kvm_hypercall(KVM_HC_ISOLATE_QUERY, what, a, b, 0);
}

/* What a call could change: views, the vCPU's view, the rights of one page. */
struct snap {
	u64 views[KVM_ISOLATE_MAX_VIEWS / 32], view, in_view, in_view0;
};

static void snap(struct snap *s, u64 view, u64 gpa)
{
	int w;

	for (w = 0; w < KVM_ISOLATE_MAX_VIEWS / 32; w++)
		s->views[w] = query(KVM_ISOLATE_QUERY_VIEWS, w, 0);
	s->view = query(KVM_ISOLATE_QUERY_VIEW, 0, 0);
	s->in_view = query(KVM_ISOLATE_QUERY_ACCESS, view, gpa);
	s->in_view0 = query(KVM_ISOLATE_QUERY_ACCESS, 0, gpa);
}

/*
 * VMFUNC leaf @fn to view @view (item NFUNCS of the statistics): it does what
 * SWITCH does (and SWITCH agrees), or raises #UD and changes nothing; without
 * KVM_ISOLATE_FEATURE_VMFUNC always the latter.
 */
static bool fuzz_vmfunc(u64 seed, u64 i, u64 fn, u64 view, bool vmfunc)
{
	struct snap before, after;
	u8 vector;
	u64 r, want;

	snap(&before, 0, 0);
	vector = kvm_asm_safe(".byte 0x0f, 0x01, 0xd4", "a"(fn), "c"(view));
	snap(&after, 0, 0);
	__GUEST_ASSERT(vector == 0 || vector == UD_VECTOR,
		       "seed %lu call %lu: VMFUNC(%lu, %lx) raised vector %u", seed, i, fn, view,
		       vector);
	if (vector) {
		__GUEST_ASSERT(!memcmp(&before, &after, sizeof(before)),
			       "seed %lu call %lu: VMFUNC(%lu, %lx) failed but changed the view "
			       "%lu->%lu", seed, i, fn, view, before.view, after.view);
		if (vmfunc && !fn) {
			r = kvm_hypercall(KVM_HC_ISOLATE_SWITCH, view, 0, 0, 0);
			__GUEST_ASSERT((s64)r < 0, "seed %lu call %lu: VMFUNC to %lx refused, "
				       "SWITCH accepted", seed, i, view);
		}
		return false;
	}
	want = view < KVM_ISOLATE_MAX_VIEWS && switchable[view] ? 0 : view;
	__GUEST_ASSERT(vmfunc && !fn && after.view == want &&
		       !memcmp(before.views, after.views, sizeof(before.views)),
		       "seed %lu call %lu: VMFUNC(%lu, %lx) took view %lu to %lu", seed, i, fn, view,
		       before.view, after.view);
	GUEST_ASSERT_EQ(kvm_hypercall(KVM_HC_ISOLATE_SWITCH, view, 0, 0, 0), want);
	return true;
}

static void guest_code(u64 seed, u64 calls)
{
	u64 i, nr, a[4], r, stat[NFUNCS + 1][2] = {};
	struct snap before, after;
	bool vmfunc;

	state = seed ? seed : 1;
	for (i = 0; i < KVM_ISOLATE_MAX_VIEWS; i++)
		mode_of[i] = MODE_UNKNOWN;
	GUEST_ASSERT_EQ(kvm_hypercall(KVM_HC_ISOLATE_PROBE, 0, 0, 0, 0), KVM_ISOLATE_MAGIC);
	vmfunc = kvm_hypercall(KVM_HC_ISOLATE_QUERY, KVM_ISOLATE_QUERY_FEATURES, 0, 0, 0) &
		 KVM_ISOLATE_FEATURE_VMFUNC;
	for (i = 0; i < calls; i++) {
		if (!(rnd() % 8)) {
			nr = rnd() % 4;		/* leaf 0 three times in four */
			stat[NFUNCS][!fuzz_vmfunc(seed, i, nr == 3, (u32)view_arg(), vmfunc)]++;
			continue;
		}
		nr = rnd() % NFUNCS;
		/* Locking ends most of the guest's powers: rarely, and only in the second half. */
		if (nr == KVM_HC_ISOLATE_LOCK - FIRST && (i < calls / 2 || rnd() % 64))
			nr = KVM_HC_ISOLATE_QUERY - FIRST;
		a[0] = a[1] = a[2] = a[3] = 0;
		switch (nr + FIRST) {
		case KVM_HC_ISOLATE_VIEW_DESTROY:
		case KVM_HC_ISOLATE_SWITCH:
		case KVM_HC_ISOLATE_DOMAIN_DESTROY:
		case KVM_HC_ISOLATE_DOMAIN_SWITCHABLE:
			a[0] = view_arg();
			break;
		case KVM_HC_ISOLATE_SET_ACCESS:
			a[0] = view_arg();
			a[1] = gpa_arg();
			a[2] = pick(counts, ARRAY_SIZE(counts));
			a[3] = pick(accesses, ARRAY_SIZE(accesses));
			break;
		case KVM_HC_ISOLATE_QUERY:
			a[0] = rnd() % 10;
			a[1] = a[0] == KVM_ISOLATE_QUERY_ACCESS ? view_arg() : 0;
			a[2] = a[0] == KVM_ISOLATE_QUERY_ACCESS ? gpa_arg() : 0;
			break;
		case KVM_HC_ISOLATE_ON_VIOLATION:
			a[0] = rnd() % 6;
			a[1] = a[0] == KVM_ISOLATE_ON_VIOLATION_SWITCH ? view_arg() : 0;
			break;
		case KVM_HC_ISOLATE_DOMAIN_ADD_CODE:
			a[0] = view_arg();
			a[2] = gpa_arg();
			a[1] = (rnd() & 3) ? a[2] : pick(gpas, ARRAY_SIZE(gpas));	/* gva */
			a[3] = pick(counts, ARRAY_SIZE(counts));
			break;
		case KVM_HC_ISOLATE_DOMAIN_ADD_REGION:
			a[0] = view_arg();
			a[1] = gpa_arg();
			a[2] = pick(counts, ARRAY_SIZE(counts));
			a[3] = pick(accesses, ARRAY_SIZE(accesses));
			break;
		case KVM_HC_ISOLATE_SET_MODE:
			a[0] = view_arg();
			a[1] = pick(modes, ARRAY_SIZE(modes));
			break;
		case KVM_HC_ISOLATE_DOMAIN_ADD_ENTRY:
			a[0] = view_arg();
			/* gva: the slot is identity mapped; a page start now and then (SWITCHABLE) */
			a[1] = gpa_arg() + ((rnd() & 3) ? rnd() % PAGE_SIZE : 0);
			break;
		case KVM_HC_ISOLATE_VE_INFO:
			a[0] = (rnd() & 3) ? gpa_arg() : -1ull;
			break;
		case KVM_HC_ISOLATE_DOMAIN_NAME:
			/* offsets 0, 16, 32, 48 (and bad ones); printable words, or any */
			a[0] = view_arg();
			a[1] = (rnd() & 3) ? (rnd() % 4) * 16 : rnd() % 80;
			a[2] = (rnd() & 3) ? 0x5f72657065656b5full : rnd();	/* "_keeper_" */
			a[3] = (rnd() & 3) ? 0 : rnd();
			break;
		case KVM_HC_ISOLATE_CODE_NAME:
			/* module-like ranges, sizes to past the limit, offsets 0 .. 56 (and bad) */
			a[0] = (rnd() & 7) ? 0xffffffffa0000000ull + (rnd() % 64) * PAGE_SIZE : rnd();
			a[1] = (rnd() & 7) ? (rnd() % 16) * PAGE_SIZE : rnd();
			a[2] = (rnd() & 3) ? (rnd() % 8) * 8 : rnd() % 80;
			a[3] = (rnd() & 3) ? 0x6575676f725f696bull : rnd();	/* "ki_rogue" */
			break;
		}
		/* Now and then an argument the function does not take, or any value. */
		if (!(rnd() % 16))
			a[rnd() % 4] = (rnd() & 1) ? rnd() : 1;

		/* The page the call names: a[1] for SET_ACCESS/ADD_REGION, a[2] for ADD_CODE. */
		snap(&before, a[0], nr + FIRST == KVM_HC_ISOLATE_DOMAIN_ADD_CODE ? a[2] : a[1]);
		r = kvm_hypercall(nr + FIRST, a[0], a[1], a[2], a[3]);
		snap(&after, a[0], nr + FIRST == KVM_HC_ISOLATE_DOMAIN_ADD_CODE ? a[2] : a[1]);

		__GUEST_ASSERT((s64)r >= 0 || known_error(r),
			       "seed %lu call %lu: nr +%lu (%lx %lx %lx %lx) -> unknown %ld",
			       seed, i, nr, a[0], a[1], a[2], a[3], (s64)r);
		stat[nr][(s64)r < 0]++;
		if ((s64)r >= 0 && nr + FIRST == KVM_HC_ISOLATE_SET_MODE) {
			__GUEST_ASSERT(mode_of[a[0]] == MODE_UNKNOWN || r == mode_of[a[0]],
				       "seed %lu call %lu: SET_MODE(%lu, %lu) replaced mode %lu, but "
				       "the guest last set %lu", seed, i, a[0], a[1], r,
				       mode_of[a[0]]);
			mode_of[a[0]] = a[1];
		}
		if ((s64)r >= 0 && nr + FIRST == KVM_HC_ISOLATE_DOMAIN_CREATE)
			mode_of[r] = KVM_ISOLATE_MODE_INHERIT;
		if ((s64)r >= 0 && nr + FIRST == KVM_HC_ISOLATE_DOMAIN_DESTROY) {
			mode_of[a[0]] = MODE_UNKNOWN;
			switchable[a[0]] = false;
		}
		if ((s64)r >= 0 && nr + FIRST == KVM_HC_ISOLATE_DOMAIN_SWITCHABLE)
			switchable[a[0]] = true;
		if ((s64)r < 0)
			__GUEST_ASSERT(!memcmp(&before, &after, sizeof(before)),
				       "seed %lu call %lu: nr +%lu (%lx %lx %lx %lx) failed %ld but changed "
				       "views %lx->%lx view %lu->%lu rights %lx->%lx / %lx->%lx",
				       seed, i, nr, a[0], a[1], a[2], a[3], (s64)r,
				       before.views[0], after.views[0], before.view, after.view,
				       before.in_view, after.in_view, before.in_view0, after.in_view0);
		/* Views only come and go by the calls that make and destroy them. */
		if (memcmp(before.views, after.views, sizeof(before.views)))
			__GUEST_ASSERT(nr + FIRST == KVM_HC_ISOLATE_VIEW_CREATE ||
				       nr + FIRST == KVM_HC_ISOLATE_VIEW_DESTROY ||
				       nr + FIRST == KVM_HC_ISOLATE_DOMAIN_CREATE ||
				       nr + FIRST == KVM_HC_ISOLATE_DOMAIN_DESTROY,
				       "seed %lu call %lu: nr +%lu changed the views", seed, i, nr);
	}
	for (nr = 0; nr <= NFUNCS; nr++)
		GUEST_SYNC3(nr, stat[nr][0], stat[nr][1]);
	GUEST_DONE();
}

int main(void)
{
	const char *s = getenv("KI_FUZZ_SEED"), *n = getenv("KI_FUZZ_CALLS");
	const char *rig = getenv("KI_RIG");
	u64 seed = s && *s ? strtoull(s, NULL, 0) : 20261130;
	u64 calls = n && atoll(n) > 0 ? strtoull(n, NULL, 0) :
		    rig && !strcmp(rig, "bochs") ? 5000 : 20000;
	u64 ok = 0, failed = 0;
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	struct ucall uc;

	TEST_REQUIRE(kvm_is_tdp_enabled());
	ksft_print_header();
	ksft_set_plan(1);

	vm = vm_create_with_one_vcpu(&vcpu, guest_code);
	vm_userspace_mem_region_add(vm, VM_MEM_SRC_ANONYMOUS, SLOT_GPA, SLOT, SLOT_PAGES, 0);
	virt_map(vm, SLOT_GPA, SLOT_GPA, SLOT_PAGES);
	vcpu_args_set(vcpu, 2, seed, calls);
	ksft_print_msg("seed %lu, %lu calls\n", seed, calls);
	for (;;) {
		vcpu_run(vcpu);
		TEST_ASSERT_KVM_EXIT_REASON(vcpu, KVM_EXIT_IO);
		switch (get_ucall(vcpu, &uc)) {
		case UCALL_SYNC:
			if (uc.args[0] == NFUNCS)
				ksft_print_msg("VMFUNC: %lu accepted, %lu rejected (#UD)\n",
					       uc.args[1], uc.args[2]);
			else
				ksft_print_msg("function +%lu: %lu accepted, %lu rejected\n",
					       uc.args[0], uc.args[1], uc.args[2]);
			ok += uc.args[1];
			failed += uc.args[2];
			continue;
		case UCALL_ABORT:
			REPORT_GUEST_ASSERT(uc);
			break;
		case UCALL_DONE:
			break;
		default:
			TEST_FAIL("unexpected ucall");
		}
		break;
	}
	TEST_ASSERT_EQ(ok + failed, calls);
	kvm_vm_free(vm);
	ksft_test_result_pass("%lu calls (seed %lu): %lu accepted, %lu rejected and changed nothing\n",
			      calls, seed, ok, failed);
	ksft_finished();
}
