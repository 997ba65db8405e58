#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Fetch and verify Debian's linux-source package; print the path of the verified .deb on stdout.
#
#   KVM_ISOLATE_KERNEL_DEB=/path/linux-source-7.3_*.deb   use a local package instead of apt
#
# The pinned version must match its SHA256. When the mirrors no longer carry it, the newest
# ${KI_KPKG} is used instead, with a loud warning naming both versions.
set -euo pipefail
. "$(dirname "$0")/config.sh"
exec 3>&1 1>&2  # progress to stderr, result to fd 3

dl=$KI_CACHE/downloads
mkdir -p "$dl"
pinned_deb=$dl/${KI_KPKG}_${KI_KPKG_VERSION//:/%3a}_all.deb

deb_version() { dpkg-deb -f "$1" Version; }

if [ -n "${KVM_ISOLATE_KERNEL_DEB:-}" ]; then
	deb=$KVM_ISOLATE_KERNEL_DEB
	[ -f "$deb" ] || ki_die "KVM_ISOLATE_KERNEL_DEB=$deb: no such file"
	pkg=$(dpkg-deb -f "$deb" Package 2>/dev/null) ||
		ki_die "KVM_ISOLATE_KERNEL_DEB=$deb is not a Debian package"
	[ "$pkg" = "$KI_KPKG" ] || ki_die "KVM_ISOLATE_KERNEL_DEB=$deb is $pkg, expected $KI_KPKG"
	v=$(deb_version "$deb")
	if [ "$v" = "$KI_KPKG_VERSION" ]; then
		sum=$(sha256sum "$deb" | cut -d' ' -f1)
		[ "$sum" = "$KI_KPKG_SHA256" ] || ki_die "$deb: SHA256 $sum differs from the pinned" \
			"$KI_KPKG_SHA256; the file is corrupt or not Debian's build: delete it and fetch it again"
	else
		ki_warn "using local $KI_KPKG $v instead of the pinned $KI_KPKG_VERSION (no checksum to verify)"
	fi
	echo "$deb" >&3
	exit 0
fi

verify_pinned() {
	local sum
	sum=$(sha256sum "$pinned_deb" | cut -d' ' -f1)
	if [ "$sum" != "$KI_KPKG_SHA256" ]; then
		rm -f "$pinned_deb"
		ki_die "$KI_KPKG $KI_KPKG_VERSION: SHA256 $sum differs from the pinned $KI_KPKG_SHA256." \
			"The mirror served a different file; nothing was used. Retry later, or name a" \
			"verified local package with KVM_ISOLATE_KERNEL_DEB=/path/to.deb"
	fi
}

if [ -f "$pinned_deb" ]; then
	verify_pinned
	ki_info "kernel source: $pinned_deb (cached, checksum ok)"
	echo "$pinned_deb" >&3
	exit 0
fi

ki_stage "kernel: downloading $KI_KPKG $KI_KPKG_VERSION"
tmp=$(mktemp -d "$dl/.apt.XXXX")
trap 'rm -rf "$tmp"' EXIT
if (cd "$tmp" && apt-get download -q "$KI_KPKG=$KI_KPKG_VERSION" >/dev/null 2>"$tmp/err"); then
	mv "$tmp"/*.deb "$pinned_deb"
	verify_pinned
	ki_info "checksum ok: $KI_KPKG_SHA256"
	echo "$pinned_deb" >&3
	exit 0
fi
ki_info "$(head -n 2 "$tmp/err")"
# The pinned version is gone (or apt lists are stale): take the newest version of the series.
newest=$(apt-cache madison "$KI_KPKG" 2>/dev/null | awk -F'|' '{gsub(/ /,"",$2); print $2}' |
	sort -V | tail -n 1)
[ -n "$newest" ] || ki_die "$KI_KPKG is not offered by any apt source. Run 'make deps' (it adds" \
	"$KI_KPKG_SUITE), or download a $KI_KPKG .deb elsewhere and name it with" \
	"KVM_ISOLATE_KERNEL_DEB=/path/to.deb"
ki_warn "the pinned $KI_KPKG $KI_KPKG_VERSION is no longer offered; falling back to $newest." \
	"Its checksum cannot be verified and the patch series may not apply."
(cd "$tmp" && apt-get download -q "$KI_KPKG=$newest" >/dev/null) ||
	ki_die "downloading $KI_KPKG $newest failed"
out=$dl/${KI_KPKG}_${newest//:/%3a}_all.deb
mv "$tmp"/*.deb "$out"
echo "$out" >&3
