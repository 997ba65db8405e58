// SPDX-License-Identifier: GPL-2.0
/*
 * kvm-isolate domains, driven through the host tool like an administrator
 * would: a guest "module" (its code page) owns a secret; a scripted
 * workload in learn mode yields a profile (a helper page that reads the
 * secret); in enforce mode the same workload causes no denial, a rogue read
 * is denied with an exact log record; the exported profile imported into a
 * fresh VM reproduces the enforcement; malformed profiles and ioctls change
 * nothing; a storm of 100,000 violations keeps the host answering, the log
 * bounded, its counts exact, and a different denial after it logged.
 *
 * The tool is kvm-isolatectl (in $PATH, or $KVM_ISOLATECTL).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "domains.h"
#include "ctl.h"
#include "kselftest_harness.h"

static struct kvm_isolate_ctl_domain domain_info(int fd, u32 vm)
{
	struct kvm_isolate_ctl_domain d[16];

	TEST_ASSERT_EQ(ki_ctl_get(fd, KVM_ISOLATE_CTL_DOMAINS, vm, d, ARRAY_SIZE(d)), 1);
	TEST_ASSERT_EQ(d[0].id, DOMAIN);
	return d[0];
}

struct drained {
	u64 records;		/* records read */
	u64 count;		/* the violations they stand for (repeats included) */
	u64 denied_at_rip;	/* records of denials at the RIP asked about */
	u64 dropped;		/* the log's drop counter */
};

static struct drained drain_log(int fd, u32 vm, u64 rip)
{
	static struct kvm_isolate_ctl_record r[256];
	struct kvm_isolate_ctl_array a;
	struct drained d = {};
	u32 i;

	do {
		a = (struct kvm_isolate_ctl_array){ .vm = vm, .count = 256, .ptr = (u64)r };
		TEST_ASSERT_EQ(ioctl(fd, KVM_ISOLATE_CTL_LOG_READ, &a), 0);
		for (i = 0; i < a.count; i++) {
			TEST_ASSERT(r[i].count >= 1 && r[i].last_ns >= r[i].time_ns,
				    "record %lu: count %lu, time %lu, last %lu", (u64)r[i].seq,
				    (u64)r[i].count, (u64)r[i].time_ns, (u64)r[i].last_ns);
			d.count += r[i].count;
			if (r[i].rip == rip && r[i].verdict == KVM_ISOLATE_LOG_DENIED)
				d.denied_at_rip++;
		}
		d.records += a.count;
	} while (a.count);
	d.dropped = a.dropped;
	return d;
}

static void check_tool(void)
{
	char out[4096];

	TEST_ASSERT(ctl(out, sizeof(out), "--help") == 0,
		    "%s --help failed (is it installed?): %s", tool(), out);
}

static void set_profile(int fd, u32 vm, struct kvm_isolate_ctl_rule *r, u32 n)
{
	struct kvm_isolate_ctl_array a = { .vm = vm, .count = n, .ptr = (u64)r };

	TEST_ASSERT_EQ(ioctl(fd, KVM_ISOLATE_CTL_PROFILE_SET, &a), 0);
}

/*
 * Learn, export, enforce, rogue read with an exact log record; then the
 * profile in a fresh VM.
 */
TEST(learn_enforce_and_profile_in_a_fresh_vm)
{
	char out[16384], want[512], file[] = "/tmp/ki-profile-XXXXXX";
	struct kvm_isolate_ctl_domain d0, d1;
	struct kvm_isolate_ctl_rule rules[8];
	struct kvm_isolate_ctl_vm info;
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	int fd = dev_fd(), tmp;
	u64 helper = (u64)ki_helper_read;
	FILE *follow;
	size_t n;
	u32 id;

	check_tool();
	vm = create(&vcpu);
	step(vm, vcpu, SETUP);
	id = ki_my_vm(fd);
	info = ki_vm_info(fd, id);
	TEST_ASSERT_EQ(info.mode, KVM_ISOLATE_MODE_ENFORCE);
	TEST_ASSERT_EQ(info.domains, 1);
	/* What guest_setup() registered, and room for it. */
	TEST_ASSERT(info.code_ranges == 1 && info.regions == 1 && info.entries == 3,
		    "VM info: %u code ranges, %u regions, %u entry points; want 1, 1, 3",
		    info.code_ranges, info.regions, info.entries);
	TEST_ASSERT(info.max_code_ranges >= 1 && info.max_regions >= 1 && info.max_rules >= 1 &&
		    info.max_entries >= 3 && info.max_return_sites >= 1,
		    "VM capacities: %u code ranges, %u regions, %u rules, %u entry points, %u return sites",
		    info.max_code_ranges, info.max_regions, info.max_rules, info.max_entries,
		    info.max_return_sites);

	/* Learn: the workload runs, its one foreign accessor is recorded. */
	TEST_ASSERT_EQ(ctl(out, sizeof(out), "mode %u learn", id), 0);
	step(vm, vcpu, WORKLOAD);
	d0 = domain_info(fd, id);
	TEST_ASSERT_EQ(d0.denied, 0);
	TEST_ASSERT_EQ(d0.learned, 1);
	TEST_ASSERT_EQ(ki_ctl_get(fd, KVM_ISOLATE_CTL_PROFILE_GET, id, rules, 8), 1);
	TEST_ASSERT_EQ(rules[0].domain, DOMAIN);
	TEST_ASSERT_EQ(rules[0].region_gpa, secret_gpa);
	TEST_ASSERT_EQ(rules[0].access, KVM_ISOLATE_ACCESS_R);
	TEST_ASSERT_EQ(rules[0].accessor_start, helper);
	TEST_ASSERT_EQ(rules[0].accessor_end, helper + PAGE_SIZE);
	tmp = mkstemp(file);
	TEST_ASSERT(tmp >= 0, "mkstemp");
	close(tmp);
	TEST_ASSERT_EQ(ctl(out, sizeof(out), "profile export %u -o %s", id, file), 0);

	/* Enforce: the same workload, no denial; a rogue read is denied. */
	TEST_ASSERT_EQ(ctl(out, sizeof(out), "mode %u enforce --deny gp", id), 0);
	step(vm, vcpu, WORKLOAD);
	step(vm, vcpu, WORKLOAD);
	d1 = domain_info(fd, id);
	TEST_ASSERT_EQ(d1.denied, 0);
	TEST_ASSERT(d1.allowed > d0.allowed, "the workload was switched in");
	TEST_ASSERT_EQ(ctl(out, sizeof(out), "log %u", id), 0);
	/* An administrator following the log sees the rogue read as it happens. */
	snprintf(want, sizeof(want), "%s log %u --follow --json --max 1 2>&1", tool(), id);
	follow = popen(want, "r");
	TEST_ASSERT(follow, "popen %s", want);
	step(vm, vcpu, ROGUE);
	TEST_ASSERT_EQ(domain_info(fd, id).denied, 1);
	TEST_ASSERT_EQ(ki_vm_info(fd, id).locked, 1);
	n = fread(out, 1, sizeof(out) - 1, follow);
	out[n] = 0;
	TEST_ASSERT_EQ(pclose(follow), 0);
	if (host_cpu_is_intel) {
		/* VMX reports the linear address of the access. */
		snprintf(want, sizeof(want),
			 "\"vm\":%u,\"vcpu\":0,\"view\":0,\"domain\":%d,\"rip\":%lu,\"gva\":%lu,"
			 "\"gpa\":%lu,\"access\":\"r\",\"verdict\":\"denied\"", id, DOMAIN,
			 (u64)ki_rogue_read, secret_gva, secret_gpa);
	} else {
		snprintf(want, sizeof(want),
			 "\"vm\":%u,\"vcpu\":0,\"view\":0,\"domain\":%d,\"rip\":%lu,\"gva\":null,"
			 "\"gpa\":%lu,\"access\":\"r\",\"verdict\":\"denied\"", id, DOMAIN,
			 (u64)ki_rogue_read, secret_gpa);
	}
	TEST_ASSERT(strstr(out, want), "log record\n  want %s\n  got %s", want, out);
	/* The learned rule lets the helper run when the owner calls it, not on its own. */
	step(vm, vcpu, HELPER_ALONE);
	TEST_ASSERT_EQ(domain_info(fd, id).denied, 2);
	/* The host may relax a locked VM. */
	TEST_ASSERT_EQ(ctl(out, sizeof(out), "lock %u --unlock", id), 0);
	TEST_ASSERT_EQ(ki_vm_info(fd, id).locked, 0);
	step(vm, vcpu, DONE);
	kvm_vm_free(vm);

	/* A fresh VM: without the profile the helper is denied; with it, not. */
	vm = create(&vcpu);
	step(vm, vcpu, SETUP);
	id = ki_my_vm(fd);
	TEST_ASSERT_EQ(ctl(out, sizeof(out), "mode %u enforce --deny gp", id), 0);
	step(vm, vcpu, HELPER_TRY);
	TEST_ASSERT_EQ(domain_info(fd, id).denied, 1);
	TEST_ASSERT_EQ(ctl(out, sizeof(out), "profile import %u %s", id, file), 0);
	TEST_ASSERT_EQ(ki_ctl_get(fd, KVM_ISOLATE_CTL_PROFILE_GET, id, rules, 8), 1);
	step(vm, vcpu, WORKLOAD);
	TEST_ASSERT_EQ(domain_info(fd, id).denied, 1);
	step(vm, vcpu, ROGUE);
	TEST_ASSERT_EQ(domain_info(fd, id).denied, 2);
	/* The administrator trusts the helper on its own: now it reads from anywhere. */
	step(vm, vcpu, HELPER_ALONE);
	TEST_ASSERT_EQ(domain_info(fd, id).denied, 3);
	TEST_ASSERT_EQ(ki_ctl_get(fd, KVM_ISOLATE_CTL_PROFILE_GET, id, rules, 8), 1);
	TEST_ASSERT_EQ(rules[0].access, KVM_ISOLATE_ACCESS_R);
	rules[0].access |= KVM_ISOLATE_RULE_TRUSTED;
	set_profile(fd, id, rules, 1);
	step(vm, vcpu, HELPER_TRUSTED);
	TEST_ASSERT_EQ(domain_info(fd, id).denied, 3);
	TEST_ASSERT_EQ(ki_ctl_get(fd, KVM_ISOLATE_CTL_PROFILE_GET, id, rules, 8), 1);
	TEST_ASSERT_EQ(rules[0].access, KVM_ISOLATE_ACCESS_R | KVM_ISOLATE_RULE_TRUSTED);
	step(vm, vcpu, DONE);
	kvm_vm_free(vm);
	unlink(file);
	close(fd);
}

/* Malformed profile files (tool) and ioctls (direct) change nothing. */
TEST(malformed_profiles_and_ioctls_change_nothing)
{
	struct kvm_isolate_ctl_rule before[8], after[8], r, *many;
	struct kvm_isolate_ctl_vm i0, i1;
	struct kvm_isolate_ctl_array a;
	struct kvm_isolate_ctl_mode m;
	struct kvm_isolate_ctl_lock l;
	char out[4096], file[] = "/tmp/ki-bad-XXXXXX";
	const char *bad[] = {
		"not json",
		"{\"format\":\"kvm-isolate-profile\",\"version\":2,\"rules\":[]}",
		"{\"format\":\"kvm-isolate-profile\",\"version\":1,\"rules\":[{\"domain\":1,"
		"\"region_gpa\":\"0x1001\",\"access\":\"r\",\"accessor_start\":\"0x1000\","
		"\"accessor_end\":\"0x2000\"}]}",
		/* Well-formed, but names a region the VM does not have: the kernel refuses. */
		"{\"format\":\"kvm-isolate-profile\",\"version\":1,\"rules\":[{\"domain\":1,"
		"\"region_gpa\":\"0x7000000\",\"access\":\"r\",\"accessor_start\":\"0x1000\","
		"\"accessor_end\":\"0x2000\"}]}",
	};
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	int fd = dev_fd(), tmp;
	u32 id, n, i;
	FILE *f;

	check_tool();
	vm = create(&vcpu);
	step(vm, vcpu, SETUP);
	id = ki_my_vm(fd);
	TEST_ASSERT_EQ(ctl(out, sizeof(out), "mode %u learn", id), 0);
	step(vm, vcpu, WORKLOAD);
	n = ki_ctl_get(fd, KVM_ISOLATE_CTL_PROFILE_GET, id, before, 8);
	TEST_ASSERT_EQ(n, 1);
	i0 = ki_vm_info(fd, id);
	TEST_ASSERT_EQ(i0.rules, n);
	TEST_ASSERT(i0.max_rules >= n, "the VM holds %u rules, has %u", i0.max_rules, n);

	tmp = mkstemp(file);
	TEST_ASSERT(tmp >= 0, "mkstemp");
	close(tmp);
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		f = fopen(file, "w");
		fputs(bad[i], f);
		fclose(f);
		TEST_ASSERT(ctl(out, sizeof(out), "profile import %u %s", id, file) != 0,
			    "accepted bad profile %u: %s", i, bad[i]);
		TEST_ASSERT(strlen(out) > 0, "no error message for bad profile %u", i);
	}
	unlink(file);
	TEST_ASSERT(ctl(out, sizeof(out), "mode %u sideways", id) != 0, "bad mode accepted");
	TEST_ASSERT(ctl(out, sizeof(out), "mode 999999 learn") != 0, "bad VM accepted");

	/* ioctls, each bad in one way. */
	r = before[0];
	a = (struct kvm_isolate_ctl_array){ .vm = id, .count = 1, .ptr = (u64)&r };
	r.domain = 7;
	TEST_ASSERT(ioctl(fd, KVM_ISOLATE_CTL_PROFILE_SET, &a) == -1 && errno == EINVAL, "domain");
	r = before[0];
	r.region_gpa += PAGE_SIZE;
	TEST_ASSERT(ioctl(fd, KVM_ISOLATE_CTL_PROFILE_SET, &a) == -1 && errno == ENOENT, "region");
	r = before[0];
	r.access = KVM_ISOLATE_ACCESS_X;
	TEST_ASSERT(ioctl(fd, KVM_ISOLATE_CTL_PROFILE_SET, &a) == -1 && errno == EINVAL, "access");
	r.access = KVM_ISOLATE_RULE_TRUSTED;	/* trust, but no right */
	TEST_ASSERT(ioctl(fd, KVM_ISOLATE_CTL_PROFILE_SET, &a) == -1 && errno == EINVAL, "trust");
	r.access = KVM_ISOLATE_ACCESS_R | 0x200;
	TEST_ASSERT(ioctl(fd, KVM_ISOLATE_CTL_PROFILE_SET, &a) == -1 && errno == EINVAL, "bits");
	r = before[0];
	r.accessor_end = r.accessor_start;
	TEST_ASSERT(ioctl(fd, KVM_ISOLATE_CTL_PROFILE_SET, &a) == -1 && errno == EINVAL, "range");
	/* One more rule than the VM holds (max_rules when it was created). */
	many = calloc(i0.max_rules + 1, sizeof(*many));
	TEST_ASSERT(many, "calloc of %u rules", i0.max_rules + 1);
	for (i = 0; i < i0.max_rules + 1; i++)
		many[i] = before[0];
	a.count = i0.max_rules + 1;
	a.ptr = (u64)many;
	TEST_ASSERT(ioctl(fd, KVM_ISOLATE_CTL_PROFILE_SET, &a) == -1 && errno == E2BIG,
		    "%u rules (max_rules %u): errno %d", a.count, i0.max_rules, errno);
	free(many);
	a.count = 1;
	a.ptr = 8;
	TEST_ASSERT(ioctl(fd, KVM_ISOLATE_CTL_PROFILE_SET, &a) == -1 && errno == EFAULT, "ptr");
	a.ptr = (u64)&r;
	a.vm = 999999;
	r = before[0];
	TEST_ASSERT(ioctl(fd, KVM_ISOLATE_CTL_PROFILE_SET, &a) == -1 && errno == ENOENT, "vm");
	m = (struct kvm_isolate_ctl_mode){ .vm = id, .mode = 7, .deny = ~0u };
	TEST_ASSERT(ioctl(fd, KVM_ISOLATE_CTL_SET_MODE, &m) == -1 && errno == EINVAL, "mode");
	m = (struct kvm_isolate_ctl_mode){ .vm = id, .mode = KVM_ISOLATE_MODE_INHERIT, .deny = ~0u };
	TEST_ASSERT(ioctl(fd, KVM_ISOLATE_CTL_SET_MODE, &m) == -1 && errno == EINVAL, "inherit");
	m = (struct kvm_isolate_ctl_mode){ .vm = id, .domain = DOMAIN, .mode = 0, .deny = 1 };
	TEST_ASSERT(ioctl(fd, KVM_ISOLATE_CTL_SET_MODE, &m) == -1 && errno == EINVAL, "deny");
	m = (struct kvm_isolate_ctl_mode){ .vm = id, .domain = 9, .mode = 0, .deny = ~0u };
	TEST_ASSERT(ioctl(fd, KVM_ISOLATE_CTL_SET_MODE, &m) == -1 && errno == ENOENT, "no domain");
	m = (struct kvm_isolate_ctl_mode){ .vm = id, .mode = 0, .deny = 9 };
	TEST_ASSERT(ioctl(fd, KVM_ISOLATE_CTL_SET_MODE, &m) == -1 && errno == EINVAL, "deny value");
	l = (struct kvm_isolate_ctl_lock){ .vm = id, .lock = 2 };
	TEST_ASSERT(ioctl(fd, KVM_ISOLATE_CTL_LOCK, &l) == -1 && errno == EINVAL, "lock");
	TEST_ASSERT(ioctl(fd, _IO(KVM_ISOLATE_CTL_TYPE, 99), 0) == -1 && errno == ENOTTY, "cmd");
	TEST_ASSERT(ioctl(fd, KVM_ISOLATE_CTL_LIST, 8) == -1 && errno == EFAULT, "list ptr");
	TEST_ASSERT_EQ(ioctl(fd, KVM_ISOLATE_CTL_VERSION, 0), KVM_ISOLATE_CTL_VERSION_NR);

	/* Nothing changed. */
	TEST_ASSERT_EQ(ki_ctl_get(fd, KVM_ISOLATE_CTL_PROFILE_GET, id, after, 8), n);
	TEST_ASSERT(!memcmp(before, after, n * sizeof(after[0])), "profile changed");
	i1 = ki_vm_info(fd, id);
	TEST_ASSERT_EQ(i1.mode, i0.mode);
	TEST_ASSERT_EQ(i1.deny, i0.deny);
	TEST_ASSERT_EQ(i1.locked, i0.locked);
	TEST_ASSERT_EQ(i1.rules, i0.rules);
	TEST_ASSERT_EQ(i1.max_rules, i0.max_rules);
	/* A profile too small for the answer gets the size and nothing else. */
	TEST_ASSERT_EQ(__ki_ctl_get(fd, KVM_ISOLATE_CTL_PROFILE_GET, id, NULL, 0), n);
	step(vm, vcpu, DONE);
	kvm_vm_free(vm);
	close(fd);
}

struct poller {
	int fd;
	u32 vm;
	volatile int stop;
	u64 polls;
	u64 max_us;
};

static u64 now_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000ull + t.tv_nsec / 1000;
}

/* The host's administrator keeps asking while the guest storms. */
static void *poll_host(void *arg)
{
	struct poller *p = arg;
	u64 t, dt;

	while (!p->stop) {
		t = now_us();
		ki_vm_info(p->fd, p->vm);
		dt = now_us() - t;
		if (dt > p->max_us)
			p->max_us = dt;
		p->polls++;
		usleep(20000);
	}
	return NULL;
}

/*
 * The storm takes about 16 s of the emulated host's time on QEMU and about three times that
 * under the sanitizer profile (KASAN): more than the harness's default 30 s.
 */
FIXTURE(storm) {};
FIXTURE_SETUP(storm) {}
FIXTURE_TEARDOWN(storm) {}

TEST_F_TIMEOUT(storm, violation_storm_keeps_the_host_responsive, 600)
{
	struct kvm_isolate_ctl_vm i0, i1;
	struct kvm_isolate_ctl_domain d0, d1;
	struct drained before, after;
	struct poller p = {};
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	u64 t;
	pthread_t th;
	int fd = dev_fd();
	u32 id;

	/* KI_STORM: fewer (the sanitizer rig), but more than the log's 20,000-repeat horizon. */
	if (getenv("KI_STORM") && *getenv("KI_STORM"))
		storm = strtoull(getenv("KI_STORM"), NULL, 0);
	TEST_ASSERT(storm > 20000 && storm <= STORM, "KI_STORM=%lu: want 20001 to %d", storm,
		    STORM);
	vm = create(&vcpu);
	sync_global_to_guest(vm, storm);
	step(vm, vcpu, SETUP);
	id = ki_my_vm(fd);
	p.fd = fd;
	p.vm = id;
	TEST_ASSERT_EQ(ioctl(fd, KVM_ISOLATE_CTL_SET_MODE,
			     &(struct kvm_isolate_ctl_mode){ .vm = id, .mode = KVM_ISOLATE_MODE_ENFORCE,
							     .deny = KVM_ISOLATE_DENY_GP }), 0);
	before = drain_log(fd, id, 0);
	i0 = ki_vm_info(fd, id);
	d0 = domain_info(fd, id);

	TEST_ASSERT_EQ(pthread_create(&th, NULL, poll_host, &p), 0);
	t = now_us();
	step(vm, vcpu, STORM_RUN);
	t = now_us() - t;
	p.stop = 1;
	pthread_join(th, NULL);

	i1 = ki_vm_info(fd, id);
	d1 = domain_info(fd, id);
	/* A different denial right after the storm (another RIP): the storm must not hide it. */
	step(vm, vcpu, HELPER_TRY);
	after = drain_log(fd, id, (u64)ki_helper_read);
	ksft_print_msg("storm: %lu violations in %lu ms, %lu host polls (slowest %lu us), "
		       "%lu records kept, %lu dropped, %lu compressed\n", storm, t / 1000, p.polls,
		       p.max_us, after.records, after.dropped - before.dropped,
		       (u64)(i1.compressed - i0.compressed));
	TEST_ASSERT_EQ(d1.denied - d0.denied, storm);
	TEST_ASSERT_EQ(i1.violations - i0.violations, storm);
	/* Every violation was logged, counted in a record, or counted as dropped, exactly. */
	TEST_ASSERT_EQ((i1.logged - i0.logged) + (i1.dropped - i0.dropped) +
		       (i1.compressed - i0.compressed), storm);
	/* One violation repeated: one record stands for all of it, nothing dropped. */
	TEST_ASSERT_EQ(i1.logged - i0.logged, 1);
	TEST_ASSERT_EQ(i1.dropped - i0.dropped, 0);
	/* The storm's record(s) and the helper's denial, which counts went to which. */
	TEST_ASSERT_EQ(after.records, i1.logged - i0.logged + 1);
	TEST_ASSERT_EQ(after.count, (i1.logged - i0.logged) + (i1.compressed - i0.compressed) + 1);
	TEST_ASSERT_EQ(after.denied_at_rip, 1);
	TEST_ASSERT_EQ(after.dropped - before.dropped, i1.dropped - i0.dropped);
	TEST_ASSERT(after.records <= KVM_ISOLATE_LOG_RECORDS, "log kept %lu > %d", after.records,
		    KVM_ISOLATE_LOG_RECORDS);
	TEST_ASSERT(p.polls > 0 || t < 20000, "the host never answered during the storm");
	step(vm, vcpu, DONE);
	kvm_vm_free(vm);
	close(fd);
}

static void set_deny(int fd, u32 id, u32 deny)
{
	struct kvm_isolate_ctl_mode m = {
		.vm = id, .mode = KVM_ISOLATE_MODE_ENFORCE, .deny = deny,
	};

	TEST_ASSERT_EQ(ioctl(fd, KVM_ISOLATE_CTL_SET_MODE, &m), 0);
	TEST_ASSERT_EQ(ki_vm_info(fd, id).deny, deny);
}

/* Each way of denying: exit to user space, #PF (CR2 where known), #GP. */
TEST(deny_by_exit_pf_or_gp)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	struct kvm_run *run;
	int fd = dev_fd(), ret;
	u32 id;

	vm = create(&vcpu);
	run = vcpu->run;
	step(vm, vcpu, SETUP);
	id = ki_my_vm(fd);

	/* The default: KVM_RUN fails with a memory-fault exit naming the page. */
	TEST_ASSERT_EQ(ki_vm_info(fd, id).deny, KVM_ISOLATE_DENY_EXIT);
	cmd = ROGUE_ANY;
	sync_global_to_guest(vm, cmd);
	ret = _vcpu_run(vcpu);
	TEST_ASSERT(ret == -1 && errno == EFAULT, "KVM_RUN: %d errno %d exit %s", ret, errno,
		    exit_reason_str(run->exit_reason));
	TEST_ASSERT_EQ(run->exit_reason, KVM_EXIT_MEMORY_FAULT);
	TEST_ASSERT_EQ(run->memory_fault.gpa, secret_gpa);
	TEST_ASSERT_EQ(run->memory_fault.flags, KVM_ISOLATE_EXIT_FLAG_VIEW);
	TEST_ASSERT_EQ(domain_info(fd, id).denied, 1);

	/* The same instruction again, now denied with #PF, CR2 = the linear address (VMX). */
	if (host_cpu_is_intel) {
		set_deny(fd, id, KVM_ISOLATE_DENY_PF);
		vcpu_run(vcpu);
		TEST_ASSERT_EQ(get_ucall(vcpu, NULL), UCALL_SYNC);
		sync_global_from_guest(vm, pf_count);
		sync_global_from_guest(vm, pf_cr2);
		sync_global_from_guest(vm, pf_error);
		TEST_ASSERT_EQ(pf_count, 1);
		TEST_ASSERT_EQ(pf_error, 1);	/* present, read, supervisor */
		TEST_ASSERT_EQ(pf_cr2, secret_gva);
	} else {
		struct kvm_isolate_ctl_mode m = {
			.vm = id, .mode = KVM_ISOLATE_MODE_ENFORCE, .deny = KVM_ISOLATE_DENY_PF,
		};

		/* NPT reports no linear address: a #PF would say CR2 = 0, so pf is refused. */
		TEST_ASSERT(ioctl(fd, KVM_ISOLATE_CTL_SET_MODE, &m) == -1 && errno == EOPNOTSUPP,
			    "deny pf on NPT: errno %d", errno);
		TEST_ASSERT_EQ(ki_vm_info(fd, id).deny, KVM_ISOLATE_DENY_EXIT);
		set_deny(fd, id, KVM_ISOLATE_DENY_GP);
		vcpu_run(vcpu);
		TEST_ASSERT_EQ(get_ucall(vcpu, NULL), UCALL_SYNC);
		sync_global_from_guest(vm, pf_count);
		TEST_ASSERT_EQ(pf_count, 0);
	}
	TEST_ASSERT_EQ(domain_info(fd, id).denied, 2);

	set_deny(fd, id, KVM_ISOLATE_DENY_GP);
	step(vm, vcpu, ROGUE);
	TEST_ASSERT_EQ(domain_info(fd, id).denied, 3);
	step(vm, vcpu, DONE);
	kvm_vm_free(vm);
	close(fd);
}

/*
 * What transparent switching costs: VM exits per access of the owner to its
 * secret from view 0 (in on the data access, out on the next fetch outside
 * its code), read from the KVM stats.  External interrupts (the host's timer)
 * come with time, not with accesses, and a slow host (KASAN) takes more of
 * them: they are left out of the bound.
 */
TEST(exits_per_transparent_access)
{
	u64 exits, irqs, sw, viol;
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;

	vm = create(&vcpu);
	step(vm, vcpu, SETUP);
	step(vm, vcpu, OWNER_LOOP);	/* warm: page tables of both views built */
	exits = vcpu_get_stat(vcpu, exits);
	irqs = vcpu_get_stat(vcpu, irq_exits);
	sw = vcpu_get_stat(vcpu, isolate_switches);
	viol = vcpu_get_stat(vcpu, isolate_violations);
	step(vm, vcpu, OWNER_LOOP);
	exits = vcpu_get_stat(vcpu, exits) - exits;
	irqs = vcpu_get_stat(vcpu, irq_exits) - irqs;
	sw = vcpu_get_stat(vcpu, isolate_switches) - sw;
	viol = vcpu_get_stat(vcpu, isolate_violations) - viol;
	ksft_print_msg("transparent access: %.3f VM exits, %.3f violations, %.3f switches per owner access (%d accesses)\n",
		       (double)exits / OWNER_OPS, (double)viol / OWNER_OPS, (double)sw / OWNER_OPS,
		       OWNER_OPS);
	/* In and out, every time: the view is left when the code leaves. */
	TEST_ASSERT_EQ(sw, 2 * OWNER_OPS);
	TEST_ASSERT_EQ(viol, 2 * OWNER_OPS);
	TEST_ASSERT(exits - irqs >= 2 * OWNER_OPS && exits - irqs < 2 * OWNER_OPS + OWNER_OPS / 10,
		    "%lu exits (%lu for external interrupts) for %d accesses", exits, irqs,
		    OWNER_OPS);
	step(vm, vcpu, DONE);
	kvm_vm_free(vm);
}

TEST_HARNESS_MAIN
