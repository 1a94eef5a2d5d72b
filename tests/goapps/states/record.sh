#!/usr/bin/env bash
# Record tests/fixtures/states/: build the states program with each Go version,
# run it, and scrape its pprof endpoints over real HTTP with curl. Nothing is
# edited by hand; rerun this (or `make fixtures`) to regenerate everything.
#
#   tests/goapps/states/record.sh            # all versions and variants
#   STATES_N=2 STATES_WAIT=70s ...           # scale and the long-wait variant's sleep
#
# Output: tests/fixtures/states/go<VERSION>[-<variant>]/{truth.json,<profile>.debug<N>.<txt|pb.gz>}
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
out_root="${STATES_OUT:-$repo/tests/fixtures/states}"
N="${STATES_N:-2}"
WAIT="${STATES_WAIT:-70s}"
# A fixed build directory keeps the source paths printed in the dumps the same
# wherever the repository is checked out.
work="${TMPDIR:-/tmp}/grprof-record"
new="$out_root.new"

pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

die() { echo "record.sh: $*" >&2; exit 1; }

# build GO BIN GO_LINE [VAR=VALUE...]: build the states module with toolchain GO.
build() {
  local go="$1" bin="$2" line="$3"
  shift 3
  rm -rf "$work/states"
  mkdir -p "$work/bin"
  cp -r "$here" "$work/states"
  rm -f "$work/states/record.sh"
  if [ -n "$line" ]; then sed -i "s/^go .*/go $line/" "$work/states/go.mod"; fi
  (cd "$work/states" && env GOTOOLCHAIN=local GOFLAGS= "$@" "$go" build -o "$bin" .)
}

# start NAME BIN [VAR=VALUE...] -- ARGS...: run BIN in the background; sets pid_NAME.
start() {
  local name="$1" bin="$2"
  shift 2
  local envs=()
  while [ "$1" != "--" ]; do envs+=("$1"); shift; done
  shift
  : >"$work/$name.out"
  env -u GODEBUG -u GOTRACEBACK -u GOEXPERIMENT "${envs[@]}" "$bin" "$@" \
    >"$work/$name.out" 2>"$work/$name.err" &
  pids+=("$!")
  printf -v "pid_$name" '%s' "$!"
}

# ready NAME TIMEOUT_SECONDS: wait for READY; prints the LISTEN base URL.
ready() {
  local name="$1" limit="$2" pidvar="pid_$1" i
  for ((i = 0; i < limit * 10; i++)); do
    if grep -qx READY "$work/$name.out"; then
      awk '/^LISTEN /{print $2}' "$work/$name.out"
      return
    fi
    kill -0 "${!pidvar}" 2>/dev/null || die "$name exited: $(cat "$work/$name.err")"
    sleep 0.1
  done
  die "$name: no READY after ${limit}s: $(cat "$work/$name.err")"
}

stop() {
  local pidvar="pid_$1"
  kill "${!pidvar}" 2>/dev/null || true
  wait "${!pidvar}" 2>/dev/null || true
}

# scrape BASE DIR PROFILE:DEBUG[:SUFFIX]...: GET each profile into DIR.
scrape() {
  local base="$1" dir="$2" spec profile debug suffix ext
  shift 2
  for spec in "$@"; do
    IFS=: read -r profile debug suffix <<<"$spec"
    ext=txt
    [ "$debug" = 0 ] && ext=pb.gz
    curl -fsS --max-time 120 "$base/debug/pprof/$profile?debug=$debug" \
      -o "$dir/$profile${suffix:+-$suffix}.debug$debug.$ext"
  done
}

# record NAME GO GO_LINE BUILD_ENV RUN_ENV VARIANT PROFILES...: one fixture directory.
# BUILD_ENV / RUN_ENV are space-separated VAR=VALUE lists ("" for none).
record() {
  local name="$1" go="$2" line="$3" benv="$4" renv="$5" variant="$6"
  shift 6
  local version dir bin base
  version="$("$go" env GOVERSION)"
  dir="$new/$version${name:+-$name}"
  bin="$work/bin/states-$version${name:+-$name}"
  mkdir -p "$dir"
  # shellcheck disable=SC2086
  build "$go" "$bin" "$line" $benv
  # shellcheck disable=SC2086
  start run "$bin" $renv -- -n "$N" -truth "$dir/truth.json" -variant "$variant"
  base="$(ready run 60)"
  scrape "$base" "$dir" "$@"
  stop run
  echo "recorded $dir" >&2
}

go119="$("$repo/scripts/go-toolchain.sh" 1.19)"
go121="$("$repo/scripts/go-toolchain.sh" 1.21.13)"
go122="$("$repo/scripts/go-toolchain.sh" 1.22.12)"
go126="$("$repo/scripts/go-toolchain.sh" system)"
go127="$("$repo/scripts/go-toolchain.sh" 1.27.3)"
case "$("$go126" env GOVERSION)" in
  go1.26*) ;;
  *) die "the machine's go is $("$go126" env GOVERSION), expected go1.26.x" ;;
esac

rm -rf "$new" "$work"
mkdir -p "$new" "$work"

# The long-wait variant sleeps $WAIT before READY: start it first, collect it last.
v126="$("$go126" env GOVERSION)"
wait_dir="$new/$v126-wait"
mkdir -p "$wait_dir"
build "$go126" "$work/bin/states-wait" ""
start waitrun "$work/bin/states-wait" -- -n "$N" -wait "$WAIT" -truth "$wait_dir/truth.json" \
  -variant "go1.26, -wait $WAIT: GC, then sleep, so headers show ', N minutes'"

plain=(goroutine:0 goroutine:1 goroutine:2)
leak=(goroutineleak:0 goroutineleak:1 goroutineleak:2 goroutine:2:after-leak)

record "" "$go119" "" "" "" "go1.19 (Debian golang-1.19-go)" "${plain[@]}"
record "" "$go121" "" "" "" "go1.21.13" "${plain[@]}"
record "" "$go122" "" "" "" "go1.22.12" "${plain[@]}"
record "" "$go126" "" "GOEXPERIMENT=goroutineleakprofile" "" \
  "go1.26, built with GOEXPERIMENT=goroutineleakprofile" "${plain[@]}" "${leak[@]}"
record tracebacklabels "$go126" "" "" "GODEBUG=tracebacklabels=1" \
  "go1.26, GODEBUG=tracebacklabels=1 (labels inside the header brackets)" "${plain[@]}"
record "" "$go127" "" "" "" "go1.27.3, go.mod says go 1.19 (no header labels)" "${plain[@]}" "${leak[@]}"
record gomod1.27 "$go127" "1.27" "" "" "go1.27.3, go.mod says go 1.27 (labels after the header brackets)" \
  "${plain[@]}" "${leak[@]}"

wait_seconds="${WAIT%s}"
base="$(ready waitrun $((wait_seconds + 120)))"
scrape "$base" "$wait_dir" goroutine:1 goroutine:2
stop waitrun
echo "recorded $wait_dir" >&2

rm -rf "$out_root"
mv "$new" "$out_root"
du -sh "$out_root" >&2
