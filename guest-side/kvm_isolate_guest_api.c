// SPDX-License-Identifier: GPL-2.0
/*
 * kvm_isolate_guest's kernel API (<linux/kvm_isolate_guest.h>): the export,
 * and the check that a module protects only itself.  The work is done in
 * Rust (kvm_isolate_guest_main.rs).
 */
#include <linux/build_bug.h>
#include <linux/module.h>
#include <asm/cpufeature.h>

#include "kvm_isolate_guest_api.h"

/* The Rust side's layouts of struct kvm_isolate_region and _gate are these. */
static_assert(sizeof(struct kvm_isolate_region) == 24);
static_assert(sizeof(struct kvm_isolate_gate) == 40);

int kvm_isolate_protect_self(struct module *mod,
			     const struct kvm_isolate_region *regions,
			     unsigned int nr)
{
	/* Only the module's own code may make it a domain. */
	if (!mod || !within_module((unsigned long)__builtin_return_address(0), mod))
		return -EPERM;
	return kvm_isolate_guest_protect(mod, regions, nr, NULL, false);
}
EXPORT_SYMBOL_GPL(kvm_isolate_protect_self);

int kvm_isolate_protect_gate(struct module *mod,
			     const struct kvm_isolate_gate *gate,
			     const struct kvm_isolate_region *regions,
			     unsigned int nr)
{
	int domain;

	if (!mod || !within_module((unsigned long)__builtin_return_address(0), mod))
		return -EPERM;
	if (!gate)
		return -EINVAL;
	/* The gate switches with VMMCALL where alternatives chose it, else VMFUNC. */
	domain = kvm_isolate_guest_protect(mod, regions, nr, gate,
					   boot_cpu_has(X86_FEATURE_VMMCALL));
	if (domain > 0)
		WRITE_ONCE(*gate->domain, domain);
	return domain;
}
EXPORT_SYMBOL_GPL(kvm_isolate_protect_gate);
