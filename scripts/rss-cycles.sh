#!/usr/bin/env bash
# RSS growth of the all-in-one after N server create/delete cycles
# (issue 9, defect 7: memory must be bounded by live state).
#
#   scripts/rss-cycles.sh [CYCLES]      # default 2000
#   BIN=/path/to/novalog scripts/rss-cycles.sh 2000
#
# Starts `novalog` on a fresh data dir (noauth2, 2 fake hosts), runs 50
# warm-up cycles, reads VmRSS, runs CYCLES more (create, then delete at
# once: a delete pre-empts the build), waits until every server is gone,
# reads VmRSS again and prints both and the growth per deleted server.
set -euo pipefail
CYCLES=${1:-${CYCLES:-2000}}
BIN=${BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/novalog/target}/debug/novalog}
PORT=${PORT:-$((20000 + RANDOM % 20000))}
DATA=$(mktemp -d)
URL=http://127.0.0.1:$PORT
TOKEN=admin:admin
trap 'kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true; rm -rf "$DATA"' EXIT

NOVALOG_API__AUTH_STRATEGY=noauth2 "$BIN" --data-dir "$DATA" --listen 127.0.0.1:$PORT \
  --fake-hosts 2 >"$DATA/novalog.log" 2>&1 &
PID=$!
for _ in $(seq 1 600); do
  curl -sf -o /dev/null "$URL/v2.1/flavors/1" -H "X-Auth-Token: $TOKEN" && break
  sleep 0.2
done
IMAGE=$(curl -sf "$URL/image/v2/images" -H "X-Auth-Token: $TOKEN" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["images"][0]["id"])')

rss_kib() { awk '/^VmRSS:/ {print $2}' /proc/$PID/status; }

cycles() {
  for i in $(seq 1 "$1"); do
    id=$(curl -sf -X POST "$URL/v2.1/servers" -H "X-Auth-Token: $TOKEN" \
      -H 'Content-Type: application/json' \
      -d "{\"server\": {\"name\": \"c$i\", \"flavorRef\": \"1\", \"imageRef\": \"$IMAGE\", \"networks\": \"none\"}}" |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["server"]["id"])')
    curl -sf -o /dev/null -X DELETE "$URL/v2.1/servers/$id" -H "X-Auth-Token: $TOKEN"
  done
}

settle() {
  for _ in $(seq 1 600); do
    n=$(curl -sf "$URL/v2.1/servers?all_tenants=1" -H "X-Auth-Token: $TOKEN" |
      python3 -c 'import json,sys; print(len(json.load(sys.stdin)["servers"]))')
    [ "$n" = 0 ] && return 0
    sleep 0.5
  done
  echo "servers still listed after 5 minutes" >&2
  return 1
}

cycles 50
settle
sleep 2
BEFORE=$(rss_kib)
cycles "$CYCLES"
settle
sleep 2
AFTER=$(rss_kib)
python3 - "$BEFORE" "$AFTER" "$CYCLES" "$BIN" <<'EOF'
import sys
before, after, cycles, binary = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
print(f"{binary}: RSS {before / 1024:.1f} MiB after 50 warm-up cycles, "
      f"{after / 1024:.1f} MiB after {cycles} more create/delete cycles: "
      f"growth {(after - before) / 1024:.1f} MiB, {(after - before) / cycles:.2f} KiB per deleted server")
EOF
