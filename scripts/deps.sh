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
#                          (qemu-img makes the instance disks);
#                          noVNC (the npm package @novnc/novnc, with npm) into
#                          $NOVALOG_CACHE/novnc: the page the console proxy serves.
#                          npm, and with it the web console's third-party
#                          assets (a chart library, services/api/dashboard/package.json)
#                          into $NOVALOG_CACHE/dashboard, which the API's build embeds.
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
#                            systemd-analyze for the units;
#                          - chromium and chromium-driver, for the web
#                            console's browser tests.
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
  # The web console's browser tests drive headless Chromium over WebDriver.
  packages+=(chromium chromium-driver)
fi
command -v npm >/dev/null || packages+=(npm)
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

# noVNC, the browser VNC client the console proxy (novalog-novncproxy, and
# novalog's) serves at [vnc] novncproxy_base_url; fetched, not kept in the repo.
NOVNC_VERSION=1.7.0
NOVNC_DIR="$NOVALOG_CACHE/novnc"
if [ ! -f "$NOVNC_DIR/node_modules/@novnc/novnc/core/rfb.js" ] \
   || ! grep -q "\"version\": \"$NOVNC_VERSION\"" "$NOVNC_DIR/node_modules/@novnc/novnc/package.json"; then
  if command -v npm >/dev/null; then
    echo "deps: fetching noVNC $NOVNC_VERSION into $NOVNC_DIR"
    mkdir -p "$NOVNC_DIR"
    npm install --silent --no-audit --no-fund --prefix "$NOVNC_DIR" "@novnc/novnc@$NOVNC_VERSION"
  else
    echo "deps: npm not found: the console proxy serves no noVNC page (install npm, run again)" >&2
  fi
fi

# The web console's third-party assets, from the npm registry at the
# versions package-lock.json pins, into the cache (never the checkout);
# services/api/build.rs embeds them. Installed again when the lock changes.
assets="$(cd "$(dirname "$0")/.." && pwd)/services/api/dashboard"
web="$NOVALOG_CACHE/dashboard"
if ! cmp -s "$assets/package-lock.json" "$web/package-lock.json" \
   || [ ! -d "$web/node_modules/chart.js" ]; then
  echo "deps: installing the web console's assets into $web"
  mkdir -p "$web"
  cp "$assets/package.json" "$assets/package-lock.json" "$web/"
  (cd "$web" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
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
