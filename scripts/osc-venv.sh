#!/usr/bin/env bash
# Creates, once, the virtualenv with python-openstackclient that the
# openstackclient test (tests/tests/openstackclient.rs) drives:
# $NOVALOG_CACHE/osc-venv/bin/openstack. Installs python3-venv with apt-get
# when the interpreter cannot make virtualenvs (a bare Debian cannot).
#
#   scripts/osc-venv.sh          make sure it exists; prints the openstack path
#
# Environment:
#   NOVALOG_CACHE   cache root (default ~/.cache/novalog)
#   OSC_VERSION     pip requirement for the client (default: the newest)
set -euo pipefail
NOVALOG_CACHE=${NOVALOG_CACHE:-$HOME/.cache/novalog}
venv="$NOVALOG_CACHE/osc-venv"
openstack="$venv/bin/openstack"

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if [ -x "$openstack" ] && "$openstack" --version >/dev/null 2>&1; then
  echo "$openstack"
  exit 0
fi

if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  echo "osc-venv: installing python3 and python3-venv" >&2
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >&2
fi

echo "osc-venv: creating $venv with python-openstackclient (once)" >&2
rm -rf "$venv"
mkdir -p "$NOVALOG_CACHE"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --upgrade pip >&2
"$venv/bin/pip" install --quiet "${OSC_VERSION:-python-openstackclient}" >&2
"$openstack" --version >&2
echo "$openstack"
