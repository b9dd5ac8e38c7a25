#!/usr/bin/env bash
# Builds the upstream binaries the local control plane needs from their Go modules,
# and caches them outside the repository, keyed by version:
#
#   $ZONEFLEET_CACHE/bin/<tool>-<version>/<tool>
#
# Usage:
#   e2e/tools.sh install       build whatever is missing (idempotent)
#   e2e/tools.sh path <tool>   print the cached path of one tool
#   e2e/tools.sh bindir        print a PATH fragment holding every tool
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"

cache=${ZONEFLEET_CACHE:-$HOME/.cache/zonefleet}
export GOFLAGS=-buildvcs=false
export GOTOOLCHAIN=local

log() { printf '[tools] %s\n' "$*" >&2; }
die() { printf '[tools] error: %s\n' "$*" >&2; exit 1; }

version_of() {
  case "$1" in
    kube-apiserver|kube-controller-manager|kubectl) echo "$KUBERNETES_VERSION" ;;
    etcd) echo "$ETCD_VERSION" ;;
    helm) echo "$HELM_VERSION" ;;
    nats-server) echo "$NATS_SERVER_VERSION" ;;
    *) die "unknown tool '$1'" ;;
  esac
}

tool_path() { echo "$cache/bin/$1-$(version_of "$1")/$1"; }

# A throw-away module that requires the tool's module; the binary is built from it.
new_module() {
  local dir
  dir=$(mktemp -d "${TMPDIR:-/tmp}/zonefleet-tools.XXXXXX")
  (cd "$dir" && go mod init zonefleet.local/tools >/dev/null 2>&1)
  echo "$dir"
}

install_to() { # <tool> <built file>
  local dest
  dest=$(tool_path "$1")
  mkdir -p "$(dirname "$dest")"
  mv "$2" "$dest.tmp" && mv "$dest.tmp" "$dest"
  log "built $1 $(version_of "$1") -> $dest"
}

build_kubernetes() {
  local missing=() t
  for t in kube-apiserver kube-controller-manager kubectl; do
    [[ -x $(tool_path "$t") ]] || missing+=("$t")
  done
  [[ ${#missing[@]} -gt 0 ]] || return 0
  local v=$KUBERNETES_VERSION minor staging dir gomod
  minor=${v#v1.}; minor=${minor%%.*}
  staging="v0.${v#v1.}"
  dir=$(new_module)
  log "building ${missing[*]} from k8s.io/kubernetes@$v (module dir $dir)"
  (
    cd "$dir"
    gomod=$(go mod download -json "k8s.io/kubernetes@$v" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
    [[ -f $gomod ]] || die "could not download k8s.io/kubernetes@$v"
    # k8s.io/kubernetes replaces its staging modules with ./staging paths, which do not
    # apply to a dependent module: pin each of them to its published v0 version instead.
    local mods
    mods=$(sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\1#p' "$gomod")
    [[ -n $mods ]] || die "no staging modules found in $gomod"
    local args=() m
    for m in $mods; do args+=("-replace=$m=$m@$staging"); done
    go mod edit "${args[@]}" "-require=k8s.io/kubernetes@$v"
    local ldflags="-s -w" pkg
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ldflags+=" -X $pkg.gitVersion=$v -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
      ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
    done
    for t in "${missing[@]}"; do
      go get "k8s.io/kubernetes/cmd/$t@$v" >/dev/null 2>&1 || go get "k8s.io/kubernetes/cmd/$t@$v"
    done
    for t in "${missing[@]}"; do
      go build -trimpath -ldflags "$ldflags" -o "$dir/$t" "k8s.io/kubernetes/cmd/$t" \
        || die "go build of $t failed"
      install_to "$t" "$dir/$t"
    done
  )
  rm -rf "$dir"
}

build_simple() { # <tool> <module> <package> [ldflags]
  local t=$1 mod=$2 pkg=$3 ldflags="-s -w ${4:-}" v dir
  [[ -x $(tool_path "$t") ]] && return 0
  v=$(version_of "$t")
  dir=$(new_module)
  log "building $t from $mod@$v (module dir $dir)"
  (
    cd "$dir"
    go get "$pkg@$v" >/dev/null 2>&1 || go get "$pkg@$v" || die "go get $pkg@$v failed"
    go build -trimpath -ldflags "$ldflags" -o "$dir/$t" "$pkg" || die "go build of $t failed"
    install_to "$t" "$dir/$t"
  )
  rm -rf "$dir"
}

# Go's build and module caches for these builds live in a scratch directory that is removed
# afterwards (several GiB for Kubernetes); the binaries themselves are what is cached.
# ZONEFLEET_KEEP_GO_CACHE=1 uses the user's own Go caches instead.
scratch_go_caches() {
  [[ ${ZONEFLEET_KEEP_GO_CACHE:-0} == 1 ]] && return 0
  local t missing=0
  for t in etcd kube-apiserver kube-controller-manager kubectl helm nats-server; do
    [[ -x $(tool_path "$t") ]] || missing=1
  done
  [[ $missing == 1 ]] || return 0
  go_scratch=$(mktemp -d "${TMPDIR:-/tmp}/zonefleet-gocache.XXXXXX")
  export GOCACHE=$go_scratch/build GOMODCACHE=$go_scratch/mod
  export GOFLAGS="$GOFLAGS -modcacherw"
  trap 'rm -rf "$go_scratch"' EXIT
}

install_all() {
  command -v go >/dev/null || die "go is not installed"
  scratch_go_caches
  build_simple nats-server github.com/nats-io/nats-server/v2 github.com/nats-io/nats-server/v2
  build_simple etcd go.etcd.io/etcd/server/v3 go.etcd.io/etcd/server/v3
  build_simple helm helm.sh/helm/v4 helm.sh/helm/v4/cmd/helm \
    "-X helm.sh/helm/v4/internal/version.version=$HELM_VERSION"
  build_kubernetes
}

bindir() {
  local t out=""
  for t in etcd kube-apiserver kube-controller-manager kubectl helm nats-server; do
    out+="${out:+:}$(dirname "$(tool_path "$t")")"
  done
  echo "$out"
}

case "${1:-}" in
  install) install_all ;;
  path) tool_path "${2:?tool name}" ;;
  bindir) bindir ;;
  *) echo "usage: $0 install | path <tool> | bindir" >&2; exit 2 ;;
esac
