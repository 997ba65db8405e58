# SPDX-License-Identifier: GPL-2.0
# kvm-isolate: the one place for versions, checksums and paths. Sourced by every script.

# Pinned kernel source (Debian's linux-source package).
KI_KVER=7.3.4
KI_KPKG=linux-source-7.3
KI_KPKG_VERSION=7.3.4-1~bpo13+1
KI_KPKG_SHA256=703e369ddd4cce971452f5a593ee55df3a5c10c83caf0fa0df039633ed181ee3
KI_KPKG_SUITE=trixie-backports
KI_KSERIES=7.3          # fallback: newest ${KI_KPKG} of this series

# Pinned userspace tools.
KI_BINDGEN_VERSION=0.73.2
KI_RUSTC=/usr/bin/rustc
KI_LLVM=-19

KI_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KI_CACHE=${KVM_ISOLATE_CACHE:-$HOME/.cache/kvm-isolate}
KI_BINDGEN=${KI_BINDGEN:-$HOME/.cargo/bin/bindgen}
KI_OUT=$KI_TOP/build          # per-clone results (initramfs, logs, TAP); never cached
KI_JOBS=${KI_JOBS:-$(( $(nproc) + 1 ))}

ki_stage() { printf '==> [%s] %s\n' "$(date +%H:%M:%S)" "$*"; }
ki_info() { printf '    %s\n' "$*"; }
ki_warn() { printf '\n!!! WARNING: %s\n\n' "$*" >&2; }
ki_die() { printf '\nerror: %s\n' "$*" >&2; exit 1; }

# Hash of files/dirs given (content and names), for cache keys.
ki_hash() {
	(cd "$KI_TOP" && find "$@" -type f ! -name '*~' -print0 2>/dev/null | LC_ALL=C sort -z |
		xargs -0 sha256sum) | sha256sum | cut -c1-16
}

# Kernel make wrapper: always Debian's rustc, LLVM 19 and the pinned bindgen.
ki_kmake() {
	make LLVM="$KI_LLVM" RUSTC="$KI_RUSTC" BINDGEN="$KI_BINDGEN" "$@"
}

# Run a long command quietly, showing a heartbeat with its last log line; full log kept.
ki_run_logged() {
	local log=$1; shift
	"$@" >"$log" 2>&1 &
	local pid=$! t=0
	while kill -0 "$pid" 2>/dev/null; do
		sleep 1; t=$((t + 1))
		if (( t % 15 == 0 )); then
			printf '    [%4ds] %s\n' "$t" "$(tail -n 1 "$log" | cut -c1-100)"
		fi
	done
	if ! wait "$pid"; then
		tail -n 40 "$log" >&2
		ki_die "command failed: $* (full log: $log)"
	fi
}

# ki_cache_keep DIR: mark DIR (a tree-* or build-* cache directory) as used and delete all but
# the two most recently used of its kind: each tree is ~1.8 GiB, each build ~0.7 GiB.
ki_cache_keep() {
	local dir=$1 kind
	kind=$(basename "$dir"); kind=${kind%%-*}
	touch "$dir"
	ls -dt "$(dirname "$dir")/$kind"-* 2>/dev/null | grep -v '\.tmp$' | tail -n +3 | xargs -r rm -rf
}
