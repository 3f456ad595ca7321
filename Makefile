# The two commands: `make run` (a working gateway on the bundled mock) and `make test` (everything, as CI).
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.DEFAULT_GOAL := help
.PHONY: help run test venv build-dev build-prod lint lint-python lint-rust test-rust test-python docs bench bench-load hyperscan bench-engine

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(BIN)/maturin:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "maturin>=1.9,<2"

venv: $(BIN)/maturin ## create the virtualenv with maturin

build-prod: venv hyperscan ## build the Rust extension in release mode and install the package with its dev tools
	$(BIN)/maturin develop --release --extras dev --quiet

build-dev: venv hyperscan ## build the Rust extension in debug mode (faster to compile)
	$(BIN)/maturin develop --extras dev --quiet

run: build-prod ## start the mock provider and the gateway, print the base URL and a demo key
	$(BIN)/router demo

lint-python: ## ruff check, ruff format check, and stubtest of the router._core stub
	$(BIN)/ruff check python tests benches docs/hooks
	$(BIN)/ruff format --check python tests benches docs/hooks
	$(BIN)/python -m mypy.stubtest router._core

lint-rust: ## cargo fmt --check and clippy -D warnings (the hyperscan feature too: checking needs no libhs)
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --all-features -- -D warnings

lint: lint-python lint-rust ## all linters

docs: ## build the documentation site strictly (broken links, anchors or nav entries fail) into site/
	@# Not --quiet: it hides warnings from the counter that makes --strict fail.
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

hyperscan: ## the system Hyperscan library for the optional `hyperscan` scanner feature (Vectorscan off x86)
	@dpkg -s libhyperscan-dev >/dev/null 2>&1 || dpkg -s libvectorscan-dev >/dev/null 2>&1 || \
		(apt-get update -qq && (apt-get install -y -qq libhyperscan-dev || apt-get install -y -qq libvectorscan-dev))

test-rust: hyperscan ## cargo test, then the scanner tests again on the Hyperscan build
	cargo test --workspace
	cargo test -p router-core --features hyperscan --lib scan::

test-python: ## pytest: unit and end-to-end
	$(BIN)/pytest

test: build-prod lint docs test-rust test-python ## install everything, lint, build the docs, cargo test and pytest (what CI runs)

bench: build-prod ## micro-benchmarks (pytest-benchmark)
	$(BIN)/pytest benches --benchmark-only -o testpaths=benches

bench-engine: hyperscan ## scanner throughput and 4 KiB p99 in Rust: pure-Rust vs Hyperscan wake-up pass vs the engine's pick, side by side
	cargo run --release -p router-core --features hyperscan --example scan_throughput

bench-load: build-prod ## load benchmark: gateway vs bare proxies vs direct, on the mock and on nginx
	@command -v wrk >/dev/null && command -v nginx >/dev/null || \
		(apt-get update -qq && apt-get install -y -qq wrk nginx-light)
	$(BIN)/python benches/load.py --upstream mock
	$(BIN)/python benches/load.py --upstream nginx
