# Novalog — see README.md. What a fresh Debian machine needs is installed
# by scripts/deps.sh: `run` only what building and running `novalog` needs,
# `test` and `bench` also the test runner, the Kafka-protocol broker and
# the client and validator virtualenvs.

SHELL := /bin/bash
NOVALOG_CACHE ?= $(HOME)/.cache/novalog
# One target directory outside the checkout, shared by every clone and run:
# RocksDB's C++ is built once, not per clone.
CARGO_TARGET_DIR ?= $(NOVALOG_CACHE)/target
export NOVALOG_CACHE CARGO_TARGET_DIR
DATA ?= $(CURDIR)/data
LISTEN ?= 127.0.0.1:8774
FAKE_HOSTS ?= 8
# The test broker's port (scripts/broker.sh reads the same variable).
NOVALOG_BROKER_PORT ?= 9092
export NOVALOG_BROKER_PORT

.PHONY: run test bench soak deps deps-run build build-run fmt lint clean-data

# Only the `novalog` binary: no test targets, no broker, no virtualenvs.
run: deps-run build-run
	$(CARGO_TARGET_DIR)/debug/novalog --data-dir $(DATA) --listen $(LISTEN) --fake-hosts $(FAKE_HOSTS)

# Builds once, starts the Kafka-protocol test broker, runs every test (both
# log backends), and stops the broker whatever happened. The deploy test
# must find its validators here (deps installed them), not skip; nor may
# the web console's browser test skip for want of Chromium.
test: deps build
	@set -o pipefail; \
	scripts/broker.sh start || exit 1; \
	trap 'scripts/broker.sh stop' EXIT; \
	cargo fmt --all -- --check && \
	NOVALOG_REQUIRE_DEPLOY_TOOLS=1 NOVALOG_REQUIRE_BROWSER=1 \
	NOVALOG_KAFKA_BROKERS=127.0.0.1:$(NOVALOG_BROKER_PORT) cargo nextest run --workspace --no-fail-fast

bench: deps build
	@set -o pipefail; \
	scripts/broker.sh start || exit 1; \
	trap 'scripts/broker.sh stop' EXIT; \
	$(CARGO_TARGET_DIR)/debug/novalog-bench --kafka 127.0.0.1:$(NOVALOG_BROKER_PORT) \
	  --out-json bench/results.json --out-md BENCHMARKS.md

# Not part of `make test`: SOAK_SECONDS (600) of mixed load on Kafka with
# every service in its own process and one killed with SIGKILL every
# SOAK_KILL_EVERY (60) seconds; merges soak_* figures into bench/results.json.
SOAK_SECONDS ?= 600
SOAK_KILL_EVERY ?= 60
soak: deps build
	@set -o pipefail; \
	scripts/broker.sh start || exit 1; \
	trap 'scripts/broker.sh stop' EXIT; \
	NOVALOG_KAFKA_BROKERS=127.0.0.1:$(NOVALOG_BROKER_PORT) SOAK_SECONDS=$(SOAK_SECONDS) \
	SOAK_KILL_EVERY=$(SOAK_KILL_EVERY) SOAK_OUT=$(CURDIR)/bench/results.json \
	cargo nextest run -p novalog-tests --test soak --run-ignored only --no-capture

deps:
	@scripts/deps.sh test

deps-run:
	@scripts/deps.sh run

build:
	cargo build --workspace --all-targets

build-run:
	cargo build -p novalog --bin novalog

fmt:
	cargo fmt --all

# Clippy shares the target directory, so RocksDB is not built again.
lint:
	cargo clippy --workspace --all-targets -- -D warnings

clean-data:
	rm -rf $(DATA)
