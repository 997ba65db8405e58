#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Build the host tool kvm-isolatectl (tools/kvm-isolatectl), statically linked so that it runs in
# the test initramfs, into BUILD_DIR/tools/. Cargo's build cache is kept under the kvm-isolate cache.
#   build-tools.sh BUILD_DIR
set -euo pipefail
. "$(dirname "$0")/config.sh"

build=$1
mkdir -p "$build/tools"
ki_stage "tools: building kvm-isolatectl (static)"
export CARGO_TARGET_DIR=$KI_CACHE/cargo-tools
(cd "$KI_TOP" && export RUSTFLAGS="-C target-feature=+crt-static" &&
	ki_run_logged "$build/tools.log" cargo build --release --locked -p kvm-isolatectl --target x86_64-unknown-linux-gnu)
cp "$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release/kvm-isolatectl" "$build/tools/"
ki_info "tools: $build/tools/kvm-isolatectl ($(( $(stat -c %s "$build/tools/kvm-isolatectl") / 1024 )) KiB)"
