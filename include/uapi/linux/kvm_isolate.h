/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * kvm-isolate hypercall ABI, version 1: memory views for KVM guests.
 *
 * This header is the one definition of the ABI.  Guests and the KVM
 * selftests include it; the host module's Rust mirror is checked against it
 * by a test (kvm-isolate/core/tests/abi.rs).  Documentation/kvm-isolate/abi.rst
 * describes each call.
 *
 * Calling convention: the KVM hypercall convention (VMCALL on Intel, VMMCALL
 * on AMD) from CPL 0, function number in RAX, arguments in RBX, RCX, RDX and
 * RSI, result in RAX.  A negative result is one of the KVM_ISOLATE_E* codes
 * below and means that nothing changed.
 */
#ifndef _UAPI_LINUX_KVM_ISOLATE_H
#define _UAPI_LINUX_KVM_ISOLATE_H

/* The ABI version KVM_HC_ISOLATE_VERSION returns. */
#define KVM_ISOLATE_ABI_VERSION		1

/* What KVM_HC_ISOLATE_PROBE returns when kvm-isolate is available: "KVMI". */
#define KVM_ISOLATE_MAGIC		0x4b564d49

/* Hypercall numbers: a range reserved for kvm-isolate, "KI" << 16. */
#define KVM_HC_ISOLATE_FIRST		0x4b490000
#define KVM_HC_ISOLATE_LAST		0x4b4900ff

/* () -> KVM_ISOLATE_MAGIC. */
#define KVM_HC_ISOLATE_PROBE		(KVM_HC_ISOLATE_FIRST + 0)
/* () -> KVM_ISOLATE_ABI_VERSION. */
#define KVM_HC_ISOLATE_VERSION		(KVM_HC_ISOLATE_FIRST + 1)
/* (flags = 0) -> the new view's index, 1 .. KVM_ISOLATE_MAX_VIEWS - 1. */
#define KVM_HC_ISOLATE_VIEW_CREATE	(KVM_HC_ISOLATE_FIRST + 2)
/* (view) -> 0.  View 0 cannot be destroyed, nor a view a vCPU is in. */
#define KVM_HC_ISOLATE_VIEW_DESTROY	(KVM_HC_ISOLATE_FIRST + 3)
/* (view, gpa, npages, access) -> the access actually applied (rounded). */
#define KVM_HC_ISOLATE_SET_ACCESS	(KVM_HC_ISOLATE_FIRST + 4)
/* (view) -> the previous view of the calling vCPU. */
#define KVM_HC_ISOLATE_SWITCH		(KVM_HC_ISOLATE_FIRST + 5)
/* (what, arg0, arg1) -> see KVM_ISOLATE_QUERY_*. */
#define KVM_HC_ISOLATE_QUERY		(KVM_HC_ISOLATE_FIRST + 6)

/* (action, view) -> 0: what a denied access does, KVM_ISOLATE_ON_VIOLATION_*. */
#define KVM_HC_ISOLATE_ON_VIOLATION	(KVM_HC_ISOLATE_FIRST + 7)

/* KVM_HC_ISOLATE_QUERY: the calling vCPU's view. */
#define KVM_ISOLATE_QUERY_VIEW		0
/* KVM_HC_ISOLATE_QUERY (view, gpa): the access the view grants at gpa. */
#define KVM_ISOLATE_QUERY_ACCESS	1
/* KVM_HC_ISOLATE_QUERY: a bitmap of the views that exist (bit 0: view 0). */
#define KVM_ISOLATE_QUERY_VIEWS		2
/* KVM_HC_ISOLATE_QUERY: KVM_ISOLATE_MAX_VIEWS. */
#define KVM_ISOLATE_QUERY_MAX_VIEWS	3

/* Exit to user space: KVM_EXIT_MEMORY_FAULT naming the page (the default). */
#define KVM_ISOLATE_ON_VIOLATION_EXIT	0
/* Inject #GP(0) into the vCPU. */
#define KVM_ISOLATE_ON_VIOLATION_GP	1
/* Inject #UD into the vCPU. */
#define KVM_ISOLATE_ON_VIOLATION_UD	2
/* Add the right (and R) to the page in the vCPU's view, and retry. */
#define KVM_ISOLATE_ON_VIOLATION_GRANT	3
/* Switch the vCPU to the view given as second argument, and retry. */
#define KVM_ISOLATE_ON_VIOLATION_SWITCH	4

/* Views per VM, view 0 (the one every vCPU starts in) included. */
#define KVM_ISOLATE_MAX_VIEWS		16
/* Pages one KVM_HC_ISOLATE_SET_ACCESS may cover (4 GiB). */
#define KVM_ISOLATE_MAX_PAGES		(1UL << 20)

/* Access rights, any subset.  See abi.rst for how hardware rounds them. */
#define KVM_ISOLATE_ACCESS_R		0x1
#define KVM_ISOLATE_ACCESS_W		0x2
#define KVM_ISOLATE_ACCESS_X		0x4
#define KVM_ISOLATE_ACCESS_RWX		0x7

/*
 * A view violation that the policy turns into an exit to user space is a
 * KVM_EXIT_MEMORY_FAULT naming the page (memory_fault.gpa, .size = 4096)
 * with these bits in memory_fault.flags.
 */
#define KVM_ISOLATE_EXIT_FLAG_VIEW	(1ULL << 4)	/* denied by a view */
#define KVM_ISOLATE_EXIT_FLAG_WRITE	(1ULL << 5)	/* the access was a write */
#define KVM_ISOLATE_EXIT_FLAG_EXEC	(1ULL << 6)	/* ... an instruction fetch */

/* Error codes (returned negated). */
#define KVM_ISOLATE_EPERM		1	/* not allowed (e.g. view 0) */
#define KVM_ISOLATE_ENOENT		2	/* no such view */
#define KVM_ISOLATE_ENOMEM		12	/* host out of memory */
#define KVM_ISOLATE_EBUSY		16	/* view in use by a vCPU */
#define KVM_ISOLATE_EINVAL		22	/* bad flags, access or selector */
#define KVM_ISOLATE_ENOSPC		28	/* no view left */
#define KVM_ISOLATE_ERANGE		34	/* gpa range unaligned, empty, too long, outside memory */
#define KVM_ISOLATE_EOPNOTSUPP		95	/* the host does not run on EPT/NPT */
#define KVM_ISOLATE_ENOSYS		1000	/* unknown call, or kvm-isolate not loaded */

#endif /* _UAPI_LINUX_KVM_ISOLATE_H */
