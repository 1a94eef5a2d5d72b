#!/usr/bin/env bash
# `make fixtures`: regenerate every recorded fixture from real Go programs.
#   tests/goapps/states/record.sh  -> tests/fixtures/states/ (goroutine states, all Go versions)
#   tests/goapps/crash/record.sh   -> crash/panic/SIGQUIT fixtures (when that program exists)
#   tests/goapps/zoo/record.sh     -> tests/fixtures/zoo/ (leak zoo series, every format)
#   tests/goapps/kernels/record.sh -> tests/fixtures/kernels/ (leak kernels and controls, every format)
#   tests/goapps/longrun/record.sh -> tests/fixtures/longrun/ (11 minutes: woken waits, ages)
#   tests/goapps/pileup/record.sh  -> tests/fixtures/pileup/ (7 minutes: leaks in idle waits piling up)
# Takes a few minutes: one states variant waits over a minute so headers show ", N minutes".
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/goapps/states/record.sh
if [ -f tests/goapps/crash/record.sh ]; then
  bash tests/goapps/crash/record.sh
fi
# The leak zoo: a series of snapshots of a service leaking in every category (needs PostgreSQL).
bash tests/goapps/zoo/record.sh
# The leak kernels: 40 small real-world leaks beside 51 healthy controls, six steps.
bash tests/goapps/kernels/record.sh
# Two long series (11 and 7 minutes), side by side.
bash tests/goapps/longrun/record.sh & longrun=$!
bash tests/goapps/pileup/record.sh & pileup=$!
wait "$longrun"
wait "$pileup"
