/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kvm-isolate guest module (kvm_isolate_guest): the kernel API for modules
 * that protect themselves.  Documentation/kvm-isolate/guest.rst.
 */
#ifndef _LINUX_KVM_ISOLATE_GUEST_H
#define _LINUX_KVM_ISOLATE_GUEST_H

#include <linux/compiler.h>
#include <linux/stringify.h>
#include <linux/types.h>
#include <asm/alternative.h>
#include <asm/cpufeatures.h>
#include <asm/page_types.h>
#include <uapi/linux/kvm_isolate.h>

struct module;

/* A region of the calling module's memory that only its code may use. */
struct kvm_isolate_region {
	const void *start;	/* page aligned */
	size_t size;		/* bytes, a multiple of PAGE_SIZE */
	u32 access;		/* the module's rights: KVM_ISOLATE_ACCESS_R, _W, _X */
};

/*
 * Makes the calling module @mod (THIS_MODULE, called from its own code) a
 * kvm-isolate domain: its code, each of its functions as an entry point,
 * and @regions (@nr of them, at most KVM_ISOLATE_MAX_SELF_REGIONS) with its
 * rights on each.  Returns the domain (1 to 255) or a negative errno, and
 * then nothing changed: -EPERM if @mod is not the caller's module, -EINVAL
 * for a region that is not whole pages of the module's data (its .data,
 * .bss, .rodata or read-only-after-init data), -E2BIG for too many regions,
 * -EEXIST if it is protected already, -ENODEV without kvm-isolate on the
 * host, or the host's refusal.
 *
 * The module stays pinned (it cannot be unloaded) until the guest reboots.
 * Called from the module's init, it must be the last thing the init does
 * before it succeeds; the init's own code (freed after it) is not the
 * domain's, so it must not use the regions after the call.
 */
int kvm_isolate_protect_self(struct module *mod,
			     const struct kvm_isolate_region *regions,
			     unsigned int nr);

#define KVM_ISOLATE_MAX_SELF_REGIONS	16

/*
 * An exit-less gate into a module's domain (Documentation/kvm-isolate/guest.rst,
 * "Gates: calls with no VM exit").  KVM_ISOLATE_GATE(name, func) makes
 * u64 name(u64 arg), which runs u64 func(u64 arg) in the module's view: the
 * caller switches views with VMFUNC (or, on AMD, the SWITCH hypercall),
 * func runs on a stack of the gate's own, and the gate switches back.  func must
 * be defined before the macro, with __kvm_isolate_gated(name), and must call
 * nothing outside its page, nor anything that may fault or sleep (it runs
 * with interrupts off).  The module then protects itself with
 * kvm_isolate_protect_gate(THIS_MODULE, &name##_gate, ...).
 *
 * The gate's four pages, in one section (Documentation/kvm-isolate/domains.rst,
 * "Switchable domains", says why each switch ends a page):
 *   1. the caller's page (code of view 0): saves RBX and RFLAGS on the
 *      caller's stack, turns interrupts off, switches to the domain at its end;
 *   2. the entry page (the domain's code, its start an entry point): takes the
 *      gate's lock, moves to the gate's stack, calls func, clears what func left
 *      in registers but its result (moved to R8), switches to view 0 at its end;
 *   3. the return page (code of view 0): gives the result back, restores
 *      RFLAGS and RBX, returns;
 *   4. func's page (the domain's code): an int3 at its start (an entry point, as
 *      every page start of a switchable domain must be), then func.
 * The lock, the caller's stack pointer and the gate's stack are name's data
 * page, which the domain's view alone may use.
 */
struct kvm_isolate_gate {
	const void *code;	/* the four pages */
	const void *func;	/* func, in the fourth */
	const void *end;	/* the first byte after them */
	void *data;		/* the gate's page: lock, stack pointer, stack */
	int *domain;		/* the domain the caller's page switches to */
};

/*
 * What a gate's func is: in the gate's section, not inlined or traced (notrace),
 * and with a plain ret.
 */
#define __kvm_isolate_gated(name)					\
	__attribute__((__section__(".kvm_isolate_gate." #name), __used__,	\
		       __noinline__, __no_instrument_function__,		\
		       function_return("keep")))

/*
 * The switch at a page's end, 10 bytes either way: VMFUNC leaf 0 to view
 * EBX, or (on AMD, where there is no VMFUNC) KVM_HC_ISOLATE_SWITCH to view
 * RBX, with RCX, RDX and RSI zero.
 */
#define __KVM_ISOLATE_GATE_SWITCH					\
	ALTERNATIVE("mov $0, %eax; mov %ebx, %ecx; .byte 0x0f, 0x01, 0xd4",\
		    "mov $" __stringify(KVM_HC_ISOLATE_SWITCH) ", %eax; "	\
		    "xor %ecx, %ecx; vmmcall", X86_FEATURE_VMMCALL)

#define KVM_ISOLATE_GATE(name, gated)					\
static union {								\
	struct {							\
		unsigned long lock;					\
		unsigned long rsp;					\
	};								\
	u8 page[PAGE_SIZE];						\
} name##_gate_data __aligned(PAGE_SIZE) __used;			\
static int name##_gate_domain __used;					\
static void __kvm_isolate_gated(name) __aligned(PAGE_SIZE)		\
name##_gate_end(void)							\
{									\
}									\
u64 name(u64 arg);							\
extern const u8 name##_gate_code[];					\
static const struct kvm_isolate_gate name##_gate = {			\
	.code = name##_gate_code,					\
	.func = (const void *)gated,					\
	.end = (const void *)name##_gate_end,				\
	.data = &name##_gate_data,					\
	.domain = &name##_gate_domain,					\
};									\
asm(".pushsection .kvm_isolate_gate." #name ", \"ax\"\n"		\
	".balign " __stringify(PAGE_SIZE) "\n"				\
	".globl " #name "_gate_code\n"					\
	#name "_gate_code:\n"						\
	".globl " #name "\n"						\
	".type " #name ", @function\n"					\
	#name ":\n"							\
	"	endbr64\n"						\
	"	push %rbx\n"						\
	"	pushf\n"						\
	"	cli\n"							\
	"	mov " #name "_gate_domain(%rip), %ebx\n"		\
	"	xor %edx, %edx\n"					\
	"	xor %esi, %esi\n"					\
	"	jmp 1f\n"						\
	".org " #name "_gate_code + " __stringify(PAGE_SIZE) " - 10, 0xcc\n" \
	"1:\n" __KVM_ISOLATE_GATE_SWITCH				\
	".org " #name "_gate_code + " __stringify(PAGE_SIZE) "\n"	\
	#name "_gate_enter:\n"						\
	"2:	mov $1, %eax\n"						\
	"	xchg %eax, " #name "_gate_data(%rip)\n"			\
	"	test %eax, %eax\n"					\
	"	jz 3f\n"						\
	"	pause\n"						\
	"	jmp 2b\n"						\
	"3:	mov %rsp, " #name "_gate_data + 8(%rip)\n"		\
	"	lea " #name "_gate_data + " __stringify(PAGE_SIZE) "(%rip), %rsp\n" \
	"	call " #gated "\n"					\
	"	mov " #name "_gate_data + 8(%rip), %rsp\n"		\
	"	mov %rax, %r8\n"					\
	"	xor %eax, %eax\n"					\
	"	xor %ebx, %ebx\n"					\
	"	xor %edx, %edx\n"					\
	"	xor %esi, %esi\n"					\
	"	xor %edi, %edi\n"					\
	"	xor %r9d, %r9d\n"					\
	"	xor %r10d, %r10d\n"					\
	"	xor %r11d, %r11d\n"					\
	"	movl $0, " #name "_gate_data(%rip)\n"			\
	"	jmp 4f\n"						\
	".org " #name "_gate_code + 2 * " __stringify(PAGE_SIZE) " - 10, 0xcc\n" \
	"4:\n" __KVM_ISOLATE_GATE_SWITCH				\
	".org " #name "_gate_code + 2 * " __stringify(PAGE_SIZE) "\n"	\
	#name "_gate_return:\n"						\
	"	mov %r8, %rax\n"					\
	"	xor %r8d, %r8d\n"					\
	"	popf\n"							\
	"	pop %rbx\n"						\
	"	ret\n"							\
	".org " #name "_gate_code + 3 * " __stringify(PAGE_SIZE) ", 0xcc\n" \
	#name "_gate_fn_page:\n"					\
	"	int3\n"							\
	".size " #name ", " #name "_gate_enter - " #name "\n"		\
	".popsection\n")

/*
 * kvm_isolate_protect_self() for a module whose gate (KVM_ISOLATE_GATE) is
 * its only code in the domain: the domain's code is the gate's entry page
 * and func's page, its entry points their starts, its regions @regions and
 * the gate's data page; it is made switchable, and @gate->domain set.
 * Returns the domain or a negative errno, and then nothing changed: as
 * kvm_isolate_protect_self(), and -EINVAL for a gate that is not laid out
 * as KVM_ISOLATE_GATE lays it out (a compiler that placed func elsewhere),
 * -EOPNOTSUPP if the host offers no VMFUNC to this (Intel) CPU.
 */
int kvm_isolate_protect_gate(struct module *mod,
			     const struct kvm_isolate_gate *gate,
			     const struct kvm_isolate_region *regions,
			     unsigned int nr);

#endif /* _LINUX_KVM_ISOLATE_GUEST_H */
