#!/usr/bin/env bash
# Record tests/fixtures/pileup/: build tests/goapps/pileup with the machine's Go 1.26, run it
# and scrape /debug/pprof/goroutine over HTTP every 15 s for 7 minutes (29 steps, each in
# debug=2 and debug=1): long enough for the leaks in idle waits to pile up for 5 minutes
# (detect.yaml `persistence.accumulating_min_span_minutes`) and for the runtime's 2-minute
# forced GC to stamp wait ages. Nothing is edited by hand; rerun to regenerate (8 minutes).
#
# Output: tests/fixtures/pileup/{N.goroutine.debug{1,2}.txt,times.json}
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
out="${PILEUP_OUT:-$repo/tests/fixtures/pileup}"
steps="${PILEUP_STEPS:-29}"
interval="${PILEUP_INTERVAL:-15}"
# A fixed build directory keeps the source paths printed in the dumps the same wherever the
# repository is checked out.
work="${TMPDIR:-/tmp}/grprof-record"

go="$("$repo/scripts/go-toolchain.sh" system)"
rm -rf "$work/pileup" "$out.new"
mkdir -p "$work/bin" "$out.new"
cp -r "$here" "$work/pileup"
rm -f "$work/pileup/record.sh"
(cd "$work/pileup" && env GOTOOLCHAIN=local GOFLAGS=-buildvcs=false "$go" build -o "$work/bin/pileup" .)

trap 'pkill -f "$work/bin/pileup" || true' EXIT

log="$work/pileup.out"
"$work/bin/pileup" > "$log" 2>&1 &
pid=$!
for _ in $(seq 100); do grep -q READY "$log" 2>/dev/null && break; sleep 0.1; done
base="$(sed -n 's/^LISTEN //p' "$log")"
times=()
for n in $(seq 0 $((steps - 1))); do
  [ "$n" = 0 ] || sleep "$interval"
  times+=("$(date +%s.%N)")
  curl -fsS "$base/debug/pprof/goroutine?debug=2" -o "$out.new/$n.goroutine.debug2.txt"
  curl -fsS "$base/debug/pprof/goroutine?debug=1" -o "$out.new/$n.goroutine.debug1.txt"
done
printf '{\n  "go_version": "%s",\n  "interval": %s,\n  "times": [%s]\n}\n' \
  "$("$go" env GOVERSION)" "$interval" "$(IFS=,; echo "${times[*]}")" > "$out.new/times.json"
kill $pid
rm -rf "$out"
mv "$out.new" "$out"
du -sh "$out" >&2
