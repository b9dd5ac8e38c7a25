#!/usr/bin/env bash
# Runs every check: formatting, clippy, unit tests, then the end-to-end tests against a local
# control plane that this script starts and stops.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
cd "$repo"
step() { printf '\n==> %s\n' "$*" >&2; }

step "setup"
"$here/setup.sh"

step "cargo fmt --check"
cargo fmt --all -- --check

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
