#!/usr/bin/env bash
# Record tests/fixtures/kernels/: build the leak kernels with the machine's Go 1.26 (with
# GOEXPERIMENT=goroutineleakprofile), run it twice side by side and scrape each run over
# HTTP at 6 steps 5 s apart (tests/kernels.py): the `plain` run in debug=2, debug=1 and
# debug=0 only (no dump ever carries a ` (leaked)` mark), the `proof` run in debug=2 and
# goroutineleak?debug=1. Every debug=2 dump is checked against /truth before anything is
# written. Nothing is edited by hand; rerun to regenerate.
#
# Output: tests/fixtures/kernels/{plain/N.goroutine.debug{0,1,2}.*,proof/N.goroutine.debug2.txt,
#         proof/N.goroutineleak.debug1.txt,truth.json,times.json}
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
out="${KERNELS_OUT:-$repo/tests/fixtures/kernels}"
py="${PYTHON:-$repo/.venv/bin/python}"
# A fixed build directory keeps the source paths printed in the dumps the same
# wherever the repository is checked out.
work="${TMPDIR:-/tmp}/grprof-record"

go="$("$repo/scripts/go-toolchain.sh" system)"
case "$("$go" env GOVERSION)" in
  go1.26*) ;;
  *) echo "record.sh: the machine's go is $("$go" env GOVERSION), expected go1.26.x" >&2; exit 1 ;;
esac

rm -rf "$work/kernels" "$out.new"
mkdir -p "$work/bin"
cp -r "$here" "$work/kernels"
rm -f "$work/kernels/record.sh"
(cd "$work/kernels" && env GOTOOLCHAIN=local GOFLAGS=-buildvcs=false GOEXPERIMENT=goroutineleakprofile \
  "$go" build -o "$work/bin/kernels" .)

"$py" "$repo/tests/kernels.py" record --binary "$work/bin/kernels" --out "$out.new"
rm -rf "$out"
mv "$out.new" "$out"
du -sh "$out" >&2
