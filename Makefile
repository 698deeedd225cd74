# kpack-py developer entry points. `make test` does all of its own set-up on a fresh machine:
# envtest binaries (built once into .cache/), Debian packages, the virtualenv (with the native extension, built
# by cargo: Rust comes with the machine), then lint, types and tests.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := test

VENV := .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
DEBIAN_PACKAGES := etcd-server docker-registry git skopeo openssh-server
# Reinstalled (and the native extension rebuilt) when the project or the Rust sources change.
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml native/Cargo.toml native/Cargo.lock native/src/*.rs | md5sum | cut -c1-12)
# Rust builds are kept across runs (a clean build of the extension takes about a minute). rustup installs cargo in
# ~/.cargo/bin, which a non-login shell (CI's) may not have on its PATH.
export CARGO_TARGET_DIR := $(CURDIR)/.cache/cargo-target
export PATH := $(HOME)/.cargo/bin:$(PATH)

.PHONY: test lint typecheck pytest unit integration bench run envtest cosign packages venv clean

## test: set everything up, then ruff, mypy and the whole pytest suite (unit and integration)
test: envtest packages venv lint typecheck pytest

## envtest: kube-apiserver, kubectl and etcd for envtest (KUBEBUILDER_ASSETS, or built from Go modules once)
envtest:
	@hack/setup-envtest.sh >/dev/null

## cosign: the cosign CLI the integration tests verify signatures with (built once from its Go module)
cosign:
	@hack/setup-cosign.sh >/dev/null

packages:
	@hack/install-packages.sh $(DEBIAN_PACKAGES)

venv: $(STAMP)
$(STAMP): pyproject.toml
	@command -v cargo >/dev/null || { echo "make: cargo not found: install Rust (https://rustup.rs) to build native/" >&2; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	@$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

lint: venv
	$(VENV)/bin/ruff check kpack_core kpack_controllers kpack_webhooks tests
	$(VENV)/bin/ruff format --check kpack_core kpack_controllers kpack_webhooks tests
	cargo fmt --manifest-path native/Cargo.toml --check
	cargo clippy --quiet --manifest-path native/Cargo.toml --release -- -D warnings

typecheck: venv
	$(VENV)/bin/mypy

pytest: envtest cosign packages venv
	KUBEBUILDER_ASSETS="$$(hack/setup-envtest.sh)" COSIGN_BIN="$$(hack/setup-cosign.sh)" $(PY) -m pytest $(PYTEST_ARGS)

unit: venv
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

integration: envtest cosign packages venv
	KUBEBUILDER_ASSETS="$$(hack/setup-envtest.sh)" COSIGN_BIN="$$(hack/setup-cosign.sh)" $(PY) -m pytest tests/integration tests/e2e $(PYTEST_ARGS)

## bench: the benchmarks in tests/benchmarks, each printing one `bench:` line
bench: envtest cosign packages venv
	@if ! ls tests/benchmarks/bench_*.py >/dev/null 2>&1; then echo "bench: no benchmarks yet"; exit 0; fi; \
	KUBEBUILDER_ASSETS="$$(hack/setup-envtest.sh)" $(PY) -m pytest tests/benchmarks -s \
	  -o python_files='bench_*.py' $(PYTEST_ARGS)

## run: arrives with the controllers (see README); until then it starts the local environment only
run:
	@echo "make run arrives with the controller manager; for now: $(PY) -m kpack_core.envtest up --dir .cache/run" >&2
	@exit 2

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
