#!/usr/bin/env bash
# Runs the interop suite: the official phoenix JS client (1.8.16 and 1.8.12) against a
# gateway the suite starts itself. Needs node >= 20, npm and go.
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund
bin_dir="$(mktemp -d)"
trap 'rm -rf "$bin_dir"' EXIT
(cd .. && go build -o "$bin_dir/server" ./interop/server)
HEADCOUNT_INTEROP_SERVER="$bin_dir/server" node --test --test-concurrency=1
