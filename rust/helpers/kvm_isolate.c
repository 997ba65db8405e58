// SPDX-License-Identifier: GPL-2.0

#ifdef CONFIG_X86_64
#include <asm/cpuid/api.h>
#include <asm/io.h>
#include <asm/kvm_para.h>
#include <asm/msr.h>
#include <linux/panic_notifier.h>
#include <linux/reboot.h>

__rust_helper int rust_helper_rdmsrq_safe(u32 msr, u64 *val)
{
	return rdmsrq_safe(msr, val);
}

__rust_helper void rust_helper_cpuid_count(u32 op, int count, u32 *eax,
					   u32 *ebx, u32 *ecx, u32 *edx)
{
	cpuid_count(op, count, eax, ebx, ecx, edx);
}

__rust_helper bool rust_helper_kvm_para_available(void)
{
	return kvm_para_available();
}

__rust_helper phys_addr_t rust_helper_kvm_isolate_virt_to_phys(void *address)
{
	return virt_to_phys(address);
}

__rust_helper int
rust_helper_kvm_isolate_register_reboot_notifier(struct notifier_block *nb)
{
	return register_reboot_notifier(nb);
}

__rust_helper int
rust_helper_kvm_isolate_unregister_reboot_notifier(struct notifier_block *nb)
{
	return unregister_reboot_notifier(nb);
}

__rust_helper int
rust_helper_kvm_isolate_register_panic_notifier(struct notifier_block *nb)
{
	return atomic_notifier_chain_register(&panic_notifier_list, nb);
}

__rust_helper int
rust_helper_kvm_isolate_unregister_panic_notifier(struct notifier_block *nb)
{
	return atomic_notifier_chain_unregister(&panic_notifier_list, nb);
}

__rust_helper long rust_helper_kvm_hypercall4(unsigned int nr, unsigned long p1,
					      unsigned long p2, unsigned long p3,
					      unsigned long p4)
{
	return kvm_hypercall4(nr, p1, p2, p3, p4);
}
#endif
