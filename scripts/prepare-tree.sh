#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Extract the verified kernel source once, apply patches/ in the order of patches/series, and place
# this repository's rust/, kvm-isolate/ and guest-side/ into the tree. Prints the tree path (fd 3).
#
# A tree is keyed by the kernel package and the patch series; re-running on a prepared tree only
# re-syncs the module sources. A patch that does not apply fails loudly, naming the patch.
set -euo pipefail
. "$(dirname "$0")/config.sh"
exec 3>&1 1>&2

deb=$("$KI_TOP/scripts/fetch-kernel.sh")
kver=$(dpkg-deb -f "$deb" Version)
series_key=$(cd "$KI_TOP" && { echo "$kver"; ki_hash patches; } | sha256sum | cut -c1-16)
tree=$KI_CACHE/tree-$series_key/linux
stamp=$tree/.kvm-isolate-series

series_list() { grep -v -e '^#' -e '^[[:space:]]*$' "$KI_TOP/patches/series" 2>/dev/null || true; }
want_stamp=$( { echo "kernel $kver"; for p in $(series_list); do
	echo "$p $(sha256sum "$KI_TOP/patches/$p" | cut -c1-16)"; done; } )

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want_stamp" ]; then
	ki_info "tree: $tree (series already applied: $(series_list | wc -l) patches)"
else
	ki_stage "tree: extracting $KI_KPKG $kver"
	rm -rf "$KI_CACHE/tree-$series_key"
	tmp=$KI_CACHE/tree-$series_key.tmp
	rm -rf "$tmp"; mkdir -p "$tmp"
	dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" --wildcards '*.tar.xz'
	tarball=$(find "$tmp" -name "$KI_KPKG.tar.xz" | head -n 1)
	[ -n "$tarball" ] || ki_die "$deb holds no $KI_KPKG.tar.xz"
	ki_run_logged "$tmp/untar.log" tar -xJf "$tarball" -C "$tmp"
	rm -f "$tarball"
	mv "$tmp/$KI_KPKG" "$tmp/linux"
	n=0
	for p in $(series_list); do
		n=$((n + 1))
		f=$KI_TOP/patches/$p
		[ -f "$f" ] || ki_die "patches/series names $p, which does not exist"
		ki_info "applying [$n] $p"
		if ! patch -d "$tmp/linux" -p1 --forward --batch --quiet --no-backup-if-mismatch \
			<"$f" >"$tmp/patch.log" 2>&1; then
			cat "$tmp/patch.log" >&2
			ki_die "patch $p does not apply to $KI_KPKG $kver (see the rejects above)." \
				"Rebase it onto this kernel, or pin a kernel it applies to."
		fi
	done
	echo "$want_stamp" >"$tmp/linux/.kvm-isolate-series"
	mkdir -p "$KI_CACHE/tree-$series_key"
	mv "$tmp/linux" "$tree"
	rm -rf "$tmp"
	ki_info "tree: $tree ($n patches applied)"
fi

ki_cache_keep "$KI_CACHE/tree-$series_key"

# Place our sources (one source of truth: this repository). --checksum leaves unchanged files
# alone, so Kbuild rebuilds only what changed; --no-times stamps a changed file with the time it
# is placed, not its time in the repository, which can be older than a build output made from
# the previous version (an edit during a build would otherwise never be rebuilt).
place() { # repo-path tree-path
	mkdir -p "$(dirname "$tree/$2")"
	rsync -a --no-times --checksum --delete --exclude target --exclude '*.o' --exclude Cargo.lock \
		--exclude corpus --exclude artifacts \
		"$KI_TOP/$1" "$tree/$2"
}
place rust/kernel/kvm_isolate/ rust/kernel/kvm_isolate/
place rust/kernel/kvm_isolate.rs rust/kernel/kvm_isolate.rs
place rust/helpers/kvm_isolate.c rust/helpers/kvm_isolate.c
place kvm-isolate/ arch/x86/kvm/isolate/
place guest-side/ drivers/virt/kvm_isolate_guest/
place selftests/ tools/testing/selftests/kvm/x86/kvm_isolate/
place include/uapi/linux/kvm_isolate.h include/uapi/linux/kvm_isolate.h
place include/linux/kvm_isolate_guest.h include/linux/kvm_isolate_guest.h
echo "$tree" >&3
