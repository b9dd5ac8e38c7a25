#!/usr/bin/env bash
# A real, local Kubernetes control plane for Zonefleet's end-to-end tests and demo.
#
#   e2e/cluster.sh up      start etcd, kube-apiserver, kube-controller-manager, nats-server
#                          and the process kubelet; wait until ready; print the environment
#   e2e/cluster.sh down    stop exactly the processes `up` started (by their pid files) and
#                          remove the pod network it created
#   e2e/cluster.sh env     print the environment (`eval "$(e2e/cluster.sh env)"`)
#   e2e/cluster.sh status  say which processes are running
#   e2e/cluster.sh demo    `up`, then install the CRDs, run the operator and apply
#                          examples/example-zone.yaml in namespace `demo`
#
# Everything lives in one state directory, $ZONEFLEET_E2E_DIR (default: <repo>/.e2e).
#
# Networking: the pods run in network namespaces joined by veth pairs to a host-only bridge
# (no uplink, no NAT) on 198.18.0.0/16, the range RFC 2544 reserves for benchmarking; it is
# never routed. The control plane listens on the bridge's own address so that pods reach it,
# etcd and the controller-manager's health port stay on 127.0.0.1. EndpointSlices reject
# loopback addresses, which is why pods cannot simply get 127.0.0.x addresses.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
state=${ZONEFLEET_E2E_DIR:-$repo/.e2e}

host_ip=${ZONEFLEET_HOST_IP:-198.18.0.1}
pod_prefix_len=16
bridge=${ZONEFLEET_BRIDGE:-zf-br0}
etcd_port=${ZONEFLEET_ETCD_PORT:-23790}
etcd_peer_port=${ZONEFLEET_ETCD_PEER_PORT:-23800}
apiserver_port=${ZONEFLEET_APISERVER_PORT:-6443}
kcm_port=${ZONEFLEET_KCM_PORT:-30257}
nats_port=${ZONEFLEET_NATS_PORT:-4222}
nats_monitor_port=${ZONEFLEET_NATS_MONITOR_PORT:-28222}
node_name=${ZONEFLEET_NODE_NAME:-process-node}
pod_label=${ZONEFLEET_POD_LABEL:-zonefleet.io/process-kubelet=true}
service_cidr=10.96.0.0/16
first_service_ip=10.96.0.1
cargo_profile=${ZONEFLEET_CARGO_PROFILE:-debug}

pki=$state/pki
pids=$state/pids
logs=$state/logs

log() { printf '[cluster] %s\n' "$*" >&2; }
die() { printf '[cluster] error: %s\n' "$*" >&2; exit 1; }

# --- process bookkeeping -------------------------------------------------------------------

# The start time (clock ticks since boot) of a pid, so a pid file never names a reused pid.
start_time_of() { awk '{print $22}' "/proc/$1/stat" 2>/dev/null || true; }

# Prints the pid recorded in a pid file if that very process is still alive.
live_pid() { # <pidfile>
  local file=$1 pid start
  [[ -f $file ]] || return 1
  read -r pid start <"$file" || return 1
  [[ -n ${pid:-} && -d /proc/$pid ]] || return 1
  [[ $(start_time_of "$pid") == "${start:-}" ]] || return 1
  echo "$pid"
}

# Starts a process in its own session, logs to $logs/<name>.log, records "<pid> <start>".
start_process() { # <name> <binary> [args...]
  local name=$1; shift
  local logfile=$logs/$name.log
  if live_pid "$pids/$name.pid" >/dev/null; then
    die "$name is already running (pid $(live_pid "$pids/$name.pid"))"
  fi
  setsid "$@" >>"$logfile" 2>&1 </dev/null &
  local pid=$!
  sleep 0.05
  echo "$pid $(start_time_of "$pid")" >"$pids/$name.pid"
  log "started $name (pid $pid, log $logfile)"
}

# Fails loudly, naming the process and showing its log, if it has died.
check_alive() { # <name>
  if ! live_pid "$pids/$1.pid" >/dev/null; then
    log "$1 exited; last lines of $logs/$1.log:"
    tail -n 30 "$logs/$1.log" >&2 || true
    return 1
  fi
}

stop_process() { # <name> [grace seconds] [pid file]
  local name=$1 grace=${2:-15} file=${3:-$pids/$1.pid} pid i
  if pid=$(live_pid "$file"); then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < grace * 10; i++)); do
      live_pid "$file" >/dev/null || break
      sleep 0.1
    done
    if live_pid "$file" >/dev/null; then
      log "$name (pid $pid) did not stop in ${grace}s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    log "stopped $name (pid $pid)"
  fi
  rm -f "$file"
}

port_in_use() { # <ip> <port>
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

wait_for() { # <what> <timeout s> <process name> <command...>
  local what=$1 timeout=$2 proc=$3 i
  shift 3
  for ((i = 0; i < timeout * 4; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    check_alive "$proc" || die "$proc died while waiting for $what"
    sleep 0.25
  done
  log "timed out after ${timeout}s waiting for $what; last lines of $logs/$proc.log:"
  tail -n 30 "$logs/$proc.log" >&2 || true
  die "$what did not become ready"
}

# --- certificates --------------------------------------------------------------------------

issue_cert() { # <name> <subject> <extensions>
  local name=$1 subject=$2 ext=$3
  [[ -f $pki/$name.crt ]] && return 0
  openssl genrsa -out "$pki/$name.key" 2048 2>/dev/null
  openssl req -new -key "$pki/$name.key" -subj "$subject" -out "$pki/$name.csr" 2>/dev/null
  printf '%s\n' "$ext" >"$pki/$name.ext"
  openssl x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" \
    -CAcreateserial -days 365 -sha256 -extfile "$pki/$name.ext" -out "$pki/$name.crt" 2>/dev/null
  rm -f "$pki/$name.csr" "$pki/$name.ext"
}

generate_pki() {
  mkdir -p "$pki"
  chmod 700 "$pki"
  if [[ ! -f $pki/ca.crt ]]; then
    openssl genrsa -out "$pki/ca.key" 2048 2>/dev/null
    openssl req -x509 -new -key "$pki/ca.key" -subj "/CN=zonefleet-e2e-ca" -days 365 \
      -sha256 -out "$pki/ca.crt" 2>/dev/null
  fi
  local server_ext="basicConstraints=CA:FALSE
keyUsage=digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth"
  local client_ext="basicConstraints=CA:FALSE
keyUsage=digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
  issue_cert etcd "/CN=etcd" "$server_ext
subjectAltName=IP:127.0.0.1,DNS:localhost"
  issue_cert apiserver "/CN=kube-apiserver" "$server_ext
subjectAltName=IP:$host_ip,IP:127.0.0.1,IP:$first_service_ip,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  issue_cert apiserver-etcd-client "/CN=kube-apiserver-etcd-client" "$client_ext"
  issue_cert admin "/O=system:masters/CN=zonefleet-e2e-admin" "$client_ext"
  issue_cert controller-manager "/CN=system:kube-controller-manager" "$client_ext"
  issue_cert kubelet "/O=system:nodes/CN=system:node:$node_name" "$client_ext"
  issue_cert scheduler "/CN=system:kube-scheduler" "$client_ext"
  if [[ ! -f $pki/sa.key ]]; then
    openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
    openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
  fi
  if [[ ! -f $state/nats-password ]]; then
    openssl rand -hex 24 >"$state/nats-password"
    chmod 600 "$state/nats-password"
  fi
}

write_kubeconfig() { # <file> <user> <cert name>
  local file=$1 user=$2 cert=$3
  cat >"$file" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: zonefleet-e2e
  cluster:
    server: https://$host_ip:$apiserver_port
    certificate-authority-data: $(base64 -w0 "$pki/ca.crt")
users:
- name: $user
  user:
    client-certificate-data: $(base64 -w0 "$pki/$cert.crt")
    client-key-data: $(base64 -w0 "$pki/$cert.key")
contexts:
- name: $user@zonefleet-e2e
  context:
    cluster: zonefleet-e2e
    user: $user
current-context: $user@zonefleet-e2e
EOF
  chmod 600 "$file"
}

# --- network -------------------------------------------------------------------------------

create_bridge() {
  if ! ip link show "$bridge" >/dev/null 2>&1; then
    ip link add "$bridge" type bridge || die "cannot create bridge $bridge (root and CAP_NET_ADMIN are needed)"
    echo "$bridge" >"$state/bridge"
  fi
  ip addr replace "$host_ip/$pod_prefix_len" dev "$bridge"
  ip link set "$bridge" up
}

# Deletes the bridge `up` made.
remove_network() {
  if [[ -f $state/bridge ]]; then
    ip link del "$(cat "$state/bridge")" 2>/dev/null && log "deleted bridge $(cat "$state/bridge")"
    rm -f "$state/bridge"
  fi
}

# Pod processes and network namespaces a killed kubelet left behind, found by their records.
stop_leftover_pods() {
  local f name ns
  for f in "$state"/pods/*.pid; do
    [[ -f $f ]] || continue
    name=$(basename "$f" .pid)
    stop_process "pod process $name" 5 "$f"
  done
  for f in "$state"/netns/*; do
    [[ -f $f ]] || continue
    ns=$(cat "$f")
    if ip netns list | awk '{print $1}' | grep -qxF "$ns"; then
      ip netns del "$ns" && log "deleted network namespace $ns"
    fi
    rm -f "$f"
  done
  rm -rf "$state/pods"
}

# --- components ----------------------------------------------------------------------------

start_etcd() {
  # Every `up` starts from an empty cluster.
  rm -rf "$state/etcd" "$state/nats"
  mkdir -p "$state/etcd"
  chmod 700 "$state/etcd"
  start_process etcd "$(tools path etcd)" \
    --name zonefleet-e2e \
    --data-dir "$state/etcd" \
    --listen-client-urls "https://127.0.0.1:$etcd_port" \
    --advertise-client-urls "https://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$etcd_peer_port" \
    --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer_port" \
    --initial-cluster "zonefleet-e2e=http://127.0.0.1:$etcd_peer_port" \
    --cert-file "$pki/etcd.crt" --key-file "$pki/etcd.key" \
    --client-cert-auth --trusted-ca-file "$pki/ca.crt" \
    --listen-metrics-urls "http://127.0.0.1:$((etcd_port + 2))" \
    --unsafe-no-fsync --quota-backend-bytes 4294967296
  wait_for "etcd health" 30 etcd curl -sf "http://127.0.0.1:$((etcd_port + 2))/health"
}

start_apiserver() {
  start_process kube-apiserver "$(tools path kube-apiserver)" \
    --etcd-servers "https://127.0.0.1:$etcd_port" \
    --etcd-cafile "$pki/ca.crt" \
    --etcd-certfile "$pki/apiserver-etcd-client.crt" \
    --etcd-keyfile "$pki/apiserver-etcd-client.key" \
    --bind-address "$host_ip" --advertise-address "$host_ip" \
    --secure-port "$apiserver_port" \
    --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
    --client-ca-file "$pki/ca.crt" \
    --authorization-mode Node,RBAC \
    --enable-admission-plugins NodeRestriction \
    --service-cluster-ip-range "$service_cidr" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$pki/sa.pub" \
    --service-account-signing-key-file "$pki/sa.key" \
    --allow-privileged=false \
    --profiling=false \
    --v=1
  wait_for "kube-apiserver /readyz" 120 kube-apiserver \
    curl -sf --cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key" \
    "https://$host_ip:$apiserver_port/readyz"
}

start_controller_manager() {
  start_process kube-controller-manager "$(tools path kube-controller-manager)" \
    --kubeconfig "$state/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$state/controller-manager.kubeconfig" \
    --authorization-kubeconfig "$state/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$kcm_port" \
    --service-account-private-key-file "$pki/sa.key" \
    --root-ca-file "$pki/ca.crt" \
    --use-service-account-credentials \
    --cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key" \
    --service-cluster-ip-range "$service_cidr" \
    --leader-elect=false \
    --v=1
  wait_for "kube-controller-manager /healthz" 60 kube-controller-manager \
    curl -sfk "https://127.0.0.1:$kcm_port/healthz"
}

start_nats() {
  local password
  password=$(cat "$state/nats-password")
  mkdir -p "$state/nats"
  cat >"$state/nats.conf" <<EOF
listen: "$host_ip:$nats_port"
http: "127.0.0.1:$nats_monitor_port"
server_name: zonefleet-e2e
max_payload: 1MB
jetstream {
  store_dir: "$state/nats"
  max_memory_store: 512MB
  max_file_store: 4GB
}
authorization {
  users = [
    { user: "zonefleet", password: "$password" }
  ]
}
EOF
  chmod 600 "$state/nats.conf"
  start_process nats-server "$(tools path nats-server)" -c "$state/nats.conf"
  wait_for "nats-server JetStream" 30 nats-server \
    curl -sf "http://127.0.0.1:$nats_monitor_port/healthz?js-enabled-only=true"
}

kubelet_binary() { echo "$repo/target/$cargo_profile/process-kubelet"; }

start_kubelet() {
  local bin
  bin=$(kubelet_binary)
  if [[ -z ${ZONEFLEET_SKIP_BUILD:-} ]]; then
    local flags=()
    [[ $cargo_profile == release ]] && flags+=(--release)
    log "building the process kubelet and the workspace binaries (cargo build ${flags[*]})"
    (cd "$repo" && cargo build "${flags[@]}" --workspace --bins) >&2 \
      || die "cargo build of the workspace binaries failed"
  fi
  [[ -x $bin ]] || die "$bin is missing: build it with 'cargo build -p zonefleet-process-kubelet'"
  mkdir -p "$state/netns" "$state/pods"
  RUST_LOG=${RUST_LOG:-info} start_process process-kubelet "$bin" \
    --kubeconfig "$state/kubelet.kubeconfig" \
    --scheduler-kubeconfig "$state/scheduler.kubeconfig" \
    --node-name "$node_name" \
    --selector "$pod_label" \
    --state-dir "$state" \
    --bridge "$bridge" \
    --gateway "$host_ip/$pod_prefix_len" \
    --apiserver "$host_ip:$apiserver_port" \
    --image "zonefleet/e2e-testpod=$repo/target/$cargo_profile/e2e-testpod" \
    --image "ghcr.io/zonefleet/operator=$repo/target/$cargo_profile/zonefleet-operator" \
    --image "ghcr.io/zonefleet/dns-pod=$repo/target/$cargo_profile/zonefleet-dns-pod" \
    --image "nats=$(tools path nats-server)"
  wait_for "node $node_name Ready" 60 process-kubelet \
    bash -c "KUBECONFIG='$state/admin.kubeconfig' '$(tools path kubectl)' get node '$node_name' \
      -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status}' | grep -qx True"
}

tools() { "$here/tools.sh" "$@"; }

print_env() {
  [[ -f $state/env ]] || die "the cluster is not up (no $state/env)"
  cat "$state/env"
}

write_env() {
  cat >"$state/env" <<EOF
export ZONEFLEET_E2E_DIR='$state'
export KUBECONFIG='$state/admin.kubeconfig'
export PATH='$(tools bindir):'"\$PATH"
export NATS_URL='nats://$host_ip:$nats_port'
export NATS_USER='zonefleet'
export NATS_PASSWORD='$(cat "$state/nats-password")'
export ZONEFLEET_POD_LABEL='$pod_label'
export ZONEFLEET_NODE_NAME='$node_name'
export ZONEFLEET_HOST_IP='$host_ip'
EOF
  chmod 600 "$state/env"
}

up() {
  [[ $(id -u) -eq 0 ]] || die "the local cluster needs root, to create the pod network namespaces"
  local cmd
  for cmd in ip nsenter openssl curl setsid awk base64; do
    command -v "$cmd" >/dev/null || die "'$cmd' is not installed (run e2e/setup.sh)"
  done
  mkdir -p "$state" "$pids" "$logs"
  if live_pid "$pids/kube-apiserver.pid" >/dev/null && [[ -f $state/env ]]; then
    log "already up"
    print_env
    return 0
  fi
  trap 'rc=$?; if [[ $rc -ne 0 ]]; then log "start-up failed; stopping what was started"; down; fi' EXIT
  tools install
  stop_leftover_pods
  create_bridge
  local port
  for port in "127.0.0.1:$etcd_port" "127.0.0.1:$etcd_peer_port" "$host_ip:$apiserver_port" \
    "127.0.0.1:$kcm_port" "$host_ip:$nats_port" "127.0.0.1:$nats_monitor_port"; do
    port_in_use "${port%:*}" "${port##*:}" && die "port $port is already in use by another process"
  done
  generate_pki
  write_kubeconfig "$state/admin.kubeconfig" admin admin
  write_kubeconfig "$state/controller-manager.kubeconfig" controller-manager controller-manager
  write_kubeconfig "$state/kubelet.kubeconfig" "system:node:$node_name" kubelet
  write_kubeconfig "$state/scheduler.kubeconfig" scheduler scheduler
  start_etcd
  start_apiserver
  start_controller_manager
  start_nats
  start_kubelet
  trap - EXIT
  write_env
  log "the cluster is up"
  print_env
}

demo() {
  up >/dev/null
  local kubectl
  kubectl=$(tools path kubectl)
  export KUBECONFIG=$state/admin.kubeconfig
  "$kubectl" apply -f "$repo/crds/" >&2
  "$kubectl" wait --for=condition=Established crd/zones.dns.zonefleet.io crd/records.dns.zonefleet.io >&2
  "$kubectl" create namespace zonefleet-system --dry-run=client -o yaml | "$kubectl" apply -f - >&2
  demo_dns_fleet | "$kubectl" apply -n zonefleet-system -f - >&2
  if ! live_pid "$pids/operator.pid" >/dev/null; then
    RUST_LOG=${RUST_LOG:-info} NATS_URL="nats://$host_ip:$nats_port" NATS_USER=zonefleet \
      NATS_PASSWORD="$(cat "$state/nats-password")" \
      ZONEFLEET_DNS_SERVICE=zonefleet-dns ZONEFLEET_DNS_SERVICE_NAMESPACE=zonefleet-system \
      start_process operator "$repo/target/$cargo_profile/zonefleet-operator" \
      --no-leader-election --metrics-address "127.0.0.1:${ZONEFLEET_OPERATOR_METRICS_PORT:-28080}"
  fi
  "$kubectl" create namespace demo --dry-run=client -o yaml | "$kubectl" apply -f - >&2
  "$kubectl" apply -n demo -f "$repo/examples/example-zone.yaml" >&2
  "$kubectl" rollout status -n zonefleet-system deployment/zonefleet-dns --timeout=120s >&2
  # Ready means every ready DNS pod serves the Zone's current version.
  wait_for "every DNS pod to serve the example zone" 120 operator \
    "$kubectl" wait -n demo --for=condition=Ready zone/example --timeout=1s
  "$kubectl" get zones,records -n demo
  local pod ip
  for pod in $("$kubectl" get pods -n zonefleet-system -l app.kubernetes.io/name=zonefleet-dns -o name); do
    ip=$("$kubectl" get -n zonefleet-system "$pod" -o jsonpath='{.status.podIP}')
    echo
    echo "\$ dig @$ip -p 5353 www.example.com A +noall +answer    # ${pod#pod/}"
    dig @"$ip" -p 5353 www.example.com A +noall +answer
  done
  log "the operator runs (log $logs/operator.log, metrics http://127.0.0.1:${ZONEFLEET_OPERATOR_METRICS_PORT:-28080}/metrics)"
  log "use it with: eval \"\$(e2e/cluster.sh env)\"; kubectl get zones -A"
}

# The demo's DNS fleet: the NATS credentials as a Secret, two dns-pods run by the process
# kubelet (a Deployment), and the headless Service whose EndpointSlices the operator watches.
demo_dns_fleet() {
  local label_key=${pod_label%%=*} label_value=${pod_label#*=}
  cat <<EOF
apiVersion: v1
kind: Secret
metadata:
  name: zonefleet-nats
stringData:
  url: nats://$host_ip:$nats_port
  user: zonefleet
  password: $(cat "$state/nats-password")
---
apiVersion: v1
kind: Service
metadata:
  name: zonefleet-dns
spec:
  clusterIP: None
  selector: {app.kubernetes.io/name: zonefleet-dns}
  ports:
    - {name: dns, port: 5353, protocol: UDP, targetPort: dns}
    - {name: dns-tcp, port: 5353, protocol: TCP, targetPort: dns-tcp}
    - {name: admin, port: 8080, protocol: TCP, targetPort: admin}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: zonefleet-dns
spec:
  replicas: 2
  selector:
    matchLabels: {app.kubernetes.io/name: zonefleet-dns}
  template:
    metadata:
      labels:
        app.kubernetes.io/name: zonefleet-dns
        $label_key: "$label_value"
    spec:
      terminationGracePeriodSeconds: 5
      containers:
        - name: dns
          image: ghcr.io/zonefleet/dns-pod:latest
          args: ["--listen", "0.0.0.0:5353", "--admin-address", "0.0.0.0:8080",
                 "--snapshot-dir", "$state/snapshots/demo/\$(POD_NAME)"]
          env:
            - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
            - {name: NATS_URL, valueFrom: {secretKeyRef: {name: zonefleet-nats, key: url}}}
            - {name: NATS_USER, valueFrom: {secretKeyRef: {name: zonefleet-nats, key: user}}}
            - {name: NATS_PASSWORD, valueFrom: {secretKeyRef: {name: zonefleet-nats, key: password}}}
          ports:
            - {name: dns, containerPort: 5353, protocol: UDP}
            - {name: dns-tcp, containerPort: 5353, protocol: TCP}
            - {name: admin, containerPort: 8080}
          readinessProbe:
            httpGet: {path: /readyz, port: admin}
            periodSeconds: 2
EOF
}

down() {
  trap - EXIT
  stop_process operator
  # The kubelet first: it stops its pods and deletes their network namespaces.
  stop_process process-kubelet 30
  stop_leftover_pods
  stop_process nats-server
  stop_process kube-controller-manager
  stop_process kube-apiserver
  stop_process etcd
  remove_network
  rm -f "$state/env"
  log "the cluster is down"
}

status() {
  local name pid
  for name in etcd kube-apiserver kube-controller-manager nats-server process-kubelet operator; do
    if pid=$(live_pid "$pids/$name.pid"); then
      echo "$name: running (pid $pid)"
    else
      echo "$name: stopped"
    fi
  done
}

case "${1:-}" in
  up) up ;;
  down) mkdir -p "$pids"; down ;;
  env) print_env ;;
  status) status ;;
  demo) demo ;;
  *) echo "usage: $0 up | down | env | status | demo" >&2; exit 2 ;;
esac
