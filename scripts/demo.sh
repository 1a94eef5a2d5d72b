#!/usr/bin/env bash
# make demo: run the example leaky Go service and `grprof serve` on it (SQLite), show where to
# look, then print the findings as they appear. DEMO_SECONDS (default 60) bounds the run.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${DEMO_SECONDS:-60}"
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

echo "==> building examples/leaky with $(go version | cut -d' ' -f3) (with the goroutineleak profile)"
(cd examples/leaky && GOEXPERIMENT=goroutineleakprofile go build -o "$work/leaky" .)
"$work/leaky" -addr 127.0.0.1:0 -rate 20 >"$work/leaky.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do grep -q '^READY' "$work/leaky.log" && break; sleep 0.1; done
target=$(sed -n 's/^LISTEN //p' "$work/leaky.log")
[ -n "$target" ] || { echo "demo: the example service did not start:"; cat "$work/leaky.log"; exit 1; }

port=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
api="http://127.0.0.1:$port"
.venv/bin/grprof serve --target "$target" --interval 5s --listen "127.0.0.1:$port" --db "$work/grprof.db" \
  >"$work/serve.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -sf "$api/healthz" >/dev/null && break; sleep 0.1; done
cat <<EOT
==> example service (leaks a goroutine per /leaky request): $target
==> grprof serve (SQLite at $work/grprof.db), scraping it every 5s:
      API        $api/api/v1/targets   $api/api/v1/findings
      API docs   $api/docs
      metrics    $api/metrics
==> findings as they appear (for ${seconds}s; Ctrl-C to stop):
EOT
.venv/bin/python scripts/follow_findings.py "$api" "$seconds"
echo
echo "==> $api/metrics (grprof_leak* and grprof_target*):"
curl -s "$api/metrics" | grep -E '^grprof_(leak|target)' | head -12
