# The two commands: `make run` (a working gateway on the bundled mock) and `make test` (everything, as CI).
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
# The default build is pure Rust and needs no system library. HYPERSCAN=1 adds the scanner's optional
# Hyperscan wake-up pass (the `hyperscan` cargo feature; needs libhyperscan-dev, which `make hyperscan` installs).
HYPERSCAN ?=
FEATURES := $(if $(HYPERSCAN),--features hyperscan)
HYPERSCAN_DEP := $(if $(HYPERSCAN),hyperscan)
# Whether libhs links here (a C compiler is a build requirement anyway): the hyperscan-feature tests need it.
HAVE_LIBHS := $(shell printf 'int main(void){return 0;}' | $${CC:-cc} -x c - -lhs -o /dev/null 2>/dev/null && echo 1)
# maturin develop runs pip, whose output `--quiet` does not reach.
QUIET_PIP := PIP_QUIET=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WHEELS := target/wheels
# The dashboard's third-party browser files, from npm (ui/package.json, ui/package-lock.json): copied into the
# package, so the wheel serves them and nothing needs Node at run time.
UI_VENDOR := python/router/ui/static/vendor
UI_FILES := $(UI_VENDOR)/uPlot.esm.js $(UI_VENDOR)/uPlot.min.css

.DEFAULT_GOAL := help
.PHONY: help run test services ui venv build-dev build-prod lint lint-python lint-rust test-rust test-python test-postgresql test-hyperscan smoke-wheel docs bench bench-load hyperscan bench-engine bench-engine-rust bench-concurrency

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(BIN)/maturin:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "maturin>=1.9,<2"

venv: $(BIN)/maturin ## create the virtualenv with maturin

build-prod: venv ui $(HYPERSCAN_DEP) ## build the Rust extension in release mode and install the package with its dev tools
	$(QUIET_PIP) $(BIN)/maturin develop --release --extras dev --quiet $(FEATURES)

build-dev: venv ui $(HYPERSCAN_DEP) ## build the Rust extension in debug mode (faster to compile)
	$(QUIET_PIP) $(BIN)/maturin develop --extras dev --quiet $(FEATURES)

run: build-prod ## start the mock provider and the gateway; prints the demo API and admin keys and what to try
	$(BIN)/router demo

ui/node_modules/.package-lock.json: ui/package.json ui/package-lock.json
	cd ui && npm ci --no-audit --no-fund --loglevel=error

$(UI_FILES): ui/node_modules/.package-lock.json
	mkdir -p $(UI_VENDOR)
	cp ui/node_modules/uplot/dist/$(notdir $@) $@

ui: $(UI_FILES) ## the dashboard's browser libraries from npm (uPlot; axe-core for its accessibility test) into the package

lint-python: ## ruff check, ruff format check, and stubtest of the router._core stub
	$(BIN)/ruff check python tests benches docs/hooks
	$(BIN)/ruff format --check python tests benches docs/hooks
	$(BIN)/python -m mypy.stubtest router._core

lint-rust: ## cargo fmt --check and clippy -D warnings (the hyperscan feature too: checking links nothing, so needs no libhs)
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --all-features -- -D warnings

lint: lint-python lint-rust ## all linters

docs: ## build the documentation site strictly (broken links, anchors or nav entries fail) into site/
	@# Not --quiet: it hides warnings from the counter that makes --strict fail.
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

hyperscan: ## opt-in, needs root and apt: the system Hyperscan library for HYPERSCAN=1 (Vectorscan off x86)
	@dpkg -s libhyperscan-dev >/dev/null 2>&1 || dpkg -s libvectorscan-dev >/dev/null 2>&1 || \
		(export DEBIAN_FRONTEND=noninteractive; apt-get update -qq >/dev/null && \
		 (apt-get install -y -qq -o Dpkg::Progress-Fancy=0 libhyperscan-dev >/dev/null || \
		  apt-get install -y -qq -o Dpkg::Progress-Fancy=0 libvectorscan-dev >/dev/null))

# What the tests start for real, from Debian's packages: PostgreSQL and Redis (throwaway instances on loopback
# ports in a temp folder), nginx (a reverse proxy in front of replicas), and Chromium (the dashboard's browser
# tests, driven by Playwright through its executable_path), and npm (the dashboard's browser libraries, `make ui`).
services: ## (root and apt) install the servers the tests start: PostgreSQL, Redis, nginx, Chromium; and npm
	@missing=""; \
	command -v pg_ctlcluster >/dev/null && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v nginx >/dev/null || missing="$$missing nginx-light"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v npm >/dev/null || missing="$$missing npm"; \
	if [ -n "$$missing" ]; then \
		echo "installing from Debian's packages:$$missing"; \
		export DEBIAN_FRONTEND=noninteractive; apt-get update -qq >/dev/null && \
		apt-get install -y -qq -o Dpkg::Progress-Fancy=0 --no-install-recommends $$missing >/dev/null; \
	fi

test-rust: ## cargo test (pure Rust), then the scanner tests on the Hyperscan build where libhs is installed
	cargo test --workspace
ifneq ($(HAVE_LIBHS),)
	cargo test -p router-core --features hyperscan --lib scan::
else
	@echo "libhs is not installed: the hyperscan-feature scanner tests are skipped (make test-hyperscan runs them)"
endif

test-hyperscan: hyperscan ## the scanner tests on the Hyperscan build (installs libhyperscan-dev: root and apt)
	cargo test -p router-core --features hyperscan --lib scan::

test-python: ## pytest: unit and end-to-end
	$(BIN)/pytest

test-postgresql: ## the end-to-end suite again with every gateway on a throwaway PostgreSQL (skips the one_engine tests)
	ROUTER_TEST_ENGINE=postgresql $(BIN)/pytest tests/e2e

smoke-wheel: venv ui $(HYPERSCAN_DEP) ## the release wheel, installed without extras into a fresh virtualenv, serves a chat request
	@rm -f $(WHEELS)/router-*.whl
	$(BIN)/maturin build --release --quiet --interpreter $(BIN)/python --out $(WHEELS) $(FEATURES)
	$(BIN)/python tests/smoke_wheel.py $(WHEELS)/router-*.whl $(if $(HYPERSCAN),--allow-hyperscan)

test: services build-prod lint docs test-rust test-python test-postgresql smoke-wheel ## install everything, lint, build the docs, cargo test, pytest, the end-to-end suite on PostgreSQL, the wheel smoke test (what CI runs)

bench: build-prod ## micro-benchmarks (pytest-benchmark)
	$(BIN)/pytest benches --benchmark-only -o testpaths=benches

bench-engine: hyperscan ## (root and apt: installs libhs) scanner throughput and 4 KiB p50/p99 in Rust (prose, and digit-heavy mixes: prose with numbers, Python, JSON logs, CSV): pure-Rust vs Hyperscan wake-up pass vs the engine's pick, side by side
	cargo run --release -p router-core --features hyperscan --example scan_throughput

bench-engine-rust: ## the same scanner benchmark on the default pure-Rust build (no Hyperscan needed)
	cargo run --release -p router-core --example scan_throughput

bench-load: build-prod ## load benchmark: gateway vs bare proxies vs direct, on the mock and on nginx
	@command -v wrk >/dev/null && command -v nginx >/dev/null || \
		(apt-get update -qq && apt-get install -y -qq wrk nginx-light)
	$(BIN)/python benches/load.py --upstream mock
	$(BIN)/python benches/load.py --upstream nginx
	@if command -v go >/dev/null; then $(BIN)/python benches/load_pinned.py; \
	else echo "benches/load_pinned.py skipped: it needs Go (https://go.dev/dl/) for its upstream"; fi

bench-concurrency: build-prod ## long streams and 1,000-4,000 requests in flight through one pinned worker, vs a do-nothing forwarder (needs go and taskset; QUICK=1: under a minute; PEER=bifrost: and Bifrost, see benches/concurrency/build_bifrost.sh)
	@command -v go >/dev/null || (echo "bench-concurrency needs Go (https://go.dev/dl/) for its upstream and load generator" && exit 1)
	$(BIN)/python benches/concurrency.py $(if $(QUICK),--quick) $(if $(PEER),--peer $(PEER))
