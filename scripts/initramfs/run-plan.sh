#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Run a test plan and print one TAP stream, every line prefixed "@ki " so the rig can pick it
# out of the serial console. Plan lines: "NAME TIMEOUT COMMAND...". A test that prints TAP
# results contributes each of them; otherwise its exit status decides (0 pass, 4 skip).
plan=$1
# Where the runner keeps its files, and kmemleak: other places only for scripts_test.sh on the
# build machine.
tmpd=${KI_PLAN_TMP:-/tmp}
n=0
fails=0
emit() { echo "@ki $*"; }
emit "TAP version 13"
emit "# rig=$KI_RIG kernel=$(uname -r)"
# kmemleak (the sanitizer profile, and the Bochs rig's kmemleak=on): only what the plan leaks
# counts, not what booting left. A kernel that has kmemleak but was booted without it refuses
# every command but "clear" (EPERM): "stack=on" (the default) asks whether it is on.
leaks=${KI_PLAN_LEAKS:-/sys/kernel/debug/kmemleak}
kmemleak=off
if [ -w $leaks ] && echo stack=on 2>/dev/null >$leaks; then
	kmemleak=on
	# No automatic scans while the tests run (the sanitizer kernel's would take a vCPU from
	# them for a minute): the two scans at the end are the check.
	echo scan=off >$leaks
	echo clear >$leaks
	emit "# kmemleak is on: the plan's leaks are checked at its end"
fi
while read -r name timeout cmd; do
	case "$name" in ''|'#'*) continue ;; esac
	if [ "$KI_RIG" = bochs ] && [ "${KI_BOCHS_FULL:-0}" != 1 ] && [ "${name#upstream/}" != "$name" ] &&
		! grep -qx "$name" /ki/bochs.only; then
		continue
	fi
	emit "# === $name"
	start=$(cut -d' ' -f1 /proc/uptime)
	# bash, not "sh": busybox applets would exec busybox's own sh (and its modprobe). In a
	# process group of its own, so that a timeout kills all of it: a kselftest runs each test in
	# a child that would otherwise outlive its killed parent and run on under the next tests.
	# KI_TIMEOUT: the test's time, for a test that stops itself in time to report what it got.
	KI_TIMEOUT=$timeout setsid /bin/bash -c "$cmd" >"$tmpd/out" 2>&1 </dev/null &
	pid=$!
	( sleep "$timeout" & wait; kill -KILL -- -"$pid" 2>/dev/null ) &
	watchdog=$!
	# A heartbeat every 10 s (emulated time) while the test runs: a slow test is not a hung host.
	# Under Bochs a busy test can run minutes of wall time for seconds of its own, silently.
	( t=0; while sleep 10; do t=$((t + 10)); emit "# ... $name still running (${t}s)"; done ) &
	beat=$!
	wait "$pid"
	rc=$?
	# Whatever the test left running goes with it.
	kill -KILL -- -"$pid" 2>/dev/null
	kill "$beat" "$watchdog" 2>/dev/null; wait "$beat" "$watchdog" 2>/dev/null
	end=$(cut -d' ' -f1 /proc/uptime)
	awk '{ print "@ki # " $0 }' "$tmpd/out"   # awk: also ends an unterminated last line
	secs=$(awk "BEGIN { printf \"%.1f\", $end - $start }")
	# Results of the test's own TAP (unindented "ok"/"not ok" lines), renumbered from n+1.
	awk -v base="$n" -v name="$name" -v t="$tmpd" '
		/^(not )?ok [0-9]+/ {
			notok = ($1 == "not"); sub(/^(not )?ok [0-9]+ ?(- )?/, "")
			k++; printf "@ki %s %d %s: %s\n", notok ? "not ok" : "ok", base + k, name, $0
			if (notok && $0 !~ /# (SKIP|TODO)/) bad++
		}
		END { print k + 0 > t "/count"; print bad + 0 > t "/bad" }' "$tmpd/out"
	k=$(cat "$tmpd/count"); bad=$(cat "$tmpd/bad")
	n=$((n + k)); fails=$((fails + bad))
	if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
		n=$((n + 1)); fails=$((fails + 1)); emit "not ok $n $name # timed out after ${timeout}s"
	elif [ "$k" = 0 ]; then
		n=$((n + 1))
		case $rc in
		0) emit "ok $n $name # ${secs}s" ;;
		4) why=$(grep -m1 -i skip "$tmpd/out" || tail -n 1 "$tmpd/out")
		   emit "ok $n $name # SKIP $(echo "$why" | cut -c1-100)" ;;
		*) fails=$((fails + 1)); emit "not ok $n $name # exit status $rc" ;;
		esac
	elif [ "$rc" != 0 ] && [ "$rc" != 4 ] && [ "$bad" = 0 ]; then
		n=$((n + 1)); fails=$((fails + 1)); emit "not ok $n $name # exit status $rc"
	else
		emit "# $name: ${secs}s"
	fi
done <"$plan"

# The host must never WARN, BUG or oops, whatever the tests did.
n=$((n + 1))
if dmesg | grep -E -q 'WARNING:|BUG:|Oops|general protection fault|Call Trace:'; then
	fails=$((fails + 1)); emit "not ok $n kernel log has no warning, bug or oops"
	dmesg | grep -E -B2 -A25 'WARNING:|BUG:|Oops|general protection|Call Trace:' | head -n 80 |
		sed 's/^/@ki # /'
else
	emit "ok $n kernel log has no warning, bug or oops"
fi
if [ $kmemleak = on ] || grep -qw kmemleak=on /proc/cmdline; then
	# Two scans: an object is reported only once it was unreferenced in both. A kmemleak that
	# turned itself off (it does on an internal error) refuses them: that is no clean result.
	n=$((n + 1))
	if [ $kmemleak = off ] || ! { echo scan >$leaks && sleep 5 && echo scan >$leaks; } 2>/dev/null; then
		fails=$((fails + 1)); emit "not ok $n kmemleak finds no leak # kmemleak is off, it cannot scan"
		dmesg | grep -i kmemleak | head -n 20 | sed 's/^/@ki # /'
	elif grep -q unreferenced $leaks; then
		fails=$((fails + 1)); emit "not ok $n kmemleak finds no leak"
		head -n 60 $leaks | sed 's/^/@ki # /'
	else
		emit "ok $n kmemleak finds no leak"
	fi
fi
emit "1..$n"
[ $fails = 0 ]
