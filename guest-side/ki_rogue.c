// SPDX-License-Identifier: GPL-2.0
/*
 * ki_rogue: kvm-isolate's demo attacker, a module that goes for another
 * module's memory at an address found in /proc/kallsyms:
 *
 *   modprobe ki_rogue addr=0x... op=read|write|call|claim
 *
 * read and write 16 bytes there, call jumps there; switch switches to the view
 * of domain (a module parameter; VMFUNC, or on AMD the SWITCH hypercall, as a
 * gate does) and then reads there. It attacks from a kernel
 * thread of its own, so that an attack the host denies (an oops in the guest,
 * with kvm-isolatectl's --deny gp) kills that thread only; the load then says
 * "denied". A read that succeeds prints what it read. claim asks
 * kvm_isolate_guest's kernel API to make the page there the rogue's own
 * region, which would give the rogue's code the only rights on it.
 */
#include <linux/completion.h>
#include <linux/cpufeature.h>
#include <linux/delay.h>
#include <linux/kthread.h>
#include <linux/kvm_isolate_guest.h>
#include <linux/module.h>
#include <linux/sched/task.h>
#include <asm/kvm_para.h>

static unsigned long addr;
module_param(addr, ulong, 0);
MODULE_PARM_DESC(addr, "what to attack (a kernel address)");
static char *op = "read";
module_param(op, charp, 0);
MODULE_PARM_DESC(op, "read, write, call, switch or claim");

static unsigned int domain;
module_param(domain, uint, 0);
MODULE_PARM_DESC(domain, "the view op=switch switches to");

static DECLARE_COMPLETION(ki_rogue_done);
static u64 ki_rogue_got[2];

static int ki_rogue_attack(void *unused)
{
	u64 *p = (u64 *)addr;

	if (!strcmp(op, "switch")) {
		/* What a gate does before its page ends, here mid-page. */
		if (boot_cpu_has(X86_FEATURE_VMMCALL))
			kvm_hypercall4(KVM_HC_ISOLATE_SWITCH, domain, 0, 0, 0);
		else
			asm volatile(".byte 0x0f, 0x01, 0xd4"
				     : : "a"(0), "c"(domain) : "memory");
	}
	if (!strcmp(op, "read") || !strcmp(op, "switch")) {
		ki_rogue_got[0] = READ_ONCE(p[0]);
		ki_rogue_got[1] = READ_ONCE(p[1]);
	} else if (!strcmp(op, "write")) {
		WRITE_ONCE(p[0], 0x6b69726f67756521ULL);
		WRITE_ONCE(p[1], 0x6b69726f67756521ULL);
	} else {
		((void (*)(void))addr)();
	}
	complete(&ki_rogue_done);
	return 0;
}

/* The page at addr as the rogue's region, through the kernel API. */
static int __init ki_rogue_claim(void)
{
	const struct kvm_isolate_region page = {
		.start = (void *)addr,
		.size = PAGE_SIZE,
		.access = KVM_ISOLATE_ACCESS_R | KVM_ISOLATE_ACCESS_W,
	};
	typeof(kvm_isolate_protect_self) *protect;
	int domain;

	protect = symbol_get(kvm_isolate_protect_self);
	if (!protect)
		return -ENODEV;
	domain = protect(THIS_MODULE, &page, 1);
	if (domain < 0)
		pr_info("ki_rogue: claim at %#lx: refused (%d)\n", addr, domain);
	else
		pr_info("ki_rogue: claim at %#lx: done, domain %d\n", addr, domain);
	symbol_put(kvm_isolate_protect_self);
	return 0;
}

static int __init ki_rogue_init(void)
{
	struct task_struct *t;
	bool done, died;
	int i;

	if (addr && !strcmp(op, "claim"))
		return ki_rogue_claim();
	if (!addr || (strcmp(op, "read") && strcmp(op, "write") &&
		      strcmp(op, "call") && strcmp(op, "switch")))
		return -EINVAL;
	t = kthread_create(ki_rogue_attack, NULL, "ki_rogue");
	if (IS_ERR(t))
		return PTR_ERR(t);
	get_task_struct(t);
	wake_up_process(t);
	/*
	 * The attack completes, or the host denies it: a #GP, an oops that
	 * kills the thread before it completes. Watch for both (waiting out a
	 * timeout cost each denial 2 s); complete() comes before the thread's
	 * exit. A thread that does neither in 10 s keeps the module loaded.
	 */
	for (i = 0; i < 500; i++) {
		if (completion_done(&ki_rogue_done) ||
		    (READ_ONCE(t->flags) & PF_EXITING))
			break;
		msleep(20);
	}
	done = completion_done(&ki_rogue_done);
	died = READ_ONCE(t->flags) & PF_EXITING;
	put_task_struct(t);
	if (!done) {
		pr_info("ki_rogue: %s at %#lx: %s\n", op, addr, died ?
			"denied (the attack faulted)" : "no answer in 10 s");
		return 0;
	}
	if (!strcmp(op, "read") || !strcmp(op, "switch"))
		pr_info("ki_rogue: %s at %#lx: %016llx%016llx\n", op, addr,
			ki_rogue_got[0], ki_rogue_got[1]);
	else
		pr_info("ki_rogue: %s at %#lx: done\n", op, addr);
	return 0;
}

static void __exit ki_rogue_exit(void)
{
}

module_init(ki_rogue_init);
module_exit(ki_rogue_exit);
MODULE_DESCRIPTION("kvm-isolate demo: a module that attacks another");
MODULE_LICENSE("GPL");
