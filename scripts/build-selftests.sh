#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Build, static, the KVM selftests the rigs run: ours (selftests/, placed into the tree's
# tools/testing/selftests/kvm/x86/kvm_isolate/) and the upstream baseline in selftests/upstream.list.
#   build-selftests.sh BUILD_DIR [TEST...]   (default: the tests the plans name)
set -euo pipefail
. "$(dirname "$0")/config.sh"

build=$1; shift
tree=$("$KI_TOP/scripts/prepare-tree.sh")
out=$build/kselftest
if [ $# = 0 ]; then
	set -- $(awk '{ sub(/#.*/, "") } NF { print $1 }' "$KI_TOP/selftests/upstream.list") \
		$(awk '!/^#/ && NF { sub(".*/ki/tests/", "", $3); print $3 }' "$KI_TOP/selftests/kvm_isolate.plan" |
			grep -v '\.sh$')
fi
ki_stage "selftests: building $# static KVM selftests"
# The selftests Makefile does not read our tests' dependency files, so a change to a header they
# share (domains.h) or to the uapi header would leave them stale: rebuild ours every time (seconds).
rm -f "$out"/x86/kvm_isolate/*.o
targets=()
for t in "$@"; do targets+=("$out/$t"); done
ki_run_logged "$build/selftests.log" make -C "$tree/tools/testing/selftests/kvm" -j"$KI_JOBS" \
	OUTPUT="$out" KHDR_INCLUDES="-isystem $build/usr/include" INSTALL_HDR_PATH="$build/usr" \
	EXTRA_CFLAGS=-static LDFLAGS=-static "${targets[@]}"
