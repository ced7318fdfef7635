# SPDX-License-Identifier: GPL-2.0
#
# virtio-rs: Rust virtio guest drivers for Linux 6.12.
#
#   make run      build what is missing, boot a guest with every seed device,
#                 print which driver (C or Rust) bound each one
#   make check    build what is missing, run the selftests in guests (two at
#                 a time on two CPUs); last line: "N passed, N failed, N skipped"
#
# Everything real lives in scripts/; this file only names the steps.

FLAVOUR   ?= debug
TRANSPORT ?= pci
RING      ?= split
DEVICES   ?= all
DRIVERS   ?= mixed
SUITE     ?=
FULL      ?=
CHECK_JOBS ?=
DEVICE    ?=
ROUNDS    ?=

S := scripts

.PHONY: help deps kernel modules guest run shell check bench lint clean distclean

help:
	@echo "make run      build what is missing, boot a guest with every seed device, print the device report"
	@echo "make check    build what is missing, run the selftests in guests; last line: N passed, N failed, N skipped"
	@echo "other targets: deps kernel modules guest shell bench lint clean distclean"
	@echo "variables: FLAVOUR=debug|release TRANSPORT=pci|pci-legacy|mmio RING=split|packed"
	@echo "           DEVICES=all|rng,blk,... DRIVERS=mixed|rust|c|none SUITE=name[,name]"
	@echo "           FULL=1 (make check: the longer matrix) CHECK_JOBS=N (make check: vCPUs busy at once)"

deps:
	@$(S)/deps.sh

kernel: deps
	@$(S)/kernel.sh $(FLAVOUR)

modules: kernel
	@$(S)/modules.sh $(FLAVOUR)

guest: modules
	@$(S)/initramfs.sh $(FLAVOUR)

run: guest
	@$(S)/vm --flavour $(FLAVOUR) --transport $(TRANSPORT) --ring $(RING) \
		--devices $(DEVICES) --drivers $(DRIVERS) -- vrs-report

shell: guest
	@$(S)/vm --shell --flavour $(FLAVOUR) --transport $(TRANSPORT) --ring $(RING) \
		--devices $(DEVICES) --drivers $(DRIVERS)

check: FLAVOUR = debug
check: guest
	@$(S)/vm --help >/dev/null
	@build/venv/bin/python3 $(S)/check.py $(if $(SUITE),--suite $(SUITE)) \
		$(if $(filter-out 0 no,$(FULL)),--full) $(if $(CHECK_JOBS),-j $(CHECK_JOBS))

bench: FLAVOUR = release
bench: guest
	@build/venv/bin/python3 $(S)/bench.py $(if $(DEVICE),--device $(DEVICE)) $(if $(ROUNDS),--rounds $(ROUNDS))

lint: modules
	@$(S)/lint.sh $(FLAVOUR)

clean:
	rm -rf build/modules-* build/initramfs-* build/runs build/logs build/check build/bench-smoke

distclean:
	rm -rf build
