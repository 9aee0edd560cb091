# nicqual build and test entry points. `make test` is what CI runs (.ci/run).
CARGO ?= cargo
export CARGO_TERM_COLOR ?= never
# Marks every process a make run starts, so `no-qemu-left` finds this run's QEMUs only.
ifndef NICQUAL_RUN_ID
NICQUAL_RUN_ID := make-$(shell od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
endif
export NICQUAL_RUN_ID

.PHONY: all build test deps lint unit qualify-smoke qemu-smoke qemu11-smoke no-qemu-left example test-vfio test-guest-driver test-lava fuzz-smoke soak-smoke release clean

all: build

build:
	$(CARGO) build --release --workspace

release: build

## Everything CI checks: packages, formatting, lints, all test suites.
test: deps lint unit qualify-smoke qemu-smoke qemu11-smoke example test-vfio test-guest-driver test-lava fuzz-smoke soak-smoke
	$(MAKE) no-qemu-left

deps:
	bash scripts/install-deps.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --workspace --no-deps

unit:
	$(CARGO) test --workspace --release

## The README's first command, run for real: healthy model must pass, a lost vector must fail.
qualify-smoke: build
	./target/release/nicqual qualify --quiet
	! ./target/release/nicqual qualify --quiet --faults tests/faults/lose-vector-1.toml >/dev/null
	! ./target/release/nicqual qualify --quiet --queues 2 --fault lose-vector:4 >/dev/null
	./target/release/nicqual qualify --quiet --device model:bnx2x
	! ./target/release/nicqual qualify --quiet --device model:bnx2x --fault lose-vector:2 >/dev/null
	! ./target/release/nicqual qualify --quiet --device model:bnx2x --fault hostile-cqe:5 >/dev/null
	./target/release/nicqual qualify --quiet --device model:enic
	! ./target/release/nicqual qualify --quiet --device model:enic --fault lose-vector:0 >/dev/null
	! ./target/release/nicqual qualify --quiet --device model:enic --fault hostile-completion:40 >/dev/null

## QEMU's e1000e as an oracle, the README's commands run for real (the QEMU-backed cargo
## suites run in `unit`). No QEMU is an error naming the package, never a skip.
qemu-smoke: build
	@command -v $${NICQUAL_QEMU:-qemu-system-x86_64} >/dev/null || { echo "qemu-smoke: no QEMU; as root: apt-get install -y qemu-system-x86 (or make deps)" >&2; exit 1; }
	./target/release/nicqual qualify --quiet --device qemu:e1000e
	./target/release/nicqual conformance --quiet >/dev/null

## QEMU 11.1 (Debian forky root, scripts/forky-root.sh; `make deps` builds it) as the second
## oracle, on its virtual clock: qualify with the datasheet bounds. The conformance run in
## qemu-smoke and the cargo suites in `unit` use it too. A missing root is an error naming
## the command that builds it, never a skip.
qemu11-smoke: build
	@bash scripts/forky-root.sh path >/dev/null || { echo "qemu11-smoke: no QEMU 11 root; as root: bash scripts/forky-root.sh build (or make deps)" >&2; exit 1; }
	./target/release/nicqual qualify --quiet --device qemu11:e1000e

## After the suites: no QEMU this run started is still running, no forky-root mount is left.
no-qemu-left:
	bash scripts/no-qemu-left.sh

## The driver authors' example (driver/nics/examples/first_frame.rs) on both devices: one
## frame through MAC loopback, compared byte for byte; non-zero exit on any failure.
example:
	$(CARGO) run --release -p nicqual-nics --example first_frame -- model:i82574l
	$(CARGO) run --release -p nicqual-nics --example first_frame -- qemu:e1000e

## The VFIO backend against real kernel VFIO: a Debian kernel under QEMU with an emulated
## IOMMU and two e1000e NICs (tools/tests/vfio_guest.rs; about 30 s of TCG).
test-vfio:
	$(CARGO) test --release -p nicqual --test vfio_guest -- --ignored --nocapture

## Linux's e1000e against the 82574L model served over vfio-user (QEMU 11.1, forky root).
test-guest-driver:
	$(CARGO) test --release -p nicqual --test guest_driver -- --ignored --nocapture --test-threads=1

## LAVA's own dispatcher (Debian's lava-dispatcher, `lava-run`, no server) runs
## lava/jobs/qemu-nicqual.yaml: the VFIO guest booted by LAVA, lava/nicqual-qualify.yaml run
## twice (the e1000e through VFIO; the model with a lost vector); the results are read from
## LAVA's log and checked here (scripts/test-lava.sh; about 2 minutes, docs/LAB.md).
test-lava: build
	bash scripts/test-lava.sh

## Every cargo-fuzz target, bounded (FUZZ_SECS each, default 45); fails on any crash.
fuzz-smoke:
	bash scripts/fuzz-smoke.sh

## A 20-second fault soak (seeded): every frame delivered or dropped with a reason.
soak-smoke: build
	./target/release/nicqual --quiet soak --duration 20s --seed 2026

clean:
	$(CARGO) clean
