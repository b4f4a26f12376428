# Shared by the snapd benchmarks (snapd-concurrency.sh, snapd-restart.sh): common.sh, an s3rver origin of their
# own, one snapd at a time started and stopped by pid, its API and /metrics. Sourced, not run.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
VMM="$ROOT/native/bin/replay-vmm"
SNAPD_PID="" S3_STARTED=""

# start_s3 PORT: an s3rver of this run's own (state under $WORK), the store s3://bench/snap on it, made.
start_s3() {
  export S3_PORT=$1 S3_STATE="$WORK/s3rver"
  export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=anything AWS_EC2_METADATA_DISABLED=true
  export SNAPSHOTS_STORE="s3://bench/snap?endpoint=http://127.0.0.1:$S3_PORT" SNAPSHOTS_KEYRING="$WORK/keys"
  "$ROOT/scripts/services/s3rver.sh" start > /dev/null
  S3_STARTED=1
  "$SNAPCTL" init --quiet > /dev/null
}

# cleanup: stops what this run started (its snapd, its s3rver: by pid), removes $WORK (kept with KEEP_WORK=1: the
# daemons' logs are STATE.log there). The EXIT trap.
cleanup() {
  snapd_kill
  [ -n "$S3_STARTED" ] && { "$ROOT/scripts/services/s3rver.sh" stop > /dev/null 2>&1 || true; }
  if [ "${KEEP_WORK:-0}" = 1 ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}

# snapd_start STATE [ARGS...]: starts bin/snapd on STATE (API at STATE/api.sock), returns once /v1/health answers;
# SNAPD_PID, API set; its log appends to STATE.log.
snapd_start() {
  local state=$1; shift
  API="$state/api.sock"
  "$ROOT/bin/snapd" --state-dir "$state" --api-socket "$API" "$@" >> "$state.log" 2>&1 &
  SNAPD_PID=$!
  for _ in $(seq 600); do
    api /v1/health > /dev/null 2>&1 && return 0
    kill -0 "$SNAPD_PID" 2>/dev/null || { cat "$state.log" >&2; return 1; }
    sleep 0.02
  done
  echo "snapd did not answer within 12 s" >&2; return 1
}

# snapd_stop: SIGTERM (drain) and wait; snapd_kill: SIGKILL and wait. Only the snapd this script started.
snapd_stop() { [ -n "$SNAPD_PID" ] || return 0; kill -TERM "$SNAPD_PID" 2>/dev/null || true; wait "$SNAPD_PID" 2>/dev/null || true; SNAPD_PID=""; }
snapd_kill() { [ -n "$SNAPD_PID" ] || return 0; kill -KILL "$SNAPD_PID" 2>/dev/null || true; wait "$SNAPD_PID" 2>/dev/null || true; SNAPD_PID=""; }

api() { curl -sf --unix-socket "$API" "http://snapd$1" "${@:2}"; }

# create SNAPSHOT: POST /v1/restores for tenant acme; prints "ID SOCKET".
create() {
  api /v1/restores -XPOST -d "{\"snapshot\":\"$1\",\"tenant\":\"acme\"}" | jq -r '"\(.id) \(.socketPath)"'
}

# wait_ended ID: the restore's document once it has ended (exited or failed).
wait_ended() {
  local doc
  for _ in $(seq 500); do
    doc=$(api "/v1/restores/$1")
    case $(jq -r .state <<< "$doc") in exited|failed) echo "$doc"; return 0 ;; esac
    sleep 0.02
  done
  echo "$doc"
}

# metrics FILE: /metrics without comments, plus the daemon's peak resident set (VmHWM, bytes) as snapd_vmhwm_bytes.
metrics() {
  api /metrics | grep -v '^#' > "$1" || true
  echo "snapd_vmhwm_bytes $(awk '/^VmHWM/ { print $2 * 1024 }' "/proc/$SNAPD_PID/status")" >> "$1"
}

# m FILE NAME: one sample's value (the exact name with labels), 0 when absent.
m() { awk -v k="$2" '$1 == k { v = $2 } END { print v + 0 }' "$1"; }

# hist_q BEFORE AFTER Q: the Q quantile (ms) of snapd_fault_latency_seconds between two scrapes, interpolated
# inside its bucket like Prometheus's histogram_quantile (log2 buckets: read it as "within a factor of 2").
hist_q() {
  paste <(grep '^snapd_fault_latency_seconds_bucket' "$1") <(grep '^snapd_fault_latency_seconds_bucket' "$2") |
    awk -v q="$3" '{ le = $1; sub(/.*le="/, "", le); sub(/".*/, "", le); n[NR] = $4 - $2; b[NR] = (le == "+Inf") ? 1e9 : le }
      END { t = n[NR]; if (t == 0) { print "-"; exit } r = q * t; prev = 0; pc = 0
        for (i = 1; i <= NR; i++) { if (n[i] >= r) { printf "%.3f", 1000 * (prev + (b[i] - prev) * (r - pc) / (n[i] - pc)); exit }
          prev = b[i]; pc = n[i] } }'
}

# load: nproc and the load averages, for the results files.
load() { echo "nproc $(nproc), load $(cut -d' ' -f1-3 /proc/loadavg) at $(date -u +%H:%M:%S)"; }
