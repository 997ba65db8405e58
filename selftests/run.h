/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Running a kvm_isolate selftest's vCPU to its next ucall.
 */
#ifndef KVM_ISOLATE_RUN_H
#define KVM_ISOLATE_RUN_H

#include "kvm_util.h"
#include "ucall_common.h"

/*
 * Runs @vcpu to its next ucall and returns it: UCALL_SYNC (its arguments in
 * @uc) or UCALL_DONE.  A guest assertion, or any exit that is not a ucall,
 * fails the test.
 */
static inline u64 ki_run(struct kvm_vcpu *vcpu, struct ucall *uc)
{
	vcpu_run(vcpu);
	switch (get_ucall(vcpu, uc)) {
	case UCALL_SYNC:
		return UCALL_SYNC;
	case UCALL_DONE:
		return UCALL_DONE;
	case UCALL_ABORT:
		REPORT_GUEST_ASSERT(*uc);
		break;
	default:
		TEST_FAIL("unexpected exit %s", exit_reason_str(vcpu->run->exit_reason));
	}
	return 0;
}

#endif /* KVM_ISOLATE_RUN_H */
