#!/usr/bin/env bash
# Creates, once, the validators the deploy test (tests/tests/deploy.rs)
# runs over deploy/, in $NOVALOG_CACHE/deploy-tools/bin:
#  - docker-compose (`docker-compose config` parses a compose file and
#    checks it against the compose schema without a Docker engine);
#  - kubernetes-validate (Kubernetes manifests against the API's schemas,
#    which it ships: no cluster, no network).
# Each in a virtualenv of its own: docker-compose 1.29.2 pins jsonschema < 4,
# kubernetes-validate needs >= 4. docker-compose also pins PyYAML < 6, whose
# source build needs Cython < 3. Prints the bin directory.
#
# Environment:
#   NOVALOG_CACHE   cache root (default ~/.cache/novalog)
set -euo pipefail
NOVALOG_CACHE=${NOVALOG_CACHE:-$HOME/.cache/novalog}
root="$NOVALOG_CACHE/deploy-tools"

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if [ -x "$root/bin/docker-compose" ] && [ -x "$root/bin/kubernetes-validate" ]; then
  echo "$root/bin"
  exit 0
fi

if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  echo "deploy-tools: installing python3 and python3-venv" >&2
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >&2
fi

echo "deploy-tools: creating $root (once)" >&2
rm -rf "$root"
mkdir -p "$root/bin"
constraints=$(mktemp)
trap 'rm -f "$constraints"' EXIT
echo 'cython<3' > "$constraints"
# venv name, requirement, executable
for tool in "compose docker-compose==1.29.2 docker-compose" \
            "kubernetes kubernetes-validate==1.37.0 kubernetes-validate"; do
  set -- $tool
  python3 -m venv "$root/$1"
  "$root/$1/bin/pip" install --quiet --upgrade pip >&2
  # pip 25.3 and later no longer apply PIP_CONSTRAINT to the isolated
  # build environments that build PyYAML's wheel: PIP_BUILD_CONSTRAINT does.
  PIP_CONSTRAINT="$constraints" PIP_BUILD_CONSTRAINT="$constraints" \
    "$root/$1/bin/pip" install --quiet "$2" >&2
  ln -sf "$root/$1/bin/$3" "$root/bin/$3"
done
echo "$root/bin"
