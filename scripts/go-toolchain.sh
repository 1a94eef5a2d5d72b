#!/usr/bin/env bash
# Print the path of a `go` binary for the Go version asked for, installing it if needed.
#   scripts/go-toolchain.sh 1.19      -> Debian's golang-1.19-go (apt)
#   scripts/go-toolchain.sh 1.21.13   -> toolchain module from the Go module proxy (GOTOOLCHAIN)
#   scripts/go-toolchain.sh system    -> the machine's go
# Idempotent: a second call only prints the path.
set -euo pipefail
v="${1:?usage: go-toolchain.sh VERSION|system}"
case "$v" in
  system)
    command -v go ;;
  1.19|1.19.*)
    if [ ! -x /usr/lib/go-1.19/bin/go ]; then
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-1.19-go; } >&2
    fi
    echo /usr/lib/go-1.19/bin/go ;;
  *)
    root="$(cd /tmp && GOTOOLCHAIN="go$v" GOFLAGS=-mod=mod go env GOROOT)"
    [ -x "$root/bin/go" ] || { echo "go-toolchain: no go binary for go$v under $root" >&2; exit 1; }
    echo "$root/bin/go" ;;
esac
