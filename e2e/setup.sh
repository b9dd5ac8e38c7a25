#!/usr/bin/env bash
# Installs what a fresh machine lacks to build and test Zonefleet: Debian packages, the
# pinned Rust toolchain, and the Go-built control-plane binaries. Idempotent and quiet when
# everything is there.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
log() { printf '[setup] %s\n' "$*" >&2; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

# Debian packages: the pod network (iproute2, util-linux's nsenter), certificates (openssl),
# health checks (curl), the C toolchain some crates build with, and the reference DNS
# servers and clients the differential test compares against (NSD, Knot, dig, kdig).
packages=(iproute2 util-linux openssl curl ca-certificates build-essential pkg-config git
          nsd knot dnsutils knot-dnsutils)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  [[ $(id -u) -eq 0 ]] || die "missing packages ${missing[*]}; run as root or install them"
  log "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

command -v go >/dev/null || die "Go is not installed; the control plane is built from Go modules (Go >= 1.26)"
go_minor=$(go env GOVERSION | sed -n 's/^go1\.\([0-9]*\).*/\1/p')
[[ ${go_minor:-0} -ge 26 ]] || die "Go $(go env GOVERSION) is too old: Kubernetes 1.36 needs Go >= 1.26"

command -v cargo >/dev/null || die "Rust is not installed (install rustup; rust-toolchain.toml pins the version)"
(cd "$repo" && rustup show active-toolchain >/dev/null 2>&1) || (cd "$repo" && rustup toolchain install)

"$here/tools.sh" install
