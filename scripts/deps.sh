#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Install exactly what the build and the rigs need; idempotent, says what it installs.
set -euo pipefail
. "$(dirname "$0")/config.sh"

ki_stage "deps: checking packages"
[ "$(id -u)" = 0 ] || ki_die "deps: run as root (apt-get), or install the packages in README.md by hand"

TOOLCHAIN="rustc-web rust-web-src rustfmt-web clang-19 lld-19 llvm-19 libclang-19-dev bc flex bison
	libelf-dev libssl-dev cpio rsync busybox-static uuid-dev make gcc libc6-dev xz-utils zstd binutils
	util-linux kmod patch"
RIGS_NORECS="bochs bochsbios bochs-term vgabios isolinux syslinux-common genisoimage"
QEMU_BPO="qemu-system-x86"

missing() {
	local p out=
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || out="$out $p"
	done
	echo "$out"
}

sources_changed=0
add_source() { # name line
	local f=/etc/apt/sources.list.d/$1.list
	if [ ! -f "$f" ] || ! grep -qxF "$2" "$f"; then
		ki_info "adding apt source $1"
		echo "$2" >"$f"
		sources_changed=1
	fi
}
add_source kvm-isolate-bookworm-backports "deb http://deb.debian.org/debian bookworm-backports main"
add_source kvm-isolate-trixie-backports "deb http://deb.debian.org/debian trixie-backports main"
pin=/etc/apt/preferences.d/kvm-isolate-trixie-backports
pin_text=$'Package: *\nPin: release n=trixie-backports\nPin-Priority: 50'
if [ ! -f "$pin" ] || [ "$(cat "$pin")" != "$pin_text" ]; then
	ki_info "pinning trixie-backports at priority 50 (nothing is upgraded from it)"
	printf '%s\n' "$pin_text" >"$pin"
	sources_changed=1
fi

m_tool=$(missing $TOOLCHAIN)
m_rigs=$(missing $RIGS_NORECS)
m_qemu=$(missing $QEMU_BPO)
if [ -n "$m_tool$m_rigs$m_qemu" ] || [ $sources_changed = 1 ]; then
	if [ -n "$m_tool$m_rigs$m_qemu" ] || [ ! -d /var/lib/apt/lists ] ||
		! ls /var/lib/apt/lists/*bookworm-backports* >/dev/null 2>&1; then
		ki_info "apt-get update"
		apt-get update -qq >/dev/null || ki_die "deps: apt-get update failed (network or mirror?)"
	fi
fi
export DEBIAN_FRONTEND=noninteractive
if [ -n "$m_tool" ]; then
	ki_info "installing toolchain:$m_tool"
	apt-get install -y -qq $m_tool >/dev/null || ki_die "deps: installing$m_tool failed"
fi
if [ -n "$m_qemu" ]; then
	ki_info "installing QEMU from bookworm-backports"
	apt-get install -y -qq --no-install-recommends -t bookworm-backports $QEMU_BPO >/dev/null ||
		ki_die "deps: installing QEMU from bookworm-backports failed"
fi
if [ -n "$m_rigs" ]; then
	ki_info "installing Bochs and ISO tools:$m_rigs"
	apt-get install -y -qq --no-install-recommends $m_rigs >/dev/null ||
		ki_die "deps: installing$m_rigs failed"
fi

if [ -x "$KI_BINDGEN" ] && "$KI_BINDGEN" --version 2>/dev/null | grep -q " $KI_BINDGEN_VERSION\$"; then
	:
else
	command -v cargo >/dev/null || ki_die "deps: cargo not found (needed to install bindgen-cli)"
	ki_info "installing bindgen-cli $KI_BINDGEN_VERSION from crates.io (about 90 s)"
	ki_run_logged "${TMPDIR:-/tmp}/kvm-isolate-bindgen.log" \
		cargo install -q bindgen-cli --version "$KI_BINDGEN_VERSION" --locked
fi
ki_info "deps: all present (rustc $($KI_RUSTC --version | cut -d' ' -f2), bindgen $KI_BINDGEN_VERSION," \
	"qemu $(qemu-system-x86_64 --version | head -1 | awk '{print $4}'), bochs $(dpkg-query -W -f='${Version}' bochs))"
