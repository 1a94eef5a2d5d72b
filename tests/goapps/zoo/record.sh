#!/usr/bin/env bash
# Record tests/fixtures/zoo/: build the leak zoo with the machine's Go 1.26 (with
# GOEXPERIMENT=goroutineleakprofile), run it against a throwaway PostgreSQL
# (tests/pgserver.py), drive the default traffic phases of tests/zoo.py and save
# every scrape as served over HTTP. Nothing is edited by hand; rerun to regenerate.
#
# Output: tests/fixtures/zoo/{N-PHASE.goroutine.debug{0,1,2}.*,N-PHASE.goroutineleak.debug1.txt,truth.json,times.json}
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
out="${ZOO_OUT:-$repo/tests/fixtures/zoo}"
py="${PYTHON:-$repo/.venv/bin/python}"
# A fixed build directory keeps the source paths printed in the dumps the same
# wherever the repository is checked out.
work="${TMPDIR:-/tmp}/grprof-record"

go="$("$repo/scripts/go-toolchain.sh" system)"
case "$("$go" env GOVERSION)" in
  go1.26*) ;;
  *) echo "record.sh: the machine's go is $("$go" env GOVERSION), expected go1.26.x" >&2; exit 1 ;;
esac

rm -rf "$work/zoo" "$out.new"
mkdir -p "$work/bin"
cp -r "$here" "$work/zoo"
rm -f "$work/zoo/record.sh"
(cd "$work/zoo" && env GOTOOLCHAIN=local GOFLAGS=-buildvcs=false GOEXPERIMENT=goroutineleakprofile \
  "$go" build -o "$work/bin/zoo" .)

"$py" "$repo/tests/zoo.py" record --binary "$work/bin/zoo" --out "$out.new"
rm -rf "$out"
mv "$out.new" "$out"
du -sh "$out" >&2
