#!/usr/bin/env bash
# Installs what Novalog needs on a fresh Debian machine, skipping what is
# already there.
#
#   scripts/deps.sh run    what building and running `novalog` needs (make run):
#                          Debian packages: a C/C++ toolchain and make (RocksDB,
#                          librdkafka), libclang-dev (RocksDB's bindgen),
#                          protobuf-compiler (prost-build); for the libvirt
#                          driver libvirt-dev, libvirt0 and pkg-config (the
#                          `virt` crate links libvirt) and qemu-utils
#                          (qemu-img makes the instance disks).
#   scripts/deps.sh test   the above, plus what the tests need (make test, make bench):
#                          - for the real-guest test of the libvirt driver:
#                            libvirt-daemon-system (libvirtd, virtlogd; the
#                            test starts them, no systemd needed),
#                            qemu-system-x86, busybox-static and cpio (the
#                            guest's initramfs); Debian's qemu-utils of the
#                            same release is installed with QEMU (a newer
#                            qemu-utils conflicts with it);
#                          - cargo-nextest, the test runner;
#                          - tansu, an Apache-Kafka-compatible broker, for the
#                            Kafka-backend tests, built once into
#                            $NOVALOG_CACHE/tansu (20-40 minutes on 2 cores);
#                          - python-openstackclient in a virtualenv (scripts/osc-venv.sh);
#                          - the deploy validators in a virtualenv
#                            (scripts/deploy-tools.sh) and systemd's
#                            systemd-analyze for the units.
# Without an argument: test.
set -euo pipefail
mode=${1:-test}
case "$mode" in run|test) ;; *) echo "usage: $0 [run|test]" >&2; exit 2;; esac
NOVALOG_CACHE=${NOVALOG_CACHE:-$HOME/.cache/novalog}
mkdir -p "$NOVALOG_CACHE"

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

packages=(gcc g++ make libclang-dev protobuf-compiler libvirt-dev libvirt0 pkg-config qemu-utils)
if [ "$mode" = test ]; then
  # systemd-analyze verify checks the units in deploy/systemd; the package
  # installs without a running systemd.
  packages+=(systemd)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
# The real guest's packages, without their recommends (a desktop's worth).
virt=()
if [ "$mode" = test ]; then
  for p in libvirt-daemon-system qemu-system-x86 busybox-static cpio; do
    dpkg -s "$p" >/dev/null 2>&1 || virt+=("$p")
  done
  if [[ " ${virt[*]} " == *" qemu-system-x86 "* ]]; then
    # QEMU and qemu-img of one release: a qemu-utils from elsewhere (a
    # backport) would be removed by QEMU's install and is replaced by the
    # release's own in the same step.
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    virt+=("qemu-utils${codename:+/$codename}")
  fi
fi
if [ ${#missing[@]} -gt 0 ] || [ ${#virt[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]} ${virt[*]}"
  # One apt run at a time on a shared machine: apt's own lock fails a
  # second run instead of making it wait.
  apt=(apt-get)
  command -v flock >/dev/null && apt=(flock /tmp/apt.lock apt-get)
  as_root "${apt[@]}" update -qq
  if [ ${#missing[@]} -gt 0 ]; then
    as_root env DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y -qq "${missing[@]}"
  fi
  if [ ${#virt[@]} -gt 0 ]; then
    as_root env DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y -qq \
      --no-install-recommends --allow-downgrades "${virt[@]}"
  fi
fi

[ "$mode" = run ] && exit 0

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
# docker-compose and kubernetes-validate, for the deploy test.
"$(dirname "$0")/deploy-tools.sh" >/dev/null
