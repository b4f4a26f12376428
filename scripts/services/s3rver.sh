#!/usr/bin/env bash
# s3rver (npm s3rver 3.7.1, an S3-compatible server in Node) on loopback, for tests and benchmarks.
# Usage:  scripts/services/s3rver.sh [start|stop|status]
# Env:    S3_PORT (default 4600), S3_DIR (data dir; default: a fresh dir under the state dir, removed on stop),
#         S3_STATE (pid/log dir, default .work/services/s3rver-$S3_PORT),
#         S3RVER_HOME (holds node_modules/s3rver; default .work/s3rver-home, installed there on first use)
# Clients: endpoint http://127.0.0.1:$S3_PORT, path-style; access key S3RVER (any secret is accepted).
# Stops only the process it started (pid file).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
S3_PORT="${S3_PORT:-4600}"
S3RVER_HOME="${S3RVER_HOME:-$ROOT/.work/s3rver-home}"
S3_STATE="${S3_STATE:-$ROOT/.work/services/s3rver-$S3_PORT}"
PIDFILE="$S3_STATE/s3rver.pid"

running() { [[ -f "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

stop() {
  if running; then
    pid=$(cat "$PIDFILE"); kill "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" || true
    echo "stopped s3rver pid $pid (port $S3_PORT)"
  fi
  rm -f "$PIDFILE"
  [[ -f "$S3_STATE/owned-datadir" ]] && rm -rf "$(cat "$S3_STATE/owned-datadir")" && rm -f "$S3_STATE/owned-datadir"
  return 0
}

# install: s3rver into S3RVER_HOME (idempotent), with the CopyObject fix: AWSSDK v4 sends x-amz-copy-source
# as "bucket%2Fkey" and s3rver decodes it with decodeURI, which keeps %2F.
install() {
  if [[ ! -f "$S3RVER_HOME/node_modules/s3rver/bin/s3rver.js" ]]; then
    command -v npm >/dev/null || { echo "npm missing: apt-get install -y nodejs npm"; exit 1; }
    mkdir -p "$S3RVER_HOME"
    (cd "$S3RVER_HOME" && { [[ -f package.json ]] || npm init -y >/dev/null; } && timeout 300 npm install --no-audit --no-fund s3rver@3.7.1 >/dev/null)
  fi
  local objjs="$S3RVER_HOME/node_modules/s3rver/lib/controllers/object.js"
  if grep -q "decodeURI(ctx.headers\['x-amz-copy-source'\])" "$objjs"; then
    sed -i "s/decodeURI(ctx.headers\['x-amz-copy-source'\])/decodeURIComponent(ctx.headers['x-amz-copy-source'])/" "$objjs"
  fi
}

start() {
  install
  mkdir -p "$S3_STATE"
  if running; then echo "already running: pid $(cat "$PIDFILE") port $S3_PORT"; return 0; fi
  # Another server on the port (not ours: no pid file here) would answer the readiness check below while ours dies
  # on EADDRINUSE, and its caller would use a stranger's data.
  if curl -s -o /dev/null -m 1 "http://127.0.0.1:$S3_PORT/"; then
    echo "port $S3_PORT is in use by another server (not started from $S3_STATE)"; exit 1
  fi
  local dir="${S3_DIR:-}"
  if [[ -z "$dir" ]]; then dir="$S3_STATE/data"; echo "$dir" > "$S3_STATE/owned-datadir"; fi
  mkdir -p "$dir"
  # --openssl-legacy-provider: s3rver makes ListObjectsV2 continuation tokens with DES, which Node 17+ refuses
  # without it (every truncated listing would answer 500). -s: no per-request logging (it costs throughput).
  nohup node --openssl-legacy-provider "$S3RVER_HOME/node_modules/s3rver/bin/s3rver.js" \
    -d "$dir" -a 127.0.0.1 -p "$S3_PORT" -s --allow-mismatched-signatures --no-vhost-buckets \
    > "$S3_STATE/s3rver.log" 2>&1 &
  echo $! > "$PIDFILE"
  for _ in $(seq 150); do
    if curl -s -o /dev/null -m 1 "http://127.0.0.1:$S3_PORT/"; then
      echo "s3rver up: pid $(cat "$PIDFILE") endpoint http://127.0.0.1:$S3_PORT data $dir"; return 0
    fi
    running || { echo "s3rver died:"; cat "$S3_STATE/s3rver.log"; rm -f "$PIDFILE"; exit 1; }
    sleep 0.1
  done
  echo "s3rver did not answer on port $S3_PORT within 15 s"; cat "$S3_STATE/s3rver.log"; stop; exit 1
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  install) install ;;
  status) running && echo "running pid $(cat "$PIDFILE") port $S3_PORT" || echo "not running" ;;
  *) echo "usage: $0 [start|stop|status|install]"; exit 2 ;;
esac
