// SPDX-License-Identifier: GPL-2.0
/*
 * ki_keeper: kvm-isolate's demo key keeper. It holds a key and offers one
 * operation that uses it: reading /dev/ki_keeper gives the SipHash-2-4 of a
 * fixed 8-byte message under the key (writing N runs that N times). An ordinary
 * module: nothing in it knows about kvm-isolate unless it is loaded with
 * self_protect=1, or gate=1 (its operation behind a gate that enters its
 * view with no VM exit, KVM_ISOLATE_GATE). Its own code
 * computes the hash, so no kernel code outside it reads the key
 * (Documentation/kvm-isolate/guest.rst, "What a protected module must do",
 * says why that matters). The guest administrator protects it, or it protects
 * itself through kvm_isolate_guest's kernel API; ki_rogue attacks it.
 */
#include <linux/fs.h>
#include <linux/kvm_isolate_guest.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/random.h>
#include <linux/siphash.h>
#include <linux/uaccess.h>

/* The key, alone in its page, so that the page can be the key's region. */
static union {
	siphash_key_t key;
	u8 page[PAGE_SIZE];
} ki_keeper_key __aligned(PAGE_SIZE);

/*
 * SipHash-2-4 of the one word m (siphash_1u64(), here, in this module's code).
 * It is also the function of the keeper's gate (gate=1), so it calls nothing.
 */
static u64 __kvm_isolate_gated(ki_keeper_gated_mac) ki_keeper_mac(u64 m)
{
	const u64 *k = ki_keeper_key.key.key;
	u64 v0 = SIPHASH_CONST_0 ^ k[0], v1 = SIPHASH_CONST_1 ^ k[1];
	u64 v2 = SIPHASH_CONST_2 ^ k[0], v3 = SIPHASH_CONST_3 ^ k[1];
	u64 b = 8ULL << 56;	/* the length, in the last block */

	v3 ^= m;
	SIPHASH_PERMUTATION(v0, v1, v2, v3);
	SIPHASH_PERMUTATION(v0, v1, v2, v3);
	v0 ^= m;
	v3 ^= b;
	SIPHASH_PERMUTATION(v0, v1, v2, v3);
	SIPHASH_PERMUTATION(v0, v1, v2, v3);
	v0 ^= b;
	v2 ^= 0xff;
	SIPHASH_PERMUTATION(v0, v1, v2, v3);
	SIPHASH_PERMUTATION(v0, v1, v2, v3);
	SIPHASH_PERMUTATION(v0, v1, v2, v3);
	SIPHASH_PERMUTATION(v0, v1, v2, v3);
	return v0 ^ v1 ^ v2 ^ v3;
}

/* ki_keeper_gated_mac(m): ki_keeper_mac(m) in the keeper's view, entered with no VM exit. */
KVM_ISOLATE_GATE(ki_keeper_gated_mac, ki_keeper_mac);

static bool gate;
module_param(gate, bool, 0444);
MODULE_PARM_DESC(gate,
		 "Protect itself at load behind its VMFUNC gate (needs kvm_isolate_guest)");

/* The keeper's operation: through its gate once protected behind it. */
static u64 ki_keeper_op(u64 m)
{
	return READ_ONCE(ki_keeper_gated_mac_gate_domain) ?
		ki_keeper_gated_mac(m) : ki_keeper_mac(m);
}

static ssize_t ki_keeper_read(struct file *file, char __user *buf, size_t len,
			      loff_t *pos)
{
	char out[20];
	size_t i;
	int n;

	n = scnprintf(out, sizeof(out), "%016llx\n",
		      ki_keeper_op(0x6c6f73692d6d766bULL));	/* "kvm-isol" */
	if (*pos >= n)
		return 0;
	len = min_t(size_t, len, n - *pos);
	/*
	 * Copied by the keeper's own code, as many drivers copy: a reader's buffer
	 * not faulted in yet (dd bs=1M) is a page fault taken in the keeper.
	 */
	if (!user_access_begin(buf, len))
		return -EFAULT;
	for (i = 0; i < len; i++)
		unsafe_put_user(out[*pos + i], buf + i, efault);
	user_access_end();
	*pos += len;
	return len;
efault:
	user_access_end();
	return -EFAULT;
}

/* Writing N (at most a million) runs the operation N times: a benchmark. */
static ssize_t ki_keeper_write(struct file *file, const char __user *buf,
			       size_t len, loff_t *pos)
{
	unsigned int n, i;
	int ret;

	ret = kstrtouint_from_user(buf, len, 0, &n);
	if (ret)
		return ret;
	if (n > 1000000)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		ki_keeper_op(i);
		cond_resched();
	}
	return len;
}

static const struct file_operations ki_keeper_fops = {
	.owner = THIS_MODULE,
	.read = ki_keeper_read,
	.write = ki_keeper_write,
};

static struct miscdevice ki_keeper_dev = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "ki_keeper",
	.fops = &ki_keeper_fops,
};

static bool self_protect;
module_param(self_protect, bool, 0444);
MODULE_PARM_DESC(self_protect,
		 "Protect itself at load, its key its region (needs kvm_isolate_guest)");

/*
 * The kernel API, looked up only when asked for, so that the keeper loads
 * without kvm_isolate_guest otherwise. The reference is kept: the keeper
 * stays protected, and pinned, until the guest reboots.
 */
static int __init ki_keeper_protect(void)
{
	const struct kvm_isolate_region key = {
		.start = &ki_keeper_key,
		.size = sizeof(ki_keeper_key),
		.access = KVM_ISOLATE_ACCESS_R | KVM_ISOLATE_ACCESS_W,
	};
	typeof(kvm_isolate_protect_self) *protect;
	typeof(kvm_isolate_protect_gate) *protect_gate;
	int domain;

	if (gate) {
		protect_gate = symbol_get(kvm_isolate_protect_gate);
		if (!protect_gate) {
			pr_err("ki_keeper: gate=1 needs kvm_isolate_guest loaded\n");
			return -ENODEV;
		}
		domain = protect_gate(THIS_MODULE, &ki_keeper_gated_mac_gate, &key, 1);
		if (domain < 0)
			symbol_put(kvm_isolate_protect_gate);
	} else {
		protect = symbol_get(kvm_isolate_protect_self);
		if (!protect) {
			pr_err("ki_keeper: self_protect=1 needs kvm_isolate_guest loaded\n");
			return -ENODEV;
		}
		domain = protect(THIS_MODULE, &key, 1);
		if (domain < 0)
			symbol_put(kvm_isolate_protect_self);
	}
	if (domain < 0) {
		pr_err("ki_keeper: could not protect itself: %d\n", domain);
		return domain;
	}
	pr_info("ki_keeper: protects itself%s, domain %d\n",
		gate ? " behind its gate" : "", domain);
	return 0;
}

static int __init ki_keeper_init(void)
{
	int ret;

	get_random_bytes(&ki_keeper_key.key, sizeof(ki_keeper_key.key));
	ret = misc_register(&ki_keeper_dev);
	if (ret || !(self_protect || gate))
		return ret;
	/* The last thing the init does: its own code is not the domain's. */
	ret = ki_keeper_protect();
	if (ret)
		misc_deregister(&ki_keeper_dev);
	return ret;
}

static void __exit ki_keeper_exit(void)
{
	misc_deregister(&ki_keeper_dev);
}

module_init(ki_keeper_init);
module_exit(ki_keeper_exit);
MODULE_DESCRIPTION("kvm-isolate demo: a module that keeps a key");
MODULE_LICENSE("GPL");
