#!/usr/bin/env bash
# Installs what bench/compare/run.sh needs; safe to run again (it skips what is there).
#
#   - Debian packages: nsd, knot, bind9 (named), dnsperf, knot-dnsutils (kdig), dnsutils (dig),
#     python3-matplotlib (the bar chart).
#   - The stock hickory-dns server from crates.io (crate `hickory-dns`, default features; its
#     file-backed zone store needs no extra feature), installed with `cargo install --locked`
#     into ~/.cache/zonefleet/hickory-dns-<version>/ (outside the repository, keyed by version).
#
# It does not build zonefleet-dns-pod; run.sh does that (`cargo build --release -p
# zonefleet-dns-pod`) unless BENCH_NO_BUILD=1.
#
# Environment:
#   HICKORY_VERSION   the hickory-dns crate version (default below)
#   ZONEFLEET_CACHE   the cache root (default ~/.cache/zonefleet)
set -euo pipefail

HICKORY_VERSION="${HICKORY_VERSION:-0.26.3}"
CACHE="${ZONEFLEET_CACHE:-$HOME/.cache/zonefleet}"
HICKORY_ROOT="$CACHE/hickory-dns-$HICKORY_VERSION"

log() { printf 'setup: %s\n' "$*" >&2; }

# --- Debian packages --------------------------------------------------------------------
packages=(nsd knot bind9 dnsperf knot-dnsutils dnsutils python3-matplotlib)
missing=()
for pkg in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$pkg")
  fi
done
if ((${#missing[@]})); then
  log "installing Debian packages: ${missing[*]}"
  sudo_cmd=()
  if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi
  # Keep the packages' init scripts from starting system-wide daemons (named on port 53,
  # nsd, knot) during installation; the benchmark starts its own instances.
  policy=/usr/sbin/policy-rc.d
  created_policy=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo_cmd[@]}" tee "$policy" >/dev/null
    "${sudo_cmd[@]}" chmod 755 "$policy"
    created_policy=1
  fi
  trap '[[ $created_policy == 1 ]] && "${sudo_cmd[@]}" rm -f "$policy"' EXIT
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >&2
else
  log "Debian packages present: ${packages[*]}"
fi

for bin in /usr/sbin/nsd /usr/sbin/knotd /usr/sbin/named /usr/bin/dnsperf /usr/bin/dig /usr/bin/kdig; do
  [[ -x $bin ]] || { log "missing $bin after installation"; exit 1; }
done
if ! /usr/bin/python3 -c 'import matplotlib' 2>/dev/null; then
  log "warning: /usr/bin/python3 cannot import matplotlib; run.sh will skip the chart"
fi

# --- stock hickory-dns ----------------------------------------------------------------------
if [[ -x $HICKORY_ROOT/bin/hickory-dns ]]; then
  log "hickory-dns $HICKORY_VERSION present: $HICKORY_ROOT/bin/hickory-dns"
else
  log "cargo install hickory-dns $HICKORY_VERSION into $HICKORY_ROOT (a few minutes on 2 cores)"
  mkdir -p "$CACHE"
  cd "$CACHE" # outside the workspace: its rust-toolchain.toml and .cargo config do not apply
  # A separate target dir keeps this build out of the workspace's target/; the install
  # directory is written only when the build succeeded.
  CARGO_TARGET_DIR="$CACHE/build/hickory-dns-$HICKORY_VERSION" \
    cargo install hickory-dns --version "=$HICKORY_VERSION" --locked \
    --root "$HICKORY_ROOT" --bin hickory-dns >&2
  rm -rf "$CACHE/build/hickory-dns-$HICKORY_VERSION"
  rmdir "$CACHE/build" 2>/dev/null || true
fi
"$HICKORY_ROOT/bin/hickory-dns" --version >&2
log "done"
