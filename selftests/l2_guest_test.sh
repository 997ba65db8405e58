#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# A real Linux guest under an unmodified VMM: Debian's QEMU, run inside the
# emulated host (the rig), boots the same kernel as an L2 guest on the host's
# KVM with kvm_isolate loaded. In it (scripts/initramfs/l2-init) the guest
# administrator loads kvm_isolate_guest, which finds the host's kvm-isolate
# and where the host offers #VE (Bochs) takes one in its self-test; loads the
# key keeper ki_keeper and lets the rogue module ki_rogue read its key; then
# protects the keeper through configfs (bad requests refused first), runs its
# workload while the host learns (kvm-isolatectl mode learn) and enforces
# (mode enforce --deny gp): no denial; the rogue's read, write and call into
# the middle of the keeper are denied, in the guest (an oops of the rogue's
# thread) and in the host's log; the keeper cannot be unloaded. Then the
# guest reboots with the domain live: the next boot finds it gone, and the
# keeper protects itself behind its gate (KVM_ISOLATE_GATE: calls enter its
# view with no VM exit where the host offers VMFUNC, by the SWITCH hypercall
# elsewhere; counted over 10000 calls), whose key the rogue's read, its read
# after a switch to the keeper's view and its call into the gate's page do not
# get; the guest panics (the rogue's oops, panic_on_oops: the guest module's panic
# notifier destroys the domain), the keeper protects itself through the kernel
# API (which refuses the rogue's claim on the key), the first boot's profile
# imports by module name and offset, and the guest locks. On the Bochs rig
# (unless KI_BOCHS_FULL=1) and the sanitizer rig (KI_L2_SHORT=1) the third boot
# is short: it checks that the panic left no domain and gives the host its log;
# the rest of it is the same on any host and runs on the QEMU rig (the full
# third boot is 33 s of Bochs's time, 3 minutes of wall time, and 75 s under
# the sanitizer).
# This script is the host: it answers the guest's "@l2 wait STEP" lines on its
# console. TAP output.

CAPS=/sys/kernel/debug/kvm_isolate/caps
QEMU=/usr/bin/qemu-system-x86_64
OUT=/tmp/l2_guest_test.out
IN=/tmp/l2_guest_test.in
OUTF=/tmp/l2_guest_test.console
n=0
failed=0

ok() { n=$((n + 1)); echo "ok $n $1"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n $1"; }
check() { # description command...
	desc=$1; shift
	if "$@" >/tmp/l2_guest_test.chk 2>&1; then ok "$desc"; else
		not_ok "$desc"; sed 's/^/# /' /tmp/l2_guest_test.chk; fi
}
has() { grep -q "$1" "$OUT" || { echo "no '$1' in the L2 console:"; cat "$OUT"; return 1; }; }
# A column of the guest's VM in kvm-isolatectl's list, by the header's name.
vm_col() {
	kvm-isolatectl list | awk -v pid="$qemu" -v col="$1" '
		NR == 1 { for (i = 1; i <= NF; i++) if ($i == col) c = i }
		NR > 1 && $2 == pid { print $c }'
}

if grep -qw vmx /proc/cpuinfo; then vendor=kvm_intel
elif grep -qw svm /proc/cpuinfo; then vendor=kvm_amd
else echo "1..0 # SKIP no VMX or SVM on this CPU"; exit 4; fi
if [ ! -f /l2/bzImage ] || [ ! -x $QEMU ]; then
	echo "1..0 # SKIP no L2 guest in this initramfs (mkinitramfs.sh stages it for this test)"
	exit 4
fi

echo "TAP version 13"
# The third boot, full or short; what the guest reports and asks for, and what it is denied.
if [ "${KI_L2_SHORT:-0}" = 1 ] || { [ "${KI_RIG:-}" = bochs ] && [ "${KI_BOCHS_FULL:-0}" != 1 ]; }; then
	third=3s want_checks=34 want_steps=11 want_denied=7
else
	third=3 want_checks=45 want_steps=14 want_denied=8
fi
modprobe "$vendor" && modprobe kvm_isolate || { echo "Bail out! modprobe failed"; exit 1; }
before=$(dmesg | wc -l)
# VMFUNC is offered to a guest where the host has EPTP switching (caps), nowhere else.
if grep -qx 'vmfunc_eptp_switching: yes' "$CAPS"; then vmfunc=yes; else vmfunc=no; fi

# The guest's console: its output through the fifo $OUTF to the loop below, which keeps it in
# $OUT; its input from the fifo $IN (the host's answers).
rm -f "$IN" "$OUTF" /tmp/l2_guest_test.steps /tmp/l2_guest_test.entries
mkfifo "$IN" "$OUTF"
exec 3<>"$IN"
: >"$OUT"
# The time since QEMU started, in $t (one decimal), with no process of its own: the loop runs
# it for each line of the guest's.
since() {
	read -r up _ </proc/uptime
	e=$((${up%.*} * 100 + 10#${up#*.} - t0))
	t=$((e / 100)).$((e % 100 / 10))
}
t=0; t0=0; since; t0=$e
$QEMU -M microvm -accel kvm -cpu host -smp 1 -m 256M -nodefaults -no-user-config \
	-display none -serial stdio -L /usr/share/qemu \
	-kernel /l2/bzImage -initrd /l2/initrd.cpio \
	-append "console=ttyS0 panic=-1 quiet loglevel=1 pci=off" >"$OUTF" 2>&1 <&3 &
qemu=$!
exec 4<"$OUTF"

x100() { echo "$(($1 / 100)).$(printf %02d $(($1 % 100)))"; }   # N/100 with two decimals
# The host's side of each step the guest asks for; what it prints last is the answer for the
# steps that ask something (boot, domains), else the answer is "done".
denied0=
violations0=
per_call=
exits0=
hypercalls0=
gate_x100=
gate_hc_x100=
step() {
	vm=$(vm_col ID)
	case $1 in
	boot) b=$(grep -c '^@l2 up ' "$OUT"); [ "$b" = 3 ] && b=$third; echo "$b" ;;
	domains) vm_col DOMAINS ;;
	learn) kvm-isolatectl mode "$vm" learn --deny gp >&2 ;;
	enforce)
		kvm-isolatectl profile export "$vm" >/tmp/l2_guest_test.profile
		grep -c '"gva"' /tmp/l2_guest_test.profile >>/tmp/l2_guest_test.entries
		kvm-isolatectl mode "$vm" enforce --deny gp >&2
		violations0=$(vm_col VIOLATIONS) ;;
	count)
		denied0=$(vm_col DENIED)
		# VM exits about the domain per call of the keeper (20 calls since enforce).
		per_call=$((($(vm_col VIOLATIONS) - violations0) / 20))
		echo "VM exits about the keeper's domain per keeper call: $per_call" >&2 ;;
	import) # the first boot's profile into this boot: what it names by module is found where
		# the module is now, which the kernel checks (an entry point outside the domain's code
		# is ENOENT); by address alone, those whose gpa the reboot changed would not fit
		kvm-isolatectl profile import "$vm" /tmp/l2_guest_test.profile >&2 &&
		kvm-isolatectl profile export "$vm" >/tmp/l2_guest_test.after &&
		echo "entry points whose gpa the reboot changed: $(grep '"gpa"' /tmp/l2_guest_test.profile |
			grep -vcxFf /tmp/l2_guest_test.after)" >&2 &&
		grep -c '"offset"' /tmp/l2_guest_test.after ;;
	exits) # KVM's counts of the VM's exits and hypercalls (debugfs); the second time, per
		# call since the first (10000 calls), times 100
		e=$(cat /sys/kernel/debug/kvm/"$qemu"-*/exits | head -n 1)
		h=$(cat /sys/kernel/debug/kvm/"$qemu"-*/hypercalls | head -n 1)
		if [ -z "$exits0" ]; then exits0=$e; hypercalls0=$h; echo "$e"; else
			gate_x100=$(((e - exits0) / 100))
			gate_hc_x100=$(((h - hypercalls0) / 100))
			echo "VM exits per call through the keeper's gate: $(x100 $gate_x100)" \
				"($((e - exits0)) for 10000 calls), hypercalls $(x100 $gate_hc_x100)" >&2
			echo "$gate_x100"
		fi ;;
	log) kvm-isolatectl log "$vm" >/tmp/l2_guest_test.log
	     kvm-isolatectl show "$vm" >/tmp/l2_guest_test.show ;;
	*) echo "unknown step '$1'" >&2; return 1 ;;
	esac
}
# The guest's time: the plan's for this test (KI_TIMEOUT, which the sanitizer rig doubles), less
# 30 s for the results and the host's log of a guest that did not finish.
limit=$((${KI_TIMEOUT:-450} - 30))
end=$((SECONDS + limit))
cr=$(printf '\r')
# Each line of the guest's console as it comes (the loop waits in read, with no polling that
# would take the emulated CPU from the guest): the lines for the test shown (a run that hangs
# shows where), each step the guest asks for done and answered.
while [ $SECONDS -lt $end ] && { IFS= read -r -t $((end - SECONDS)) line <&4 || [ -n "$line" ]; }; do
	line=${line%"$cr"}
	printf '%s\n' "$line" >>"$OUT"
	case $line in '@l2 '*) since; echo "# L2 ${t}s| $line" ;; *) continue ;; esac
	case $line in '@l2 wait '*) ;; *) continue ;; esac
	s=${line#@l2 wait }
	if step "$s" >/tmp/l2_guest_test.answer 2>/tmp/l2_guest_test.step; then
		a=$(tail -n 1 /tmp/l2_guest_test.answer)
		[ -n "$a" ] || a=done
	else a=failed; fi
	sed "s/^/# host $s: /" /tmp/l2_guest_test.step | tee -a /tmp/l2_guest_test.steps
	since
	echo "# host $s: answered $a (at ${t}s)" | tee -a /tmp/l2_guest_test.steps
	echo "$a" >&3
	line=
done
if kill -0 $qemu 2>/dev/null; then
	echo "# the L2 guest did not finish in $limit s; its VM on the host:"
	vm=$(vm_col ID)
	{ kvm-isolatectl show "$vm"; kvm-isolatectl log "$vm" --max 20; } 2>&1 | sed 's/^/# /'
fi
kill $qemu 2>/dev/null
wait $qemu
rc=$?
exec 3>&- 4<&-
rm -f "$IN" "$OUTF"

check "L2 Linux boots under QEMU on the host's KVM" has '@l2 up'
check "modprobe kvm_isolate_guest in the L2 guest" has '@l2 modprobe ok'
check "the guest module finds the host's kvm-isolate, ABI 1, VMFUNC $vmfunc" \
	has "@l2 dmesg .*kvm_isolate_guest: kvm-isolate ABI 1, features .*(VMFUNC $vmfunc,"
# Where the host offers #VE (Bochs), the guest module checks it end to end before it loads.
if [ $vmfunc = yes ]; then
	check "a #VE in the L2 guest, taken by the guest module's handler (no VM exit)" \
		has "@l2 dmesg .*kvm_isolate_guest: #VE self-test: 1 #VE in view 1 at gpa"
else
	n=$((n + 1))
	echo "ok $n # SKIP a #VE in the L2 guest: the host offers no #VE without EPTP switching"
fi
# If the keeper's own code oopsed (a denial of its code: an entry or a return the engine did not
# match), the guest's whole kernel log and the host's log of the VM (view, RIP, gpa), to diagnose
# it. (Until patch 0020, an interrupt between the keeper's call out and its target's first fetch
# made its return be denied now and then on the sanitizer host.)
if grep '^@l2 bad RIP: 0010:ki_keeper_read+0x' "$OUT" | grep -vq '+0x4/'; then
	grep '^@l2 trace ' "$OUT" | sed 's/^@l2 trace /# L2 trace: /'
	sed 's/^/# host log: /' /tmp/l2_guest_test.log
fi
# Each result the guest reported, and that it reported them all.
grep '^@l2 check ' "$OUT" | tr -d '\r' | sed 's/^@l2 check //' >/tmp/l2_guest_test.checks
# (A kernel message may end a line: the console prints the second boot's last oops and panic.)
while IFS= read -r line; do
	case $line in
	*": ok"*) ok "L2: ${line%%: ok*}" ;;
	*) not_ok "L2: ${line%%: failed*}"; grep '^@l2 out ' "$OUT" | sed 's/^@l2 out /# /' ;;
	esac
done </tmp/l2_guest_test.checks
check "the guest reported all $want_checks of its checks, over three boots" \
	test "$(wc -l </tmp/l2_guest_test.checks)" = $want_checks
if [ $third = 3s ]; then
	n=$((n + 1))
	echo "ok $n # SKIP L2: the full third boot's 11 checks (kernel API, profile import, lock):" \
		"the QEMU rig runs them (on Bochs KI_BOCHS_FULL=1 runs them too)"
fi
host_steps() { # the guest asked for its steps over its three boots, and the host did each
	cat /tmp/l2_guest_test.steps
	[ "$(grep -c '^@l2 host did ' "$OUT")" = $want_steps ] &&
		! grep -q '^@l2 host did .*: failed' "$OUT"
}
check "the host did the $want_steps steps the guest asked for (kvm-isolatectl)" host_steps
# The gate: a call enters the keeper's view and leaves it by VMFUNC where the host offers it,
# with no VM exit (what remains is the rest of the guest's, its timer's: well under one per
# call); elsewhere by the SWITCH hypercall: two hypercalls per call (the rest of the exits are
# the guest's timer, more of them on a slower host), against 13 or more exits through the
# host's entry gates.
gate_cost() {
	echo "per call through the gate, times 100: exits '$gate_x100', hypercalls" \
		"'$gate_hc_x100' (VMFUNC $vmfunc)"
	[ -n "$gate_x100" ] && [ -n "$gate_hc_x100" ] || return 1
	if [ $vmfunc = yes ]; then [ "$gate_x100" -lt 50 ] && [ "$gate_hc_x100" -lt 10 ]
	else [ "$gate_hc_x100" -ge 195 ] && [ "$gate_hc_x100" -le 205 ]; fi
}
if [ $vmfunc = yes ]; then
	check "a call through the keeper's gate costs no VM exit (VMFUNC)" gate_cost
else
	check "a call through the keeper's gate costs two SWITCH hypercalls" gate_cost
fi
# The keeper's own code is the only code that reads its key: learning its workload finds no
# kernel code to allow (a rule would show any that does).
learned() { cat /tmp/l2_guest_test.profile; grep -q '"rules": \[\]' /tmp/l2_guest_test.profile; }
check "learning the keeper's workload found only its own code using the key (no rule)" learned
# A return into the keeper that the engine does not match to a call out of it is learned as an
# entry point in learn mode (and denied under enforcement): the profile of each boot has exactly
# the entry points the guest registered.
no_learned_entry() {
	want=$(grep '^@l2 domain ' "$OUT" | head -n 1 | sed 's/.* entries //' | tr -d '\r')
	echo "entry points registered: $want; in each boot's profile:"; cat /tmp/l2_guest_test.entries
	[ -n "$want" ] && [ "$(sort -u /tmp/l2_guest_test.entries)" = "$want" ]
}
check "learning learned no entry point: every return into the keeper matched its call" no_learned_entry
no_denial() { # the keeper's workload under enforcement was not denied
	echo "denied before the attacks: $denied0"; [ "$denied0" = 0 ]; }
check "the keeper's workload under enforcement: 0 denials" no_denial
logged() { # the rogue's attacks (8, 7 with a short third boot), denied, about the keeper's domain
	cat /tmp/l2_guest_test.log /tmp/l2_guest_test.show
	# Occurrences, not records: the read after the reboot is the same RIP and gpa as the first
	# one when the key's page comes back at the same gpa, and the log compresses the repeat.
	[ "$(awk '$11 == "denied" && $5 == 1 && $6 == "ki_keeper" { n += $12 } END { print n + 0 }' \
		/tmp/l2_guest_test.log)" -ge $want_denied ]
}
check "the host's log has the rogue's $want_denied denied attacks, domain ki_keeper" logged
# The guest names its code to the host (KVM_HC_ISOLATE_CODE_NAME: each module as it loads, and
# the kernel's text from its _stext, where KASLR put it): show lists what it names now, and the log names where
# each denied access ran, by the name of that time (a rogue's record from the first boot too).
code_named() {
	cat /tmp/l2_guest_test.show
	text=$(sed -n 's/^@l2 kernel _stext //p' "$OUT" | tail -n 1 | tr -d '\r')
	echo "the last boot's _stext: $text"
	grep -q "^vmlinux  *$text " /tmp/l2_guest_test.show &&
		grep -q '^ki_keeper  *0x' /tmp/l2_guest_test.show
}
check "show lists the code the guest names: vmlinux at its _stext, ki_keeper" code_named
log_named() {
	awk '$11 == "denied" { n++; if ($NF ~ /^ki_rogue\+0x/) r++; else if ($NF ~ /^ki_keeper\+0x/) k++
	                       else bad++ }
	     END { print n + 0, "denied records:", r + 0, "in ki_rogue,", k + 0, "in ki_keeper,",
	                 bad + 0, "in code not named"; exit !(n > 0 && r >= 3 && k >= 2 && !bad) }' \
		/tmp/l2_guest_test.log
}
check "the host's log names the code of each denied access: ki_rogue's, or the keeper's it jumped into" \
	log_named
# The guest's own log: the rogue's thread oopsed once per denial (#GP at the rogue's read and
# write, at the keeper's code it called; behind the gate at its reads of the key and of the
# gate's stack, its read after its switch, in the gate's page it called; and at its read in a
# full third boot), and nothing else went wrong.
oopses() {
	grep '^@l2 bad ' "$OUT"
	# Each oops's first RIP: where the guest took the #GP.
	awk '/^@l2 bad .*Oops:/ { n++; want = 1; next }
	     want && /^@l2 bad RIP: 0010:(ki_rogue_attack|ki_keeper_read|ki_keeper_gated_mac_gate_enter)\+/ { good++ }
	     /^@l2 bad RIP: / { want = 0 }
	     /^@l2 bad .*(WARNING:|BUG:)/ { bad++ }
	     END { exit !(n == oopses && good == oopses && !bad) }' oopses=$want_denied "$OUT"
}
check "the guest's logs: $want_denied oopses of the rogue's thread, nothing else" oopses
powered_off() { [ $rc = 0 ] && has '@l2 end' && [ "$(grep -c '^@l2 up ' "$OUT")" = 3 ]; }
check "the guest reboots, panics and powers off (QEMU exit $rc)" powered_off
# The second boot ended in a panic with the gate's domain live: the guest module's panic
# notifier destroyed it (the third boot's first check: the host had none).
panicked() { grep -q '^@l2 panicking' "$OUT" && grep -q 'Kernel panic' "$OUT"; }
check "the second boot panicked with its domain live (panic_on_oops, the rogue's oops)" panicked
# What the guest's protected module costs: VM exits per call through the host's entry gates
# (QEMU and Bochs alike), and through its own gate (VMFUNC on Bochs, SWITCH on QEMU).
echo "# per keeper call under enforcement: $per_call VM exits about its domain"
echo "# per keeper call through its gate: $(x100 "${gate_x100:-0}") VM exits (all of the VM's)," \
	"$(x100 "${gate_hc_x100:-0}") hypercalls"
# What the rig's last check looks for, in what the host logged since this test began.
host_clean() {
	! dmesg | tail -n +$((before + 1)) | grep -E 'WARNING:|BUG:|Oops|general protection|Call Trace:'
}
check "the host's kernel log is clean after the guest" host_clean
# What the guest said, for the log.
grep -E '^@l2 (dmesg|keeper|region|domain|host)' "$OUT" | sed 's/^@l2 /# L2: /'
echo "1..$n"
[ $failed = 0 ] || exit 1
exit 0
