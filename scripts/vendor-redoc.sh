#!/usr/bin/env bash
# Re-vendor ReDoc's standalone bundle (served at /redoc by `grprof serve`, so the API docs work
# offline): the npm package `redoc`, MIT. Usage: scripts/vendor-redoc.sh [VERSION]
set -euo pipefail
cd "$(dirname "$0")/.."
version="${1:-2.5.2}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack -q "redoc@$version" >/dev/null && tar xzf redoc-*.tgz)
dest=src/grprof/data/redoc
mkdir -p "$dest"
cp "$tmp/package/bundles/redoc.standalone.js" "$tmp/package/bundles/redoc.standalone.js.LICENSE.txt" "$dest/"
cp "$tmp/package/LICENSE" "$dest/LICENSE"
echo "$version" >"$dest/VERSION"
echo "vendored redoc $version into $dest"
