// SPDX-License-Identifier: GPL-2.0
/*
 * ki_keeper: kvm-isolate's demo key keeper. It holds a key and offers one
 * operation that uses it: reading /dev/ki_keeper gives the SipHash of a fixed
 * message under the key. An ordinary module but for one rule that kvm-isolate
 * asks of protected modules: kernel code it calls with its data (here the
 * kernel's SipHash reading the key) runs with interrupts off
 * (Documentation/kvm-isolate/guest.rst, "What a protected module must do").
 * The guest administrator protects it; ki_rogue attacks it.
 */
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/random.h>
#include <linux/siphash.h>

/* The key, alone in its page, so that the page can be the key's region. */
static union {
	siphash_key_t key;
	u8 page[PAGE_SIZE];
} ki_keeper_key __aligned(PAGE_SIZE);

static const char ki_keeper_msg[] = "kvm-isolate";

static ssize_t ki_keeper_read(struct file *file, char __user *buf, size_t len,
			      loff_t *pos)
{
	unsigned long flags;
	char out[20];
	u64 mac;
	int n;

	local_irq_save(flags);
	mac = siphash(ki_keeper_msg, sizeof(ki_keeper_msg), &ki_keeper_key.key);
	local_irq_restore(flags);
	n = scnprintf(out, sizeof(out), "%016llx\n", mac);
	return simple_read_from_buffer(buf, len, pos, out, n);
}

static const struct file_operations ki_keeper_fops = {
	.owner = THIS_MODULE,
	.read = ki_keeper_read,
};

static struct miscdevice ki_keeper_dev = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "ki_keeper",
	.fops = &ki_keeper_fops,
};

static int __init ki_keeper_init(void)
{
	get_random_bytes(&ki_keeper_key.key, sizeof(ki_keeper_key.key));
	return misc_register(&ki_keeper_dev);
}

static void __exit ki_keeper_exit(void)
{
	misc_deregister(&ki_keeper_dev);
}

module_init(ki_keeper_init);
module_exit(ki_keeper_exit);
MODULE_DESCRIPTION("kvm-isolate demo: a module that keeps a key");
MODULE_LICENSE("GPL");
