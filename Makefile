# Novalog — see README.md. Everything a fresh Debian machine needs is
# installed by `make deps` (called by run, test and bench).

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

.PHONY: run test bench soak deps build fmt lint clean-data

run: deps build
	$(CARGO_TARGET_DIR)/debug/novalog --data-dir $(DATA) --listen $(LISTEN) --fake-hosts $(FAKE_HOSTS)

# Builds once, starts the Kafka-protocol test broker, runs every test (both
# log backends), and stops the broker whatever happened.
test: deps build
	@set -o pipefail; \
	scripts/broker.sh start || exit 1; \
	trap 'scripts/broker.sh stop' EXIT; \
	cargo fmt --all -- --check && \
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
	@scripts/deps.sh

build:
	cargo build --workspace --all-targets

fmt:
	cargo fmt --all

# Clippy shares the target directory, so RocksDB is not built again.
lint:
	cargo clippy --workspace --all-targets -- -D warnings

clean-data:
	rm -rf $(DATA)
