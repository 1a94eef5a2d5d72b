#!/usr/bin/env bash
# make demo: build the example leaky service, run it, let it leak, analyze its live endpoint.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/leaky
mkdir -p build
echo "==> building examples/leaky with $(go version)"
(cd examples/leaky && go build -o ../../$bin .)
log=$(mktemp)
$bin -addr 127.0.0.1:0 -rate 40 >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 50); do grep -q '^LISTEN ' "$log" && break; sleep 0.1; done
base=$(sed -n 's/^LISTEN //p' "$log")
[ -n "$base" ] || { echo "demo: the example service did not start:"; cat "$log"; exit 1; }
echo "==> example service at $base, leaking for 5 seconds..."
sleep 5
url="$base/debug/pprof/goroutine?debug=2"
echo "==> .venv/bin/grprof analyze '$url'"
.venv/bin/grprof analyze "$url" --top 8 --stacks 2
echo
echo "==> the same endpoint as JSON (grprof.report/v1), first group:"
.venv/bin/grprof analyze "$url" --json | .venv/bin/python -c \
  'import json,sys; r=json.load(sys.stdin); g=r["groups"][0]; print(json.dumps({k: g[k] for k in ("count","state","site","created_by")}, indent=2))'
