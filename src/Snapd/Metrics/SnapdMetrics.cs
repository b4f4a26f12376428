using System.Diagnostics;
using Prometheus;
using Snapshots.ChunkFs.Memory;
using Snapshots.ChunkFs.Uffd;
using Snapshots.Store.Cache;
using Snapshots.Store.Chunks;

namespace Snapshots.Snapd.Metrics;

/// <summary>
/// snapd's Prometheus metrics (prometheus-net; /metrics). Event metrics (faults' latency, restores started and
/// ended, API errors) are recorded as they happen; totals that live in the restores' own counters (faults, pages,
/// tiers) are read from them just before each scrape (<see cref="Refresh"/>), so the fault path does nothing for
/// them. The default registry also carries the process's CPU and memory (process_*).
/// </summary>
public sealed class SnapdMetrics : IFaultObserver
{
    private static readonly double[] LatencyBuckets = Histogram.ExponentialBuckets(10e-6, 2, 22); // 10 us - 21 s

    public Gauge RestoresActive { get; } = Prometheus.Metrics.CreateGauge(
        "snapd_restores_active", "Restores ready or serving now.", "mode");
    public Counter RestoresStarted { get; } = Prometheus.Metrics.CreateCounter(
        "snapd_restores_started_total", "Restores created through the API.", "mode");
    public Counter RestoresEnded { get; } = Prometheus.Metrics.CreateCounter(
        "snapd_restores_ended_total", "Restores ended, by outcome (exited, failed).", "mode", "outcome");
    public Counter RestoresTakenBack { get; } = Prometheus.Metrics.CreateCounter(
        "snapd_restores_taken_back_total", "Running VMs taken back after a restart of the daemon, by outcome.",
        "outcome");
    public Histogram ReadySeconds { get; } = Prometheus.Metrics.CreateHistogram(
        "snapd_restore_ready_seconds", "From the API call to the handler ready (socket listening, file mounted).",
        new HistogramConfiguration { Buckets = LatencyBuckets, LabelNames = ["mode"] });
    public Histogram FaultLatency { get; } = Prometheus.Metrics.CreateHistogram(
        "snapd_fault_latency_seconds", "A demand fault's service time in the handler (read to page installed).",
        new HistogramConfiguration { Buckets = LatencyBuckets });
    public Counter Faults { get; } = Prometheus.Metrics.CreateCounter(
        "snapd_faults_total", "Demand faults served.");
    public Counter Pages { get; } = Prometheus.Metrics.CreateCounter(
        "snapd_pages_installed_total", "Pages installed, by how (copied on demand, zero, prefetched).", "how");
    public Counter ParkedFaultsTotal { get; } = Prometheus.Metrics.CreateCounter(
        "snapd_parked_faults_total", "Demand faults that waited for their chunk while others were served.");
    public Gauge ParkedFaults { get; } = Prometheus.Metrics.CreateGauge(
        "snapd_parked_faults", "Demand faults waiting for their chunk now.");
    public Counter TierHits { get; } = Prometheus.Metrics.CreateCounter(
        "snapd_tier_hits_total", "Chunks a tier served (memory misses), by tier.", "tier");
    public Counter TierBytes { get; } = Prometheus.Metrics.CreateCounter(
        "snapd_tier_bytes_total", "Bytes a tier served, by tier.", "tier");
    public Counter TierErrors { get; } = Prometheus.Metrics.CreateCounter(
        "snapd_tier_errors_total", "Reads a tier failed (errors, timeouts, corrupt), by tier and kind.", "tier",
        "kind");
    public Counter Retries { get; } = Prometheus.Metrics.CreateCounter(
        "snapd_retries_total", "Chunk reads retried after every tier failed transiently.");
    public Gauge CacheBytes { get; } = Prometheus.Metrics.CreateGauge(
        "snapd_cache_bytes", "The local disk cache: occupancy, budget, watermarks (bytes).", "what");
    public Gauge CacheEntries { get; } = Prometheus.Metrics.CreateGauge(
        "snapd_cache_entries", "Chunks in the local disk cache.");
    public Gauge CacheProtected { get; } = Prometheus.Metrics.CreateGauge(
        "snapd_cache_protected_chunks", "Chunks held in the disk cache for restores running now.");
    public Counter CacheEvictions { get; } = Prometheus.Metrics.CreateCounter(
        "snapd_cache_evictions_total", "Chunks evicted from the local disk cache.");
    public Counter CacheEvictedBytes { get; } = Prometheus.Metrics.CreateCounter(
        "snapd_cache_evicted_bytes_total", "Bytes evicted from the local disk cache.");
    public Counter CacheEvents { get; } = Prometheus.Metrics.CreateCounter(
        "snapd_cache_events_total", "Disk cache events: full_disk, fill_skipped (full), corrupt_dropped, "
        + "protected_overrun (over budget: everything left was protected).", "event");
    public Counter RedisEvents { get; } = Prometheus.Metrics.CreateCounter(
        "snapd_redis_events_total", "Distributed cache node events: node_failure (a node request failed or missed "
        + "the node deadline), short_circuited (not sent: the node's breaker open), rebuilt (a chunk rebuilt from "
        + "parity), corrupt_dropped. A lost node is a miss to the tier, not an error: these show it.", "event");
    public Gauge MemoryBytes { get; } = Prometheus.Metrics.CreateGauge(
        "snapd_memory_bytes", "Decrypted chunks in memory for all restores: resident, budget (bytes).", "what");
    public Counter MemoryLoads { get; } = Prometheus.Metrics.CreateCounter(
        "snapd_memory_loads_total", "Chunks loaded into memory (fetched and decrypted, or copied).");
    public Counter MemoryEvictions { get; } = Prometheus.Metrics.CreateCounter(
        "snapd_memory_evictions_total", "Chunks evicted from memory for the budget.");
    public Counter MemorySharedHits { get; } = Prometheus.Metrics.CreateCounter(
        "snapd_memory_shared_hits_total", "Chunk loads served by copying another snapshot's resident chunk.");
    public Counter Errors { get; } = Prometheus.Metrics.CreateCounter(
        "snapd_errors_total", "API requests refused and restores failed, by kind (docs/errors.md).", "kind");

    /// <summary>Called on fault threads: lock-free bucket increments, no allocation.</summary>
    public void FaultServed(long ticks) => FaultLatency.Observe(ticks / (double)Stopwatch.Frequency);

    /// <summary>Sets the totals read from the restores' counters (<paramref name="totals"/>: live and ended
    /// restores together; counters only move forward).</summary>
    public void Refresh(RestoreTotals totals)
    {
        ArgumentNullException.ThrowIfNull(totals);
        Faults.IncTo(totals.Faults);
        Pages.WithLabels("copied").IncTo(totals.PagesCopied);
        Pages.WithLabels("zero").IncTo(totals.ZeroPages);
        Pages.WithLabels("prefetched").IncTo(totals.PrefetchedPages);
        ParkedFaultsTotal.IncTo(totals.ParkedFaults);
        ParkedFaults.Set(totals.ParkedNow);
        Retries.IncTo(totals.Retries);
        if (totals.Disk is { } d)
        {
            CacheBytes.WithLabels("occupancy").Set(d.OccupancyBytes);
            CacheBytes.WithLabels("budget").Set(d.BudgetBytes);
            CacheBytes.WithLabels("high_watermark").Set(d.HighWatermarkBytes);
            CacheBytes.WithLabels("low_watermark").Set(d.LowWatermarkBytes);
            CacheEntries.Set(d.Entries);
            CacheProtected.Set(d.ProtectedChunks);
            CacheEvictions.IncTo(d.Evictions);
            CacheEvictedBytes.IncTo(d.EvictedBytes);
            CacheEvents.WithLabels("full_disk").IncTo(d.FullDiskEvents);
            CacheEvents.WithLabels("fill_skipped").IncTo(d.FullDiskSkips);
            CacheEvents.WithLabels("corrupt_dropped").IncTo(d.CorruptDropped);
            CacheEvents.WithLabels("protected_overrun").IncTo(d.ProtectedOverruns);
        }
        if (totals.Redis is { } r)
        {
            RedisEvents.WithLabels("node_failure").IncTo(r.NodeFailures);
            RedisEvents.WithLabels("short_circuited").IncTo(r.ShortCircuited);
            RedisEvents.WithLabels("rebuilt").IncTo(r.Rebuilt);
            RedisEvents.WithLabels("corrupt_dropped").IncTo(r.CorruptDropped);
        }
        if (totals.Memory is { } m)
        {
            MemoryBytes.WithLabels("resident").Set(m.ResidentBytes);
            MemoryBytes.WithLabels("budget").Set(m.BudgetBytes);
            MemoryLoads.IncTo(m.Loads);
            MemoryEvictions.IncTo(m.Evictions);
            MemorySharedHits.IncTo(m.SharedHits);
        }
        foreach (var (tier, t) in totals.Tiers)
        {
            TierHits.WithLabels(tier).IncTo(t.Hits);
            TierBytes.WithLabels(tier).IncTo(t.Bytes);
            TierErrors.WithLabels(tier, "error").IncTo(t.Errors);
            TierErrors.WithLabels(tier, "timeout").IncTo(t.Timeouts);
            TierErrors.WithLabels(tier, "corrupt").IncTo(t.Corrupt);
        }
    }
}

/// <summary>Totals over every restore since the daemon started: ended restores' final figures plus live ones'
/// counters. Tiers by name.</summary>
public sealed class RestoreTotals
{
    public long Faults { get; set; }
    public long PagesCopied { get; set; }
    public long ZeroPages { get; set; }
    public long PrefetchedPages { get; set; }
    public long ParkedFaults { get; set; }
    public long ParkedNow { get; set; }
    public long Retries { get; set; }
    public Dictionary<string, TierTotal> Tiers { get; } = new(StringComparer.Ordinal);
    public DiskCacheCounters? Disk { get; set; }
    public HostMemoryCounters? Memory { get; set; }
    public RedisTotals? Redis { get; set; }

    public void Add(HandlerProgress p)
    {
        ArgumentNullException.ThrowIfNull(p);
        Faults += p.Faults;
        PagesCopied += p.PagesCopied;
        ZeroPages += p.ZeroPages;
        PrefetchedPages += p.PrefetchedPages;
        ParkedFaults += p.ParkedFaults;
        ParkedNow += p.ParkedNow;
    }

    public void Add(IReadOnlyList<TierSummary> tiers)
    {
        ArgumentNullException.ThrowIfNull(tiers);
        foreach (var t in tiers)
        {
            var sum = Tiers.TryGetValue(t.Tier, out var s) ? s : new TierTotal();
            Tiers[t.Tier] = sum with
            {
                Hits = sum.Hits + t.Hits,
                Bytes = sum.Bytes + t.Bytes,
                Errors = sum.Errors + t.Errors,
                Timeouts = sum.Timeouts + t.Timeouts,
                Corrupt = sum.Corrupt + t.Corrupt,
            };
        }
    }

    public RestoreTotals Clone()
    {
        var c = new RestoreTotals
        {
            Faults = Faults, PagesCopied = PagesCopied, ZeroPages = ZeroPages, PrefetchedPages = PrefetchedPages,
            ParkedFaults = ParkedFaults, ParkedNow = ParkedNow, Retries = Retries,
        };
        foreach (var (k, v) in Tiers) c.Tiers[k] = v;
        return c;
    }
}

/// <summary>The distributed cache's node events since the daemon started.</summary>
public sealed record RedisTotals(long NodeFailures, long ShortCircuited, long Rebuilt, long CorruptDropped);

/// <summary>One tier's totals.</summary>
public sealed record TierTotal
{
    public long Hits { get; init; }
    public long Bytes { get; init; }
    public long Errors { get; init; }
    public long Timeouts { get; init; }
    public long Corrupt { get; init; }
}
