#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Make the test initramfs: busybox, our modules (modules_install + depmod, loaded with modprobe),
# the test binaries and the plan (selftests/kvm_isolate.plan, then selftests/upstream.list).
#   mkinitramfs.sh BUILD_DIR OUT_DIR [PLAN]  ->  OUT_DIR/initramfs.cpio and OUT_DIR/initramfs.cpio.zst
# QEMU boots the plain cpio fastest. Bochs loads the initrd through its emulated BIOS and CD drive,
# slowly, so it gets zstd with a window large enough to share the static test binaries' common
# code (85 MiB -> 22 MiB with the L2 guest's QEMU). zstd, not xz: about as small at level 9, and
# the emulated kernel unpacks it several times faster (natively 0.2 s against 1.9 s for xz).
# PLAN replaces the test plan (the main job uses a one-line plan running /ki/demo.sh).
set -euo pipefail
. "$(dirname "$0")/config.sh"

build=$1 out=$2 plan_in=${3:-}
stage=$out/initramfs
rm -rf "$stage"; mkdir -p "$stage"/{bin,sbin,ki/tests,lib,etc,proc,sys,dev,tmp}
ki_stage "initramfs: assembling in $stage"
cp /bin/busybox "$stage/bin/busybox"
cp "$KI_TOP/scripts/initramfs/init" "$stage/init"
# The tools users run, not busybox's stand-ins: kmod's modprobe/lsmod/rmmod (first in PATH) and
# bash as /bin/sh (busybox's sh would run its own modprobe applet whatever PATH says).
copy_with_libs() {
	local f
	for f in "$1" $(ldd "$1" | grep -o '/[^ ]*'); do
		mkdir -p "$stage$(dirname "$f")"
		cp -L "$f" "$stage$f"
	done
}
kmod=$(command -v kmod)
copy_with_libs "$kmod"
for t in modprobe lsmod rmmod insmod modinfo depmod; do ln -s "$kmod" "$stage/sbin/$t"; done
copy_with_libs /bin/bash
ln -s bash "$stage/bin/sh"
cp "$KI_TOP"/scripts/initramfs/{run-plan.sh,demo.sh,load-kvm.sh} "$stage/ki/"
# The administrator's tool (scripts/build-tools.sh), which the tests drive.
[ -x "$build/tools/kvm-isolatectl" ] || ki_die "initramfs: $build/tools/kvm-isolatectl not built"
cp "$build/tools/kvm-isolatectl" "$stage/bin/"
cp -a "$build/modroot/lib/modules" "$stage/lib/"
find "$stage/lib/modules" -maxdepth 2 -name build -type l -delete

plan=$stage/ki/plan
# Which upstream tests the Bochs rig runs unless KI_BOCHS_FULL=1: all but selftests/bochs.slow.
awk 'FNR == 1 { f++ } { sub(/#.*/, "") } !NF { next }
	f == 1 { slow[$1] = 1; next } !($1 in slow) { print "upstream/" $1 }
	END { print "upstream/load-kvm-and-kvm_isolate" }' \
	"$KI_TOP/selftests/bochs.slow" "$KI_TOP/selftests/upstream.list" >"$stage/ki/bochs.only"
if [ -n "$plan_in" ]; then
	cp "$plan_in" "$plan"
else
	awk '!/^#/ && NF' "$KI_TOP/selftests/kvm_isolate.plan" >"$plan"
	echo "upstream/load-kvm-and-kvm_isolate 60 /ki/load-kvm.sh" >>"$plan"
	awk '{ sub(/#.*/, "") } NF { args = ""; for (i = 3; i <= NF; i++) args = args " " $i
		printf "upstream/%s %s /ki/tests/%s%s\n", $1, ($2 ? $2 : 120), $1, args }' \
		"$KI_TOP/selftests/upstream.list" >>"$plan"
fi
# A plan with the L2 test gets what it boots: Debian's QEMU (its libraries and the firmware a
# microvm or pc guest needs) and the L2 guest, the same bzImage and modules (those of
# KI_L2_BUILD if set) with an initramfs of its own (scripts/initramfs/l2-init). About 65 MiB, so
# only then.
if grep -q 'l2_guest_test' "$plan"; then
	l2build=${KI_L2_BUILD:-$build}
	l2=$stage/l2
	mkdir -p "$l2/initramfs"/{bin,sbin,lib,proc,sys,dev,tmp} "$stage/usr/share/qemu"
	copy_with_libs "$(command -v qemu-system-x86_64)"
	for f in bios-256k.bin bios-microvm.bin linuxboot_dma.bin kvmvapic.bin pvh.bin qboot.rom; do
		src=$(find /usr/share/qemu /usr/share/seabios -name "$f" 2>/dev/null | head -n 1)
		[ -n "$src" ] || ki_die "initramfs: QEMU firmware $f not found"
		cp -L "$src" "$stage/usr/share/qemu/$f"
	done
	cp "$l2build/arch/x86/boot/bzImage" "$l2/bzImage"
	( stage=$l2/initramfs
	  cp /bin/busybox "$stage/bin/busybox"
	  ln -s busybox "$stage/bin/sh"
	  cp "$KI_TOP/scripts/initramfs/l2-init" "$stage/init"
	  copy_with_libs "$kmod"
	  ln -s "$kmod" "$stage/sbin/modprobe"
	  # Only the guest's modules (kvm_isolate_guest, the keeper, the rogue): the host's KVM
	  # modules were a quarter of the initramfs QEMU loads and the guest unpacks at each boot.
	  ( cd "$l2build/modroot" && find lib/modules -path '*/kernel/*' -prune -o -print |
		cpio -pdm --quiet "$stage" &&
		find lib/modules -path '*/kvm_isolate_guest/*.ko' | cpio -pdm --quiet "$stage" )
	  ( exec -a depmod "$kmod" -b "$stage" "$(basename "$(ls -d "$stage"/lib/modules/*)")" )
	  # The keeper's symbols as SYMBOL SECTION OFFSET: after its first boot the guest finds
	  # them at its sections' addresses (/sys/module/ki_keeper/sections) plus these, not by a
	  # pass over /proc/kallsyms (9 s of Bochs's time each).
	  keeper=$(find "$stage/lib/modules" -name ki_keeper.ko)
	  [ -n "$keeper" ] || ki_die "initramfs: no ki_keeper.ko in $l2build/modroot"
	  objdump -t "$keeper" | awk -F'\t' 'NF == 2 { n = split($1, a, " "); split($2, b, " ")
		if (a[n] ~ /^\./ && b[2] != "") print b[2], a[n], "0x" a[1] }' >"$stage/keeper.map"
	  find "$stage/lib/modules" -maxdepth 2 -name build -type l -delete
	  cd "$stage" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0 ) >"$l2/initrd.cpio"
	rm -rf "$l2/initramfs"
fi

# Every test binary a plan line names (as its command or as an argument of it).
for bin in $(awk '{ for (i = 3; i <= NF; i++) if ($i ~ "^/ki/tests/") print $i }' "$plan" | sort -u); do
	rel=${bin#/ki/tests/}
	mkdir -p "$(dirname "$stage/ki/tests/$rel")"
	if [ -f "$build/kselftest/$rel" ]; then
		cp "$build/kselftest/$rel" "$stage/ki/tests/$rel"
		strip "$stage/ki/tests/$rel" 2>/dev/null || true
	elif [ -f "$KI_TOP/selftests/${rel#x86/kvm_isolate/}" ]; then
		cp "$KI_TOP/selftests/${rel#x86/kvm_isolate/}" "$stage/ki/tests/$rel"
	else
		ki_die "initramfs: test $rel named in the plan was not built"
	fi
done
(cd "$stage" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) >"$out/initramfs.cpio"
# A 64 MiB window: the kernel's unpacker takes up to 128 MiB.
zstd -q -9 --long=26 -T1 -f "$out/initramfs.cpio" -o "$out/initramfs.cpio.zst"
ki_info "initramfs: $(wc -l <"$plan") tests, $(( $(stat -c %s "$out/initramfs.cpio") / 1024 )) KiB" \
	"($(( $(stat -c %s "$out/initramfs.cpio.zst") / 1024 )) KiB zstd)"
