#!/usr/bin/env bash
# Runs the per-chunk BenchmarkDotNet suite (bench/Snapshots.Benchmarks, ChunkBenchmarks, ShortRun job: about a
# minute) and writes bench/results/chunk-benchmarks.md: the command, date and machine, a per-chunk summary in GB/s
# and bytes allocated per operation, then BenchmarkDotNet's own GitHub markdown report, unedited.
# Usage: bench/scripts/chunk-benchmarks.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
need_dotnet
make_workdir chunk-benchmarks
CMD=(dotnet run -c Release --project bench/Snapshots.Benchmarks -- --filter '*ChunkBenchmarks*' --artifacts "$WORK/artifacts")
say "running ChunkBenchmarks (ShortRun)"
START="$(machine_md)"
(cd "$ROOT" && "${CMD[@]}") > "$WORK/bdn.log" 2>&1 || { tail -40 "$WORK/bdn.log" >&2; exit 1; }
REPORT=$(ls "$WORK"/artifacts/results/*ChunkBenchmarks-report-github.md)

# summary: one row per benchmark from the report's table: mean converted to us, the GB/s column, the allocation,
# and the throughput ratio against SHA-256 (SHA-256 mean / this mean: >1 means faster than hashing with SHA-256).
SUMMARY=$(awk -F'|' '
  function trim(s) { gsub(/^[ \t]+|[ \t]+$/, "", s); return s }
  function us(s,   p, v, u) { s = trim(s); gsub(/,/, "", s); split(s, p, " "); v = p[1]; u = p[2]
    return u == "ns" ? v / 1000 : (u == "us" || u == "μs") ? v : u == "ms" ? v * 1000 : u == "s" ? v * 1e6 : -1 }
  /^\| Method/ { for (i = 2; i < NF; i++) col[trim($i)] = i; next }
  /^\|--/ { next }
  /^\|/ && ("Method" in col) {
    n++; name[n] = trim($(col["Method"])); mean[n] = us($(col["Mean"]))
    gbs[n] = trim($(col["GB/s"])); alloc[n] = trim($(col["Allocated"]))
    if (name[n] == "Sha256Baseline") sha = mean[n]
  }
  END { for (i = 1; i <= n; i++)
    printf "| %s | %.3f | %s | %s | %s |\n", name[i], mean[i], gbs[i], alloc[i], (sha > 0 && mean[i] > 0) ? sprintf("%.2f", sha / mean[i]) : "-" }
  ' "$REPORT")

mkdir -p "$RESULTS"
cat > "$RESULTS/chunk-benchmarks.md" <<MD
# Per-chunk CPU cost (BenchmarkDotNet, one 512 KiB chunk per operation)

- Command: \`bench/scripts/chunk-benchmarks.sh\`, which runs
  \`dotnet run -c Release --project bench/Snapshots.Benchmarks -- --filter '*ChunkBenchmarks*' --artifacts ${WORK#$ROOT/}/artifacts\`
  from the repo root (the artifacts directory is temporary)
$START
- Data: one 512 KiB chunk of a VM-like image made with \`VmImageGenerator.FillPage\` (256 MiB function image,
  runtime seed 2, function seed 3, chunk 2: pseudo-random pages, about a quarter of them half zero); the zero chunk is
  512 KiB of zeros. One thread; no I/O. Job: ShortRun (1 launch, 3 warm-up, 3 measured iterations): read the
  Error/StdDev columns below before trusting a difference under about 10 %.
- GB/s = 524,288 bytes / mean time (decimal GB). "vs SHA-256" = SHA-256 time / this op's time (>1: faster than
  only hashing the chunk with SHA-256). Allocated = managed bytes per operation (MemoryDiagnoser).

## Summary

| Operation | us per chunk | GB/s (one core) | Allocated per op | vs SHA-256 |
|-----------|-------------:|----------------:|-----------------:|-----------:|
$SUMMARY

- EncryptAndName = BLAKE3(plaintext) + HMAC-SHA256 key + AES-256-GCM encrypt + BLAKE3(ciphertext): the build's
  work per new chunk. VerifyAndDecrypt = BLAKE3(ciphertext) against the name + AES-256-GCM decrypt + BLAKE3(plaintext)
  against the manifest: the read path's work per chunk. Both hash every byte twice with BLAKE3.
- ZeroDetection_DataChunk stops at the first non-zero byte, so its "GB/s" is only the cost of a call, not a scan
  rate; ZeroDetection_ZeroChunk is the real scan rate (every byte read).
- MemcpyBaseline copies a chunk that stays in the CPU caches: it is a floor for per-chunk overhead, not DRAM bandwidth.

## BenchmarkDotNet report (GitHub markdown, unedited)

$(cat "$REPORT")
MD
cat "$RESULTS/chunk-benchmarks.md"
