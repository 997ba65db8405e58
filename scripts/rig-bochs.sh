#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Rig B, the Intel path: boot the host kernel and the test initramfs under Bochs 2.7,
# bx_generic with VMX level 2 (EPT, VMFUNC EPTP switching, EPT-violation #VE), from an ISO.
#   rig-bochs.sh BUILD_DIR OUT_DIR    (KI_BOCHS_TIMEOUT: seconds, default 2400; KI_BOCHS_APPEND:
#   more for the kernel's command line, e.g. kmemleak=on, which make check's bochs-kmemleak rig uses)
set -euo pipefail
. "$(dirname "$0")/config.sh"
. "$KI_TOP/scripts/rig-lib.sh"

build=$1 out=$2
log=$out/bochs.serial.log
expect=vendor=intel,virtualization=vmx,tdp=ept,kvm_paging=tdp,vmfunc_eptp_switching=yes,ept_violation_ve=yes,views=possible
iso=$out/iso
rm -rf "$iso"; mkdir -p "$iso/isolinux"
cp /usr/lib/ISOLINUX/isolinux.bin /usr/lib/syslinux/modules/bios/ldlinux.c32 "$iso/isolinux/"
cp "$build/arch/x86/boot/bzImage" "$iso/vmlinuz"
cp "$out/initramfs.cpio.zst" "$iso/initrd.zst"
# ,115200: Bochs emulates the baud rate; at 9600 the console is slow and cut at exit.
cat >"$iso/isolinux/isolinux.cfg" <<CFG
DEFAULT ki
PROMPT 0
TIMEOUT 0
LABEL ki
  KERNEL /vmlinuz
  APPEND initrd=/initrd.zst console=ttyS0,115200 panic=-1 quiet nmi_watchdog=0 ${KI_BOCHS_APPEND:-} KI_RIG=bochs KI_BOCHS_FULL=${KI_BOCHS_FULL:-0} KI_FUZZ_CALLS=${KI_FUZZ_CALLS:-} KI_FUZZ_SEED=${KI_FUZZ_SEED:-} KI_EXPECT=$expect
CFG
genisoimage -quiet -o "$out/boot.iso" -b isolinux/isolinux.bin -c isolinux/boot.cat \
	-no-emul-boot -boot-load-size 4 -boot-info-table "$iso"
cat >"$out/bochsrc" <<RC
megs: 1024
cpu: model=bx_generic, count=1, ips=200000000, reset_on_triple_fault=0
cpuid: level=6, family=6, model=0x3c, stepping=3, vendor_string="GenuineIntel", brand_string="Bochs VMX", mmx=1, apic=x2apic, sep=1, simd=avx2, aes=1, movbe=1, xsave=1, xsaveopt=1, avx_f16c=1, avx_fma=1, bmi=bmi2, x86_64=1, 1g_pages=1, pcid=1, smep=1, smap=1, vmx=2
romimage: file=/usr/share/bochs/BIOS-bochs-latest
vgaromimage: file=/usr/share/bochs/VGABIOS-lgpl-latest
ata0-master: type=cdrom, path=$out/boot.iso, status=inserted
boot: cdrom
com1: enabled=1, mode=file, dev=$log
display_library: term
log: /dev/null
error: action=ignore
speaker: enabled=0
sound: waveoutdrv=dummy, waveindrv=dummy, midioutdrv=dummy
clock: sync=none, time0=local
RC
echo c >"$out/bochs.cmds"   # Debian's bochs starts in its debugger: continue
ki_stage "rig bochs: booting the host kernel (bx_generic, VMX+EPT+VMFUNC+#VE)${KI_BOCHS_APPEND:+, $KI_BOCHS_APPEND}"
rm -f "$log"
# Bochs ignores SIGTERM and its term display needs a tty: script(1) gives it one.
setsid timeout -s KILL "${KI_BOCHS_TIMEOUT:-2400}" script -qfc \
	"stty rows 40 cols 120; bochs -q -f $out/bochsrc -rc $out/bochs.cmds" /dev/null \
	>"$out/bochs.screen" 2>&1 </dev/null &
bochs=$!
# Debian's Bochs is built with its debugger, so its term display draws the emulated VGA screen
# on a pty of its own ('Bochs connected to screen "/dev/pts/N"') that nobody reads. It keeps
# sending cursor updates as emulated time passes; once that pty's buffer is full (~20 KiB, some
# 10 to 30 minutes into a run), Bochs blocks in write() and the whole emulated host freezes: the
# "hangs in a different test each time" of earlier full runs (seen: bochs-bin asleep in
# n_tty_write on the pty master; reading the pty resumed it). Drain the screen into bochs.vga.
drain_screen() {
	local pts="" i
	for i in $(seq 1 1200); do
		pts=$(grep -ao 'connected to screen "/dev/pts/[0-9]*"' "$out/bochs.screen" 2>/dev/null |
			grep -o '/dev/pts/[0-9]*' | head -n 1 || true)
		[ -n "$pts" ] && exec cat "$pts" >"$out/bochs.vga" 2>/dev/null
		sleep 0.1
	done
}
drain_screen &
drainer=$!
rc=0
ki_rig_follow bochs "$bochs" "$log" "$out" || rc=$?
kill "$drainer" 2>/dev/null || true
exit "$rc"
