#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Configure and build the patched kernel (bzImage, modules with ours, uapi headers) out of tree.
# The build directory is keyed by tree (kernel + series) and config; prints its path (fd 3).
set -euo pipefail
. "$(dirname "$0")/config.sh"
exec 3>&1 1>&2

# KI_PROFILE: host (default) or sanitizer (configs/host.config + configs/sanitizer.config).
profile=${KI_PROFILE:-host}
case $profile in
host) fragments=(configs/host.config) ;;
sanitizer) fragments=(configs/host.config configs/sanitizer.config) ;;
*) ki_die "KI_PROFILE=$profile: want host or sanitizer" ;;
esac
tree=$("$KI_TOP/scripts/prepare-tree.sh")
key=$( { basename "$(dirname "$tree")"; ki_hash "${fragments[@]}"; } | sha256sum | cut -c1-16)
build=$KI_CACHE/build-$key
mkdir -p "$build"
ki_cache_keep "$build"

if [ ! -f "$build/.config.done" ]; then
	ki_stage "kernel: configuring (tinyconfig + ${fragments[*]})"
	ki_run_logged "$build/config.log" ki_kmake -C "$tree" O="$build" tinyconfig
	ki_run_logged "$build/config.log" "$tree/scripts/kconfig/merge_config.sh" -m -O "$build" \
		"$build/.config" "${fragments[@]/#/$KI_TOP/}"
	ki_run_logged "$build/config.log" ki_kmake -C "$tree" O="$build" olddefconfig
	# Every option the fragments ask for must have survived olddefconfig: for an option that
	# more than one sets, the last one's setting (merge_config.sh's order).
	bad=$(cat "${fragments[@]/#/$KI_TOP/}" | grep -E '^(CONFIG_[A-Z0-9_]+=.*|# CONFIG_[A-Z0-9_]+ is not set)$' |
		awk '{ o = $0; sub(/^# /, "", o); sub(/[= ].*/, "", o); if (!(o in line)) order[n++] = o
		       line[o] = $0 } END { for (i = 0; i < n; i++) print line[order[i]] }' |
		while read -r line; do grep -qxF "$line" "$build/.config" || echo "  $line"; done)
	[ -z "$bad" ] || ki_die "kernel config: these settings of ${fragments[*]} did not take" \
		"(missing dependency? is Rust available: make -C $tree O=$build rustavailable):"$'\n'"$bad"
	touch "$build/.config.done"
fi

ki_stage "kernel: building bzImage and modules in $build (-j$KI_JOBS; a cold build takes about 14 min on 2 cores)"
ki_run_logged "$build/build.log" ki_kmake -C "$tree" O="$build" -j"$KI_JOBS" bzImage modules
ki_info "bzImage: $(stat -c %s "$build/arch/x86/boot/bzImage") bytes"

ki_stage "kernel: installing modules and headers"
rm -rf "$build/modroot"
ki_run_logged "$build/install.log" ki_kmake -C "$tree" O="$build" INSTALL_MOD_PATH="$build/modroot" \
	DEPMOD=/sbin/depmod modules_install
ki_run_logged "$build/headers.log" ki_kmake -C "$tree" O="$build" headers
echo "$build" >&3
