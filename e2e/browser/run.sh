#!/usr/bin/env bash
# Browser test of the demo page: builds headcount, installs playwright-core
# from package-lock.json, and runs node --test against Debian's Chromium.
# Needs: go, node >= 20, npm, and /usr/bin/chromium (apt-get install -y chromium).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin_dir=$(mktemp -d)
trap 'rm -rf "$bin_dir"' EXIT
(cd "$root" && go build -o "$bin_dir/headcount" ./cmd/headcount)
cd "$here"
npm ci --no-audit --no-fund --loglevel=error
HEADCOUNT_BIN="$bin_dir/headcount" node --test --test-timeout=120000
