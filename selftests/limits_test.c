// SPDX-License-Identifier: GPL-2.0
/*
 * kvm_isolate's per-VM capacities: the module parameters max_code_ranges,
 * max_regions, max_rules, max_entry_points and max_return_sites, read when a
 * VM is created.
 *
 * The test reloads kvm_isolate with tiny caps (3 code ranges, 3 regions,
 * 4 rules, 3 entry points, 2 return sites) and checks that
 *
 *  - a cap above 1 << 20 fails the load, which is logged;
 *  - a guest fills each table of its VM up to its cap, and the hypercall
 *    after that is KVM_ISOLATE_ENOSPC and changes nothing: the refused code
 *    page and region keep the rights of a page of no domain, in view 0 and
 *    in the domain's view, and the guest still writes the refused region;
 *  - the control plane reports the usage and the caps, and refuses a
 *    profile or entry points beyond the caps with E2BIG, changing nothing;
 *  - the host logs a full table once per VM, however often it refuses.
 *
 * Then it restores the defaults.  A VM holds the module until it is
 * destroyed, so the checks run in a child process, and the parent restores
 * the defaults (again) after it, whatever became of it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/kvm_isolate.h>
#include <linux/stringify.h>

#include "kvm_util.h"
#include "processor.h"
#include "ucall_common.h"
#include "ctl.h"

#define DOMAIN		1
#define E(x)		((u64)-(KVM_ISOLATE_##x))

/* The caps the test loads kvm_isolate with. */
#define CAP_CODE	3
#define CAP_REGIONS	3
#define CAP_RULES	4
#define CAP_ENTRIES	3
#define CAP_RETURNS	2
/* The largest cap the module takes. */
#define CEILING		1048576

/* Guest virtual addresses of no code: the rules PROFILE_SET checks need only be well formed. */
#define ACCESSORS	0x40000000ul
/* A pattern the guest writes into the refused region. */
#define PATTERN		0x11a115ca9500ba11ull

#define CHECKS		17

/* ---- guest side ---- */

/* What the host asks the guest to do next, with args[]. */
enum cmd { CMD_HC = 1, CMD_POKE };

static u64 cmd, args[5];

/* Writes @val at @gva; the vector of the exception it took, 0 if none. */
static u8 guest_write(u64 gva, u64 val)
{
	return kvm_asm_safe("movq %[v], (%[p])", [p] "r"(gva), [v] "r"(val));
}

/* Reads @gva into *@val; the vector of the exception it took, 0 if none. */
static u8 guest_read(u64 gva, u64 *val)
{
	u64 error_code, v = 0;
	u8 vector;

	asm volatile(KVM_ASM_SAFE("movq (%[p]), %[v]")
		     : KVM_ASM_SAFE_OUTPUTS(vector, error_code), [v] "+r"(v)
		     : [p] "r"(gva)
		     : KVM_ASM_SAFE_CLOBBERS);
	*val = v;
	return vector;
}

/*
 * One command per GUEST_SYNC: a hypercall (args[0] the number), or a write
 * of args[1] at args[0] read back; its result, then the vectors the write
 * and the read took.
 */
static void guest_code(void)
{
	u64 r, wvec, rvec;

	for (;;) {
		r = 0;
		wvec = 0;
		rvec = 0;
		switch (READ_ONCE(cmd)) {
		case CMD_HC:
			r = kvm_hypercall(args[0], args[1], args[2], args[3], args[4]);
			break;
		case CMD_POKE:
			wvec = guest_write(args[0], args[1]);
			rvec = guest_read(args[0], &r);
			break;
		default:
			GUEST_FAIL("unknown command %lu", cmd);
		}
		GUEST_SYNC_ARGS(r, wvec, rvec, 0, 0);
	}
}

/* ---- host side ---- */

struct reply {
	u64 ret;	/* the hypercall's result, or the value read back */
	u64 wvec;	/* CMD_POKE: the vectors the write and the read took, 0 if none */
	u64 rvec;
};

/* A guest page the host allocated. */
struct gpage {
	u64 gva;
	u64 gpa;
};

static struct kvm_vm *vm;
static struct kvm_vcpu *vcpu;
static int dev = -1;	/* /dev/kvm-isolate */
static u32 id;		/* the VM's id there */
/* One page more than each cap: the last is the one refused. */
static struct gpage code[CAP_CODE + 1], region[CAP_REGIONS + 1];

/* The module parameters that set the caps above. */
static char small_caps[160];

static pid_t supervisor;
static bool restored;

/* Runs a shell command; its exit status, -1 if it did not exit. */
static __printf(1, 2) int sh(const char *fmt, ...)
{
	char line[256];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fflush(stdout);
	st = system(line);
	return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int load_small_caps(void)
{
	return sh("modprobe -r kvm_isolate && modprobe kvm_isolate %s", small_caps);
}

/*
 * In the supervisor, after the checks and at its exit: back to the default
 * caps, unless the checks passed, the last of which restored them.
 */
static void restore_defaults(void)
{
	if (getpid() != supervisor || restored)
		return;
	restored = true;
	/* Loaded with the small caps, or not at all (a load that failed). */
	if (!access("/sys/module/kvm_isolate", F_OK) && sh("modprobe -r kvm_isolate"))
		ksft_print_msg("kvm_isolate cannot be unloaded: default caps not restored\n");
	else if (sh("modprobe kvm_isolate"))
		ksft_print_msg("modprobe kvm_isolate failed: the module is not loaded\n");
}

/* One TAP line for @what; when it fails, the details first, as a diagnostic. */
static __printf(3, 4) void report(bool ok, const char *what, const char *fmt, ...)
{
	va_list ap;

	if (!ok) {
		va_start(ap, fmt);
		printf("# ");
		vprintf(fmt, ap);
		printf("\n");
		va_end(ap);
	}
	ksft_test_result(ok, "%s\n", what);
}

/* /dev/kmsg, at its end: what the kernel logs from now on; -1 if it cannot be read. */
static int kmsg_open(void)
{
	int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK);

	if (fd >= 0 && lseek(fd, 0, SEEK_END) < 0) {
		close(fd);
		fd = -1;
	}
	if (fd < 0)
		ksft_print_msg("/dev/kmsg: %s\n", strerror(errno));
	return fd;
}

/*
 * Counts in @n[i] the records logged since kmsg_open() (and not read yet)
 * that contain @what[i], for each of the @k strings; -1 each if there is no log.
 */
static void kmsg_count(int fd, const char *const *what, int *n, int k)
{
	char rec[8192];
	ssize_t len;
	int i;

	for (i = 0; i < k; i++)
		n[i] = fd < 0 ? -1 : 0;
	while (fd >= 0) {
		len = read(fd, rec, sizeof(rec) - 1);
		if (len < 0 && errno == EPIPE)
			continue;	/* records overwritten before they were read */
		if (len <= 0)
			break;		/* EAGAIN: no more */
		rec[len] = 0;
		for (i = 0; i < k; i++)
			n[i] += !!strstr(rec, what[i]);
	}
}

/* Opens /dev/kvm-isolate, which a reloaded module may take a moment to bring back. */
static int open_dev(void)
{
	int fd = -1, i;

	for (i = 0; i < 100; i++) {
		fd = open("/dev/kvm-isolate", O_RDWR);
		if (fd >= 0 || errno != ENOENT)
			break;
		usleep(10000);
	}
	TEST_ASSERT(fd >= 0, "open /dev/kvm-isolate: %s", strerror(errno));
	return fd;
}

static struct reply guest(u64 c, u64 a0, u64 a1, u64 a2, u64 a3, u64 a4)
{
	struct kvm_run *run = vcpu->run;
	struct reply r = {};
	struct ucall uc;
	int ret;

	cmd = c;
	args[0] = a0;
	args[1] = a1;
	args[2] = a2;
	args[3] = a3;
	args[4] = a4;
	sync_global_to_guest(vm, cmd);
	sync_global_to_guest(vm, args);
	ret = _vcpu_run(vcpu);
	TEST_ASSERT(!ret, "KVM_RUN failed (errno %d), exit %s, memory fault at gpa 0x%llx",
		    errno, exit_reason_str(run->exit_reason),
		    run->exit_reason == KVM_EXIT_MEMORY_FAULT ? run->memory_fault.gpa : 0ull);
	switch (get_ucall(vcpu, &uc)) {
	case UCALL_SYNC:
		r.ret = uc.args[1];
		r.wvec = uc.args[2];
		r.rvec = uc.args[3];
		break;
	case UCALL_ABORT:
		REPORT_GUEST_ASSERT(uc);
		break;
	default:
		TEST_FAIL("unexpected exit %s", exit_reason_str(run->exit_reason));
	}
	return r;
}

static u64 hc(u64 nr, u64 a0, u64 a1, u64 a2, u64 a3)
{
	return guest(CMD_HC, nr, a0, a1, a2, a3).ret;
}

/* The rights @view grants at @gpa (KVM_ISOLATE_QUERY_ACCESS). */
static u64 rights(u64 view, u64 gpa)
{
	return hc(KVM_HC_ISOLATE_QUERY, KVM_ISOLATE_QUERY_ACCESS, view, gpa, 0);
}

/* A VM with one vCPU running guest_code, known to the control plane (id). */
static void vm_start(void)
{
	vm = vm_create_with_one_vcpu(&vcpu, guest_code);
	dev = open_dev();
	/* The first hypercall gives the VM its control-plane id. */
	TEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_PROBE, 0, 0, 0, 0), KVM_ISOLATE_MAGIC);
	id = ki_my_vm(dev);
}

/* Destroys the VM and closes the device: neither holds the module any longer. */
static void vm_stop(void)
{
	close(dev);
	dev = -1;
	kvm_vm_free(vm);
	vm = NULL;
}

static struct gpage alloc_page(void)
{
	struct gpage p;

	p.gva = vm_alloc_page(vm);
	p.gpa = addr_gva2gpa(vm, p.gva);
	return p;
}

/* KVM_ISOLATE_CTL_PROFILE_SET of @n rules: 0, or the errno. */
static int profile_set(struct kvm_isolate_ctl_rule *r, u32 n)
{
	struct kvm_isolate_ctl_array a = { .vm = id, .count = n, .ptr = (u64)r };

	return ioctl(dev, KVM_ISOLATE_CTL_PROFILE_SET, &a) ? errno : 0;
}

/* KVM_ISOLATE_CTL_ENTRIES_SET of @n entry points: 0, or the errno. */
static int entries_set(struct kvm_isolate_ctl_entry *e, u32 n)
{
	struct kvm_isolate_ctl_array a = { .vm = id, .count = n, .ptr = (u64)e };

	return ioctl(dev, KVM_ISOLATE_CTL_ENTRIES_SET, &a) ? errno : 0;
}

/* Whether @e[0..@n) are the entry points at the start of each accepted code page. */
static bool entries_are_the_code_pages(const struct kvm_isolate_ctl_entry *e, u32 n)
{
	u32 i, j, found = 0;

	if (n != CAP_ENTRIES)
		return false;
	for (i = 0; i < CAP_ENTRIES; i++)
		for (j = 0; j < n; j++)
			if (e[j].domain == DOMAIN && !e[j].pad && e[j].gva == code[i].gva &&
			    e[j].gpa == code[i].gpa)
				found++;
	return found == CAP_ENTRIES;
}

/* 1) A cap above the ceiling fails the load, and says why; then the small caps. */
static void check_ceiling(void)
{
	const char *what = "a max_* parameter is above " __stringify(CEILING);
	int removed, loaded, kmsg, n;
	bool gone;

	removed = sh("modprobe -r kvm_isolate");
	kmsg = kmsg_open();
	loaded = sh("modprobe kvm_isolate max_rules=%u", CEILING + 1);
	gone = access("/sys/module/kvm_isolate", F_OK) && errno == ENOENT;
	kmsg_count(kmsg, &what, &n, 1);
	if (kmsg >= 0)
		close(kmsg);
	report(!removed && loaded && gone,
	       "modprobe kvm_isolate max_rules=1048577 fails, the module stays unloaded",
	       "modprobe -r kvm_isolate: status %d (want 0); modprobe kvm_isolate max_rules=%u: status %d (want non-zero); /sys/module/kvm_isolate %s",
	       removed, CEILING + 1, loaded, gone ? "absent" : "present (want absent)");
	report(n >= 1, "the refused load is logged: a max_* parameter is above 1048576",
	       "%d such kernel log lines (want at least 1)", n);
	if (load_small_caps())
		ksft_exit_fail_msg("modprobe kvm_isolate %s failed\n", small_caps);
}

/* 2) to 4) Each table filled by the guest up to its cap; the next call refused. */
static void check_guest_tables(void)
{
	u64 ret[8], v0, v1, before0, before1, got;	/* ret: room for each cap and one more */
	u64 *mem;
	struct kvm_isolate_ctl_entry e[8];
	struct reply r;
	bool ok;
	u32 i, n;

	/* Code ranges: one page each, the last refused. */
	before0 = rights(0, code[CAP_CODE].gpa);
	before1 = rights(DOMAIN, code[CAP_CODE].gpa);
	for (i = 0; i <= CAP_CODE; i++)
		ret[i] = hc(KVM_HC_ISOLATE_DOMAIN_ADD_CODE, DOMAIN, code[i].gva, code[i].gpa, 1);
	ok = ret[CAP_CODE] == E(ENOSPC);
	for (i = 0; i < CAP_CODE; i++)
		ok &= ret[i] == 0;
	report(ok, "ADD_CODE: 3 code ranges accepted (max_code_ranges=3), the 4th ENOSPC",
	       "ADD_CODE returned %ld, %ld, %ld, %ld; want 0, 0, 0, %ld", (long)ret[0],
	       (long)ret[1], (long)ret[2], (long)ret[3], (long)E(ENOSPC));

	/*
	 * The refused page is still a page of no domain: RWX in view 0, RW in the
	 * domain's view; an accepted one is the domain's code (enforce mode): R in
	 * view 0, RX in the domain's view.
	 */
	v0 = rights(0, code[CAP_CODE].gpa);
	v1 = rights(DOMAIN, code[CAP_CODE].gpa);
	ok = v0 == KVM_ISOLATE_ACCESS_RWX && v1 == (KVM_ISOLATE_ACCESS_R | KVM_ISOLATE_ACCESS_W) &&
	     v0 == before0 && v1 == before1;
	if (!ok)
		ksft_print_msg("refused code page: view 0 %lu (was %lu), view 1 %lu (was %lu)\n",
			       v0, before0, v1, before1);
	for (i = 0; i < CAP_CODE; i++) {
		v0 = rights(0, code[i].gpa);
		v1 = rights(DOMAIN, code[i].gpa);
		if (v0 != KVM_ISOLATE_ACCESS_R ||
		    v1 != (KVM_ISOLATE_ACCESS_R | KVM_ISOLATE_ACCESS_X)) {
			ok = false;
			ksft_print_msg("code page %u: view 0 %lu, view 1 %lu\n", i, v0, v1);
		}
	}
	report(ok, "the refused code range changed nothing: view 0 RWX, the accepted ones R",
	       "want view 0 7, view 1 3 for the refused page, as before; 1 and 5 for the others");

	/* Regions: one page each, RW, the last refused. */
	mem = addr_gva2hva(vm, region[0].gva);
	*mem = 0;
	before0 = rights(0, region[CAP_REGIONS].gpa);
	before1 = rights(DOMAIN, region[CAP_REGIONS].gpa);
	for (i = 0; i <= CAP_REGIONS; i++)
		ret[i] = hc(KVM_HC_ISOLATE_DOMAIN_ADD_REGION, DOMAIN, region[i].gpa, 1,
			    KVM_ISOLATE_ACCESS_R | KVM_ISOLATE_ACCESS_W);
	ok = ret[CAP_REGIONS] == E(ENOSPC);
	for (i = 0; i < CAP_REGIONS; i++)
		ok &= ret[i] == (KVM_ISOLATE_ACCESS_R | KVM_ISOLATE_ACCESS_W);
	report(ok, "ADD_REGION: 3 regions accepted (max_regions=3), the 4th ENOSPC",
	       "ADD_REGION returned %ld, %ld, %ld, %ld; want 3, 3, 3, %ld", (long)ret[0],
	       (long)ret[1], (long)ret[2], (long)ret[3], (long)E(ENOSPC));

	/*
	 * The refused page: still RWX in view 0, RW in the domain's view, and the
	 * guest writes and reads it from view 0.  An accepted one: not mapped in
	 * view 0, RW in the domain's view.
	 */
	v0 = rights(0, region[CAP_REGIONS].gpa);
	v1 = rights(DOMAIN, region[CAP_REGIONS].gpa);
	ok = v0 == KVM_ISOLATE_ACCESS_RWX && v1 == (KVM_ISOLATE_ACCESS_R | KVM_ISOLATE_ACCESS_W) &&
	     v0 == before0 && v1 == before1;
	if (!ok)
		ksft_print_msg("refused region: view 0 %lu (was %lu), view 1 %lu (was %lu)\n",
			       v0, before0, v1, before1);
	r = guest(CMD_POKE, region[CAP_REGIONS].gva, PATTERN, 0, 0, 0);
	got = *(u64 *)addr_gva2hva(vm, region[CAP_REGIONS].gva);
	if (r.wvec || r.rvec || r.ret != PATTERN || got != PATTERN) {
		ok = false;
		ksft_print_msg("refused region: write vector %lu, read vector %lu, read 0x%lx\n",
			       r.wvec, r.rvec, r.ret);
		ksft_print_msg("refused region: memory holds 0x%lx after the write\n", got);
	}
	for (i = 0; i < CAP_REGIONS; i++) {
		v0 = rights(0, region[i].gpa);
		v1 = rights(DOMAIN, region[i].gpa);
		if (v0 != 0 || v1 != (KVM_ISOLATE_ACCESS_R | KVM_ISOLATE_ACCESS_W)) {
			ok = false;
			ksft_print_msg("region %u: view 0 %lu, view 1 %lu\n", i, v0, v1);
		}
	}
	report(ok, "the refused region changed nothing: view 0 RWX, written by the guest",
	       "want view 0 7, view 1 3 for the refused region, as before, no vector, 0x%llx read and in memory; 0 and 3 for the others",
	       PATTERN);

	/* The accepted regions are really the domain's: code outside gets #GP (deny=gp). */
	r = guest(CMD_POKE, region[0].gva, PATTERN, 0, 0, 0);
	got = *mem;
	report(r.wvec == GP_VECTOR && r.rvec == GP_VECTOR && got == 0,
	       "an accepted region is denied to code in view 0",
	       "the guest's write to region 0: vector %lu, its read: vector %lu (want %d, %d); memory holds 0x%lx (want 0)",
	       r.wvec, r.rvec, GP_VECTOR, GP_VECTOR, got);

	/* Entry points: at the start of each accepted code page; then one more inside. */
	for (i = 0; i < CAP_ENTRIES; i++)
		ret[i] = hc(KVM_HC_ISOLATE_DOMAIN_ADD_ENTRY, DOMAIN, code[i].gva, 0, 0);
	ret[CAP_ENTRIES] = hc(KVM_HC_ISOLATE_DOMAIN_ADD_ENTRY, DOMAIN, code[0].gva + 16, 0, 0);
	n = __ki_ctl_get(dev, KVM_ISOLATE_CTL_ENTRIES_GET, id, e, ARRAY_SIZE(e));
	ok = ret[CAP_ENTRIES] == E(ENOSPC) && entries_are_the_code_pages(e, n);
	for (i = 0; i < CAP_ENTRIES; i++)
		ok &= ret[i] == 0;
	report(ok, "ADD_ENTRY: 3 entry points accepted (max_entry_points=3), the 4th ENOSPC",
	       "ADD_ENTRY returned %ld, %ld, %ld, %ld; want 0, 0, 0, %ld; ENTRIES_GET lists %u (want the 3 accepted)",
	       (long)ret[0], (long)ret[1], (long)ret[2], (long)ret[3], (long)E(ENOSPC), n);
}

/* 5) The control plane reports the usage and the caps. */
static void check_vm_info(void)
{
	struct kvm_isolate_ctl_vm v = ki_vm_info(dev, id);

	report(v.code_ranges == CAP_CODE && v.regions == CAP_REGIONS &&
	       v.entries == CAP_ENTRIES && v.rules == 0,
	       "VM info: 3 code ranges, 3 regions, 3 entry points, 0 rules",
	       "VM info: %u code ranges, %u regions, %u entry points, %u rules; want 3, 3, 3, 0",
	       v.code_ranges, v.regions, v.entries, v.rules);
	report(v.max_code_ranges == CAP_CODE && v.max_regions == CAP_REGIONS &&
	       v.max_rules == CAP_RULES && v.max_entries == CAP_ENTRIES &&
	       v.max_return_sites == CAP_RETURNS,
	       "VM info: the caps are the module parameters it was loaded with",
	       "VM info caps: %u code ranges, %u regions, %u rules, %u entry points, %u return sites; want 3, 3, 4, 3, 2",
	       v.max_code_ranges, v.max_regions, v.max_rules, v.max_entries,
	       v.max_return_sites);
}

/* 6) PROFILE_SET and ENTRIES_SET beyond the caps: E2BIG, nothing changed. */
static void check_ctl_caps(void)
{
	struct kvm_isolate_ctl_rule rules[CAP_RULES + 1], got[CAP_RULES + 1];
	struct kvm_isolate_ctl_entry e[CAP_ENTRIES + 1], after[8];
	u32 i, n, m, info_rules;
	int err;

	/* One region, R, from disjoint (and not adjacent) accessor pages: all valid. */
	for (i = 0; i <= CAP_RULES; i++)
		rules[i] = (struct kvm_isolate_ctl_rule){
			.domain = DOMAIN,
			.access = KVM_ISOLATE_ACCESS_R,
			.region_gpa = region[0].gpa,
			.accessor_start = ACCESSORS + 2 * i * PAGE_SIZE,
			.accessor_end = ACCESSORS + (2 * i + 1) * PAGE_SIZE,
		};
	err = profile_set(rules, CAP_RULES + 1);
	n = __ki_ctl_get(dev, KVM_ISOLATE_CTL_PROFILE_GET, id, NULL, 0);
	info_rules = ki_vm_info(dev, id).rules;
	report(err == E2BIG && n == 0 && info_rules == 0,
	       "PROFILE_SET of 5 rules (max_rules=4): E2BIG, the profile unchanged",
	       "PROFILE_SET: %s (want %s); then %u rules (VM info: %u), want 0",
	       err ? strerror(err) : "accepted", strerror(E2BIG), n, info_rules);

	err = profile_set(rules, CAP_RULES);
	n = __ki_ctl_get(dev, KVM_ISOLATE_CTL_PROFILE_GET, id, got, ARRAY_SIZE(got));
	info_rules = ki_vm_info(dev, id).rules;
	report(!err && n == CAP_RULES && info_rules == CAP_RULES &&
	       !memcmp(got, rules, CAP_RULES * sizeof(*got)),
	       "PROFILE_SET of 4 rules: accepted, VM info counts 4 rules",
	       "PROFILE_SET: %s (want accepted); PROFILE_GET: %u rules%s, VM info: %u; want 4, as set",
	       err ? strerror(err) : "accepted", n,
	       n == CAP_RULES && memcmp(got, rules, CAP_RULES * sizeof(*got)) ?
	       " (not the ones set)" : "", info_rules);

	/* The 3 entry points and one more, valid, inside the first code page. */
	n = __ki_ctl_get(dev, KVM_ISOLATE_CTL_ENTRIES_GET, id, e, CAP_ENTRIES);
	TEST_ASSERT(n == CAP_ENTRIES, "%u entry points, want %d", n, CAP_ENTRIES);
	e[CAP_ENTRIES] = (struct kvm_isolate_ctl_entry){
		.domain = DOMAIN,
		.gva = code[0].gva + 16,
		.gpa = code[0].gpa + 16,
	};
	err = entries_set(e, CAP_ENTRIES + 1);
	m = __ki_ctl_get(dev, KVM_ISOLATE_CTL_ENTRIES_GET, id, after, ARRAY_SIZE(after));
	report(err == E2BIG && m == n && !memcmp(after, e, n * sizeof(*e)),
	       "ENTRIES_SET of 4 entry points (max_entry_points=3): E2BIG, the entry points unchanged",
	       "ENTRIES_SET: %s (want %s); then ENTRIES_GET lists %u entry points%s, want the %u before",
	       err ? strerror(err) : "accepted", strerror(E2BIG), m,
	       m == n && memcmp(after, e, n * sizeof(*e)) ? " (not those)" : "", n);
}

/*
 * 7) A full table is logged once per VM and table, however often it is
 * refused: code ranges (refused twice), regions and entry points.
 */
static void check_log(int kmsg)
{
	char what[3][64];
	const char *const w[3] = { what[0], what[1], what[2] };
	int n[3];
	u64 ret;

	ret = hc(KVM_HC_ISOLATE_DOMAIN_ADD_CODE, DOMAIN, code[CAP_CODE].gva, code[CAP_CODE].gpa, 1);
	snprintf(what[0], sizeof(what[0]), "VM %u: max_code_ranges reached", id);
	snprintf(what[1], sizeof(what[1]), "VM %u: max_regions reached", id);
	snprintf(what[2], sizeof(what[2]), "VM %u: max_entry_points reached", id);
	kmsg_count(kmsg, w, n, 3);
	report(ret == E(ENOSPC) && n[0] == 1,
	       "max_code_ranges reached is logged once, after 2 refused ADD_CODEs",
	       "the second refused ADD_CODE returned %ld (want %ld); %d kernel log lines \"%s\" (want 1)",
	       (long)ret, (long)E(ENOSPC), n[0], what[0]);
	report(n[1] == 1 && n[2] == 1,
	       "max_regions and max_entry_points reached are logged once each",
	       "%d kernel log lines \"%s\", %d \"%s\" (want 1, 1)", n[1], what[1], n[2],
	       what[2]);
}

/* 8) Back to the defaults: a new VM gets them. */
static void check_defaults(void)
{
	struct kvm_isolate_ctl_vm v;
	int st;

	st = sh("modprobe -r kvm_isolate && modprobe kvm_isolate");
	if (st) {
		report(false, "modprobe kvm_isolate restores the default caps",
		       "modprobe -r kvm_isolate && modprobe kvm_isolate: status %d", st);
		return;
	}
	vm_start();
	v = ki_vm_info(dev, id);
	vm_stop();
	report(v.max_code_ranges == 16384 && v.max_regions == 16384 && v.max_rules == 65536 &&
	       v.max_entries == 65536 && v.max_return_sites == 4096,
	       "modprobe kvm_isolate restores the default caps",
	       "a new VM's caps: %u code ranges, %u regions, %u rules, %u entry points, %u return sites; want 16384, 16384, 65536, 65536, 4096",
	       v.max_code_ranges, v.max_regions, v.max_rules, v.max_entries,
	       v.max_return_sites);
}

/* The checks, in the child: its VMs are gone when it is. */
static void __noreturn run_checks(void)
{
	struct kvm_isolate_ctl_mode m;
	u32 i, mode;
	int kmsg;

	ksft_set_plan(CHECKS);
	check_ceiling();

	vm_start();
	for (i = 0; i <= CAP_CODE; i++)
		code[i] = alloc_page();
	for (i = 0; i <= CAP_REGIONS; i++)
		region[i] = alloc_page();
	mode = ki_vm_info(dev, id).mode;
	report(mode == KVM_ISOLATE_MODE_ENFORCE, "a new VM is in enforce mode",
	       "VM %u: mode %u, want %d (enforce)", id, mode, KVM_ISOLATE_MODE_ENFORCE);
	/* A denial is a #GP the guest survives, not an exit that would end KVM_RUN. */
	m = (struct kvm_isolate_ctl_mode){
		.vm = id, .mode = KVM_ISOLATE_MODE_ENFORCE, .deny = KVM_ISOLATE_DENY_GP,
	};
	TEST_ASSERT(!ioctl(dev, KVM_ISOLATE_CTL_SET_MODE, &m), "SET_MODE enforce, deny gp: %s",
		    strerror(errno));
	kmsg = kmsg_open();
	TEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_DOMAIN_CREATE, 0, 0, 0, 0), DOMAIN);

	check_guest_tables();
	check_vm_info();
	check_ctl_caps();
	check_log(kmsg);
	if (kmsg >= 0)
		close(kmsg);
	vm_stop();

	check_defaults();
	ksft_finished();
}

int main(void)
{
	pid_t child;
	int st;

	ksft_print_header();
	if (geteuid())
		ksft_exit_skip("needs root: the test reloads kvm_isolate\n");
	if (access("/dev/kvm-isolate", F_OK))
		ksft_exit_skip("kvm_isolate is not loaded (no /dev/kvm-isolate)\n");
	if (access("/sys/module/kvm_isolate/refcnt", F_OK))
		ksft_exit_skip("kvm_isolate is built in: its parameters cannot change\n");
	if (sh("command -v modprobe >/dev/null 2>&1"))
		ksft_exit_skip("no modprobe\n");

	snprintf(small_caps, sizeof(small_caps),
		 "max_code_ranges=%d max_regions=%d max_rules=%d max_entry_points=%d max_return_sites=%d",
		 CAP_CODE, CAP_REGIONS, CAP_RULES, CAP_ENTRIES, CAP_RETURNS);
	supervisor = getpid();
	atexit(restore_defaults);
	if (load_small_caps())
		ksft_exit_fail_msg("modprobe -r kvm_isolate && modprobe kvm_isolate %s failed\n",
				   small_caps);
	fflush(stdout);
	child = fork();
	TEST_ASSERT(child >= 0, "fork: %s", strerror(errno));
	if (!child)
		run_checks();
	TEST_ASSERT(waitpid(child, &st, 0) == child, "waitpid: %s", strerror(errno));
	/* All passed: the last check restored the defaults. */
	restored = WIFEXITED(st) && WEXITSTATUS(st) == KSFT_PASS;
	if (WIFSIGNALED(st))
		ksft_print_msg("the checks were killed by signal %d\n", WTERMSIG(st));
	restore_defaults();
	return WIFEXITED(st) ? WEXITSTATUS(st) : KSFT_FAIL;
}
