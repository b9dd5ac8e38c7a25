#!/usr/bin/env bash
# Compares NSD, Knot DNS, BIND 9, stock hickory-dns and zonefleet-dns-pod with dnsperf.
# See bench/compare/README.md. Run bench/compare/setup.sh once first.
#
# Usage: bench/compare/run.sh [--zones 100k|1m|10k]... [--1m] [--10k-zones]
#                             [--servers "nsd knot ..."] [--mixes "positive nxdomain ..."]
#                             [--no-build]
#
# Environment (defaults in brackets):
#   BENCH_SECONDS [10]      dnsperf run time per server and mix
#   BENCH_ROUNDS [3]        rounds; each round starts every server afresh, order rotating
#   BENCH_WARMUP [1]        seconds of warm-up dnsperf per server start (0: none)
#   BENCH_CLIENTS [4]       dnsperf -c
#   BENCH_OUTSTANDING [100] dnsperf -q
#   BENCH_LATENCY [1]       0: no `dnsperf -v`, so no p50/p99 (only the average)
#   BENCH_ZONES [100k]      zone sets, as --zones
#   BENCH_SERVERS [nsd knot bind hickory dns-pod]
#   BENCH_MIXES [all]       positive nxdomain wildcard referral cname (10k: no wildcard/referral)
#   BENCH_WORKERS [1]       workers per server (NSD server-count, Knot udp-workers, named -n,
#                           hickory --workers, dns-pod --udp-workers)
#   BENCH_SERVER_CPUS [0], BENCH_CLIENT_CPUS [1]  taskset CPU lists for servers and dnsperf
#   BENCH_RATE [0]          dnsperf -Q: offered queries/s (latency at a fixed load); 0: flat out
#   BENCH_CLIENT_THREADS [1] dnsperf -T (two workers on two cores: 2)
#   BENCH_PORT_BASE [15300] servers listen on 127.0.0.1:BASE+1..BASE+5 (dns-pod admin: BASE+15)
#   BENCH_READY_TIMEOUT [600] seconds a server may take to load
#   BENCH_BUSY_THRESHOLD [20] warn when other processes took more than this % of a core
#   BENCH_STRICT [0]        1: stop at the first failure instead of marking it and going on
#   BENCH_NO_BUILD [0]      1: do not run `cargo build --release -p zonefleet-dns-pod`
#   BENCH_DNS_POD_BIN       the dns-pod binary [target/release/zonefleet-dns-pod]
#   BENCH_DNS_POD_BEFORE_BIN  a second dns-pod binary, measured as server "dns-pod-before" (e.g. the
#                           commit before a change, to compare both in one run)
#   HICKORY_VERSION [0.26.3], ZONEFLEET_CACHE [~/.cache/zonefleet]: where setup.sh put hickory-dns
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
WORK="${BENCH_WORK:-$HERE/work}"
export BENCH_WORK="$WORK"

log() { printf 'run: %s\n' "$*" >&2; }
die() { printf 'run: error: %s\n' "$*" >&2; exit 2; }

zones="${BENCH_ZONES:-}"
while (($#)); do
  case "$1" in
    --zones) zones="$zones ${2:?--zones needs 100k, 1m or 10k}"; shift 2 ;;
    --zones=*) zones="$zones ${1#--zones=}"; shift ;;
    --1m) zones="$zones 1m"; shift ;;
    --10k-zones|--10k) zones="$zones 10k"; shift ;;
    --100k) zones="$zones 100k"; shift ;;
    --servers) export BENCH_SERVERS="${2:?}"; shift 2 ;;
    --mixes) export BENCH_MIXES="${2:?}"; shift 2 ;;
    --no-build) export BENCH_NO_BUILD=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done
zones="$(echo "${zones//,/ }" | xargs -n1 2>/dev/null | awk '!seen[$0]++' | xargs)"
[[ -n $zones ]] || zones=100k
for set in $zones; do
  case "$set" in 100k|1m|10k) ;; *) die "unknown zone set $set (100k, 1m or 10k)" ;; esac
done

# Stop every server process group bench.py started and did not stop (it lists them in
# $WORK/run/pgids, which is emptied first so that no stale entry from an earlier run counts).
mkdir -p "$WORK/run"
: >"$WORK/run/pgids"
child=0
cleanup() {
  local status=$? pgids=() pgid
  if [[ -s $WORK/run/pgids ]]; then
    mapfile -t pgids <"$WORK/run/pgids"
    for pgid in "${pgids[@]}"; do
      [[ $pgid =~ ^[0-9]+$ ]] || continue
      kill -TERM -- "-$pgid" 2>/dev/null && log "stopped leftover process group $pgid"
    done
    sleep 1
    for pgid in "${pgids[@]}"; do
      [[ $pgid =~ ^[0-9]+$ ]] && kill -KILL -- "-$pgid" 2>/dev/null || true
    done
    : >"$WORK/run/pgids"
  fi
  exit "$status"
}
# On INT or TERM, ask bench.py to stop (it stops its server and dnsperf), then clean up.
on_signal() {
  if ((child)); then
    kill -TERM "$child" 2>/dev/null || true
    wait "$child" 2>/dev/null || true
  fi
  exit "$1"
}
trap cleanup EXIT
trap 'on_signal 130' INT
trap 'on_signal 143' TERM

# --- tools -------------------------------------------------------------------------------
for bin in nsd nsd-checkconf knotd named named-checkconf dnsperf dig taskset; do
  command -v "$bin" >/dev/null || die "$bin is missing: run bench/compare/setup.sh"
done
[[ $(nproc) -ge 2 ]] || die "needs 2 CPUs (server on CPU 0, dnsperf on CPU 1)"

HICKORY_VERSION="${HICKORY_VERSION:-0.26.3}"
export BENCH_HICKORY_BIN="${BENCH_HICKORY_BIN:-${ZONEFLEET_CACHE:-$HOME/.cache/zonefleet}/hickory-dns-$HICKORY_VERSION/bin/hickory-dns}"
[[ -x $BENCH_HICKORY_BIN ]] || die "$BENCH_HICKORY_BIN is missing: run bench/compare/setup.sh"

if [[ ${BENCH_NO_BUILD:-0} != 1 && -z ${BENCH_DNS_POD_BIN:-} ]]; then
  log "cargo build --release -p zonefleet-dns-pod"
  (cd "$REPO" && cargo build --release -p zonefleet-dns-pod)
fi
export BENCH_DNS_POD_BIN="${BENCH_DNS_POD_BIN:-${CARGO_TARGET_DIR:-$REPO/target}/release/zonefleet-dns-pod}"
[[ -x $BENCH_DNS_POD_BIN ]] || die "$BENCH_DNS_POD_BIN is missing (cargo build --release -p zonefleet-dns-pod)"

# Debian's python3-matplotlib is importable by /usr/bin/python3, which may not be the
# python3 first on PATH.
PYTHON=python3
if /usr/bin/python3 -c 'import matplotlib' 2>/dev/null; then PYTHON=/usr/bin/python3; fi

# --- zones and queries -------------------------------------------------------------------
# shellcheck disable=SC2086
"$PYTHON" "$HERE/gen_zones.py" --work "$WORK" $zones >/dev/null

# --- measure -----------------------------------------------------------------------------
# In the background, so that the signal traps run while it works.
# shellcheck disable=SC2086
"$PYTHON" "$HERE/bench.py" $zones &
child=$!
status=0
wait "$child" || status=$?
child=0
exit "$status"
