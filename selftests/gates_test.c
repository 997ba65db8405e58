// SPDX-License-Identifier: GPL-2.0
/*
 * Entry gates: code outside a domain may enter the domain's code, and with
 * it the domain's view and rights, only where the domain allows.
 *
 * A guest "module" (one code page, domain 1) owns a secret page.  Outside
 * its view the module's code is readable only, so every call into it is an
 * instruction-fetch violation in view 0, and the host switches to the
 * module's view only if the target is
 *
 *  - an entry point the guest registered (KVM_HC_ISOLATE_DOMAIN_ADD_ENTRY),
 *    called from outside the module;
 *  - the return site of the module's own call out of it (or of an interrupt
 *    or exception taken inside it), once;
 *  - anything, in learn mode, which adds it as an entry point.
 *
 * Everything else is denied, with #GP here (the host sets deny=gp first: the
 * default, an exit to user space, would end KVM_RUN), and logged.  The tests
 * are the attacks entry gates stop: a gadget in the middle of the module,
 * a helper that moves its return address, a replayed return site, an entry
 * with a forged return address, a copy of the module's code at its
 * addresses, and the ways around the gates (the ABI v1 switch, violation
 * policy and access rights, and writing into the module's code).
 *
 * A switchable domain (KVM_HC_ISOLATE_DOMAIN_SWITCHABLE) is entered and left
 * by SWITCH or VMFUNC with no check (no exit at all with VMFUNC): the tests
 * show the round trip, the conditions, and the attacks a view any code may
 * switch to invites: a rogue's switch that lands on its own code, a forged
 * return site, and profile code run for the rogue from an alias.
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
#include <linux/stringify.h>

#include "kvm_util.h"
#include "processor.h"
#include "ucall_common.h"
#include "kselftest_harness.h"
#include "ctl.h"

#define SECRET		0x5ec2e7c0ffee1234ull
#define POISON		0xdeadbeefdeadbeef	/* what a denied call returns (ki_h_deny) */
#define DOMAIN		1
#define CALLS		100			/* calls per cost figure */
#define E(x)		((u64)-(KVM_ISOLATE_##x))

/* Switches to the domain's view: by VMFUNC, or by the SWITCH hypercall (@insn). */
#define SWITCH_VMFUNC		" xor %eax, %eax\n mov $" __stringify(DOMAIN) ", %ecx\n"	\
				" .byte 0x0f, 0x01, 0xd4\n"
#define SWITCH_HC(insn)	SWITCH_HC_(insn)
#define SWITCH_HC_(insn)	" mov $" __stringify(KVM_HC_ISOLATE_SWITCH) ", %eax\n"	\
				" mov $" __stringify(DOMAIN) ", %ebx\n"			\
				" xor %ecx, %ecx\n xor %edx, %edx\n xor %esi, %esi\n " insn "\n"

/*
 * ki_h_forge_<how>(gva, site): the rogue's way to a return site of a domain
 * whose view any code may switch to.  With @site at [RSP], it switches into
 * the domain's view (<how>: VMFUNC, VMCALL or VMMCALL) and its next fetch,
 * on its own page, faults there: a leave that looks like a call out of the
 * module returning to @site.  Back in view 0 it jumps to @site with @gva in
 * RDI, whose ret comes back here.
 */
#define KI_SWITCH_FORGE(how, sw)						\
    ".global ki_h_forge_" #how "\n"						\
    "ki_h_forge_" #how ": lea 1f(%rip), %rax\n push %rax\n push %rsi\n"	\
    " mov %rdi, %r8\n" sw							\
    " mov %r8, %rdi\n pop %rax\n jmp *%rax\n"					\
    "1: ret\n"

/*
 * Two pages of guest code.  The first is the module, domain 1's only code
 * range: ki_g_read, ki_g_callout and ki_g_int3 are its entry points when a
 * test registers them; ki_g_gadget, in the middle of ki_g_other, never is.
 * ki_g_callout calls a helper outside the module and reads the secret after
 * the helper returned; ki_g_int3 takes a #BP (no error code) inside the
 * module before it reads.
 *
 * The second page is outside the module:
 *  - ki_h_call(fn, a0, a1, a2) calls fn(a0, a1, a2), stack pointer saved,
 *    so that ki_h_deny, where the #GP handler resumes a denied call, can
 *    return POISON to ki_h_call's caller whatever the stack looks like at
 *    the denial (a denied fetch can happen with a forged stack);
 *  - ki_h_plain is a helper that returns normally;
 *  - ki_h_evil moves its return address from ki_g_callout_ret, the real
 *    return site, to ki_g_callout_read, and drops the value ki_g_callout
 *    pushed (ret $8), so that if the host let it in, the module would read
 *    the secret for it and return normally: a forged return into the
 *    module, to an instruction the module never returns to;
 *  - ki_h_replay(gva, site) jumps to @site with the stack ki_g_callout has
 *    at its return site (@gva to pop, then a return address): a replay of a
 *    return site that was already used;
 *  - ki_h_forge(gva, entry, inside) enters the module at @entry with a forged
 *    return address, @inside the module: the module's own ret would take it
 *    there without leaving its view;
 *  - ki_h_after_ret(gva, entry, inside) calls @entry with @inside pushed
 *    just above its return address, so that [RSP] holds @inside when the
 *    module's ret leaves it, then jumps to @inside;
 *  - ki_h_write(gva, byte) stores @byte at @gva;
 *  - ki_h_leak(gva) copies the word at @gva to ki_leak, in .data.
 *
 * A third page holds helpers of the kind a profile names (accessors):
 * ki_a_read(gva) reads the word at @gva; ki_a_write(gva) reads it, then
 * overwrites its low half (at ki_a_write_store); ki_a_two(a, b) reads the
 * word at @a, then (at ki_a_two_second) the one at @b; ki_a_destroy_vmcall and
 * ki_a_destroy_vmmcall (Intel, AMD) ask KVM to destroy domain 1 (the
 * arguments it does not take zero, as the ABI wants) and leave the answer in
 * ki_hc_ret.
 */
asm(".pushsection .text.ki_gates, \"ax\"\n"
    ".balign 4096\n"
    ".global ki_g_read\n"
    "ki_g_read: mov (%rdi), %rax\n ret\n"
    ".global ki_g_other\n"
    "ki_g_other: nop\n nop\n"
    ".global ki_g_gadget\n"
    "ki_g_gadget: mov (%rdi), %rax\n ret\n"
    ".global ki_g_callout\n"
    "ki_g_callout: push %rdi\n call *%rsi\n"
    ".global ki_g_callout_ret\n"
    "ki_g_callout_ret: pop %rdi\n"
    ".global ki_g_callout_read\n"
    "ki_g_callout_read: mov (%rdi), %rax\n ret\n"
    ".global ki_g_int3\n"
    "ki_g_int3: int3\n mov (%rdi), %rax\n ret\n"
    ".balign 4096\n"
    ".global ki_h_call\n"
    "ki_h_call: push %rbx\n mov %rsp, ki_saved_rsp(%rip)\n"
    " mov %rdi, %rax\n mov %rsi, %rdi\n mov %rdx, %rsi\n mov %rcx, %rdx\n call *%rax\n"
    " movq $0, ki_saved_rsp(%rip)\n pop %rbx\n ret\n"
    ".global ki_h_deny\n"
    "ki_h_deny: mov ki_saved_rsp(%rip), %rsp\n movq $0, ki_saved_rsp(%rip)\n"
    " movabs $" __stringify(POISON) ", %rax\n pop %rbx\n ret\n"
    ".global ki_h_plain\n"
    "ki_h_plain: xor %eax, %eax\n ret\n"
    ".global ki_h_evil\n"
    "ki_h_evil: addq $(ki_g_callout_read - ki_g_callout_ret), (%rsp)\n ret $8\n"
    ".global ki_h_replay\n"
    "ki_h_replay: lea 1f(%rip), %rax\n push %rax\n push %rdi\n jmp *%rsi\n"
    "1: ret\n"
    ".global ki_h_forge\n"
    "ki_h_forge: lea 1f(%rip), %rax\n push %rax\n push %rdx\n jmp *%rsi\n"
    "1: ret\n"
    ".global ki_h_after_ret\n"
    "ki_h_after_ret: push %rdx\n call *%rsi\n pop %rax\n jmp *%rax\n"
    ".global ki_h_write\n"
    "ki_h_write: movb %sil, (%rdi)\n ret\n"
    ".global ki_h_leak\n"
    "ki_h_leak: mov (%rdi), %rax\n mov %rax, ki_leak(%rip)\n ret\n"
    KI_SWITCH_FORGE(vmfunc, SWITCH_VMFUNC)
    KI_SWITCH_FORGE(vmcall, SWITCH_HC("vmcall"))
    KI_SWITCH_FORGE(vmmcall, SWITCH_HC("vmmcall"))
    ".balign 4096\n"
    ".global ki_a_read\n"
    "ki_a_read: mov (%rdi), %rax\n ret\n"
    ".global ki_a_write\n"
    "ki_a_write: mov (%rdi), %rax\n"
    ".global ki_a_write_store\n"
    "ki_a_write_store: movl $0x41414141, (%rdi)\n ret\n"
    ".global ki_a_two\n"
    "ki_a_two: mov (%rdi), %rax\n"
    ".global ki_a_two_second\n"
    "ki_a_two_second: mov (%rsi), %rax\n ret\n"
    ".global ki_a_destroy_vmcall\n"
    "ki_a_destroy_vmcall: push %rbx\n"
    " mov $" __stringify(KVM_HC_ISOLATE_DOMAIN_DESTROY) ", %eax\n"
    " mov $" __stringify(DOMAIN) ", %ebx\n"
    " xor %ecx, %ecx\n xor %edx, %edx\n xor %esi, %esi\n vmcall\n"
    " pop %rbx\n mov %rax, ki_hc_ret(%rip)\n ret\n"
    ".global ki_a_destroy_vmmcall\n"
    "ki_a_destroy_vmmcall: push %rbx\n"
    " mov $" __stringify(KVM_HC_ISOLATE_DOMAIN_DESTROY) ", %eax\n"
    " mov $" __stringify(DOMAIN) ", %ebx\n"
    " xor %ecx, %ecx\n xor %edx, %edx\n xor %esi, %esi\n vmmcall\n"
    " pop %rbx\n mov %rax, ki_hc_ret(%rip)\n ret\n"
    ".balign 4096\n"
    ".popsection\n"
    ".pushsection .data\n"
    ".balign 8\n"
    ".global ki_saved_rsp\n"
    "ki_saved_rsp: .quad 0\n"
    ".global ki_leak\n"
    "ki_leak: .quad 0\n"
    ".global ki_hc_ret\n"
    "ki_hc_ret: .quad 0\n"
    ".popsection\n");

/* Labels of the asm above; the guest calls them only through ki_h_call. */
void ki_g_read(void);
void ki_g_other(void);
void ki_g_gadget(void);
void ki_g_callout(void);
void ki_g_callout_ret(void);
void ki_g_callout_read(void);
void ki_g_int3(void);
u64 ki_h_call(u64 fn, u64 a0, u64 a1, u64 a2);
void ki_h_deny(void);
void ki_h_plain(void);
void ki_h_evil(void);
void ki_h_replay(void);
void ki_h_forge(void);
void ki_h_after_ret(void);
void ki_h_write(void);
void ki_h_leak(void);
void ki_h_forge_vmfunc(void);
void ki_h_forge_vmcall(void);
void ki_h_forge_vmmcall(void);
void ki_a_read(void);
void ki_a_write(void);
void ki_a_write_store(void);
void ki_a_two(void);
void ki_a_two_second(void);
void ki_a_destroy_vmcall(void);
void ki_a_destroy_vmmcall(void);
extern u64 ki_saved_rsp, ki_leak, ki_hc_ret;

/* A label's address, as the guest and the host (same binary) both see it. */
#define A(sym)		((u64)(sym))

/* ---- guest side ---- */

/* What the host asks the guest to do next, with args[]. */
enum cmd { CMD_HC = 1, CMD_CALL, CMD_LOOP, CMD_PEEK, CMD_INVLPG, CMD_VMFUNC };

static u64 cmd, args[5];
static volatile u64 gp_count, gp_rip, bp_count, loop_calls;

/*
 * A denial (deny=gp): #GP at the instruction that was denied.  Resume in
 * ki_h_deny, which unwinds to ki_h_call's caller with POISON.  A #GP outside
 * ki_h_call is a bug of the test, not a denial.
 */
static void guest_gp(struct ex_regs *regs)
{
	if (!READ_ONCE(ki_saved_rsp))
		GUEST_FAIL("#GP at 0x%lx outside a call under test", regs->rip);
	gp_count++;
	gp_rip = regs->rip;
	regs->rip = A(ki_h_deny);
}

/* ki_g_int3's #BP: a trap, the frame already points after the int3. */
static void guest_bp(struct ex_regs *regs)
{
	bp_count++;
}

/* One command per GUEST_SYNC: its result, then the exceptions it took. */
static void guest_code(void)
{
	u64 r, i, tsc;

	for (;;) {
		tsc = 0;
		gp_count = 0;
		gp_rip = 0;
		bp_count = 0;
		switch (READ_ONCE(cmd)) {
		case CMD_HC:
			r = kvm_hypercall(args[0], args[1], args[2], args[3], args[4]);
			break;
		case CMD_CALL:
			r = ki_h_call(args[0], args[1], args[2], args[3]);
			break;
		case CMD_LOOP:
			/* args[4] calls; the result is how many returned the secret. */
			tsc = rdtsc();
			for (r = 0, i = 0; i < args[4]; i++) {
				r += ki_h_call(args[0], args[1], args[2], args[3]) == SECRET;
				loop_calls = i + 1;
			}
			tsc = rdtsc() - tsc;
			break;
		case CMD_PEEK:
			r = *(volatile u8 *)args[0];
			break;
		case CMD_INVLPG:
			asm volatile("invlpg (%0)" : : "r"(args[0]) : "memory");
			r = 0;
			break;
		case CMD_VMFUNC:
			/* EPTP switching to view args[0]: the vector it raised, or 0. */
			r = kvm_asm_safe(".byte 0x0f, 0x01, 0xd4", "a"(0), "c"(args[0]));
			break;
		default:
			r = 0;
			GUEST_FAIL("unknown command %lu", cmd);
		}
		GUEST_SYNC_ARGS(r, gp_count, gp_rip, bp_count, tsc);
	}
}

/* ---- host side ---- */

struct reply {
	u64 ret;	/* the command's result */
	u64 gp;		/* #GPs it took, the last at gp_rip */
	u64 gp_rip;
	u64 bp;		/* #BPs it took */
	u64 tsc;	/* CMD_LOOP: guest TSC over the calls (Bochs: instructions) */
};

FIXTURE(gates) {
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu;
	int fd;			/* /dev/kvm-isolate */
	u32 id;			/* the VM's id there */
	u64 code_gva, code_gpa;	/* the module's code page */
	u64 secret_gva, secret_gpa;
	u64 entry_ret[3];	/* ADD_ENTRY of ki_g_read, ki_g_callout, ki_g_int3 */
};

/*
 * The helpers take the fixture as struct _test_data_gates, what
 * FIXTURE_DATA(gates) stands for (checkpatch misreads the macro as an
 * expression).
 */

static struct reply step(struct _test_data_gates *self, u64 c, u64 a0, u64 a1, u64 a2, u64 a3,
			 u64 a4)
{
	struct kvm_run *run = self->vcpu->run;
	struct reply r = {};
	struct ucall uc;
	int ret;

	cmd = c;
	args[0] = a0;
	args[1] = a1;
	args[2] = a2;
	args[3] = a3;
	args[4] = a4;
	sync_global_to_guest(self->vm, cmd);
	sync_global_to_guest(self->vm, args);
	ret = _vcpu_run(self->vcpu);
	/* A denial that left deny=exit in place would end here. */
	TEST_ASSERT(!ret, "KVM_RUN failed (errno %d), exit %s, memory fault at gpa 0x%llx",
		    errno, exit_reason_str(run->exit_reason),
		    run->exit_reason == KVM_EXIT_MEMORY_FAULT ? run->memory_fault.gpa : 0ull);
	switch (get_ucall(self->vcpu, &uc)) {
	case UCALL_SYNC:
		r.ret = uc.args[1];
		r.gp = uc.args[2];
		r.gp_rip = uc.args[3];
		r.bp = uc.args[4];
		r.tsc = uc.args[5];
		break;
	case UCALL_ABORT:
		REPORT_GUEST_ASSERT(uc);
		break;
	default:
		TEST_FAIL("unexpected exit %s", exit_reason_str(run->exit_reason));
	}
	return r;
}

static u64 hcall(struct _test_data_gates *self, u64 nr, u64 a0, u64 a1, u64 a2, u64 a3)
{
	return step(self, CMD_HC, nr, a0, a1, a2, a3).ret;
}

static void drain_log(struct _test_data_gates *self);

/* fn(a0, a1, a2) in the guest, from outside the module; the log is drained first. */
static struct reply call3(struct _test_data_gates *self, u64 fn, u64 a0, u64 a1, u64 a2)
{
	drain_log(self);
	return step(self, CMD_CALL, fn, a0, a1, a2, 0);
}

static struct reply call(struct _test_data_gates *self, u64 fn, u64 a0, u64 a1)
{
	return call3(self, fn, a0, a1, 0);
}

static void set_mode(struct _test_data_gates *self, u32 mode)
{
	struct kvm_isolate_ctl_mode m = {
		.vm = self->id, .mode = mode, .deny = KVM_ISOLATE_DENY_GP,
	};

	TEST_ASSERT(!ioctl(self->fd, KVM_ISOLATE_CTL_SET_MODE, &m),
		    "SET_MODE %u deny gp: %s", mode, strerror(errno));
}

static struct kvm_isolate_ctl_domain domain_info(struct _test_data_gates *self)
{
	struct kvm_isolate_ctl_domain d[16];
	u32 i, n;

	n = ki_ctl_get(self->fd, KVM_ISOLATE_CTL_DOMAINS, self->id, d, ARRAY_SIZE(d));
	for (i = 0; i < n; i++)
		if (d[i].id == DOMAIN)
			return d[i];
	TEST_FAIL("domain %d not listed", DOMAIN);
	return d[0];
}

#define LOG_MAX		64
static struct kvm_isolate_ctl_record log_recs[LOG_MAX];

/* Reads the log; returns how many of its records are denials, the last in *last. */
static u32 read_denials(struct _test_data_gates *self, struct kvm_isolate_ctl_record *last)
{
	struct kvm_isolate_ctl_array a;
	u32 i, n = 0;

	do {
		a = (struct kvm_isolate_ctl_array){
			.vm = self->id, .count = LOG_MAX, .ptr = (u64)log_recs,
		};
		TEST_ASSERT_EQ(ioctl(self->fd, KVM_ISOLATE_CTL_LOG_READ, &a), 0);
		for (i = 0; i < a.count; i++) {
			if (log_recs[i].verdict != KVM_ISOLATE_LOG_DENIED)
				continue;
			n++;
			if (last)
				*last = log_recs[i];
		}
	} while (a.count);
	return n;
}

static void drain_log(struct _test_data_gates *self)
{
	read_denials(self, NULL);
}

/* The guest-physical address of @gva, in the module's code page. */
static u64 code_gpa_of(struct _test_data_gates *self, u64 gva)
{
	return self->code_gpa + (gva - self->code_gva);
}

/*
 * The guest VM with domain 1 (code: the module page; region: the secret,
 * RW) in enforce mode with deny=gp.  No entry point yet.  The fixture's VM,
 * and a second one of the same layout where a test needs it.
 */
static void vm_setup(struct _test_data_gates *self)
{
	self->fd = -1;
	self->vm = vm_create_with_one_vcpu(&self->vcpu, guest_code);
	vm_install_exception_handler(self->vm, GP_VECTOR, guest_gp);
	vm_install_exception_handler(self->vm, BP_VECTOR, guest_bp);
	self->code_gva = A(ki_g_read);
	self->code_gpa = addr_gva2gpa(self->vm, self->code_gva);
	self->secret_gva = vm_alloc_page(self->vm);
	self->secret_gpa = addr_gva2gpa(self->vm, self->secret_gva);
	*(u64 *)addr_gva2hva(self->vm, self->secret_gva) = SECRET;
	self->fd = open("/dev/kvm-isolate", O_RDWR);
	TEST_ASSERT(self->fd >= 0, "open /dev/kvm-isolate: %s", strerror(errno));

	/* The first hypercall gives the VM its control-plane id: deny=gp before anything. */
	TEST_ASSERT_EQ(hcall(self, KVM_HC_ISOLATE_PROBE, 0, 0, 0, 0), KVM_ISOLATE_MAGIC);
	self->id = ki_my_vm(self->fd);
	set_mode(self, KVM_ISOLATE_MODE_ENFORCE);
	TEST_ASSERT_EQ(hcall(self, KVM_HC_ISOLATE_DOMAIN_CREATE, 0, 0, 0, 0), DOMAIN);
	TEST_ASSERT_EQ(hcall(self, KVM_HC_ISOLATE_DOMAIN_ADD_CODE, DOMAIN, self->code_gva,
			     self->code_gpa, 1), 0);
	TEST_ASSERT_EQ(hcall(self, KVM_HC_ISOLATE_DOMAIN_ADD_REGION, DOMAIN, self->secret_gpa, 1,
			     KVM_ISOLATE_ACCESS_R | KVM_ISOLATE_ACCESS_W),
		       KVM_ISOLATE_ACCESS_R | KVM_ISOLATE_ACCESS_W);
	drain_log(self);
}

static void vm_teardown(struct _test_data_gates *self)
{
	if (self->fd >= 0)
		close(self->fd);
	kvm_vm_free(self->vm);
}

FIXTURE_SETUP(gates)
{
	vm_setup(self);
}

FIXTURE_TEARDOWN(gates)
{
	vm_teardown(self);
}

/*
 * Registers the module's three entry points; the results are checked by
 * entries_were_registered(), at the end of a test, so that on a host without
 * entry gates each test first shows what its calls and attacks did.
 */
static void register_entries(struct _test_data_gates *self)
{
	self->entry_ret[0] = hcall(self, KVM_HC_ISOLATE_DOMAIN_ADD_ENTRY, DOMAIN, A(ki_g_read),
				   0, 0);
	self->entry_ret[1] = hcall(self, KVM_HC_ISOLATE_DOMAIN_ADD_ENTRY, DOMAIN,
				   A(ki_g_callout), 0, 0);
	self->entry_ret[2] = hcall(self, KVM_HC_ISOLATE_DOMAIN_ADD_ENTRY, DOMAIN, A(ki_g_int3),
				   0, 0);
}

static void entries_were_registered(struct _test_data_gates *self)
{
	static const char * const name[] = { "ki_g_read", "ki_g_callout", "ki_g_int3" };
	int i;

	for (i = 0; i < 3; i++)
		TEST_ASSERT(self->entry_ret[i] == 0, "ADD_ENTRY(%s) returned %ld, want 0",
			    name[i], (long)self->entry_ret[i]);
}

/* @r was a legitimate call: it read the secret, nothing was denied. */
static void expect_secret(struct _test_data_gates *self, struct reply r, u64 denied,
			  const char *what)
{
	u64 now;
	u32 n;

	TEST_ASSERT(r.ret == SECRET && !r.gp,
		    "%s returned 0x%lx, want the secret (%lu #GP, the last at 0x%lx)", what,
		    r.ret, r.gp, r.gp_rip);
	now = domain_info(self).denied;
	TEST_ASSERT(now == denied, "%s: %lu denials, want %lu", what, now, denied);
	n = read_denials(self, NULL);
	TEST_ASSERT(n == 0, "%s: %u denials logged, want none", what, n);
}

/*
 * @r was an attack: the access (@access at @gpa) of the instruction at @rip
 * was denied (one #GP there, POISON returned), counted as the domain's
 * denial number @denied, and logged exactly, from view 0.
 */
static void expect_denied(struct _test_data_gates *self, struct reply r, u64 rip, u32 access,
			  u64 gpa, u64 denied, const char *what)
{
	struct kvm_isolate_ctl_record rec = {};
	u64 now;
	u32 n;

	TEST_ASSERT(r.ret != SECRET, "%s read the secret (%lu #GP)", what, r.gp);
	TEST_ASSERT(r.gp == 1 && r.gp_rip == rip,
		    "%s: %lu #GP, the last at 0x%lx; want one at 0x%lx", what, r.gp, r.gp_rip, rip);
	TEST_ASSERT_EQ(r.ret, (u64)POISON);
	now = domain_info(self).denied;
	TEST_ASSERT(now == denied, "%s: %lu denials, want %lu", what, now, denied);
	n = read_denials(self, &rec);
	TEST_ASSERT(n == 1, "%s: %u denials logged, want 1", what, n);
	TEST_ASSERT(rec.rip == rip && rec.view == 0 && rec.domain == DOMAIN &&
		    rec.access == access && rec.gpa == gpa && rec.vm == self->id && rec.vcpu == 0,
		    "%s: logged rip 0x%lx view %u domain %u access %u gpa 0x%lx vm %u vcpu %u;\n"
		    "  want rip 0x%lx view 0 domain %d access %u gpa 0x%lx vm %u vcpu 0", what,
		    (u64)rec.rip, rec.view, rec.domain, rec.access, (u64)rec.gpa, rec.vm, rec.vcpu,
		    rip, DOMAIN, access, gpa, self->id);
}

/* @r was an attack: the instruction fetch at @target, in the module, was denied. */
static void expect_fetch_denied(struct _test_data_gates *self, struct reply r, u64 target,
				u64 denied, const char *what)
{
	expect_denied(self, r, target, KVM_ISOLATE_ACCESS_X, code_gpa_of(self, target), denied,
		      what);
}

/* VM exits and view switches per call of fn(a0, a1), over CALLS calls. */
static void print_cost(struct _test_data_gates *self, u64 fn, u64 a0, u64 a1, const char *what)
{
	u64 exits = vcpu_get_stat(self->vcpu, exits);
	u64 sw = vcpu_get_stat(self->vcpu, isolate_switches);
	struct reply r = step(self, CMD_LOOP, fn, a0, a1, 0, CALLS);

	TEST_ASSERT(r.ret == CALLS && !r.gp, "%lu of %d calls returned the secret, %lu #GP",
		    r.ret, CALLS, r.gp);
	exits = vcpu_get_stat(self->vcpu, exits) - exits;
	sw = vcpu_get_stat(self->vcpu, isolate_switches) - sw;
	ksft_print_msg("exits per %s: %.2f (view switches: %.2f; %d calls)\n", what,
		       (double)exits / CALLS, (double)sw / CALLS, CALLS);
}

/* a) A registered entry point is the way in: the module reads its secret. */
TEST_F_TIMEOUT(gates, entry_point_call_reads_the_secret, 120)
{
	u64 allowed;

	register_entries(self);
	allowed = domain_info(self).allowed;
	expect_secret(self, call(self, A(ki_g_read), self->secret_gva, 0), 0, "ki_g_read");
	TEST_ASSERT(domain_info(self).allowed > allowed, "the call did not switch into the module");
	print_cost(self, A(ki_g_read), self->secret_gva, 0, "call into the module and back");
	entries_were_registered(self);
}

/* b) The middle of a function is no way in, although the same bytes are. */
TEST_F_TIMEOUT(gates, gadget_inside_the_module_is_denied, 120)
{
	register_entries(self);
	expect_fetch_denied(self, call(self, A(ki_g_gadget), self->secret_gva, 0),
			    A(ki_g_gadget), 1, "calling ki_g_gadget (not an entry point)");
	entries_were_registered(self);
}

/* c) The module calls out and is resumed at its return site. */
TEST_F_TIMEOUT(gates, call_out_and_return_resumes_the_module, 120)
{
	register_entries(self);
	expect_secret(self, call(self, A(ki_g_callout), self->secret_gva, A(ki_h_plain)), 0,
		      "ki_g_callout(ki_h_plain)");
	print_cost(self, A(ki_g_callout), self->secret_gva, A(ki_h_plain),
		   "call into the module, out to a helper and back");
	entries_were_registered(self);
}

/* c2) A return site, once used, is no way in: the module is not waiting there. */
TEST_F_TIMEOUT(gates, return_site_is_used_once, 120)
{
	register_entries(self);
	expect_secret(self, call(self, A(ki_g_callout), self->secret_gva, A(ki_h_plain)), 0,
		      "ki_g_callout(ki_h_plain)");
	expect_fetch_denied(self, call(self, A(ki_h_replay), self->secret_gva,
				       A(ki_g_callout_ret)),
			    A(ki_g_callout_ret), 1, "a replay of ki_g_callout's used return site");
	entries_were_registered(self);
}

/* d) A helper the module called may return only where it was called from. */
TEST_F_TIMEOUT(gates, moved_return_address_is_denied, 120)
{
	register_entries(self);
	expect_fetch_denied(self, call(self, A(ki_g_callout), self->secret_gva, A(ki_h_evil)),
			    A(ki_g_callout_read), 1,
			    "ki_h_evil returning past ki_g_callout's return site");
	/* The module still works. */
	expect_secret(self, call(self, A(ki_g_callout), self->secret_gva, A(ki_h_plain)), 1,
		      "ki_g_callout(ki_h_plain) after the attack");
	entries_were_registered(self);
}

/*
 * d2) An entry point is no way in with a return address inside the module:
 * the module's ret would resume it there, in its view, unchecked.
 */
TEST_F_TIMEOUT(gates, entry_with_a_return_address_inside_is_denied, 120)
{
	struct reply r;

	register_entries(self);
	r = call3(self, A(ki_h_forge), self->secret_gva, A(ki_g_read), A(ki_g_gadget));
	expect_fetch_denied(self, r, A(ki_g_read), 1,
			    "entering ki_g_read to return to ki_g_gadget");
	entries_were_registered(self);
}

/* d3) A ret out of the module leaves no return site behind, whatever [RSP] holds. */
TEST_F_TIMEOUT(gates, ret_out_of_the_module_leaves_no_return_site, 120)
{
	struct reply r;

	register_entries(self);
	r = call3(self, A(ki_h_after_ret), self->secret_gva, A(ki_g_read), A(ki_g_gadget));
	expect_fetch_denied(self, r, A(ki_g_gadget), 1,
			    "jumping to ki_g_gadget, left at [RSP] by a ret");
	entries_were_registered(self);
}

/*
 * d4) The module is its code's guest-physical pages, not their addresses: a
 * copy mapped at the module's addresses, as the guest kernel could map it
 * (the host edits the guest's page table for it here), runs as foreign
 * code, in view 0, and its read of the secret is denied.
 */
TEST_F_TIMEOUT(gates, copy_at_the_module_address_is_foreign_code, 120)
{
	u64 copy_gpa = addr_gva2gpa(self->vm, vm_alloc_page(self->vm));
	u64 *pte = vm_get_pte(self->vm, self->code_gva);

	register_entries(self);
	memcpy(addr_gpa2hva(self->vm, copy_gpa), addr_gva2hva(self->vm, self->code_gva),
	       PAGE_SIZE);
	*pte = (*pte & ~PHYSICAL_PAGE_MASK) | copy_gpa;
	step(self, CMD_INVLPG, self->code_gva, 0, 0, 0, 0);
	expect_denied(self, call(self, A(ki_g_read), self->secret_gva, 0), A(ki_g_read),
		      KVM_ISOLATE_ACCESS_R, self->secret_gpa, 1,
		      "a copy of the module mapped at ki_g_read");
	entries_were_registered(self);
}

/* e) An exception handled outside the module returns into it. */
TEST_F_TIMEOUT(gates, interrupt_inside_the_module_resumes_it, 120)
{
	struct reply r;

	register_entries(self);
	r = call(self, A(ki_g_int3), self->secret_gva, 0);
	TEST_ASSERT(r.bp == 1, "the #BP handler ran %lu times, want once", r.bp);
	expect_secret(self, r, 0, "ki_g_int3");
	print_cost(self, A(ki_g_int3), self->secret_gva, 0,
		   "call into the module with an exception taken inside it");
	entries_were_registered(self);
}

/* f) Learn mode learns the entry points a workload uses; enforce keeps to them. */
TEST_F_TIMEOUT(gates, learn_then_enforce, 120)
{
	struct kvm_isolate_ctl_domain d;

	set_mode(self, KVM_ISOLATE_MODE_LEARN);
	expect_secret(self, call(self, A(ki_g_read), self->secret_gva, 0), 0,
		      "ki_g_read in learn mode");
	expect_secret(self, call(self, A(ki_g_callout), self->secret_gva, A(ki_h_plain)), 0,
		      "ki_g_callout(ki_h_plain) in learn mode");
	d = domain_info(self);
	TEST_ASSERT(d.learned >= 2, "learn mode learned %lu entry points, want 2 or more",
		    (u64)d.learned);

	set_mode(self, KVM_ISOLATE_MODE_ENFORCE);
	expect_secret(self, call(self, A(ki_g_read), self->secret_gva, 0), 0,
		      "learned ki_g_read in enforce mode");
	expect_secret(self, call(self, A(ki_g_callout), self->secret_gva, A(ki_h_plain)), 0,
		      "learned ki_g_callout(ki_h_plain) in enforce mode");
	expect_fetch_denied(self, call(self, A(ki_g_gadget), self->secret_gva, 0),
			    A(ki_g_gadget), 1, "calling ki_g_gadget (never learned)");
}

/* What the last ki_a_destroy_* hypercall returned, read from guest memory. */
static u64 ki_hc_ret_of(struct _test_data_gates *self)
{
	return *(u64 *)addr_gva2hva(self->vm, A(&ki_hc_ret));
}

/* The profile: one rule, code on ki_a_read's page may access the secret with @access. */
static void set_accessor_rule(struct _test_data_gates *self, u32 access)
{
	struct kvm_isolate_ctl_rule r = {
		.domain = DOMAIN, .access = access, .region_gpa = self->secret_gpa,
		.accessor_start = A(ki_a_read), .accessor_end = A(ki_a_read) + PAGE_SIZE,
	};
	struct kvm_isolate_ctl_array a = { .vm = self->id, .count = 1, .ptr = (u64)&r };

	TEST_ASSERT(!ioctl(self->fd, KVM_ISOLATE_CTL_PROFILE_SET, &a), "PROFILE_SET: %s",
		    strerror(errno));
}

/*
 * g) A rule's rights bound its accessor where the owner calls it: a helper
 * the profile lets read the owner's secret reads it, and its write is
 * denied (in a lens on the domain, a view with the rule's rights), not
 * done with the owner's rights.  A rule with the owner's rights lets it
 * write.  The lens is the engine's view: the guest cannot switch to it,
 * change it or destroy it.
 */
TEST_F_TIMEOUT(gates, rule_rights_bound_the_accessor_the_owner_calls, 120)
{
	struct kvm_isolate_ctl_record rec = {};
	u64 *secret = addr_gva2hva(self->vm, self->secret_gva);
	struct reply r;
	u32 n;

	register_entries(self);
	set_accessor_rule(self, KVM_ISOLATE_ACCESS_R);
	expect_secret(self, call(self, A(ki_g_callout), self->secret_gva, A(ki_a_read)), 0,
		      "ki_g_callout(ki_a_read), read allowed by the rule");
	r = call(self, A(ki_g_callout), self->secret_gva, A(ki_a_write));
	TEST_ASSERT(*secret == SECRET, "ki_a_write, allowed only to read, wrote the secret: 0x%lx",
		    *secret);
	TEST_ASSERT(r.gp == 1 && r.gp_rip == A(ki_a_write_store) && r.ret == (u64)POISON,
		    "ki_a_write: %lu #GP, the last at 0x%lx, returned 0x%lx; want one at 0x%lx",
		    r.gp, r.gp_rip, r.ret, A(ki_a_write_store));
	TEST_ASSERT_EQ(domain_info(self).denied, 1);
	TEST_ASSERT_EQ(domain_info(self).lenses, 1);
	n = read_denials(self, &rec);
	TEST_ASSERT(n == 1 && rec.rip == A(ki_a_write_store) &&
		    rec.access == KVM_ISOLATE_ACCESS_W && rec.gpa == self->secret_gpa &&
		    rec.domain == DOMAIN && rec.view != 0 && rec.view != DOMAIN,
		    "%u denials; the last: rip 0x%lx access %u gpa 0x%lx domain %u view %u", n,
		    (u64)rec.rip, rec.access, (u64)rec.gpa, rec.domain, rec.view);
	/* The lens (the denial's view) is not the guest's. */
	TEST_ASSERT_EQ(hcall(self, KVM_HC_ISOLATE_SWITCH, rec.view, 0, 0, 0), E(EPERM));
	TEST_ASSERT_EQ(hcall(self, KVM_HC_ISOLATE_VIEW_DESTROY, rec.view, 0, 0, 0), E(EPERM));
	TEST_ASSERT_EQ(hcall(self, KVM_HC_ISOLATE_SET_ACCESS, rec.view, self->secret_gpa, 1,
			     KVM_ISOLATE_ACCESS_R | KVM_ISOLATE_ACCESS_W), E(EPERM));
	print_cost(self, A(ki_g_callout), self->secret_gva, A(ki_a_read),
		   "call into the module, out to a reader in its lens and back");

	/* With the owner's rights in its rule, a helper runs in the owner's view, and writes. */
	set_accessor_rule(self, KVM_ISOLATE_ACCESS_R | KVM_ISOLATE_ACCESS_W);
	print_cost(self, A(ki_g_callout), self->secret_gva, A(ki_a_read),
		   "call into the module, out to a helper with the owner's rights and back");
	r = call(self, A(ki_g_callout), self->secret_gva, A(ki_a_write));
	TEST_ASSERT(!r.gp && (u32)*secret == 0x41414141,
		    "ki_a_write allowed RW: %lu #GP, secret 0x%lx", r.gp, *secret);
	entries_were_registered(self);
}

/*
 * g2) Learn mode learns what a helper the owner calls does, in its lens:
 * ki_a_write's read, then its write (the lens is rebuilt with the widened
 * rule), one rule of both rights; enforcing, the same call is allowed.
 */
TEST_F_TIMEOUT(gates, learn_mode_widens_a_helper_rule_in_its_lens, 120)
{
	struct kvm_isolate_ctl_rule rule[4];
	u64 *secret = addr_gva2hva(self->vm, self->secret_gva);
	struct reply r;
	u32 n;

	register_entries(self);
	set_mode(self, KVM_ISOLATE_MODE_LEARN);
	r = call(self, A(ki_g_callout), self->secret_gva, A(ki_a_write));
	TEST_ASSERT(!r.gp && (u32)*secret == 0x41414141,
		    "ki_a_write in learn mode: %lu #GP at 0x%lx, secret 0x%lx", r.gp, r.gp_rip,
		    *secret);
	n = ki_ctl_get(self->fd, KVM_ISOLATE_CTL_PROFILE_GET, self->id, rule, 4);
	TEST_ASSERT(n == 1 && rule[0].accessor_start == A(ki_a_read) &&
		    rule[0].accessor_end == A(ki_a_read) + PAGE_SIZE &&
		    rule[0].access == (KVM_ISOLATE_ACCESS_R | KVM_ISOLATE_ACCESS_W),
		    "%u rules; the first: [0x%lx, 0x%lx) access %u", n,
		    (u64)rule[0].accessor_start, (u64)rule[0].accessor_end, rule[0].access);
	*secret = SECRET;
	set_mode(self, KVM_ISOLATE_MODE_ENFORCE);
	r = call(self, A(ki_g_callout), self->secret_gva, A(ki_a_write));
	TEST_ASSERT(!r.gp && (u32)*secret == 0x41414141,
		    "the learned ki_a_write enforcing: %lu #GP at 0x%lx, secret 0x%lx", r.gp,
		    r.gp_rip, *secret);
	TEST_ASSERT_EQ(domain_info(self).denied, 0);
	entries_were_registered(self);
}

/*
 * g2b) A helper with all of the owner's rights runs in the owner's view; a
 * region the owner adds later is not the helper's: its page stops being
 * executable there, and in its lens the new region is not mapped.
 */
TEST_F_TIMEOUT(gates, a_new_region_is_not_a_helper_s_by_default, 120)
{
	u64 gva2 = vm_alloc_page(self->vm), gpa2 = addr_gva2gpa(self->vm, gva2);
	u64 *secret2 = addr_gva2hva(self->vm, gva2);
	struct reply r;

	*secret2 = SECRET;
	register_entries(self);
	set_accessor_rule(self, KVM_ISOLATE_ACCESS_R | KVM_ISOLATE_ACCESS_W);
	r = call(self, A(ki_g_callout), self->secret_gva, A(ki_a_write));
	TEST_ASSERT(!r.gp, "ki_a_write with the owner's rights: #GP at 0x%lx", r.gp_rip);
	TEST_ASSERT_EQ(hcall(self, KVM_HC_ISOLATE_DOMAIN_ADD_REGION, DOMAIN, gpa2, 1,
			     KVM_ISOLATE_ACCESS_R | KVM_ISOLATE_ACCESS_W),
		       KVM_ISOLATE_ACCESS_R | KVM_ISOLATE_ACCESS_W);
	r = call(self, A(ki_g_callout), gva2, A(ki_a_write));
	TEST_ASSERT(*secret2 == SECRET, "ki_a_write, with no rule for the new region, wrote it");
	TEST_ASSERT(r.gp == 1 && r.gp_rip == A(ki_a_write),
		    "ki_a_write on the new region: %lu #GP, the last at 0x%lx; want one at 0x%lx",
		    r.gp, r.gp_rip, A(ki_a_write));
	entries_were_registered(self);
}

/*
 * g2c) Trust does not spread: a helper trusted on its own to read the
 * secret, and allowed (not trusted) to read a second region when the owner
 * calls it, called from outside reads the secret, and its read of the second
 * region is denied: it runs in a lens of its trusted rules only.
 */
TEST_F_TIMEOUT(gates, a_trusted_rule_lends_no_other_rule_s_rights, 120)
{
	u64 gva2 = vm_alloc_page(self->vm), gpa2 = addr_gva2gpa(self->vm, gva2);
	struct kvm_isolate_ctl_rule r[2] = {
		{ .domain = DOMAIN, .region_gpa = self->secret_gpa,
		  .access = KVM_ISOLATE_ACCESS_R | KVM_ISOLATE_RULE_TRUSTED },
		{ .domain = DOMAIN, .region_gpa = gpa2, .access = KVM_ISOLATE_ACCESS_R },
	};
	struct kvm_isolate_ctl_array a = { .vm = self->id, .count = 2, .ptr = (u64)r };
	struct reply rep;

	*(u64 *)addr_gva2hva(self->vm, gva2) = SECRET + 1;
	TEST_ASSERT_EQ(hcall(self, KVM_HC_ISOLATE_DOMAIN_ADD_REGION, DOMAIN, gpa2, 1,
			     KVM_ISOLATE_ACCESS_R), KVM_ISOLATE_ACCESS_R);
	r[0].accessor_start = r[1].accessor_start = A(ki_a_read);
	r[0].accessor_end = r[1].accessor_end = A(ki_a_read) + PAGE_SIZE;
	TEST_ASSERT(!ioctl(self->fd, KVM_ISOLATE_CTL_PROFILE_SET, &a), "PROFILE_SET: %s",
		    strerror(errno));
	/* The trusted read alone works from outside. */
	rep = call(self, A(ki_a_read), self->secret_gva, 0);
	TEST_ASSERT(rep.ret == SECRET && !rep.gp, "ki_a_read(secret) from outside: 0x%lx, %lu #GP",
		    rep.ret, rep.gp);
	/* The untrusted read, after the trusted one, is denied. */
	rep = call(self, A(ki_a_two), self->secret_gva, gva2);
	TEST_ASSERT(rep.ret != SECRET + 1, "ki_a_two read the second region from outside");
	TEST_ASSERT(rep.gp == 1 && rep.gp_rip == A(ki_a_two_second),
		    "ki_a_two: %lu #GP, the last at 0x%lx; want one at 0x%lx", rep.gp, rep.gp_rip,
		    A(ki_a_two_second));
	TEST_ASSERT_EQ(domain_info(self).denied, 1);
}

/*
 * g3) A domain is not destroyed while a vCPU is in one of its lenses: a
 * helper in its lens asks (EBUSY), and the domain goes with its lens, whose
 * view is free again, when asked from view 0.
 */
TEST_F_TIMEOUT(gates, domain_destroy_waits_for_its_lenses, 120)
{
	u64 fn = host_cpu_is_intel ? A(ki_a_destroy_vmcall) : A(ki_a_destroy_vmmcall);
	struct kvm_isolate_ctl_record rec = {};
	u64 word, lens;

	register_entries(self);
	set_accessor_rule(self, KVM_ISOLATE_ACCESS_R);
	expect_secret(self, call(self, A(ki_g_callout), self->secret_gva, fn), 0,
		      "ki_g_callout(a helper asking to destroy domain 1)");
	TEST_ASSERT_EQ(ki_hc_ret_of(self), E(EBUSY));
	TEST_ASSERT_EQ(domain_info(self).lenses, 1);
	/* The lens's view: the one a denial there names. */
	call(self, A(ki_g_callout), self->secret_gva, A(ki_a_write));
	TEST_ASSERT_EQ(read_denials(self, &rec), 1);
	lens = rec.view;
	word = hcall(self, KVM_HC_ISOLATE_QUERY, KVM_ISOLATE_QUERY_VIEWS, lens / 32, 0, 0);
	TEST_ASSERT(word & (1ull << (lens % 32)), "lens view %lu not listed", lens);
	TEST_ASSERT_EQ(hcall(self, KVM_HC_ISOLATE_DOMAIN_DESTROY, DOMAIN, 0, 0, 0), 0);
	word = hcall(self, KVM_HC_ISOLATE_QUERY, KVM_ISOLATE_QUERY_VIEWS, lens / 32, 0, 0);
	TEST_ASSERT(!(word & (1ull << (lens % 32))), "lens view %lu still listed", lens);
	entries_were_registered(self);
}

#define ENTRIES_MAX	64

/* The VM's entry points (KVM_ISOLATE_CTL_ENTRIES_GET), sorted by gpa; returns how many. */
static u32 get_entries(struct _test_data_gates *self, struct kvm_isolate_ctl_entry *e)
{
	u32 n, i;

	/* The count protocol: how many there are (nothing copied), then the array. */
	n = __ki_ctl_get(self->fd, KVM_ISOLATE_CTL_ENTRIES_GET, self->id, NULL, 0);
	TEST_ASSERT(n <= ENTRIES_MAX, "%u entry points, room for %d", n, ENTRIES_MAX);
	TEST_ASSERT_EQ(ki_ctl_get(self->fd, KVM_ISOLATE_CTL_ENTRIES_GET, self->id, e, ENTRIES_MAX),
		       n);
	for (i = 0; i < n; i++)
		TEST_ASSERT(e[i].pad == 0 && (!i || e[i - 1].gpa < e[i].gpa),
			    "entry point %u: pad %u, gpa 0x%lx after 0x%lx: want pad 0, by gpa", i,
			    e[i].pad, (u64)e[i].gpa, i ? (u64)e[i - 1].gpa : 0);
	return n;
}

/* KVM_ISOLATE_CTL_ENTRIES_SET of @n entry points: 0, or the errno. */
static int set_entries(struct _test_data_gates *self, struct kvm_isolate_ctl_entry *e, u32 n)
{
	struct kvm_isolate_ctl_array a = { .vm = self->id, .count = n, .ptr = (u64)e };

	return ioctl(self->fd, KVM_ISOLATE_CTL_ENTRIES_SET, &a) ? errno : 0;
}

/* The entry point at @gva among @e[0..@n), or NULL. */
static const struct kvm_isolate_ctl_entry *find_entry(const struct kvm_isolate_ctl_entry *e,
						      u32 n, u64 gva)
{
	u32 i;

	for (i = 0; i < n; i++)
		if (e[i].gva == gva)
			return &e[i];
	return NULL;
}

/* ENTRIES_GET still gives @want[0..@n) after @what. */
static void expect_entries(struct _test_data_gates *self,
			   const struct kvm_isolate_ctl_entry *want, u32 n, const char *what)
{
	struct kvm_isolate_ctl_entry got[ENTRIES_MAX];
	u32 m = get_entries(self, got);

	TEST_ASSERT(m == n && !memcmp(got, want, n * sizeof(*got)),
		    "%s: ENTRIES_GET gives %u entry points, want the %u set before", what, m, n);
}

/*
 * The VM's info counts what vm_setup() registered (one code range, one
 * region) and @entries entry points, all domains together, within capacities
 * (the module parameters when the VM was created) that are not zero.
 */
static void expect_usage(struct _test_data_gates *self, u32 entries, const char *what)
{
	struct kvm_isolate_ctl_vm v = ki_vm_info(self->fd, self->id);

	TEST_ASSERT(v.code_ranges == 1 && v.regions == 1 && v.entries == entries,
		    "%s: the VM info counts %u code ranges, %u regions, %u entry points; want 1, 1, %u",
		    what, v.code_ranges, v.regions, v.entries, entries);
	TEST_ASSERT(v.max_code_ranges && v.max_regions && v.max_rules && v.max_entries &&
		    v.max_return_sites,
		    "%s: capacities %u code ranges, %u regions, %u rules, %u entry points, %u return sites: want none zero",
		    what, v.max_code_ranges, v.max_regions, v.max_rules, v.max_entries,
		    v.max_return_sites);
	TEST_ASSERT(v.code_ranges <= v.max_code_ranges && v.regions <= v.max_regions &&
		    v.rules <= v.max_rules && v.entries <= v.max_entries &&
		    v.return_sites <= v.max_return_sites,
		    "%s: usage above capacity: %u/%u code ranges, %u/%u regions, %u/%u rules, %u/%u entry points, %u/%u return sites",
		    what, v.code_ranges, v.max_code_ranges, v.regions, v.max_regions, v.rules,
		    v.max_rules, v.entries, v.max_entries, v.return_sites, v.max_return_sites);
}

/* A refused ENTRIES_SET: @err, and the VM's entry points are still @e[0..@n). */
static void expect_set_refused(struct _test_data_gates *self, struct kvm_isolate_ctl_entry *bad,
			       u32 nbad, int err, const struct kvm_isolate_ctl_entry *e, u32 n,
			       const char *what)
{
	int ret = set_entries(self, bad, nbad);

	TEST_ASSERT(ret == err, "ENTRIES_SET of %s: %s, want %s", what,
		    ret ? strerror(ret) : "accepted", strerror(err));
	expect_entries(self, e, n, what);
}

/*
 * f2) The entry points learned in one VM carry over to a fresh VM of the
 * same layout (same binary, same memory layout), whose guest registered
 * none: the control plane reads them from the first and sets them in the
 * second, which then takes the learned calls in enforce mode and still
 * denies the gadget.  ENTRIES_SET checks all it is given first: anything
 * wrong, or more than the VM holds, changes nothing.  The VM info counts
 * them.
 */
TEST_F_TIMEOUT(gates, learned_entry_points_carry_over, 120)
{
	struct kvm_isolate_ctl_entry e[ENTRIES_MAX + 1], bad[ENTRIES_MAX + 1], *many;
	const struct kvm_isolate_ctl_entry *x;
	struct _test_data_gates fresh = {};
	u64 fn[] = { A(ki_g_read), A(ki_g_callout) };
	u32 n, i, cap;
	char what[80];

	set_mode(self, KVM_ISOLATE_MODE_LEARN);
	expect_secret(self, call(self, A(ki_g_read), self->secret_gva, 0), 0,
		      "ki_g_read in learn mode");
	expect_secret(self, call(self, A(ki_g_callout), self->secret_gva, A(ki_h_plain)), 0,
		      "ki_g_callout(ki_h_plain) in learn mode");
	n = get_entries(self, e);
	for (i = 0; i < ARRAY_SIZE(fn); i++) {
		x = find_entry(e, n, fn[i]);
		TEST_ASSERT(x && x->domain == DOMAIN && x->gpa == code_gpa_of(self, fn[i]),
			    "entry at 0x%lx: %s domain %u gpa 0x%lx; want domain %d gpa 0x%lx",
			    fn[i], x ? "learned," : "not learned:", x ? x->domain : 0,
			    x ? (u64)x->gpa : 0, DOMAIN, code_gpa_of(self, fn[i]));
	}
	TEST_ASSERT(!find_entry(e, n, A(ki_g_gadget)), "ki_g_gadget learned, never called");
	expect_usage(self, n, "after learning");

	/* A second VM, built the same way; its guest registers no entry point. */
	vm_setup(&fresh);
	TEST_ASSERT(fresh.id != self->id && fresh.code_gpa == self->code_gpa &&
		    fresh.secret_gva == self->secret_gva,
		    "second VM %u (module at gpa 0x%lx) is not VM %u's layout (0x%lx)", fresh.id,
		    fresh.code_gpa, self->id, self->code_gpa);
	TEST_ASSERT_EQ(get_entries(&fresh, bad), 0);
	expect_usage(&fresh, 0, "a VM without entry points");
	expect_fetch_denied(&fresh, call(&fresh, A(ki_g_read), fresh.secret_gva, 0), A(ki_g_read),
			    1, "ki_g_read in a VM without entry points");

	TEST_ASSERT_EQ(set_entries(&fresh, e, n), 0);
	expect_entries(&fresh, e, n, "ENTRIES_SET of the learned entry points");
	expect_usage(&fresh, n, "ENTRIES_SET of the learned entry points");
	expect_secret(&fresh, call(&fresh, A(ki_g_read), fresh.secret_gva, 0), 1,
		      "ki_g_read at an imported entry point");
	expect_secret(&fresh, call(&fresh, A(ki_g_callout), fresh.secret_gva, A(ki_h_plain)), 1,
		      "ki_g_callout(ki_h_plain) at an imported entry point");
	expect_fetch_denied(&fresh, call(&fresh, A(ki_g_gadget), fresh.secret_gva, 0),
			    A(ki_g_gadget), 2, "calling ki_g_gadget (not imported)");

	/* Refused as a whole, whichever entry point is wrong. */
	memcpy(bad, e, n * sizeof(*e));
	bad[n - 1].pad = 1;
	expect_set_refused(&fresh, bad, n, EINVAL, e, n, "an entry point with pad != 0");
	memcpy(bad, e, n * sizeof(*e));
	bad[n - 1].domain = DOMAIN + 1;
	expect_set_refused(&fresh, bad, n, EINVAL, e, n, "an entry point of no domain");
	memcpy(bad, e, n * sizeof(*e));
	bad[0].gpa += PAGE_SIZE;
	expect_set_refused(&fresh, bad, n, ENOENT, e, n,
			   "an entry point whose gpa is not its code's (another layout)");
	memcpy(bad, e, n * sizeof(*e));
	bad[0].gva = A(ki_h_plain);
	bad[0].gpa = addr_gva2gpa(fresh.vm, A(ki_h_plain));
	expect_set_refused(&fresh, bad, n, ENOENT, e, n, "an entry point outside the module");
	memcpy(bad, e, n * sizeof(*e));
	bad[n] = e[0];
	expect_set_refused(&fresh, bad, n + 1, EEXIST, e, n, "an entry point twice");
	/* One more than the VM holds (max_entry_points when it was created). */
	cap = ki_vm_info(fresh.fd, fresh.id).max_entries;
	many = calloc(cap + 1, sizeof(*many));
	TEST_ASSERT(many, "calloc of %u entry points", cap + 1);
	for (i = 0; i < cap + 1; i++)
		many[i] = e[0];
	snprintf(what, sizeof(what), "%u entry points (max_entries %u)", cap + 1, cap);
	expect_set_refused(&fresh, many, cap + 1, E2BIG, e, n, what);
	free(many);
	expect_usage(&fresh, n, "refused ENTRIES_SETs");
	/* None of these changed what the VM lets in. */
	expect_secret(&fresh, call(&fresh, A(ki_g_read), fresh.secret_gva, 0), 2,
		      "ki_g_read after refused ENTRIES_SETs");
	expect_fetch_denied(&fresh, call(&fresh, A(ki_g_gadget), fresh.secret_gva, 0),
			    A(ki_g_gadget), 3, "calling ki_g_gadget after refused ENTRIES_SETs");
	vm_teardown(&fresh);
}

/* g) ADD_ENTRY refuses what it must, and a refused call changes nothing. */
TEST_F_TIMEOUT(gates, add_entry_validation, 120)
{
	u64 gadget = A(ki_g_gadget);
	u64 read = A(ki_g_read);

	TEST_ASSERT_EQ(hcall(self, KVM_HC_ISOLATE_DOMAIN_ADD_ENTRY, 0, gadget, 0, 0), E(EINVAL));
	TEST_ASSERT_EQ(hcall(self, KVM_HC_ISOLATE_DOMAIN_ADD_ENTRY, KVM_ISOLATE_MAX_VIEWS, gadget,
			     0, 0), E(EINVAL));
	TEST_ASSERT_EQ(hcall(self, KVM_HC_ISOLATE_DOMAIN_ADD_ENTRY, DOMAIN, gadget, 1, 0),
		       E(EINVAL));
	TEST_ASSERT_EQ(hcall(self, KVM_HC_ISOLATE_DOMAIN_ADD_ENTRY, DOMAIN, gadget, 0, 1),
		       E(EINVAL));
	TEST_ASSERT_EQ(hcall(self, KVM_HC_ISOLATE_DOMAIN_ADD_ENTRY, DOMAIN + 1, gadget, 0, 0),
		       E(ENOENT));
	/* Not in the module's code: a helper, and the bytes just outside its page. */
	TEST_ASSERT_EQ(hcall(self, KVM_HC_ISOLATE_DOMAIN_ADD_ENTRY, DOMAIN, A(ki_h_plain), 0, 0),
		       E(ERANGE));
	TEST_ASSERT_EQ(hcall(self, KVM_HC_ISOLATE_DOMAIN_ADD_ENTRY, DOMAIN,
			     self->code_gva + PAGE_SIZE, 0, 0), E(ERANGE));
	TEST_ASSERT_EQ(hcall(self, KVM_HC_ISOLATE_DOMAIN_ADD_ENTRY, DOMAIN, self->code_gva - 1,
			     0, 0), E(ERANGE));
	/* None of these made the gadget an entry point. */
	expect_fetch_denied(self, call(self, gadget, self->secret_gva, 0), gadget, 1,
			    "calling ki_g_gadget after refused ADD_ENTRYs");

	TEST_ASSERT_EQ(hcall(self, KVM_HC_ISOLATE_DOMAIN_ADD_ENTRY, DOMAIN, read, 0, 0), 0);
	TEST_ASSERT_EQ(hcall(self, KVM_HC_ISOLATE_DOMAIN_ADD_ENTRY, DOMAIN, read, 0, 0),
		       E(EEXIST));
	expect_secret(self, call(self, read, self->secret_gva, 0), 1, "ki_g_read");
}

/* g2) A locked guest cannot add a way in; the ones it had still work. */
TEST_F_TIMEOUT(gates, add_entry_after_lock_is_refused, 120)
{
	TEST_ASSERT_EQ(hcall(self, KVM_HC_ISOLATE_DOMAIN_ADD_ENTRY, DOMAIN, A(ki_g_read), 0, 0),
		       0);
	TEST_ASSERT_EQ(hcall(self, KVM_HC_ISOLATE_LOCK, 0, 0, 0, 0), 0);
	TEST_ASSERT_EQ(hcall(self, KVM_HC_ISOLATE_DOMAIN_ADD_ENTRY, DOMAIN, A(ki_g_callout),
			     0, 0), E(EPERM));
	expect_fetch_denied(self, call(self, A(ki_g_callout), self->secret_gva, A(ki_h_plain)),
			    A(ki_g_callout), 1, "calling ki_g_callout (refused after the lock)");
	expect_secret(self, call(self, A(ki_g_read), self->secret_gva, 0), 1,
		      "ki_g_read (registered before the lock)");
}

/* h) The ways around the gates: the ABI v1 switch ... */
TEST_F_TIMEOUT(gates, switch_hypercall_cannot_enter_a_domain_view, 120)
{
	u64 ret = hcall(self, KVM_HC_ISOLATE_SWITCH, DOMAIN, 0, 0, 0);

	TEST_ASSERT(ret == E(EPERM), "SWITCH to the domain's view returned %ld, want %ld",
		    (long)ret, (long)E(EPERM));
	TEST_ASSERT_EQ(hcall(self, KVM_HC_ISOLATE_QUERY, KVM_ISOLATE_QUERY_VIEW, 0, 0, 0), 0);
}

/*
 * ... VMFUNC, with the domain's root cached by a proper entry just before
 * (Intel: the policy keeps domain views out of every EPTP list, so the
 * VMFUNC exits and is refused; AMD has no VMFUNC) ...
 */
TEST_F_TIMEOUT(gates, vmfunc_cannot_enter_a_domain_view, 120)
{
	u64 vector, features;

	register_entries(self);
	expect_secret(self, call(self, A(ki_g_read), self->secret_gva, 0), 0, "ki_g_read");
	vector = step(self, CMD_VMFUNC, DOMAIN, 0, 0, 0, 0).ret;
	TEST_ASSERT(vector == UD_VECTOR, "VMFUNC to the domain's view raised vector %lu, want #UD",
		    vector);
	TEST_ASSERT_EQ(hcall(self, KVM_HC_ISOLATE_QUERY, KVM_ISOLATE_QUERY_VIEW, 0, 0, 0), 0);
	/* View 0, which SWITCH allows, is reached by VMFUNC where the vCPU has it. */
	features = hcall(self, KVM_HC_ISOLATE_QUERY, KVM_ISOLATE_QUERY_FEATURES, 0, 0, 0);
	vector = step(self, CMD_VMFUNC, 0, 0, 0, 0, 0).ret;
	TEST_ASSERT(vector == (features & KVM_ISOLATE_FEATURE_VMFUNC ? 0 : UD_VECTOR),
		    "VMFUNC to view 0 raised vector %lu (features 0x%lx)", vector, features);
	TEST_ASSERT_EQ(hcall(self, KVM_HC_ISOLATE_QUERY, KVM_ISOLATE_QUERY_VIEW, 0, 0, 0), 0);
}

/* ... the ABI v1 violation policy ... */
TEST_F_TIMEOUT(gates, violation_switch_cannot_enter_a_domain_view, 120)
{
	u64 ret = hcall(self, KVM_HC_ISOLATE_ON_VIOLATION, KVM_ISOLATE_ON_VIOLATION_SWITCH,
			DOMAIN, 0, 0);

	TEST_ASSERT(ret == E(EPERM),
		    "ON_VIOLATION(SWITCH, the domain's view) returned %ld, want %ld",
		    (long)ret, (long)E(EPERM));
}

/* ... the module's code page as every view sees it ... */
TEST_F_TIMEOUT(gates, domain_code_is_read_only_outside_its_view, 120)
{
	u64 v0 = hcall(self, KVM_HC_ISOLATE_QUERY, KVM_ISOLATE_QUERY_ACCESS, 0, self->code_gpa, 0);
	u64 v1 = hcall(self, KVM_HC_ISOLATE_QUERY, KVM_ISOLATE_QUERY_ACCESS, DOMAIN,
		       self->code_gpa, 0);
	struct reply r;

	TEST_ASSERT(v0 == KVM_ISOLATE_ACCESS_R,
		    "view 0 has access %lu to the module's code, want %d (R)", v0,
		    KVM_ISOLATE_ACCESS_R);
	TEST_ASSERT(v1 == (KVM_ISOLATE_ACCESS_R | KVM_ISOLATE_ACCESS_X),
		    "the domain's view has access %lu to its code, want %d (RX)", v1,
		    KVM_ISOLATE_ACCESS_R | KVM_ISOLATE_ACCESS_X);
	/* R is really there: code outside may read the module (e.g. to disassemble it). */
	r = step(self, CMD_PEEK, A(ki_g_read), 0, 0, 0, 0);
	TEST_ASSERT(!r.gp && r.ret == *(u8 *)addr_gva2hva(self->vm, A(ki_g_read)),
		    "reading the module's code from view 0: 0x%lx, %lu #GP", r.ret, r.gp);
}

/* ... ABI v1 access rights over the module's code ... */
TEST_F_TIMEOUT(gates, set_access_cannot_open_domain_code, 120)
{
	u64 ret;

	ret = hcall(self, KVM_HC_ISOLATE_SET_ACCESS, 0, self->code_gpa, 1, KVM_ISOLATE_ACCESS_RWX);
	TEST_ASSERT(ret == E(EPERM),
		    "SET_ACCESS(view 0, the module's code, RWX) returned %ld, want %ld",
		    (long)ret, (long)E(EPERM));
	/* A range that only starts before the code page covers it too. */
	ret = hcall(self, KVM_HC_ISOLATE_SET_ACCESS, 0, self->code_gpa - PAGE_SIZE, 2,
		    KVM_ISOLATE_ACCESS_RWX);
	TEST_ASSERT(ret == E(EPERM),
		    "SET_ACCESS(view 0, 2 pages ending with the code, RWX) returned %ld, want %ld",
		    (long)ret, (long)E(EPERM));
	TEST_ASSERT_EQ(hcall(self, KVM_HC_ISOLATE_QUERY, KVM_ISOLATE_QUERY_ACCESS, 0,
			     self->code_gpa, 0), KVM_ISOLATE_ACCESS_R);
}

/* ... and planting code in the module: a write from outside its view. */
TEST_F_TIMEOUT(gates, code_write_from_outside_is_denied, 120)
{
	/* The last byte of the module's page: padding, harmless if the write goes through. */
	u64 gva = self->code_gva + PAGE_SIZE - 1;
	u8 *byte = addr_gva2hva(self->vm, gva);
	u8 old = *byte;
	struct kvm_isolate_ctl_record rec = {};
	struct reply r;
	u32 n;

	register_entries(self);
	r = call(self, A(ki_h_write), gva, (u8)~old);
	TEST_ASSERT(*byte == old, "a write from view 0 planted 0x%x in the module's code (was 0x%x)",
		    *byte, old);
	TEST_ASSERT(r.gp == 1 && r.gp_rip == A(ki_h_write),
		    "the write: %lu #GP, the last at 0x%lx; want one at 0x%lx", r.gp, r.gp_rip,
		    A(ki_h_write));
	n = read_denials(self, &rec);
	TEST_ASSERT(n == 1, "%u denials logged, want 1", n);
	TEST_ASSERT(rec.rip == A(ki_h_write) && rec.view == 0 &&
		    rec.access == KVM_ISOLATE_ACCESS_W &&
		    (rec.gpa & ~(u64)(PAGE_SIZE - 1)) == self->code_gpa,
		    "logged rip 0x%lx view %u access %u gpa 0x%lx;\n"
		    "  want rip 0x%lx view 0 access %d gpa in page 0x%lx", (u64)rec.rip, rec.view,
		    rec.access, (u64)rec.gpa, A(ki_h_write), KVM_ISOLATE_ACCESS_W, self->code_gpa);
	/* The module still runs. */
	expect_secret(self, call(self, A(ki_g_read), self->secret_gva, 0), domain_info(self).denied,
		      "ki_g_read after the write");
	entries_were_registered(self);
}

/*
 * Issue 9 item 7, as a stress test: a host thread imports the profile
 * (PROFILE_SET, which rebuilds every domain's view) once per completed call
 * while the module keeps calling out to ki_h_leak, which would copy the secret to
 * ki_leak.  At every point of a rebuild the helper's first fetch must leave
 * the module's view, and its read in view 0 is denied; had the view been
 * reset to all rights for a moment, the helper would have run in it.
 */
struct rebuilder {
	int fd;
	u32 id;
	volatile u64 *calls;	/* the guest's loop_calls */
	volatile bool stop;
	u64 imports;
	int err;
};

/*
 * Imports, each after the guest finished a call: back to back, imports
 * starve the vCPU (each resets the view it runs in, and holds the lock its
 * faults wait for), which is the administrator's doing, not a leak.
 */
static void *rebuild_loop(void *arg)
{
	struct rebuilder *rb = arg;
	struct kvm_isolate_ctl_array a = { .vm = rb->id };
	u64 seen = 0;

	while (!READ_ONCE(rb->stop) && !rb->err) {
		if (ioctl(rb->fd, KVM_ISOLATE_CTL_PROFILE_SET, &a))
			rb->err = errno;
		rb->imports++;
		while (*rb->calls == seen && !READ_ONCE(rb->stop))
			usleep(100);
		seen = *rb->calls;
	}
	return NULL;
}

TEST_F_TIMEOUT(gates, profile_rebuilds_never_run_foreign_code_in_the_view, 300)
{
	struct rebuilder rb = {
		.fd = self->fd, .id = self->id, .calls = addr_gva2hva(self->vm, A(&loop_calls)),
	};
	u64 calls = ki_race_rounds();
	pthread_t th;
	struct reply r;

	register_entries(self);
	TEST_ASSERT_EQ(pthread_create(&th, NULL, rebuild_loop, &rb), 0);
	r = step(self, CMD_LOOP, A(ki_g_callout), self->secret_gva, A(ki_h_leak), 0, calls);
	WRITE_ONCE(rb.stop, true);
	pthread_join(th, NULL);
	sync_global_from_guest(self->vm, ki_leak);
	ksft_print_msg("%lu calls out of the module during %lu profile imports\n", calls,
		       rb.imports);
	TEST_ASSERT(!rb.err, "PROFILE_SET: %s", strerror(rb.err));
	TEST_ASSERT(ki_leak != SECRET && r.ret == 0,
		    "the helper ran in the module's view (%lu calls returned the secret)", r.ret);
	TEST_ASSERT(r.gp == calls && r.gp_rip == A(ki_h_leak),
		    "%lu of %lu helper reads denied, the last at 0x%lx (want 0x%lx)", r.gp, calls,
		    r.gp_rip, A(ki_h_leak));
	TEST_ASSERT(rb.imports, "no profile import ran during the calls");
	entries_were_registered(self);
}

/*
 * i) Switchable domains (KVM_HC_ISOLATE_DOMAIN_SWITCHABLE): SWITCH and VMFUNC
 * enter the domain's view without a check, which is safe only because the
 * instruction after the switch runs either outside the module's code (not
 * executable there: a fault, back to view 0) or at one of its page starts,
 * all of them entry points.  The module is entered at its first page's start
 * by a switch that ends the page before it (an alias window: stub, module,
 * return page) and leaves by a switch that ends its own page.
 */

static bool has_vmfunc(struct _test_data_gates *self)
{
	return hcall(self, KVM_HC_ISOLATE_QUERY, KVM_ISOLATE_QUERY_FEATURES, 0, 0, 0) &
	       KVM_ISOLATE_FEATURE_VMFUNC;
}

static u64 make_switchable(struct _test_data_gates *self, u64 domain)
{
	return hcall(self, KVM_HC_ISOLATE_DOMAIN_SWITCHABLE, domain, 0, 0, 0);
}

TEST_F_TIMEOUT(gates, switchable_needs_an_entry_point_at_every_page_start, 120)
{
	u64 page = A(ki_a_read), spare = vm_alloc_page(self->vm);

	/* ki_g_read, the module's page start, is no entry point yet. */
	TEST_ASSERT_EQ(make_switchable(self, DOMAIN), E(EINVAL));
	TEST_ASSERT_EQ(hcall(self, KVM_HC_ISOLATE_SWITCH, DOMAIN, 0, 0, 0), E(EPERM));
	TEST_ASSERT_EQ(make_switchable(self, 0), E(EINVAL));
	TEST_ASSERT_EQ(make_switchable(self, DOMAIN + 1), E(ENOENT));
	TEST_ASSERT_EQ(hcall(self, KVM_HC_ISOLATE_DOMAIN_SWITCHABLE, DOMAIN, 0, 1, 0), E(EINVAL));
	register_entries(self);
	TEST_ASSERT_EQ(domain_info(self).flags, 0);
	TEST_ASSERT_EQ(make_switchable(self, DOMAIN), 0);
	TEST_ASSERT_EQ(make_switchable(self, DOMAIN), E(EEXIST));
	TEST_ASSERT_EQ(domain_info(self).flags, KVM_ISOLATE_DOMAIN_SWITCHABLE);
	/* Its code is complete, and none of its regions is executable. */
	TEST_ASSERT_EQ(hcall(self, KVM_HC_ISOLATE_DOMAIN_ADD_CODE, DOMAIN, page,
			     addr_gva2gpa(self->vm, page), 1), E(EPERM));
	TEST_ASSERT_EQ(hcall(self, KVM_HC_ISOLATE_DOMAIN_ADD_REGION, DOMAIN,
			     addr_gva2gpa(self->vm, spare), 1,
			     KVM_ISOLATE_ACCESS_R | KVM_ISOLATE_ACCESS_X), E(EPERM));
	TEST_ASSERT_EQ(hcall(self, KVM_HC_ISOLATE_QUERY, KVM_ISOLATE_QUERY_ACCESS, DOMAIN,
			     addr_gva2gpa(self->vm, page), 0), KVM_ISOLATE_ACCESS_R |
		       KVM_ISOLATE_ACCESS_W);
	expect_secret(self, call(self, A(ki_g_read), self->secret_gva, 0), 0, "ki_g_read");
	TEST_ASSERT_EQ(hcall(self, KVM_HC_ISOLATE_LOCK, 0, 0, 0, 0), 0);
	TEST_ASSERT_EQ(make_switchable(self, DOMAIN), E(EPERM));
	entries_were_registered(self);
}

/* A rogue's switch into the view lands on its own code: back to view 0, with no rights. */
TEST_F_TIMEOUT(gates, switchable_rogue_switch_gains_nothing, 120)
{
	u64 vector;

	register_entries(self);
	TEST_ASSERT_EQ(make_switchable(self, DOMAIN), 0);
	TEST_ASSERT_EQ(hcall(self, KVM_HC_ISOLATE_SWITCH, DOMAIN, 0, 0, 0), 0);
	TEST_ASSERT_EQ(hcall(self, KVM_HC_ISOLATE_QUERY, KVM_ISOLATE_QUERY_VIEW, 0, 0, 0), 0);
	TEST_ASSERT_EQ(domain_info(self).left, 1);
	expect_denied(self, call(self, A(ki_h_leak), self->secret_gva, 0), A(ki_h_leak),
		      KVM_ISOLATE_ACCESS_R, self->secret_gpa, 1, "ki_h_leak after SWITCH");
	if (has_vmfunc(self)) {
		vector = step(self, CMD_VMFUNC, DOMAIN, 0, 0, 0, 0).ret;
		TEST_ASSERT(vector == 0, "VMFUNC to a switchable domain's view raised %lu", vector);
		TEST_ASSERT_EQ(hcall(self, KVM_HC_ISOLATE_QUERY, KVM_ISOLATE_QUERY_VIEW, 0, 0, 0),
			       0);
		expect_denied(self, call(self, A(ki_h_leak), self->secret_gva, 0), A(ki_h_leak),
			      KVM_ISOLATE_ACCESS_R, self->secret_gpa, 2, "ki_h_leak after VMFUNC");
	}
	entries_were_registered(self);
}

/* The checked entries keep their rules: a gadget, a forged return address inside. */
TEST_F_TIMEOUT(gates, switchable_domain_keeps_its_gates, 120)
{
	register_entries(self);
	TEST_ASSERT_EQ(make_switchable(self, DOMAIN), 0);
	expect_secret(self, call(self, A(ki_g_read), self->secret_gva, 0), 0, "ki_g_read");
	expect_fetch_denied(self, call(self, A(ki_g_gadget), self->secret_gva, 0),
			    A(ki_g_gadget), 1, "calling ki_g_gadget (not an entry point)");
	expect_fetch_denied(self, call3(self, A(ki_h_forge), self->secret_gva, A(ki_g_read),
					A(ki_g_gadget)),
			    A(ki_g_read), 2, "entering ki_g_read to return to ki_g_gadget");
	entries_were_registered(self);
}

/*
 * The attack a switchable view invites: leaving it looks like a call out of
 * the module, with a return address of the rogue's choice at RSP.  Were that
 * recorded as a return site, the rogue would resume the module there (its
 * gadget reads the secret for it).
 */
TEST_F_TIMEOUT(gates, switchable_leave_records_no_return_site, 120)
{
	u64 hc = host_cpu_is_intel ? A(ki_h_forge_vmcall) : A(ki_h_forge_vmmcall);
	struct reply r;

	register_entries(self);
	TEST_ASSERT_EQ(make_switchable(self, DOMAIN), 0);
	r = call(self, hc, self->secret_gva, A(ki_g_gadget));
	expect_fetch_denied(self, r, A(ki_g_gadget), 1, "a return site forged by SWITCH");
	if (has_vmfunc(self)) {
		r = call(self, A(ki_h_forge_vmfunc), self->secret_gva, A(ki_g_gadget));
		expect_fetch_denied(self, r, A(ki_g_gadget), 2, "a return site forged by VMFUNC");
	}
	entries_were_registered(self);
}

/*
 * Writes a switch to @view that ends at the end of @page (VMFUNC, or the
 * SWITCH hypercall); returns its offset.
 */
static int put_switch(u8 *page, u32 view, bool vmfunc)
{
	/* xor %eax, %eax; mov $view, %ecx; vmfunc */
	u8 vmf[] = { 0x31, 0xc0, 0xb9, 0, 0, 0, 0, 0x0f, 0x01, 0xd4 };
	/* mov $nr, %eax; mov $view, %ebx; xor %ecx/%edx/%esi; vmcall (vmmcall: 0xd9) */
	u8 hc[] = { 0xb8, 0, 0, 0, 0, 0xbb, 0, 0, 0, 0, 0x31, 0xc9, 0x31, 0xd2, 0x31, 0xf6,
		    0x0f, 0x01, host_cpu_is_intel ? 0xc1 : 0xd9 };
	u32 nr = KVM_HC_ISOLATE_SWITCH;
	int n = vmfunc ? sizeof(vmf) : sizeof(hc);

	memcpy(&vmf[3], &view, 4);
	memcpy(&hc[1], &nr, 4);
	memcpy(&hc[6], &view, 4);
	memcpy(page + PAGE_SIZE - n, vmfunc ? vmf : hc, n);
	return PAGE_SIZE - n;
}

/*
 * Three pages at consecutive addresses: a stub that switches into the
 * domain's view as its page's last instruction; @target's page (@target, or
 * when 0 fresh code: the module's second code range, whose start, an entry
 * point, reads the word at RDI into R8 and jumps to its switch back to view
 * 0, its page's last instruction); and a page outside the module that
 * returns R8.  Returns the stub's address, fn(gva) for ki_h_call (which
 * keeps RBX, which the hypercalls take).
 */
static u64 switch_window(struct _test_data_gates *self, bool vmfunc, u64 target)
{
	u64 win = vm_alloc_pages(self->vm, 3), mod = win + PAGE_SIZE;
	u8 *stub = addr_gva2hva(self->vm, win);
	u8 *code = addr_gva2hva(self->vm, mod);
	u8 *back = addr_gva2hva(self->vm, mod + PAGE_SIZE);
	u64 *pte;
	int tail;
	s32 rel;

	memset(stub, 0xcc, PAGE_SIZE);
	memcpy(back, "\x4c\x89\xc0\xc3", 4);			/* mov %r8, %rax; ret */
	if (target) {
		pte = vm_get_pte(self->vm, mod);
		*pte = (*pte & ~PHYSICAL_PAGE_MASK) | addr_gva2gpa(self->vm, target);
		return win + put_switch(stub, DOMAIN, vmfunc);
	}
	memset(code, 0xcc, PAGE_SIZE);
	tail = put_switch(code, 0, vmfunc);
	memcpy(code, "\x4c\x8b\x07\xe9", 4);			/* mov (%rdi), %r8; jmp */
	rel = tail - 8;
	memcpy(code + 4, &rel, 4);
	TEST_ASSERT_EQ(hcall(self, KVM_HC_ISOLATE_DOMAIN_ADD_CODE, DOMAIN, mod,
			     addr_gva2gpa(self->vm, mod), 1), 0);
	TEST_ASSERT_EQ(hcall(self, KVM_HC_ISOLATE_DOMAIN_ADD_ENTRY, DOMAIN, mod, 0, 0), 0);
	return win + put_switch(stub, DOMAIN, vmfunc);
}

#define ROUND_TRIPS	1000

/* ROUND_TRIPS calls of fn(gva) in a loop: the VM exits and guest TSC per call. */
static void round_trips(struct _test_data_gates *self, u64 fn, double *exits, double *tsc,
			const char *what)
{
	u64 e = vcpu_get_stat(self->vcpu, exits);
	struct reply r = step(self, CMD_LOOP, fn, self->secret_gva, 0, 0, ROUND_TRIPS);

	TEST_ASSERT(r.ret == ROUND_TRIPS && !r.gp,
		    "%s: %lu of %d calls returned the secret, %lu #GP", what, r.ret, ROUND_TRIPS,
		    r.gp);
	/* Less the ucall's exit. */
	*exits = (double)(vcpu_get_stat(self->vcpu, exits) - e - 1) / ROUND_TRIPS;
	*tsc = (double)r.tsc / ROUND_TRIPS;
}

/* The module reads its secret through the switches, with no VM exit where VMFUNC is. */
TEST_F_TIMEOUT(gates, switchable_round_trip_without_an_exit, 120)
{
	bool vmfunc = has_vmfunc(self);
	u64 fn = switch_window(self, vmfunc, 0);
	double ex, ts, gate_ex, gate_ts;

	register_entries(self);
	TEST_ASSERT_EQ(make_switchable(self, DOMAIN), 0);
	expect_secret(self, call(self, fn, self->secret_gva, 0), 0, "the first switched call");
	round_trips(self, fn, &ex, &ts, "switched calls");
	round_trips(self, A(ki_g_read), &gate_ex, &gate_ts, "entry point calls");
	ksft_print_msg("per round trip into the domain: by %s %.3f VM exits, %.0f TSC; through "
		       "the entry point's fetch exit %.3f VM exits, %.0f TSC (Bochs: instructions)\n",
		       vmfunc ? "VMFUNC" : "SWITCH hypercall", ex, ts, gate_ex, gate_ts);
	TEST_ASSERT_EQ(hcall(self, KVM_HC_ISOLATE_QUERY, KVM_ISOLATE_QUERY_VIEW, 0, 0, 0), 0);
	if (vmfunc)
		TEST_ASSERT(ex < 0.1, "%.3f VM exits per VMFUNC round trip", ex);
	else
		TEST_ASSERT(ex >= 2, "%.3f VM exits per hypercall round trip", ex);
	TEST_ASSERT(gate_ex >= 2, "%.3f VM exits per entry point call", gate_ex);
	TEST_ASSERT_EQ(domain_info(self).denied, 0);
	entries_were_registered(self);
}

/*
 * Profile code the owner calls runs in the owner's view (the rule gives
 * ki_a_read all of the owner's rights): its page becomes executable there,
 * and a rogue's switch that ends the page before an alias of it would run
 * ki_a_read with the owner's rights, for the rogue.  Making the domain
 * switchable takes that page's right away, and in a switchable domain's
 * view nothing runs but the module: the owner's call is denied, and so is
 * the rogue's read, in view 0.
 */
TEST_F_TIMEOUT(gates, switchable_view_runs_no_profile_code, 120)
{
	u64 fn = switch_window(self, has_vmfunc(self), A(ki_a_read));
	u64 alias = (fn & ~(PAGE_SIZE - 1)) + PAGE_SIZE;
	struct reply r, owner;

	register_entries(self);
	set_accessor_rule(self, KVM_ISOLATE_ACCESS_R | KVM_ISOLATE_ACCESS_W);
	expect_secret(self, call(self, A(ki_g_callout), self->secret_gva, A(ki_a_read)), 0,
		      "ki_g_callout(ki_a_read), before the domain is switchable");
	TEST_ASSERT_EQ(make_switchable(self, DOMAIN), 0);
	r = call(self, fn, self->secret_gva, 0);
	owner = call(self, A(ki_g_callout), self->secret_gva, A(ki_a_read));
	TEST_ASSERT(r.ret != SECRET, "ki_a_read, run from a switch into the owner's view, read "
		    "the secret for a rogue");
	TEST_ASSERT(r.gp == 1 && r.gp_rip == alias, "%lu #GP, the last at 0x%lx; want one at "
		    "0x%lx", r.gp, r.gp_rip, alias);
	TEST_ASSERT(owner.ret != SECRET && owner.gp == 1 && owner.gp_rip == A(ki_a_read),
		    "the owner's call of ki_a_read returned 0x%lx, %lu #GP at 0x%lx", owner.ret,
		    owner.gp, owner.gp_rip);
	TEST_ASSERT_EQ(domain_info(self).denied, 2);
	entries_were_registered(self);
}

TEST_HARNESS_MAIN
