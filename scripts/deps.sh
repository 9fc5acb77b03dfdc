#!/usr/bin/env bash
# Installs what building and testing Novalog needs on a fresh Debian
# machine, skipping what is already there:
#  - Debian packages: libclang-dev (RocksDB's bindgen), protobuf-compiler
#    (prost-build);
#  - cargo-nextest (the test runner) if missing;
#  - tansu, an Apache-Kafka-compatible broker, for the Kafka-backend tests,
#    built once into $NOVALOG_CACHE/tansu (20-40 minutes on 2 cores).
set -euo pipefail
NOVALOG_CACHE=${NOVALOG_CACHE:-$HOME/.cache/novalog}
mkdir -p "$NOVALOG_CACHE"

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
for p in libclang-dev protobuf-compiler; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

if ! cargo nextest --version >/dev/null 2>&1; then
  echo "deps: installing cargo-nextest"
  cargo install cargo-nextest --locked
fi

TANSU="$NOVALOG_CACHE/tansu/bin/tansu"
if [ ! -x "$TANSU" ]; then
  echo "deps: building the tansu broker into $NOVALOG_CACHE/tansu (once; takes a while)"
  cargo install tansu --version 0.6.0 --locked --features dynostore,libsql \
    --root "$NOVALOG_CACHE/tansu" --target-dir "$NOVALOG_CACHE/tansu-target"
  rm -rf "$NOVALOG_CACHE/tansu-target"
fi

# python-openstackclient in a virtualenv, for the openstackclient test.
"$(dirname "$0")/osc-venv.sh" >/dev/null
