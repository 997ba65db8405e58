// SPDX-License-Identifier: GPL-2.0

#ifdef CONFIG_X86_64
#include <asm/cpuid/api.h>
#include <asm/msr.h>

__rust_helper int rust_helper_rdmsrq_safe(u32 msr, u64 *val)
{
	return rdmsrq_safe(msr, val);
}

__rust_helper void rust_helper_cpuid_count(u32 op, int count, u32 *eax,
					   u32 *ebx, u32 *ecx, u32 *edx)
{
	cpuid_count(op, count, eax, ebx, ecx, edx);
}
#endif
