# SPDX-License-Identifier: GPL-2.0
# Shared by the rig scripts: follow an emulator's serial log, then extract the TAP stream.

# ki_rig_follow RIG PID SERIAL_LOG OUT_DIR: prints each result as it arrives, waits for the
# emulator to exit, writes OUT_DIR/RIG.tap; returns 0 only if the plan ran to its end.
#
# PID must lead its own process group (start the emulator with setsid): when the console stays
# silent for KI_STALL_TIMEOUT seconds (default 300) the emulated host is taken as hung and the
# whole group is killed. The plan prints a heartbeat every 10 s of emulated time while a test runs,
# so only a frozen host (or one 30 times slower than its own clock) stays silent that long.
ki_rig_follow() {
	local rig=$1 pid=$2 log=$3 out=$4 seen=0 lines size=-1 quiet=0
	while kill -0 "$pid" 2>/dev/null; do
		sleep 2
		if [ "$(stat -c %s "$log" 2>/dev/null || echo 0)" != "$size" ]; then
			size=$(stat -c %s "$log" 2>/dev/null || echo 0) quiet=0
		elif (( (quiet += 2) >= ${KI_STALL_TIMEOUT:-300} )); then
			echo "    [$rig] no console output for ${quiet}s: the emulated host hung; killing it"
			kill -KILL -- -"$pid" 2>/dev/null
		fi
		lines=$(grep -a -E '^@ki (not )?ok |^@ki-end|^@ki # @ki-show' "$log" 2>/dev/null | tr -d '\r' |
			tail -n +$((seen + 1)) || true)
		if [ -n "$lines" ]; then
			printf '%s\n' "$lines" | sed -e "s/^@ki # @ki-show /    | /" -e "s/^@ki-end rc=/    [$rig] plan finished, rc=/" -e "s/^@ki /    [$rig] /"
			seen=$((seen + $(printf '%s\n' "$lines" | wc -l)))
		fi
	done
	wait "$pid" 2>/dev/null || true
	{ grep -a '^@ki ' "$log" || true; } | tr -d '\r' | sed 's/^@ki //' >"$out/$rig.tap"
	if ! grep -a -q '^@ki-end' "$log"; then
		echo "    [$rig] the emulated host did not finish its plan; last console lines ($log):"
		tr -d '\r' <"$log" | tail -n 15 | sed 's/^/      /'
		return 1
	fi
}
