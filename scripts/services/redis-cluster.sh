#!/usr/bin/env bash
# An N-master Redis Cluster on 127.0.0.1 (Debian redis-server 7.0), no persistence, LRU-bounded, for tests
# and benchmarks.
# Usage:  scripts/services/redis-cluster.sh [start|stop|status]
# Env:    REDIS_BASE_PORT (default 7101): masters get BASE..BASE+MASTERS-1, replicas the next ports
#         REDIS_MASTERS (default 3), REDIS_REPLICAS (per master, default 0)
#         REDIS_NODE_TIMEOUT_MS (cluster-node-timeout, default 2000), REDIS_MAXMEM (per node, default 256mb)
#         REDIS_STATE (default .work/services/redis-$REDIS_BASE_PORT): one dir per node with redis.pid
#         REDIS_PASSWORD: requirepass and masterauth (as managed Redis requires); unset: no password
#         REDIS_TLS=1: TLS only (tls-port, port 0, tls-cluster, tls-replication); a fresh CA and a server cert
#           for 127.0.0.1/localhost are made with openssl in $REDIS_STATE/tls (ca.crt, client.crt/.key for
#           clients that want one; client certs are optional)
# Full coverage is off: the surviving masters keep serving their slots when one is lost.
# Stops only the processes it started (pid files under REDIS_STATE).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BASE="${REDIS_BASE_PORT:-7101}"
MASTERS="${REDIS_MASTERS:-3}"
REPLICAS="${REDIS_REPLICAS:-0}"
NODE_TIMEOUT="${REDIS_NODE_TIMEOUT_MS:-2000}"
MAXMEM="${REDIS_MAXMEM:-256mb}"
STATE="${REDIS_STATE:-$ROOT/.work/services/redis-$BASE}"
PASSWORD="${REDIS_PASSWORD:-}"
TLS="${REDIS_TLS:-0}"
TLSDIR="$STATE/tls"

# redis-cli as a client of this cluster; the password through REDISCLI_AUTH, off the command line (ps shows it).
CLI=(redis-cli)
[[ "$TLS" == 1 ]] && CLI+=(--tls --cacert "$TLSDIR/ca.crt")
[[ -n "$PASSWORD" ]] && export REDISCLI_AUTH="$PASSWORD"
cli() { "${CLI[@]}" "$@"; }

# A CA, a server certificate for 127.0.0.1 and localhost, and a client certificate, all signed by the CA.
make_certs() {
  mkdir -p "$TLSDIR"
  (
    cd "$TLSDIR"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=snapshots test CA" \
      -keyout ca.key -out ca.crt 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n' > ext.cnf
    for who in server client; do
      openssl req -newkey rsa:2048 -nodes -subj "/CN=$who" -keyout "$who.key" -out "$who.csr" 2>/dev/null
      openssl x509 -req -in "$who.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile ext.cnf \
        -out "$who.crt" 2>/dev/null
    done
    chmod 600 ./*.key
  )
}

stop() {
  [[ -d "$STATE" ]] || return 0
  shopt -s nullglob
  local pf pid
  for pf in "$STATE"/*/redis.pid; do
    pid=$(cat "$pf")
    # A stalled (SIGSTOP) node must be resumed to take the TERM.
    if kill -0 "$pid" 2>/dev/null; then kill -CONT "$pid" 2>/dev/null || true; kill "$pid"; fi
  done
  for pf in "$STATE"/*/redis.pid; do
    pid=$(cat "$pf")
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" || true
  done
  rm -rf "$STATE"
  echo "stopped redis cluster at $BASE"
}

start() {
  command -v redis-server >/dev/null || { echo "redis-server missing: apt-get install -y redis-server redis-tools"; exit 1; }
  [[ -d "$STATE" ]] && stop >/dev/null
  mkdir -p "$STATE"
  local n=$(( MASTERS * (1 + REPLICAS) )) ports=() hosts=() p d extra=()
  # A node of another cluster on one of our ports (not ours: ours were stopped above) would answer the readiness
  # pings below while ours dies on the taken port; any other listener there would hang redis-cli's ping.
  for p in $(seq "$BASE" $((BASE + n - 1))); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      if timeout 2 "${CLI[@]}" -p "$p" ping 2>/dev/null | grep -q PONG; then
        echo "port $p is in use by another redis server"
      else
        echo "port $p is in use by another process (not redis)"
      fi
      exit 1
    fi
  done
  if [[ "$TLS" == 1 ]]; then
    make_certs
    extra+=(--tls-cert-file "$TLSDIR/server.crt" --tls-key-file "$TLSDIR/server.key"
      --tls-ca-cert-file "$TLSDIR/ca.crt" --tls-auth-clients optional --tls-cluster yes --tls-replication yes)
  fi
  for i in $(seq 0 $((n - 1))); do
    p=$((BASE + i)); d="$STATE/$p"; mkdir -p "$d"; ports+=("$p"); hosts+=("127.0.0.1:$p")
    local listen=(--port "$p") conf="$d/secrets.conf"
    [[ "$TLS" == 1 ]] && listen=(--port 0 --tls-port "$p")
    # The password goes in a config file (0600), not on the command line where ps would show it.
    : > "$conf"; chmod 600 "$conf"
    [[ -n "$PASSWORD" ]] && printf 'requirepass "%s"\nmasterauth "%s"\n' "$PASSWORD" "$PASSWORD" > "$conf"
    # In the foreground with &, so $! is the server's own pid.
    redis-server "$conf" "${listen[@]}" "${extra[@]}" --bind 127.0.0.1 --protected-mode no --daemonize no \
      --dir "$d" --cluster-enabled yes --cluster-config-file nodes.conf \
      --cluster-node-timeout "$NODE_TIMEOUT" --cluster-require-full-coverage no --save "" --appendonly no \
      --maxmemory "$MAXMEM" --maxmemory-policy allkeys-lru \
      --logfile "$d/redis.log" > "$d/stdout.log" 2>&1 &
    echo $! > "$d/redis.pid"
  done
  for p in "${ports[@]}"; do
    for _ in $(seq 100); do cli -p "$p" ping 2>/dev/null | grep -q PONG && break; sleep 0.05; done
    cli -p "$p" ping 2>/dev/null | grep -q PONG || { echo "node $p did not start"; cat "$STATE/$p/redis.log"; stop; exit 1; }
  done
  if (( n == 1 )); then
    cli -p "${ports[0]}" cluster addslotsrange 0 16383 >/dev/null
  else
    timeout 60 "${CLI[@]}" --cluster create "${hosts[@]}" --cluster-replicas "$REPLICAS" --cluster-yes \
      > "$STATE/create.log" 2>&1 || { echo "cluster create failed"; cat "$STATE/create.log"; stop; exit 1; }
  fi
  local ok=0
  for _ in $(seq 200); do
    ok=1
    for p in "${ports[@]}"; do cli -p "$p" cluster info | grep -q 'cluster_state:ok' || ok=0; done
    [[ $ok == 1 ]] && break; sleep 0.1
  done
  [[ $ok == 1 ]] || { echo "cluster not ok after 20 s"; cli -p "$BASE" cluster info; stop; exit 1; }
  if (( REPLICAS > 0 )); then
    for p in "${ports[@]}"; do
      for _ in $(seq 200); do
        r=$(cli -p "$p" info replication | tr -d '\r')
        grep -q '^role:master' <<<"$r" && break
        grep -q '^master_link_status:up' <<<"$r" && break; sleep 0.1
      done
    done
  fi
  echo "redis cluster up: $MASTERS masters x $REPLICAS replicas: ${hosts[*]}$([[ "$TLS" == 1 ]] && echo " (TLS, CA $TLSDIR/ca.crt)")$([[ -n "$PASSWORD" ]] && echo " (password)")"
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  status) cli -p "$BASE" cluster info | grep -E 'cluster_state|cluster_known_nodes|cluster_size' || true ;;
  *) echo "usage: $0 [start|stop|status]"; exit 2 ;;
esac
