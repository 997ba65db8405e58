// SPDX-License-Identifier: GPL-2.0
/*
 * The main job's second part (make demo): a guest module's secret under
 * kvm-isolate's learning and enforcement, steered with kvm-isolatectl as an
 * administrator would.  Exits non-zero if anything is not as shown.
 */
#include "domains.h"
#include "ctl.h"

static void show(const char *fmt, u32 id)
{
	char args[128], out[16384];
	int st;

	snprintf(args, sizeof(args), fmt, id);
	printf("\n# kvm-isolatectl %s\n", args);
	st = ctl(out, sizeof(out), "%s", args);
	fputs(out, stdout);
	fflush(stdout);
	TEST_ASSERT(st == 0, "kvm-isolatectl %s failed (%d)", args, st);
}

int main(void)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	u32 id;

	printf("domains_demo: a guest module (one code page) owns a secret page and calls a helper\n"
	       "that reads it; a rogue page tries to read it.\n");
	vm = create(&vcpu);
	step(vm, vcpu, SETUP);
	id = ki_my_vm(dev_fd());
	printf("The guest registered domain %d (code %#lx, its entry points, secret at gpa %#lx);\n"
	       "a VM starts in enforce mode.\n", DOMAIN, (u64)ki_owner_read, secret_gpa);
	show("list", id);
	show("mode %u learn", id);
	step(vm, vcpu, WORKLOAD);
	printf("\nThe workload ran in learn mode: the owner, entered at its entry points, accesses\n"
	       "its secret in its own view; the helper it calls was learned.\n");
	show("show %u", id);
	show("profile export %u", id);
	show("mode %u enforce --deny gp", id);
	step(vm, vcpu, WORKLOAD);
	printf("\nThe same workload under enforcement: no denial.\n");
	step(vm, vcpu, ROGUE);
	printf("The rogue page read the secret: denied with #GP (the guest saw it), and logged:\n");
	show("log %u", id);
	show("stats", id);
	step(vm, vcpu, DONE);
	kvm_vm_free(vm);
	printf("\ndomains_demo: PASS (owner and learned helper allowed, rogue denied and logged)\n");
	return 0;
}
