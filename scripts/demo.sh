#!/usr/bin/env bash
# make demo: run examples/leaky (a Go service that leaks a goroutine per /leaky request) under
# `grprof serve` (embedded SQLite), print the leak grprof finds with its cause, the source line
# and the fix, then restart the service with the fix (-fixed) and follow the goroutine count
# until grprof marks the finding resolved. Needs only Python (.venv) and Go; no root.
# DEMO_SECONDS (default 90) bounds each half.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${DEMO_SECONDS:-90}"
py=.venv/bin/python
work=$(mktemp -d)
leaky_pid="" serve_pid=""
cleanup() {
  for p in $leaky_pid $serve_pid; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

start_leaky() { # start_leaky [-fixed]: on the same port each time, so grprof sees one target
  : >"$work/leaky.log"
  "$work/leaky" -addr "127.0.0.1:$svc_port" -rate 20 "$@" >"$work/leaky.log" 2>&1 &
  leaky_pid=$!
  for _ in $(seq 600); do grep -q "^READY" "$work/leaky.log" && return 0; sleep 0.1; done
  echo "demo: the example service did not start:"; cat "$work/leaky.log"; exit 1
}

free_port() { $py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
svc_port=$(free_port)
port=$(free_port)
api="http://127.0.0.1:$port"
echo "==> web UI: $api/  (fleet, the leak's finding page, flame graph, diff; open it once serve is up)"
echo "==> building examples/leaky with $(go version | cut -d' ' -f3) (GOEXPERIMENT=goroutineleakprofile)"
(cd examples/leaky && GOEXPERIMENT=goroutineleakprofile go build -o "$work/leaky" .)
start_leaky
target="127.0.0.1:$svc_port"

.venv/bin/grprof serve --target "$target" --interval 5s --listen "127.0.0.1:$port" --db "$work/grprof.db" \
  >"$work/serve.log" 2>&1 &
serve_pid=$!
# A first start compiles every module (no .pyc yet): give it up to a minute on a busy machine.
for _ in $(seq 600); do curl -sf "$api/healthz" >/dev/null && break; sleep 0.1; done
curl -sf "$api/healthz" >/dev/null || { echo "demo: grprof serve did not start:"; cat "$work/serve.log"; exit 1; }
cat <<EOT
==> example service: http://$target (its own client sends 20 requests/s; /leaky leaks)
==> grprof serve, scraping it every 5s into SQLite; while it runs:
      $api/api/v1/findings   $api/docs   $api/metrics
==> 1/2 waiting for grprof's verdict (at most ${seconds}s)
EOT
$py scripts/follow_findings.py "$api" "$seconds" leak "$work"

echo "==> 2/2 restarting the service with the fix (examples/leaky -fixed: a buffered channel and"
echo "    the request's context), same address; following it until the finding is resolved"
kill "$leaky_pid"; wait "$leaky_pid" 2>/dev/null || true
start_leaky -fixed
$py scripts/follow_findings.py "$api" "$seconds" resolved "$work"
