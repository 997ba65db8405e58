/* SPDX-License-Identifier: GPL-2.0 */
/* kvm_isolate_guest's own: the Rust side of its kernel API. */
#ifndef _KVM_ISOLATE_GUEST_API_H
#define _KVM_ISOLATE_GUEST_API_H

#include <linux/kvm_isolate_guest.h>

/*
 * kvm_isolate_protect_self(), or with @gate kvm_isolate_protect_gate() (whose
 * switch is VMMCALL if @vmmcall, else VMFUNC), once the caller is known to be
 * @mod.
 */
int kvm_isolate_guest_protect(struct module *mod,
			      const struct kvm_isolate_region *regions,
			      unsigned int nr,
			      const struct kvm_isolate_gate *gate,
			      bool vmmcall);

#endif
