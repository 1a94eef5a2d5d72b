#!/usr/bin/env bash
# Regenerate tests/fixtures/crash/: real tracebacks printed by tests/goapps/crash
# (and the hanging test of tests/goapps/gotest) under several Go versions.
#
#   tests/goapps/crash/record.sh                 # every version below
#   tests/goapps/crash/record.sh 1.22.12 system  # only these (README is rebuilt from all)
#
# Each run writes tests/fixtures/crash/go<VERSION>/<name>.txt (the program's
# stderr, byte for byte) and <name>.truth.json (the program's GRPROF-TRUTH line
# plus a "recording" object: command, build, exit status, signal sent).
# Versions are resolved by scripts/go-toolchain.sh; "system" is the machine's go.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
out="$root/tests/fixtures/crash"
gotest_src="$root/tests/goapps/gotest"
if [ "$#" -gt 0 ]; then versions=("$@"); else versions=(1.19 1.21.13 1.22.12 1.24.11 system 1.27.3); fi

work="$(mktemp -d "${TMPDIR:-/tmp}/grprof-crash-record.XXXXXX")"
trap 'rm -rf "$work"' EXIT
# Runs must not overlap (scripts/record-fixtures.sh may call this too).
exec 9>"${TMPDIR:-/tmp}/grprof-crash-record.lock"
flock 9
ulimit -c 0 # GOTRACEBACK=crash aborts; no core files
export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false
unset GOTRACEBACK GODEBUG GOEXPERIMENT CGO_ENABLED

# Set per version by record_version.
go_bin="" gover="" minor=0 dir="" bin=""

log() { printf 'record.sh: %s\n' "$*" >&2; }

skip() { # MODE REASON
	printf '%s: %s\n' "$1" "$2" >>"$dir/skipped.txt"
}

# truth NAME TRUTH_SOURCE EXIT SIGNAL COMMAND BUILD: write NAME.truth.json.
truth() {
	python3 - "$dir/$1.truth.json" "$2" "$3" "$4" "$5" "$6" "$gover" <<'EOF'
import json, sys
dest, src, rc, sig, cmd, build, gover = sys.argv[1:]
text = open(src, encoding="utf-8").read()
truth = {}
for line in text.splitlines():
    if line.startswith("GRPROF-TRUTH "):
        truth = json.loads(line[len("GRPROF-TRUTH "):])
        break
else:
    if text.lstrip().startswith("{"):
        truth = json.loads(text)
rc_i = int(rc)
truth["recording"] = {
    "go": gover,
    "command": cmd,
    "build": build,
    "exit_status": rc_i,
    "killed_by": {134: "SIGABRT", 131: "SIGQUIT", 137: "SIGKILL"}.get(rc_i),
    "signal_sent": sig or None,
}
with open(dest, "w", encoding="utf-8") as f:
    json.dump(truth, f, indent=1, sort_keys=True)
    f.write("\n")
EOF
}

# run NAME SIGNAL BUILD ENV... -- BINARY ARGS...
# Runs the binary with only ENV added, stderr to NAME.txt. With a SIGNAL, waits
# for READY on stdout and sends it. A 60 s watchdog kills a stuck run.
run() {
	local name=$1 sig=$2 build=$3
	shift 3
	local envs=()
	while [ "$1" != "--" ]; do
		envs+=("$1")
		shift
	done
	shift
	local so="$work/$name.stdout" rc=0
	: >"$so"
	(cd "$work" && exec env ${envs[@]+"${envs[@]}"} "$@" >"$so" 2>"$dir/$name.txt") &
	local pid=$!
	if [ "$sig" != "" ]; then
		local i=0
		until grep -qx READY "$so"; do
			i=$((i + 1))
			[ "$i" -lt 300 ] || { log "$gover $name: no READY"; break; }
			sleep 0.1
		done
		kill -s "$sig" "$pid" 2>/dev/null || true
	fi
	watchdog "$pid" &
	local wd=$!
	wait "$pid" 2>/dev/null || rc=$? # no "Aborted" job notice
	kill "$wd" 2>/dev/null || true
	wait "$wd" 2>/dev/null || true
	local shown="${envs[*]+${envs[*]} }./$(basename "$1")${2+ ${*:2}}"
	truth "$name" "$so" "$rc" "$sig" "$shown" "$build"
	log "$gover $name: exit $rc, $(wc -c <"$dir/$name.txt") bytes"
}

watchdog() {
	local n=0
	while [ "$n" -lt 600 ]; do
		sleep 0.1
		n=$((n + 1))
	done
	kill -9 "$1" 2>/dev/null || true
}

# build OUTPUT ENV... -- GO-BUILD-ARGS...: build tests/goapps/crash, echo the command.
build() {
	local o=$1
	shift
	local envs=()
	while [ "$1" != "--" ]; do
		envs+=("$1")
		shift
	done
	shift
	(cd "$here" && env ${envs[@]+"${envs[@]}"} "$go_bin" "$@" -o "$o" .)
}

record_version() {
	go_bin="$("$root/scripts/go-toolchain.sh" "$1")"
	gover="$("$go_bin" env GOVERSION)"
	minor="$(echo "$gover" | sed -E 's/^go1\.([0-9]+).*/\1/')"
	dir="$out/$gover"
	bin="$work/$gover"
	rm -rf "$dir" "$bin"
	mkdir -p "$dir" "$bin"
	: >"$dir/skipped.txt"
	log "recording $gover with $go_bin"

	local b0="CGO_ENABLED=0 go build"
	build "$bin/crash" CGO_ENABLED=0 -- build
	record_plain "$b0"
	record_cgo
	record_labels "$b0"
	record_synctest
	record_gotest
	cat "$dir/panic.all.txt" "$dir/sigquit.all.txt" >"$dir/two-dumps.txt"
	python3 - "$dir" <<'EOF'
import json, sys
d = sys.argv[1]
parts = [json.load(open(f"{d}/{n}.truth.json")) for n in ("panic.all", "sigquit.all")]
doc = {"mode": "two-dumps", "parts": parts, "recording": {
    "command": "cat panic.all.txt sigquit.all.txt > two-dumps.txt",
    "note": "concatenation of two real dumps of this directory, not one process's output"}}
json.dump(doc, open(f"{d}/two-dumps.truth.json", "w"), indent=1, sort_keys=True)
EOF
	[ -s "$dir/skipped.txt" ] || rm -f "$dir/skipped.txt"
}

record_plain() {
	local b=$1 c="$bin/crash" tb
	for tb in single all system crash; do
		run "panic.$tb" "" "$b" GOTRACEBACK=$tb -- "$c" -mode panic
	done
	run panic-multiline "" "$b" -- "$c" -mode panic-multiline
	run repanic "" "$b" -- "$c" -mode repanic
	run repanic-new "" "$b" -- "$c" -mode repanic-new
	run nilmap "" "$b" -- "$c" -mode nilmap
	run segv "" "$b" -- "$c" -mode segv
	run segv.all "" "$b" GOTRACEBACK=all -- "$c" -mode segv
	run deadlock "" "$b" -- "$c" -mode deadlock
	run concurrent-map "" "$b" -- "$c" -mode concurrent-map
	run concurrent-map.all "" "$b" GOTRACEBACK=all -- "$c" -mode concurrent-map
	run stackoverflow "" "$b" -- "$c" -mode stackoverflow
	for tb in all system crash; do
		run "sigquit.$tb" QUIT "$b" GOTRACEBACK=$tb -- "$c" -mode sigquit
	done
	run ancestors.all "" "$b" GOTRACEBACK=all GODEBUG=tracebackancestors=5 -- "$c" -mode ancestors
	run stack-small "" "$b" -- "$c" -mode stack-small
	run log "" "$b" -- "$c" -mode log
	run running.all "" "$b" GOTRACEBACK=all GODEBUG=asyncpreemptoff=1 -- "$c" -mode running
}

record_cgo() {
	local b="CGO_ENABLED=1 go build" tb
	if ! command -v gcc >/dev/null || ! build "$bin/crash-cgo" CGO_ENABLED=1 -- build; then
		skip cgo "no C compiler or cgo build failed"
		return
	fi
	for tb in system crash; do
		run "cgo.$tb" QUIT "$b" GOTRACEBACK=$tb -- "$bin/crash-cgo" -mode cgo
	done
	# runtime.SetCgoTraceback: C frames as "non-Go function at pc=" lines
	# (no symbolizer) or as names from dladdr. Which thread takes the
	# process-directed SIGQUIT decides whether the C goroutine shows them.
	run cgo-traceback.crash QUIT "$b" GOTRACEBACK=crash -- "$bin/crash-cgo" -mode cgo-traceback
	run cgo-symbolizer.crash QUIT "$b" GOTRACEBACK=crash -- "$bin/crash-cgo" -mode cgo-symbolizer
	run cgo-segv "" "$b" -- "$bin/crash-cgo" -mode cgo-segv
	run cgo-segv.crash "" "$b" GOTRACEBACK=crash -- "$bin/crash-cgo" -mode cgo-segv
}

# Goroutine labels reach tracebacks in 1.26 (GODEBUG=tracebacklabels=1, inside
# the brackets) and 1.27 (after them; default on when go.mod says go 1.27).
record_labels() {
	local b=$1
	if [ "$minor" -lt 26 ]; then
		skip labels "tracebacks show no goroutine labels before Go 1.26"
		return
	fi
	run labels.all "" "$b" GOTRACEBACK=all -- "$bin/crash" -mode labels
	run labels-godebug.all "" "$b" GOTRACEBACK=all GODEBUG=tracebacklabels=1 -- "$bin/crash" -mode labels
	if [ "$minor" -ge 27 ]; then
		printf 'module grproftest/crash\n\ngo 1.27\n' >"$work/go127.mod"
		build "$bin/crash-go127" CGO_ENABLED=0 -- build -modfile="$work/go127.mod"
		run labels-gomod127.all "" "CGO_ENABLED=0 go build -modfile=go127.mod (go.mod saying go 1.27)" \
			GOTRACEBACK=all -- "$bin/crash-go127" -mode labels
	fi
}

# synctest: 1.24 needs GOEXPERIMENT=synctest ("synctest group N"), 1.25+ has
# testing/synctest ("synctest bubble N"). Runs as a test binary because
# synctest.Test needs a *testing.T.
record_synctest() {
	local exp=() b="go test -c"
	if [ "$minor" -lt 24 ]; then
		skip synctest "testing/synctest does not exist before Go 1.24"
		return
	fi
	if [ "$minor" -eq 24 ]; then
		exp=(GOEXPERIMENT=synctest)
		b="GOEXPERIMENT=synctest go test -c"
	fi
	build "$bin/crash.test" CGO_ENABLED=0 ${exp[@]+"${exp[@]}"} -- test -c
	local t="$bin/crash.test" r=(-test.run '^TestSynctest$')
	run synctest-stack "" "$b" GRPROF_SYNCTEST=stack -- "$t" "${r[@]}"
	run synctest-panic.all "" "$b" GOTRACEBACK=all GRPROF_SYNCTEST=panic -- "$t" "${r[@]}"
	run synctest-deadlock.all "" "$b" GOTRACEBACK=all GRPROF_SYNCTEST=deadlock -- "$t" "${r[@]}"
}

# go test -timeout: the dump is part of go test's combined output.
record_gotest() {
	local name flags
	for name in gotest-timeout gotest-timeout-v; do
		flags=(-timeout 2s)
		[ "$name" = gotest-timeout ] || flags=(-v -timeout 2s)
		local rc=0
		(cd "$gotest_src" && GRPROF_TRUTH_FILE="$work/$name.json" CGO_ENABLED=0 \
			"$go_bin" test "${flags[@]}" . >"$dir/$name.txt" 2>&1) || rc=$?
		truth "$name" "$work/$name.json" "$rc" "" "go test ${flags[*]} . (stdout and stderr)" "go test"
		log "$gover $name: exit $rc"
	done
}

for v in "${versions[@]}"; do
	record_version "$v"
done
python3 "$here/readme.py" "$out"
