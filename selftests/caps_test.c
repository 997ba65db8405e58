// SPDX-License-Identifier: GPL-2.0
/*
 * kvm_isolate host capability report.
 *
 * The module's /sys/kernel/debug/kvm_isolate/caps must agree with what this
 * test reads itself: CPUID, the VMX capability MSRs (/dev/cpu/0/msr) and
 * KVM's own ept/npt parameter.  On the project's rigs the expected values are
 * also given in KI_EXPECT ("key=value ..."): Bochs must offer VMFUNC and #VE,
 * QEMU must offer SVM with NPT and no VMFUNC.
 */
#include <cpuid.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kselftest_harness.h"

#define CAPS_PATH "/sys/kernel/debug/kvm_isolate/caps"

struct caps {
	char text[1024];
};

/* Returns the value of "key: value" in caps, or NULL. */
static const char *caps_get(struct caps *c, const char *key, char *buf, size_t len)
{
	size_t klen = strlen(key);
	char *line = c->text;

	while (line && *line) {
		char *nl = strchr(line, '\n');

		if (!strncmp(line, key, klen) && line[klen] == ':' && line[klen + 1] == ' ') {
			size_t n = (nl ? (size_t)(nl - line) : strlen(line)) - klen - 2;

			if (n >= len)
				return NULL;
			memcpy(buf, line + klen + 2, n);
			buf[n] = '\0';
			return buf;
		}
		line = nl ? nl + 1 : NULL;
	}
	return NULL;
}

static int caps_read(struct caps *c)
{
	int fd = open(CAPS_PATH, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, c->text, sizeof(c->text) - 1);
	close(fd);
	if (n < 0)
		return -errno;
	c->text[n] = '\0';
	return 0;
}

static bool rdmsr(uint32_t msr, uint64_t *val)
{
	int fd = open("/dev/cpu/0/msr", O_RDONLY);
	bool ok;

	if (fd < 0)
		return false;
	ok = pread(fd, val, sizeof(*val), msr) == sizeof(*val);
	close(fd);
	return ok;
}

static bool cpu_has_vmx(void)
{
	unsigned int a, b, c, d;

	__cpuid(1, a, b, c, d);
	return c & (1u << 5);
}

static bool cpu_has_svm(void)
{
	unsigned int a, b, c, d;

	if (__get_cpuid_max(0x80000000, NULL) < 0x80000001)
		return false;
	__cpuid(0x80000001, a, b, c, d);
	return c & (1u << 2);
}

/* Allowed-1 settings of the secondary processor-based VM-execution controls. */
static uint32_t vmx_secondary_allowed1(void)
{
	uint64_t primary, secondary;

	if (!rdmsr(0x482, &primary) || !(primary >> 32 & (1u << 31)))
		return 0;
	if (!rdmsr(0x48b, &secondary))
		return 0;
	return secondary >> 32;
}

/* KVM's own view of whether it uses TDP: its vendor module's parameter. */
static const char *kvm_paging(void)
{
	static const char * const params[] = {
		"/sys/module/kvm_intel/parameters/ept",
		"/sys/module/kvm_amd/parameters/npt",
	};
	char v = 0;

	for (size_t i = 0; i < ARRAY_SIZE(params); i++) {
		int fd = open(params[i], O_RDONLY);

		if (fd < 0)
			continue;
		if (read(fd, &v, 1) != 1)
			v = 0;
		close(fd);
		return v == 'Y' ? "tdp" : "shadow";
	}
	return "no-vendor-module";
}

FIXTURE(caps) {
	struct caps c;
	char buf[64];
};

FIXTURE_SETUP(caps)
{
	int r = caps_read(&self->c);

	ASSERT_EQ(0, r) TH_LOG("cannot read %s: %s (is kvm_isolate loaded?)",
			       CAPS_PATH, strerror(-r));
}

FIXTURE_TEARDOWN(caps) {}

TEST_F(caps, vendor_matches_cpuid)
{
	unsigned int a, b, c, d;
	char vendor[13];
	const char *want = "other";

	__cpuid(0, a, b, c, d);
	memcpy(vendor, &b, 4);
	memcpy(vendor + 4, &d, 4);
	memcpy(vendor + 8, &c, 4);
	vendor[12] = '\0';
	if (!strcmp(vendor, "GenuineIntel"))
		want = "intel";
	else if (!strcmp(vendor, "AuthenticAMD"))
		want = "amd";
	else if (!strcmp(vendor, "HygonGenuine"))
		want = "hygon";
	ASSERT_STREQ(want, caps_get(&self->c, "vendor", self->buf, sizeof(self->buf)));
}

TEST_F(caps, tdp_matches_hardware)
{
	const char *want = "none";
	unsigned int a, b, c, d;

	if (cpu_has_vmx()) {
		ASSERT_STREQ("vmx", caps_get(&self->c, "virtualization", self->buf,
					     sizeof(self->buf)));
		if (vmx_secondary_allowed1() & (1u << 1))
			want = "ept";
	} else if (cpu_has_svm()) {
		ASSERT_STREQ("svm", caps_get(&self->c, "virtualization", self->buf,
					     sizeof(self->buf)));
		if (__get_cpuid_max(0x80000000, NULL) >= 0x8000000a) {
			__cpuid(0x8000000a, a, b, c, d);
			if (d & 1)
				want = "npt";
		}
	}
	ASSERT_STREQ(want, caps_get(&self->c, "tdp", self->buf, sizeof(self->buf)));
}

TEST_F(caps, kvm_paging_matches_kvm_parameter)
{
	ASSERT_STREQ(kvm_paging(), caps_get(&self->c, "kvm_paging", self->buf,
					    sizeof(self->buf)));
}

TEST_F(caps, vmfunc_and_ve_match_vmx_msrs)
{
	uint32_t ctls2 = cpu_has_vmx() ? vmx_secondary_allowed1() : 0;
	bool ept = ctls2 & (1u << 1);
	uint64_t vmfunc = 0;
	bool eptp_switching;

	if (ctls2 & (1u << 13))
		rdmsr(0x491, &vmfunc);
	eptp_switching = ept && (ctls2 & (1u << 13)) && (vmfunc & 1);
	ASSERT_STREQ(eptp_switching ? "yes" : "no",
		     caps_get(&self->c, "vmfunc_eptp_switching", self->buf, sizeof(self->buf)));
	ASSERT_STREQ(ept && (ctls2 & (1u << 18)) ? "yes" : "no",
		     caps_get(&self->c, "ept_violation_ve", self->buf, sizeof(self->buf)));
}

/* KI_EXPECT="virtualization=svm,tdp=npt,...": what this rig's CPU must offer. */
TEST_F(caps, rig_expectation)
{
	const char *expect = getenv("KI_EXPECT");
	char *copy, *tok, *save = NULL;

	if (!expect || !*expect)
		SKIP(return, "KI_EXPECT not set: not on one of the project's rigs");
	copy = strdup(expect);
	ASSERT_NE(NULL, copy);
	for (tok = strtok_r(copy, " ,", &save); tok; tok = strtok_r(NULL, " ,", &save)) {
		char *eq = strchr(tok, '=');
		const char *got;

		ASSERT_NE(NULL, eq) TH_LOG("malformed KI_EXPECT item '%s'", tok);
		*eq = '\0';
		got = caps_get(&self->c, tok, self->buf, sizeof(self->buf));
		ASSERT_NE(NULL, got) TH_LOG("caps has no '%s'", tok);
		EXPECT_STREQ(eq + 1, got) TH_LOG("%s", tok);
	}
	free(copy);
}

static bool under_kvm(void)
{
	unsigned int a, b, c, d, base;
	char sig[13];

	__cpuid(1, a, b, c, d);
	if (!(c & (1u << 31)))
		return false;
	for (base = 0x40000000; base < 0x40010000; base += 0x100) {
		__cpuid(base, a, b, c, d);
		memcpy(sig, &b, 4);
		memcpy(sig + 4, &c, 4);
		memcpy(sig + 8, &d, 4);
		sig[12] = '\0';
		if (!memcmp(sig, "KVMKVMKVM\0\0\0", 12))
			return true;
	}
	return false;
}

/* The guest module loads only under KVM, and says why not otherwise. */
TEST(guest_module_loads_only_under_kvm)
{
	int r = system("modprobe kvm_isolate_guest 2>/dev/null");

	if (under_kvm()) {
		ASSERT_EQ(0, r);
		ASSERT_EQ(0, system("modprobe -r kvm_isolate_guest"));
	} else {
		ASSERT_NE(0, r) TH_LOG("kvm_isolate_guest loaded outside KVM");
		ASSERT_NE(0, access("/sys/module/kvm_isolate_guest", F_OK));
	}
}

TEST_HARNESS_MAIN
