#!/usr/bin/env bash
# Runs every check: formatting, clippy, unit tests, then the end-to-end tests against a local
# control plane that this script starts and stops.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
cd "$repo"
step() { printf '\n==> %s\n' "$*" >&2; }

# CI builds once from scratch: incremental artifacts would only take disk space.
if [[ ${CI:-} == true ]]; then export CARGO_INCREMENTAL=0; fi
disk() { df -h --output=avail,target "$repo" | tail -1 | awk '{print "disk available: " $1}' >&2; }

step "setup"
disk
"$here/setup.sh"

step "cargo fmt --check"
cargo fmt --all -- --check

step "no import cycles between modules"
python3 "$here/module_cycles.py"

step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "unit tests"
cargo test --workspace --locked --exclude zonefleet-e2e
cargo test -p zonefleet-e2e --locked --lib --bins

step "local control plane"
trap '"$here/cluster.sh" down' EXIT
"$here/cluster.sh" up >/dev/null

step "end-to-end tests"
cargo test -p zonefleet-e2e --locked --test '*'
disk
