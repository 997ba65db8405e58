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

#include <linux/ioctl.h>
#include <linux/types.h>

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

/*
 * Domains: a guest kernel module's code and the memory regions it owns.  A
 * domain is named by its view, 1 .. KVM_ISOLATE_MAX_VIEWS - 1.  View 0 maps
 * everything except every domain's regions; a domain's view maps its regions
 * with their rights, no other domain's regions, and executes only the
 * domain's code (and code its profile names).  Regions and code ranges of
 * all domains are disjoint.  The host switches views transparently: see
 * Documentation/kvm-isolate/domains.rst.
 */
/* (flags = 0) -> the new domain (its view). */
#define KVM_HC_ISOLATE_DOMAIN_CREATE	(KVM_HC_ISOLATE_FIRST + 8)
/* (domain, gva, gpa, npages) -> 0: code of the domain (KVM_ISOLATE_EPERM if locked). */
#define KVM_HC_ISOLATE_DOMAIN_ADD_CODE	(KVM_HC_ISOLATE_FIRST + 9)
/* (domain, gpa, npages, access) -> the access applied: a region the domain owns. */
#define KVM_HC_ISOLATE_DOMAIN_ADD_REGION	(KVM_HC_ISOLATE_FIRST + 10)
/* (domain) -> 0 (KVM_ISOLATE_EPERM if locked). */
#define KVM_HC_ISOLATE_DOMAIN_DESTROY	(KVM_HC_ISOLATE_FIRST + 11)
/* (domain or 0 for the VM, mode) -> the previous mode. */
#define KVM_HC_ISOLATE_SET_MODE		(KVM_HC_ISOLATE_FIRST + 12)
/* () -> 0: from now on the guest can only tighten; only the host can relax. */
#define KVM_HC_ISOLATE_LOCK		(KVM_HC_ISOLATE_FIRST + 13)
/*
 * (domain, gva) -> 0: an entry point of the domain, an instruction in one of
 * its code ranges (KVM_ISOLATE_ERANGE otherwise, KVM_ISOLATE_EPERM if locked).
 * Code outside a domain enters it only at an entry point, or resumes it at the
 * call site it left from: see Documentation/kvm-isolate/domains.rst.
 */
#define KVM_HC_ISOLATE_DOMAIN_ADD_ENTRY	(KVM_HC_ISOLATE_FIRST + 14)
/*
 * (gpa) -> 0: the calling vCPU's #VE information page (KVM_ISOLATE_FEATURE_VE),
 * or none with gpa ~0.  It must be writable in every view (KVM_ISOLATE_EPERM
 * otherwise) and stays so while registered: taking W from it is
 * KVM_ISOLATE_EBUSY.  See views.rst.
 */
#define KVM_HC_ISOLATE_VE_INFO		(KVM_HC_ISOLATE_FIRST + 15)
/*
 * (domain) -> 0: SWITCH and VMFUNC may enter the domain's view, with no exit
 * once listed.  Every page start of its code must be an entry point of it and
 * no region of it executable (KVM_ISOLATE_EINVAL); its code is then complete
 * (DOMAIN_ADD_CODE: KVM_ISOLATE_EPERM) and leaving its view records no return
 * site.  Before LOCK only.  See Documentation/kvm-isolate/domains.rst.
 */
#define KVM_HC_ISOLATE_DOMAIN_SWITCHABLE	(KVM_HC_ISOLATE_FIRST + 16)
/*
 * (domain, offset, bytes, bytes) -> 0: 16 bytes of the domain's name (its
 * module's, for the host's tools), at offset 0, 16, 32 or 48 of
 * KVM_ISOLATE_NAME_LEN, little-endian in the two registers: printable ASCII,
 * NUL-padded (KVM_ISOLATE_EINVAL otherwise).  The host decides nothing by it.
 * Before LOCK only.
 */
#define KVM_HC_ISOLATE_DOMAIN_NAME		(KVM_HC_ISOLATE_FIRST + 17)
#define KVM_ISOLATE_NAME_LEN		64
/*
 * (start, size, offset, bytes) -> 0: names guest code [start, start + size)
 * (guest virtual: the kernel's text, a module's) for the host's tools, which
 * show a log record's RIP and a profile's accessors by name and offset.  At
 * offset 0 the range is named (8 bytes, the rest NUL), retiring the names of
 * the ranges it overlaps (KVM_ISOLATE_ENOSPC if KVM_ISOLATE_MAX_CODE_NAMES are
 * kept and none is retired); size 0 at offset 0 retires the name of the range
 * that starts at start (ENOENT if none), and with start 0 (and bytes 0) every
 * name.
 * At offset 8 .. 56 (multiples of 8) the named range [start, start + size)
 * gets those 8 bytes of its name (ENOENT if it is not one).  bytes: printable
 * ASCII or NUL, little-endian; size at most KVM_ISOLATE_CODE_NAME_MAX_SIZE;
 * KVM_ISOLATE_EINVAL otherwise.  The host decides nothing by it, and the guest
 * may name code after LOCK.
 */
#define KVM_HC_ISOLATE_CODE_NAME		(KVM_HC_ISOLATE_FIRST + 18)
#define KVM_ISOLATE_MAX_CODE_NAMES	1024
#define KVM_ISOLATE_CODE_NAME_MAX_SIZE	(1ULL << 30)

/* Modes, from loosest to tightest; a domain in INHERIT follows its VM. */
#define KVM_ISOLATE_MODE_OFF		0	/* allow, record nothing */
#define KVM_ISOLATE_MODE_LEARN		1	/* allow and add to the profile */
#define KVM_ISOLATE_MODE_ENFORCE	2	/* allow owner and profile only */
#define KVM_ISOLATE_MODE_INHERIT	3	/* domains only: the VM's mode */

/* What an access that enforcement denies does (set by the host). */
#define KVM_ISOLATE_DENY_EXIT		0	/* KVM_EXIT_MEMORY_FAULT (default) */
#define KVM_ISOLATE_DENY_GP		1	/* inject #GP(0) */
#define KVM_ISOLATE_DENY_PF		2	/* inject #PF (CR2 = gva if known) */

/* KVM_HC_ISOLATE_QUERY: the calling vCPU's view. */
#define KVM_ISOLATE_QUERY_VIEW		0
/* KVM_HC_ISOLATE_QUERY (view, gpa): the access the view grants at gpa. */
#define KVM_ISOLATE_QUERY_ACCESS	1
/*
 * KVM_HC_ISOLATE_QUERY (word): 32-bit word 0 .. KVM_ISOLATE_MAX_VIEWS / 32 - 1
 * of a bitmap of the views that exist (bit 0 of word 0: view 0).
 */
#define KVM_ISOLATE_QUERY_VIEWS		2
/* KVM_HC_ISOLATE_QUERY: KVM_ISOLATE_MAX_VIEWS. */
#define KVM_ISOLATE_QUERY_MAX_VIEWS	3
/* KVM_HC_ISOLATE_QUERY: what the calling vCPU can use, KVM_ISOLATE_FEATURE_* bits. */
#define KVM_ISOLATE_QUERY_FEATURES	4
/*
 * VMFUNC leaf 0 (EPTP switching) switches to a view the vCPU may SWITCH to,
 * ECX the view, without a VM exit once listed (Intel; see views.rst).
 */
#define KVM_ISOLATE_FEATURE_VMFUNC	(1 << 0)
/*
 * EPT-violation #VE (Intel, with VMFUNC): KVM_HC_ISOLATE_VE_INFO, and
 * KVM_ISOLATE_ACCESS_VE in KVM_HC_ISOLATE_SET_ACCESS.
 */
#define KVM_ISOLATE_FEATURE_VE		(1 << 1)

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
#define KVM_ISOLATE_MAX_VIEWS		256
/* Pages one KVM_HC_ISOLATE_SET_ACCESS may cover (4 GiB). */
#define KVM_ISOLATE_MAX_PAGES		(1UL << 20)

/* Access rights, any subset.  See abi.rst for how hardware rounds them. */
#define KVM_ISOLATE_ACCESS_R		0x1
#define KVM_ISOLATE_ACCESS_W		0x2
#define KVM_ISOLATE_ACCESS_X		0x4
#define KVM_ISOLATE_ACCESS_RWX		0x7
/*
 * With KVM_ISOLATE_FEATURE_VE, in KVM_HC_ISOLATE_SET_ACCESS: a violation of
 * the view's rights on these pages is a #VE (vector 20) in a vCPU with a #VE
 * information page whose semaphore is clear, and never reaches the host.
 * Needs R (a present entry); dropped without it.
 */
#define KVM_ISOLATE_ACCESS_VE		0x8

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
#define KVM_ISOLATE_EEXIST		17	/* overlaps another domain's code or region */
#define KVM_ISOLATE_EBUSY		16	/* view in use by a vCPU */
#define KVM_ISOLATE_EINVAL		22	/* bad flags, access or selector */
#define KVM_ISOLATE_ENOSPC		28	/* no view left, or a table full */
#define KVM_ISOLATE_ERANGE		34	/* gpa range unaligned, empty, too long, outside memory */
#define KVM_ISOLATE_EOPNOTSUPP		95	/* no EPT/NPT, nested virt in use, or TDX/SEV-ES */
#define KVM_ISOLATE_ENOSYS		1000	/* unknown call, or kvm-isolate not loaded */

/*
 * The host's control plane: ioctls on /dev/kvm-isolate (root only).  VMs
 * are named by the id kvm-isolate gives them; arrays are passed as
 * (count, ptr): on input the entries ptr has room for, on output the
 * entries there are (LIST, DOMAINS, PROFILE_GET: if more than there was
 * room for, nothing is copied) or were copied (LOG_READ).  An ioctl that
 * fails changes nothing.
 */
#define KVM_ISOLATE_CTL_TYPE		0xB7
/*
 * 2: kvm_isolate_ctl_record.last_ns and .count, kvm_isolate_ctl_vm.compressed.
 * 3: entry gates (ENTRIES_GET/SET); a rule lets its accessor in from outside
 *    the owner's view only with KVM_ISOLATE_RULE_TRUSTED.
 * 4: a VM's capacities are kvm_isolate's module parameters when it was
 *    created, reported with its usage in kvm_isolate_ctl_vm (code_ranges ..
 *    max_return_sites); KVM_ISOLATE_MAX_RULES and _MAX_ENTRIES are gone;
 *    up to 256 views, kvm_isolate_ctl_vm.views is their number, not a bitmap.
 * 5: kvm_isolate_ctl_domain.flags (KVM_ISOLATE_DOMAIN_SWITCHABLE).
 * 6: kvm_isolate_ctl_domain.name (KVM_HC_ISOLATE_DOMAIN_NAME).
 * 7: kvm_isolate_ctl_domain.code_start and code_end, REGIONS_GET (kvm_isolate_ctl_region)
 *    and KVM_ISOLATE_GPA_FROM_CODE in ENTRIES_SET: what a profile names
 *    (module, offset) by.
 * 8: CODE_NAMES_GET (kvm_isolate_ctl_code_name, KVM_HC_ISOLATE_CODE_NAME).
 */
#define KVM_ISOLATE_CTL_VERSION_NR	8
/* Log records a VM keeps before dropping. */
#define KVM_ISOLATE_LOG_RECORDS		1024

struct kvm_isolate_ctl_array {
	__u32 vm;
	__u32 count;
	__u64 ptr;
	__u64 dropped;		/* LOG_READ: records dropped so far */
};

struct kvm_isolate_ctl_vm {
	__u32 id;
	__u32 pid;		/* of the process that created the VM */
	__u32 mode;		/* KVM_ISOLATE_MODE_* */
	__u32 deny;		/* KVM_ISOLATE_DENY_* */
	__u32 locked;
	__u32 domains;
	__u32 views;		/* views that exist, view 0 included */
	__u32 rules;
	__u64 violations;	/* in domains' regions or views */
	__u64 allowed;
	__u64 denied;
	__u64 learned;
	__u64 logged;		/* log records written */
	__u64 dropped;		/* log records dropped (rate limit, full ring) */
	__u64 compressed;	/* repeats compressed into a log record */
	__u32 code_ranges;	/* all domains together */
	__u32 regions;
	__u32 entries;		/* entry points */
	__u32 return_sites;	/* pending */
	__u32 max_code_ranges;	/* capacities: the module parameters */
	__u32 max_regions;	/* when the VM was created */
	__u32 max_rules;
	__u32 max_entries;
	__u32 max_return_sites;
	__u32 pad;
};

/* kvm_isolate_ctl_domain.flags: made switchable (KVM_HC_ISOLATE_DOMAIN_SWITCHABLE). */
#define KVM_ISOLATE_DOMAIN_SWITCHABLE	(1 << 0)

struct kvm_isolate_ctl_domain {
	__u32 id;		/* the domain's view */
	__u32 mode;		/* its own mode, KVM_ISOLATE_MODE_INHERIT if none */
	__u32 code_ranges;
	__u32 regions;
	__u32 rules;
	__u32 lenses;		/* views its profile code with fewer rights runs in */
	__u64 allowed;		/* switched into the domain's view */
	__u64 denied;
	__u64 learned;		/* rules and entry points learned */
	__u64 left;		/* switched back out of the view */
	__u32 flags;		/* KVM_ISOLATE_DOMAIN_* */
	__u32 pad;
	char name[KVM_ISOLATE_NAME_LEN];	/* the guest's (DOMAIN_NAME), NUL-padded */
	__u64 code_start;	/* its code's lowest gva, 0 if none */
	__u64 code_end;		/* the end of its highest code range, 0 if none */
};

/*
 * One of a domain's regions; index: its number among them, in the order the
 * guest gave them (from 0).
 */
struct kvm_isolate_ctl_region {
	__u32 domain;
	__u32 index;
	__u64 gpa;		/* its first byte */
	__u64 npages;
	__u32 access;		/* the domain's rights, KVM_ISOLATE_ACCESS_* */
	__u32 pad;
};

/*
 * Guest code the guest named (KVM_HC_ISOLATE_CODE_NAME), by start.  A name is
 * retired when a range it overlaps is named or it is removed, and kept (up to
 * KVM_ISOLATE_MAX_CODE_NAMES, the longest retired going first): it names a log
 * record's RIP in its range if the record's time_ns is in [since_ns, until_ns).
 */
struct kvm_isolate_ctl_code_name {
	__u64 start;		/* guest virtual */
	__u64 size;
	__u64 since_ns;		/* when it was named, as kvm_isolate_ctl_record.time_ns */
	__u64 until_ns;		/* when it was retired; ~0 while it names the range */
	char name[KVM_ISOLATE_NAME_LEN];	/* NUL-padded */
};

/*
 * A profile rule: code at [accessor_start, accessor_end) may access the region
 * while it runs where the owner called it (the owner's view, or a lens with
 * only its rules' rights: Documentation/kvm-isolate/domains.rst); with
 * KVM_ISOLATE_RULE_TRUSTED also on its own, from any other view.
 */
#define KVM_ISOLATE_RULE_TRUSTED	0x100	/* in kvm_isolate_ctl_rule.access */

struct kvm_isolate_ctl_rule {
	__u32 domain;
	__u32 access;		/* KVM_ISOLATE_ACCESS_*, KVM_ISOLATE_RULE_TRUSTED */
	__u64 region_gpa;	/* the first byte of one of the domain's regions */
	__u64 accessor_start;	/* guest virtual, page aligned */
	__u64 accessor_end;
};

/*
 * An entry point of a domain (registered by KVM_HC_ISOLATE_DOMAIN_ADD_ENTRY
 * or learned): the instruction at gva, which the domain's code maps to gpa.
 */
struct kvm_isolate_ctl_entry {
	__u32 domain;
	__u32 pad;		/* 0 */
	__u64 gva;
	__u64 gpa;
};

/* ENTRIES_SET: the gpa the domain's code maps gva to, whatever it is. */
#define KVM_ISOLATE_GPA_FROM_CODE	(~0ULL)

/* kvm_isolate_ctl_record.verdict */
#define KVM_ISOLATE_LOG_ALLOWED		0
#define KVM_ISOLATE_LOG_LEARNED		1
#define KVM_ISOLATE_LOG_DENIED		2

#define KVM_ISOLATE_GVA_UNKNOWN		(~0ULL)

/*
 * A violation and its repeats: identical violations (same vm, vcpu, view,
 * domain, rip, gpa page, access and verdict) that arrive while this record
 * is unread and among the last few used are counted here instead of being
 * logged again (Documentation/kvm-isolate/domains.rst, Monitoring).
 */
struct kvm_isolate_ctl_record {
	__u64 seq;		/* per VM, from 0; gaps are dropped records */
	__u64 time_ns;		/* host CLOCK_MONOTONIC, first occurrence */
	__u64 rip;
	__u64 gva;		/* KVM_ISOLATE_GVA_UNKNOWN if the CPU did not say */
	__u64 gpa;
	__u32 vm;
	__u32 vcpu;
	__u32 view;
	__u32 domain;
	__u32 access;		/* the right the access needed */
	__u32 verdict;		/* KVM_ISOLATE_LOG_* */
	__u64 last_ns;		/* host CLOCK_MONOTONIC, last occurrence */
	__u64 count;		/* occurrences, >= 1 */
};

struct kvm_isolate_ctl_mode {
	__u32 vm;
	__u32 domain;		/* 0: the VM */
	__u32 mode;		/* KVM_ISOLATE_MODE_* */
	__u32 deny;		/* VM only: KVM_ISOLATE_DENY_*, or ~0 to keep */
};

struct kvm_isolate_ctl_lock {
	__u32 vm;
	__u32 lock;		/* 1: lock, 0: unlock */
};

/* () -> KVM_ISOLATE_CTL_VERSION_NR */
#define KVM_ISOLATE_CTL_VERSION	_IO(KVM_ISOLATE_CTL_TYPE, 0)
/* kvm_isolate_ctl_vm[] */
#define KVM_ISOLATE_CTL_LIST	_IOWR(KVM_ISOLATE_CTL_TYPE, 1, struct kvm_isolate_ctl_array)
/* kvm_isolate_ctl_domain[] of vm */
#define KVM_ISOLATE_CTL_DOMAINS	_IOWR(KVM_ISOLATE_CTL_TYPE, 2, struct kvm_isolate_ctl_array)
#define KVM_ISOLATE_CTL_SET_MODE	_IOW(KVM_ISOLATE_CTL_TYPE, 3, struct kvm_isolate_ctl_mode)
#define KVM_ISOLATE_CTL_LOCK	_IOW(KVM_ISOLATE_CTL_TYPE, 4, struct kvm_isolate_ctl_lock)
/* kvm_isolate_ctl_rule[] of vm */
#define KVM_ISOLATE_CTL_PROFILE_GET	_IOWR(KVM_ISOLATE_CTL_TYPE, 5, struct kvm_isolate_ctl_array)
/*
 * Replaces vm's profile with kvm_isolate_ctl_rule[]; all checked first.  More
 * than the VM's max_rules is E2BIG.
 */
#define KVM_ISOLATE_CTL_PROFILE_SET	_IOW(KVM_ISOLATE_CTL_TYPE, 6, struct kvm_isolate_ctl_array)
/* Takes up to count kvm_isolate_ctl_record from vm's log. */
#define KVM_ISOLATE_CTL_LOG_READ	_IOWR(KVM_ISOLATE_CTL_TYPE, 7, struct kvm_isolate_ctl_array)
/* kvm_isolate_ctl_entry[] of vm, sorted by gpa */
#define KVM_ISOLATE_CTL_ENTRIES_GET	_IOWR(KVM_ISOLATE_CTL_TYPE, 8, struct kvm_isolate_ctl_array)
/*
 * Replaces vm's entry points with kvm_isolate_ctl_entry[]; all checked first.
 * More than the VM's max_entries is E2BIG.
 */
#define KVM_ISOLATE_CTL_ENTRIES_SET	_IOW(KVM_ISOLATE_CTL_TYPE, 9, struct kvm_isolate_ctl_array)
/* kvm_isolate_ctl_region[] of vm, by domain and index */
#define KVM_ISOLATE_CTL_REGIONS_GET	_IOWR(KVM_ISOLATE_CTL_TYPE, 10, struct kvm_isolate_ctl_array)
/* kvm_isolate_ctl_code_name[] of vm, by start */
#define KVM_ISOLATE_CTL_CODE_NAMES_GET	_IOWR(KVM_ISOLATE_CTL_TYPE, 11, struct kvm_isolate_ctl_array)

#endif /* _UAPI_LINUX_KVM_ISOLATE_H */
