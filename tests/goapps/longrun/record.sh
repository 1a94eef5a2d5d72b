#!/usr/bin/env bash
# Record tests/fixtures/longrun/: build tests/goapps/longrun with the machine's Go 1.26, run it
# twice side by side and scrape /debug/pprof/goroutine of each over HTTP every 30 s for 11
# minutes (23 steps, each in debug=2, debug=1 and debug=0): a series long enough for the
# runtime's 2-minute forced GC to stamp a wait age on every goroutine that stays blocked, and
# for a goroutine waiting since the start to reach 10 minutes (detect.yaml `age_minutes`).
# The `plain` run as it is; the `gcoff` run with GOGC=off, where no GC ever runs and so no
# goroutine ever shows a wait age. Nothing is edited by hand; rerun to regenerate (12 minutes).
#
# Output: tests/fixtures/longrun/{plain,gcoff}/{N.goroutine.debug{0,1,2}.*,times.json}
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
out="${LONGRUN_OUT:-$repo/tests/fixtures/longrun}"
steps="${LONGRUN_STEPS:-23}"
interval="${LONGRUN_INTERVAL:-30}"
# A fixed build directory keeps the source paths printed in the dumps the same wherever the
# repository is checked out.
work="${TMPDIR:-/tmp}/grprof-record"

go="$("$repo/scripts/go-toolchain.sh" system)"
rm -rf "$work/longrun" "$out.new"
mkdir -p "$work/bin" "$out.new"
cp -r "$here" "$work/longrun"
rm -f "$work/longrun/record.sh"
(cd "$work/longrun" && env GOTOOLCHAIN=local GOFLAGS=-buildvcs=false "$go" build -o "$work/bin/longrun" .)

trap 'pkill -f "$work/bin/longrun" || true' EXIT

# record RUN [ENV...]: run the program with ENV, scrape it into $out.new/RUN.
record() {
  local run="$1" dir="$out.new/$1" log="$work/longrun-$1.out" base n pid
  shift
  mkdir -p "$dir"
  env "$@" "$work/bin/longrun" > "$log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do grep -q READY "$log" 2>/dev/null && break; sleep 0.1; done
  base="$(sed -n 's/^LISTEN //p' "$log")"
  local times=()
  for n in $(seq 0 $((steps - 1))); do
    [ "$n" = 0 ] || sleep "$interval"
    times+=("$(date +%s.%N)")
    curl -fsS "$base/debug/pprof/goroutine?debug=2" -o "$dir/$n.goroutine.debug2.txt"
    curl -fsS "$base/debug/pprof/goroutine?debug=1" -o "$dir/$n.goroutine.debug1.txt"
    curl -fsS "$base/debug/pprof/goroutine?debug=0" -o "$dir/$n.goroutine.debug0.pb.gz"
  done
  printf '{\n  "go_version": "%s",\n  "env": "%s",\n  "interval": %s,\n  "times": [%s]\n}\n' \
    "$("$go" env GOVERSION)" "$*" "$interval" "$(IFS=,; echo "${times[*]}")" > "$dir/times.json"
  kill $pid
}

record plain &
record gcoff GOGC=off &
wait %1 %2
rm -rf "$out"
mv "$out.new" "$out"
du -sh "$out" >&2
