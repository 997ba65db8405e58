/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kvm-isolate guest module (kvm_isolate_guest): the kernel API for modules
 * that protect themselves.  Documentation/kvm-isolate/guest.rst.
 */
#ifndef _LINUX_KVM_ISOLATE_GUEST_H
#define _LINUX_KVM_ISOLATE_GUEST_H

#include <linux/types.h>
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

#endif /* _LINUX_KVM_ISOLATE_GUEST_H */
