#!/usr/bin/env bash
# Builds Bifrost's HTTP gateway (transports/bifrost-http) from source at a pinned commit, for
# `make bench-concurrency PEER=bifrost` (docs/benchmarks-concurrency.md). Not run in CI.
#
#   benches/concurrency/build_bifrost.sh [OUTPUT]      # default OUTPUT: benches/concurrency/bin/bifrost-http
#
# Needs git, Go (at least the `go` line of transports/go.mod: 1.26.1 at the pinned commit) and a C compiler
# (go-sqlite3 is cgo). The commit's own core, framework and plugins modules are built through a Go workspace,
# so the binary is exactly that commit; the web UI (a Next.js build embedded by the release) is replaced by a
# placeholder page, which the benchmark never asks for.
#
#   BIFROST_COMMIT  the commit to build (default: the one the docs' figures were measured with)
#   BIFROST_REPO    where to fetch it from (default: https://github.com/maximhq/bifrost)
#   BIFROST_SRC     a checkout (or exported tree) of that commit to build instead of fetching; it is copied, not
#                   modified
set -euo pipefail

BIFROST_REPO=${BIFROST_REPO:-https://github.com/maximhq/bifrost}
BIFROST_COMMIT=${BIFROST_COMMIT:-5978108db0fd9a50a3349d10bb6aa311502c05e2}
here=$(cd "$(dirname "$0")" && pwd)
out=$(realpath -m "${1:-$here/bin/bifrost-http}")
parts=(core framework plugins transports)

command -v go >/dev/null || { echo "build_bifrost.sh needs Go (https://go.dev/dl/)" >&2; exit 1; }
src=$(mktemp -d "${TMPDIR:-/tmp}/bifrost-src.XXXXXX")
trap 'rm -rf "$src"' EXIT

if [ -n "${BIFROST_SRC:-}" ]; then
    for part in "${parts[@]}"; do cp -a "$BIFROST_SRC/$part" "$src/"; done
else
    # Only the Go parts, and only their blobs: the repository's history and media are hundreds of MB.
    git -C "$src" init -q
    git -C "$src" remote add origin "$BIFROST_REPO"
    git -C "$src" sparse-checkout set "${parts[@]}"
    git -C "$src" fetch -q --depth 1 --filter=blob:none origin "$BIFROST_COMMIT"
    git -C "$src" checkout -q FETCH_HEAD
fi

cd "$src"
rm -f go.work go.work.sum
go work init ./core ./framework ./transports $(find plugins -mindepth 2 -maxdepth 2 -name go.mod -printf '%h\n' | sort)
mkdir -p transports/bifrost-http/ui
printf '<!doctype html><title>Bifrost</title><p>UI not built (benchmark build).</p>\n' \
    >transports/bifrost-http/ui/index.html
version=$(cat transports/version 2>/dev/null || echo dev)
mkdir -p "$(dirname "$out")"
# The flags of the project's own release build (its Makefile), with the workspace instead of GOWORK=off.
(cd transports/bifrost-http && CGO_ENABLED=1 go build -trimpath -ldflags "-w -s -X main.Version=v$version" \
    -o "$out" .)
echo "built $out (bifrost transports v$version, commit ${BIFROST_COMMIT})"
