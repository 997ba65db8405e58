/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The guest "module" of the domains test and demo, and their host-side
 * helpers: a guest whose owner code page owns a secret page, a helper page
 * that reads it legitimately, a rogue page; the host steers the guest one
 * command at a time and runs kvm-isolatectl.
 */
#ifndef KVM_ISOLATE_DOMAINS_H
#define KVM_ISOLATE_DOMAINS_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <linux/kvm_isolate.h>

#include "kvm_util.h"
#include "processor.h"
#include "ucall_common.h"

#define SECRET		0x5ec2e7c0ffee1234ull
#define POISON		0xdeadbeefdeadbeefull
#define STORM		100000
#define DOMAIN		1
#define E(x)		((u64)-(KVM_ISOLATE_##x))

/*
 * Guest code in pages of its own: the owner module's code, a helper that
 * legitimately reads the owner's data (learned into the profile), and a
 * rogue.  Every access is one 3-byte instruction, so the #GP handler can
 * skip it.
 */
asm(".pushsection .text.ki_pages, \"ax\"\n"
    ".balign 4096\n"
    ".global ki_owner_read\n"
    "ki_owner_read: mov (%rdi), %rax\n ret\n"
    ".global ki_owner_write\n"
    "ki_owner_write: mov %rsi, (%rdi)\n ret\n"
    ".global ki_owner_call\n"
    "ki_owner_call: push %rbx\n call *%rsi\n pop %rbx\n ret\n"
    ".balign 4096\n"
    ".global ki_helper_read\n"
    "ki_helper_read: mov (%rdi), %rax\n ret\n"
    ".balign 4096\n"
    ".global ki_rogue_read\n"
    "ki_rogue_read: mov (%rdi), %rax\n ret\n"
    ".balign 4096\n"
    ".popsection\n");

u64 ki_owner_read(u64 gva);
void ki_owner_write(u64 gva, u64 val);
/* The owner calls @helper(@gva) out of the module: a kernel helper at work. */
u64 ki_owner_call(u64 gva, u64 (*helper)(u64 gva));
u64 ki_helper_read(u64 gva);
u64 ki_rogue_read(u64 gva);

enum cmd {
	SETUP = 1, WORKLOAD, HELPER_TRY, HELPER_ALONE, HELPER_TRUSTED, ROGUE, STORM_RUN,
	OWNER_LOOP, ROGUE_ANY, DONE
};

#define OWNER_OPS	1000

static u64 secret_gva, secret_gpa, owner_gpa, rogue_gpa;
/* Violations in STORM_RUN: STORM, or fewer (domains_test, KI_STORM). */
static u64 storm = STORM;
static u64 cmd;
static volatile u64 gp_count, pf_count, pf_cr2, pf_error;

static u64 hc(u64 nr, u64 a0, u64 a1, u64 a2, u64 a3)
{
	return kvm_hypercall(nr, a0, a1, a2, a3);
}

static void guest_gp(struct ex_regs *regs)
{
	gp_count++;
	regs->rip += 3;
	regs->rax = POISON;
}

static void guest_pf(struct ex_regs *regs)
{
	pf_count++;
	pf_cr2 = get_cr2();
	pf_error = regs->error_code;
	regs->rip += 3;
	regs->rax = POISON;
}

static void guest_setup(void)
{
	u64 owner = (u64)ki_owner_read;

	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_PROBE, 0, 0, 0, 0), KVM_ISOLATE_MAGIC);
	/* Bad input first: nothing may change. */
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_DOMAIN_CREATE, 1, 0, 0, 0), E(EINVAL));
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_DOMAIN_ADD_CODE, DOMAIN, owner, owner_gpa, 1),
			E(ENOENT));
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_DOMAIN_CREATE, 0, 0, 0, 0), DOMAIN);
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_DOMAIN_ADD_CODE, DOMAIN, owner + 1, owner_gpa, 1),
			E(ERANGE));
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_DOMAIN_ADD_CODE, 0, owner, owner_gpa, 1), E(EINVAL));
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_DOMAIN_ADD_CODE, DOMAIN, owner, owner_gpa, 1), 0);
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_DOMAIN_ADD_CODE, DOMAIN, owner, owner_gpa, 1),
			E(EEXIST));
	/* Its entry points: outside its code, twice, or for no domain, refused. */
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_DOMAIN_ADD_ENTRY, DOMAIN, (u64)ki_helper_read, 0, 0),
			E(ERANGE));
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_DOMAIN_ADD_ENTRY, DOMAIN + 1, owner, 0, 0), E(ENOENT));
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_DOMAIN_ADD_ENTRY, DOMAIN, owner, 1, 0), E(EINVAL));
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_DOMAIN_ADD_ENTRY, DOMAIN, owner, 0, 0), 0);
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_DOMAIN_ADD_ENTRY, DOMAIN, owner, 0, 0), E(EEXIST));
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_DOMAIN_ADD_ENTRY, DOMAIN, (u64)ki_owner_write, 0, 0), 0);
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_DOMAIN_ADD_ENTRY, DOMAIN, (u64)ki_owner_call, 0, 0), 0);
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_DOMAIN_ADD_REGION, DOMAIN, owner_gpa, 1, 3),
			E(EEXIST));
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_DOMAIN_ADD_REGION, DOMAIN, secret_gpa, 1, 0),
			E(EINVAL));
	/* A view of the guest's own hides the region as view 0 does, made before or after. */
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_VIEW_CREATE, 0, 0, 0, 0), 2);
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_DOMAIN_ADD_REGION, DOMAIN, secret_gpa, 1, 3), 3);
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_QUERY, KVM_ISOLATE_QUERY_ACCESS, 0, secret_gpa, 0), 0);
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_QUERY, KVM_ISOLATE_QUERY_ACCESS, 2, secret_gpa, 0), 0);
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_QUERY, KVM_ISOLATE_QUERY_ACCESS, DOMAIN, secret_gpa, 0), 3);
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_VIEW_DESTROY, 2, 0, 0, 0), 0);
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_VIEW_CREATE, 0, 0, 0, 0), 2);
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_QUERY, KVM_ISOLATE_QUERY_ACCESS, 2, secret_gpa, 0), 0);
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_VIEW_DESTROY, 2, 0, 0, 0), 0);
	/*
	 * Code outside the domain is not executable in its view; its own code is, there
	 * only, and is writable nowhere.
	 */
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_QUERY, KVM_ISOLATE_QUERY_ACCESS, DOMAIN, rogue_gpa, 0), 3);
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_QUERY, KVM_ISOLATE_QUERY_ACCESS, DOMAIN, owner_gpa, 0), 5);
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_QUERY, KVM_ISOLATE_QUERY_ACCESS, 0, owner_gpa, 0), 1);
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_SET_ACCESS, 0, owner_gpa, 1, 7), E(EPERM));
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_SWITCH, DOMAIN, 0, 0, 0), E(EPERM));
	/* The domain's view and region are not ABI v1's to change. */
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_SET_ACCESS, 0, secret_gpa, 1, 7), E(EPERM));
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_SET_ACCESS, DOMAIN, 0, 1, 7), E(EPERM));
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_VIEW_DESTROY, DOMAIN, 0, 0, 0), E(EPERM));
	GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_SET_MODE, 0, KVM_ISOLATE_MODE_INHERIT, 0, 0),
			E(EINVAL));
	/* The owner writes its secret (switched into its view and back). */
	ki_owner_write(secret_gva, SECRET);
}

static void guest_workload(void)
{
	GUEST_ASSERT_EQ(ki_owner_read(secret_gva), SECRET);
	ki_owner_write(secret_gva + 8, 42);
	GUEST_ASSERT_EQ(ki_owner_call(secret_gva + 8, ki_helper_read), 42);
}

static void guest_code(void)
{
	u64 gp0, i;

	for (;;) {
		gp0 = gp_count;
		switch (READ_ONCE(cmd)) {
		case SETUP:
			guest_setup();
			break;
		case WORKLOAD:
			guest_workload();
			GUEST_ASSERT_EQ(gp_count, gp0);
			break;
		case HELPER_TRY:
			/* The owner calls the helper, which has no rule: denied in the helper. */
			GUEST_ASSERT_EQ(ki_owner_call(secret_gva, ki_helper_read), POISON);
			GUEST_ASSERT_EQ(gp_count, gp0 + 1);
			break;
		case HELPER_ALONE:
			/* The helper on its own, a gadget unless its rule is trusted on its own. */
			GUEST_ASSERT_EQ(ki_helper_read(secret_gva), POISON);
			GUEST_ASSERT_EQ(gp_count, gp0 + 1);
			break;
		case HELPER_TRUSTED:
			GUEST_ASSERT_EQ(ki_helper_read(secret_gva), SECRET);
			GUEST_ASSERT_EQ(gp_count, gp0);
			break;
		case ROGUE:
			GUEST_ASSERT_EQ(ki_rogue_read(secret_gva), POISON);
			GUEST_ASSERT_EQ(gp_count, gp0 + 1);
			/* A locked guest cannot loosen, but can tighten. */
			GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_LOCK, 0, 0, 0, 0), 0);
			GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_SET_MODE, 0, KVM_ISOLATE_MODE_OFF, 0, 0),
					E(EPERM));
			GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_DOMAIN_DESTROY, DOMAIN, 0, 0, 0), E(EPERM));
			GUEST_ASSERT_EQ(hc(KVM_HC_ISOLATE_SET_MODE, 0, KVM_ISOLATE_MODE_ENFORCE, 0, 0),
					KVM_ISOLATE_MODE_ENFORCE);
			break;
		case ROGUE_ANY:
			/* Denied in whatever way the host chose; the host checks which. */
			GUEST_ASSERT_EQ(ki_rogue_read(secret_gva), POISON);
			break;
		case OWNER_LOOP:
			for (i = 0; i < OWNER_OPS; i++)
				GUEST_ASSERT_EQ(ki_owner_read(secret_gva), SECRET);
			break;
		case STORM_RUN:
			for (i = 0; i < storm; i++)
				ki_rogue_read(secret_gva);
			GUEST_ASSERT_EQ(gp_count, gp0 + storm);
			break;
		case DONE:
			GUEST_DONE();
		}
		GUEST_SYNC(cmd);
	}
}

/* ---- host side ---- */

static const char *tool(void)
{
	const char *t = getenv("KVM_ISOLATECTL");

	return t ? t : "kvm-isolatectl";
}

/* Runs the tool with @args; returns its exit status, output in @out. */
static int ctl(char *out, size_t len, const char *fmt, ...)
{
	char args[512], line[1024];
	size_t n = 0;
	va_list ap;
	FILE *p;
	int st;

	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	snprintf(line, sizeof(line), "%s %s 2>&1", tool(), args);
	p = popen(line, "r");
	TEST_ASSERT(p, "popen %s", line);
	if (out && len)
		out[0] = 0;
	while (fgets(line, sizeof(line), p)) {
		if (out && n + strlen(line) < len) {
			strcpy(out + n, line);
			n += strlen(line);
		}
	}
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static struct kvm_vm *create(struct kvm_vcpu **vcpu)
{
	struct kvm_vm *vm = vm_create_with_one_vcpu(vcpu, guest_code);

	vm_install_exception_handler(vm, GP_VECTOR, guest_gp);
	vm_install_exception_handler(vm, PF_VECTOR, guest_pf);
	secret_gva = vm_alloc_page(vm);
	secret_gpa = addr_gva2gpa(vm, secret_gva);
	owner_gpa = addr_gva2gpa(vm, (u64)ki_owner_read);
	rogue_gpa = addr_gva2gpa(vm, (u64)ki_rogue_read);
	sync_global_to_guest(vm, secret_gva);
	sync_global_to_guest(vm, secret_gpa);
	sync_global_to_guest(vm, owner_gpa);
	sync_global_to_guest(vm, rogue_gpa);
	return vm;
}

static void step(struct kvm_vm *vm, struct kvm_vcpu *vcpu, enum cmd c)
{
	struct ucall uc;

	cmd = c;
	sync_global_to_guest(vm, cmd);
	vcpu_run(vcpu);
	switch (get_ucall(vcpu, &uc)) {
	case UCALL_ABORT:
		REPORT_GUEST_ASSERT(uc);
		break;
	case UCALL_SYNC:
		TEST_ASSERT_EQ(uc.args[1], c);
		break;
	case UCALL_DONE:
		TEST_ASSERT_EQ(c, DONE);
		break;
	default:
		TEST_FAIL("unexpected exit %s", exit_reason_str(vcpu->run->exit_reason));
	}
}

static int dev_fd(void)
{
	int fd = open("/dev/kvm-isolate", O_RDWR);

	TEST_ASSERT(fd >= 0, "open /dev/kvm-isolate: %s", strerror(errno));
	return fd;
}

#endif /* KVM_ISOLATE_DOMAINS_H */
