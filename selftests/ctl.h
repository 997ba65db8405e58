/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The selftests' host-side helpers for kvm_isolate's control plane,
 * /dev/kvm-isolate (KVM_ISOLATE_CTL_* in include/uapi/linux/kvm_isolate.h).
 * Each asserts that its ioctl succeeded.  Also the stress tests' scale.
 */
#ifndef KVM_ISOLATE_CTL_H
#define KVM_ISOLATE_CTL_H

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/kvm_isolate.h>

#include "test_util.h"

/* The VMs ki_my_vm() and ki_vm_info() have room for: more than any test has alive. */
#define KI_CTL_MAX_VMS	256

static inline const char *ki_ctl_name(unsigned long ioctl_nr)
{
	switch (ioctl_nr) {
	case KVM_ISOLATE_CTL_LIST:
		return "LIST";
	case KVM_ISOLATE_CTL_DOMAINS:
		return "DOMAINS";
	case KVM_ISOLATE_CTL_PROFILE_GET:
		return "PROFILE_GET";
	case KVM_ISOLATE_CTL_ENTRIES_GET:
		return "ENTRIES_GET";
	default:
		return "KVM_ISOLATE_CTL_?";
	}
}

/*
 * Reads the array @ioctl_nr gives of VM @vm (LIST: of all VMs, @vm 0) into
 * @buf, room for @room elements, and returns how many there are.  If that is
 * more than @room, nothing is copied: @room 0 asks for the number only.
 */
static inline u32 __ki_ctl_get(int fd, unsigned long ioctl_nr, u32 vm, void *buf, u32 room)
{
	struct kvm_isolate_ctl_array a = { .vm = vm, .count = room, .ptr = (u64)buf };

	TEST_ASSERT(!ioctl(fd, ioctl_nr, &a), "%s (vm %u): %s", ki_ctl_name(ioctl_nr), vm,
		    strerror(errno));
	return a.count;
}

/* __ki_ctl_get(), and all of the array fit in @buf. */
static inline u32 ki_ctl_get(int fd, unsigned long ioctl_nr, u32 vm, void *buf, u32 room)
{
	u32 n = __ki_ctl_get(fd, ioctl_nr, vm, buf, room);

	TEST_ASSERT(n <= room, "%s (vm %u): %u elements, room for %u", ki_ctl_name(ioctl_nr),
		    vm, n, room);
	return n;
}

/* The control plane's VMs, *@n of them, in a buffer to free(). */
static inline struct kvm_isolate_ctl_vm *ki_list_vms(int fd, u32 *n)
{
	struct kvm_isolate_ctl_vm *vms = calloc(KI_CTL_MAX_VMS, sizeof(*vms));

	TEST_ASSERT(vms, "calloc of %d VMs", KI_CTL_MAX_VMS);
	*n = ki_ctl_get(fd, KVM_ISOLATE_CTL_LIST, 0, vms, KI_CTL_MAX_VMS);
	return vms;
}

/* The newest VM this process created, as the control plane names it. */
static inline u32 ki_my_vm(int fd)
{
	struct kvm_isolate_ctl_vm *vms;
	u32 i, n, id = 0;

	vms = ki_list_vms(fd, &n);
	for (i = 0; i < n; i++)
		if (vms[i].pid == (u32)getpid() && vms[i].id > id)
			id = vms[i].id;
	TEST_ASSERT(id, "no VM of pid %d listed (%u VMs; the first: id %u, pid %u)", getpid(), n,
		    vms[0].id, vms[0].pid);
	free(vms);
	return id;
}

/* VM @id's entry in the control plane's list: its mode, counters, usage and capacities. */
static inline struct kvm_isolate_ctl_vm ki_vm_info(int fd, u32 id)
{
	struct kvm_isolate_ctl_vm *vms, v;
	u32 i, n;

	vms = ki_list_vms(fd, &n);
	for (i = 0; i < n; i++)
		if (vms[i].id == id)
			break;
	TEST_ASSERT(i < n, "VM %u not listed (%u VMs)", id, n);
	v = vms[i];
	free(vms);
	return v;
}

/* The stress tests' scale: KI_RACE_ROUNDS (from the kernel command line), else 200. */
static inline u64 ki_race_rounds(void)
{
	const char *e = getenv("KI_RACE_ROUNDS");
	u64 n = e && *e ? strtoull(e, NULL, 0) : 200;

	TEST_ASSERT(n > 0, "KI_RACE_ROUNDS=%s: want a positive number", e);
	return n;
}

#endif /* KVM_ISOLATE_CTL_H */
