#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# make check: host cargo tests, the builds, both rigs. Per rig a line "rig=NAME pass=N fail=N
# skip=N", merged TAP in build/check/RIG.tap, and last "N passed, N failed, N skipped".
# Fails if any test failed or a rig did not run to the end of its plan.
set -uo pipefail
. "$(dirname "$0")/config.sh"

check=$KI_OUT/check
rm -rf "$check"; mkdir -p "$check"
pass=0 fail=0 skip=0 broken=()

"$KI_TOP/scripts/deps.sh" || exit 1

ki_stage "cargo test (host-side Rust)"
(cd "$KI_TOP" && cargo test --workspace 2>&1) | tee "$check/cargo.log" |
	grep -E '^test result: .* [1-9][0-9]* passed|^test .* FAILED|panicked' | sed 's/^/    /'
if [ "${PIPESTATUS[0]}" != 0 ]; then broken+=(cargo); fi
read -r cp cf < <(awk '/^test result:/ { for (i = 1; i <= NF; i++) {
	if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } } END { print p + 0, f + 0 }' \
	"$check/cargo.log")
echo "cargo pass=$cp fail=$cf"
pass=$((pass + cp)) fail=$((fail + cf))

ki_stage "script tests (fetch, patch series, tree placement)"
"$KI_TOP/scripts/tests/scripts_test.sh" >"$check/scripts.tap" 2>&1 || broken+=(scripts)
grep -E '^(not )?ok ' "$check/scripts.tap" | sed 's/^/    /'
read -r sp sf < <(awk '/^ok / { p++ } /^not ok / { f++ } END { print p + 0, f + 0 }' "$check/scripts.tap")
echo "scripts pass=$sp fail=$sf"
pass=$((pass + sp)) fail=$((fail + sf))

build=$("$KI_TOP/scripts/build-kernel.sh") || exit 1
"$KI_TOP/scripts/build-selftests.sh" "$build" || exit 1
"$KI_TOP/scripts/build-tools.sh" "$build" || exit 1
"$KI_TOP/scripts/mkinitramfs.sh" "$build" "$check" || exit 1

tap_count() { # TAP file -> "pass fail skip"
	awk '/^ok / { if (/# SKIP/) s++; else p++ } /^not ok / { if (/# (SKIP|TODO)/) s++; else f++ }
		END { print p + 0, f + 0, s + 0 }' "$1"
}
for rig in ${KI_RIGS:-qemu bochs}; do
	"$KI_TOP/scripts/rig-$rig.sh" "$build" "$check" || broken+=("$rig")
	if [ -f "$check/$rig.tap" ]; then
		read -r p f s < <(tap_count "$check/$rig.tap")
	else
		p=0 f=0 s=0
	fi
	echo "rig=$rig pass=$p fail=$f skip=$s"
	pass=$((pass + p)) fail=$((fail + f)) skip=$((skip + s))
done

# kmemleak on the Intel path, which only Bochs has (EPTP lists, #VE pages): the
# sanitizer's kernel is too slow to boot under Bochs, so the plain kernel has kmemleak built in,
# off unless the command line says kmemleak=on. This second, short Bochs boot says it, for the
# tests that make and tear down those (kmemleak makes them 1.6 times slower: not the whole
# plan). KI_BOCHS_KMEMLEAK=0 leaves it out.
if [ "${KI_BOCHS_KMEMLEAK:-1}" = 1 ] && [[ " ${KI_RIGS:-qemu bochs} " == *" bochs "* ]]; then
	kml=$check/bochs-kmemleak
	mkdir -p "$kml"
	grep -E '^kvm_isolate/(module|vmfunc|ve)_test ' "$KI_TOP/selftests/kvm_isolate.plan" \
		>"$check/bochs-kmemleak.plan"
	if "$KI_TOP/scripts/mkinitramfs.sh" "$build" "$kml" "$check/bochs-kmemleak.plan"; then
		KI_BOCHS_APPEND=kmemleak=on "$KI_TOP/scripts/rig-bochs.sh" "$build" "$kml" ||
			broken+=(bochs-kmemleak)
	else
		broken+=(bochs-kmemleak)
	fi
	if [ -f "$kml/bochs.tap" ]; then
		cp "$kml/bochs.tap" "$check/bochs-kmemleak.tap"
		read -r p f s < <(tap_count "$check/bochs-kmemleak.tap")
		# The point of this rig: kmemleak's result (a leak is a failure, no result a broken rig).
		grep -q '^\(not \)\?ok [0-9]* kmemleak finds no leak' "$check/bochs-kmemleak.tap" ||
			broken+=(bochs-kmemleak)
	else
		p=0 f=0 s=0
	fi
	echo "rig=bochs-kmemleak pass=$p fail=$f skip=$s"
	pass=$((pass + p)) fail=$((fail + f)) skip=$((skip + s))
fi

# The sanitizer profile (KASAN, kmemleak, lockdep + RCU checking, panic_on_warn): kvm-isolate's
# own tests on QEMU, a second kernel build cached like the first. KI_SANITIZER=0 leaves it out.
# The host is the sanitizer's kernel; the L2 guest of l2_guest_test is the plain one (KI_L2_BUILD):
# the profile checks the host, and its kernel panics on an oops, which the guest's rogue causes.
if [ "${KI_SANITIZER:-1}" = 1 ]; then
	san=$check/sanitizer
	mkdir -p "$san"
	# The L2 test's time doubled: its three boots took 230 to 340 s here under KASAN, of 420.
	awk '!/^#/ && NF { if ($1 == "kvm_isolate/l2_guest_test") $2 *= 2; print }' \
		"$KI_TOP/selftests/kvm_isolate.plan" >"$check/sanitizer.plan"
	if sbuild=$(KI_PROFILE=sanitizer "$KI_TOP/scripts/build-kernel.sh") &&
		"$KI_TOP/scripts/build-selftests.sh" "$sbuild" \
			$(awk '{ sub(".*/ki/tests/", "", $3) } $3 !~ /\.sh$/ { print $3 }' "$check/sanitizer.plan") &&
		"$KI_TOP/scripts/build-tools.sh" "$sbuild" &&
		KI_L2_BUILD=$build \
		"$KI_TOP/scripts/mkinitramfs.sh" "$sbuild" "$san" "$check/sanitizer.plan"; then
		ki_stage "rig sanitizer: the kvm-isolate tests on QEMU under KASAN, kmemleak, panic_on_warn"
		# Shorter fuzz, scale and storm runs than on the plain rigs (KASAN and kmemleak make
		# them 3 to 26 times slower): 2500 calls, 48 domains, 25,000 violations, unless
		# KI_FUZZ_CALLS says otherwise; and the L2 test's short third boot (its full one is
		# the same host code as the QEMU rig's, 75 s here).
		KI_QEMU_APPEND="panic_on_warn=1 KI_SCALE_DOMAINS=48 KI_STORM=25000 KI_L2_SHORT=1" \
			KI_FUZZ_CALLS=${KI_FUZZ_CALLS:-2500} \
			"$KI_TOP/scripts/rig-qemu.sh" "$sbuild" "$san" || broken+=(sanitizer)
	else
		broken+=(sanitizer)
	fi
	if [ -f "$san/qemu.tap" ]; then
		cp "$san/qemu.tap" "$check/sanitizer.tap"
		read -r p f s < <(tap_count "$check/sanitizer.tap")
	else
		p=0 f=0 s=0
	fi
	echo "rig=sanitizer pass=$p fail=$f skip=$s"
	pass=$((pass + p)) fail=$((fail + f)) skip=$((skip + s))
fi

if [ ${#broken[@]} != 0 ]; then
	echo "did not run to the end: ${broken[*]} (logs in $check)"
fi
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" = 0 ] && [ ${#broken[@]} = 0 ]
