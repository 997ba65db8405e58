# SPDX-License-Identifier: GPL-2.0
# kvm-isolate: memory views for KVM guests. See README.md.
#
#   make demo    the main job: build everything, boot the host kernel in an emulator, show kvm_isolate
#   make check   every test: cargo tests, the builds, both emulator rigs (QEMU SVM+NPT, Bochs VMX+EPT)
#
# Builds are cached under $(KVM_ISOLATE_CACHE) (default ~/.cache/kvm-isolate), keyed by kernel
# version, patch series and config; results and logs go to ./build.

SHELL := /bin/bash
S := scripts

.PHONY: demo check deps kernel selftests series cargo-test clean clean-cache help

help:
	@sed -n '3,8p' Makefile | sed 's/^# \{0,1\}//'

demo:
	@$(S)/demo.sh

check:
	@$(S)/check.sh

deps:
	@$(S)/deps.sh

kernel: deps
	@$(S)/build-kernel.sh

selftests: deps
	@$(S)/build-selftests.sh "$$($(S)/build-kernel.sh)"

cargo-test:
	cargo test --workspace

series:
	@$(S)/series.sh build/series

clean:
	rm -rf build target

clean-cache:
	rm -rf "$${KVM_ISOLATE_CACHE:-$$HOME/.cache/kvm-isolate}"
