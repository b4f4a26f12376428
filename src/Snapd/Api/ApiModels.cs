using System.Text.Json.Serialization;
using Snapshots.Snapd.Restores;
using Snapshots.Store.Chunks;

namespace Snapshots.Snapd.Api;

/// <summary>POST /v1/restores (docs/api.md). Unknown fields are refused, naming them.</summary>
public sealed record RestoreRequestBody
{
    public string? Snapshot { get; init; }
    public string? Tenant { get; init; }
    /// <summary>"uffd" (default) or "file".</summary>
    public string? Mode { get; init; }
    /// <summary>Follow the snapshot's attached plan (default true).</summary>
    public bool? Prefetch { get; init; }
    public uint? VmmUid { get; init; }
    public double? FaultDeadlineSeconds { get; init; }
    public bool? Record { get; init; }
}

/// <summary>A restore as the API shows it (GET, POST, DELETE).</summary>
public sealed record RestoreView
{
    public required string Id { get; init; }
    public required string Snapshot { get; init; }
    public string? Tenant { get; init; }
    public required string Mode { get; init; }
    public required string State { get; init; }
    public string? SocketPath { get; init; }
    public string? Path { get; init; }
    public required DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset? EndedAt { get; init; }
    public double ReadySeconds { get; init; }
    public int? VmmPid { get; init; }
    public long Faults { get; init; }
    public long PagesCopied { get; init; }
    public long ZeroPages { get; init; }
    public long ParkedFaults { get; init; }
    public PrefetchView? Prefetch { get; init; }
    public Percentiles? FaultLatencySeconds { get; init; }
    public IReadOnlyList<TierView>? Tiers { get; init; }
    public string? Reason { get; init; }
    /// <summary>True for a VM taken back from an earlier daemon's record after a restart; left out otherwise.
    /// </summary>
    public bool? TakenBack { get; init; }

    public static RestoreView Of(ManagedRestore r)
    {
        ArgumentNullException.ThrowIfNull(r);
        var stats = r.Stats;
        var live = r.Progress;
        var tiers = stats?.Tiers ?? r.MountStats?.Tiers ?? r.LiveTiers();
        long planned = stats?.PlannedPages ?? live?.PlannedPages ?? 0;
        return new RestoreView
        {
            Id = r.Id,
            Snapshot = r.Spec.Snapshot,
            Tenant = r.Spec.Tenant,
            Mode = RestoreManager.ModeName(r.Spec.Mode),
            State = r.State.ToString().ToLowerInvariant(),
            SocketPath = r.SocketPath,
            Path = r.FilePath,
            CreatedAt = r.CreatedAt,
            EndedAt = r.EndedAt,
            ReadySeconds = r.ReadySeconds,
            VmmPid = r.VmmPid > 0 ? r.VmmPid : null,
            Faults = stats?.Faults ?? live?.Faults ?? 0,
            PagesCopied = stats?.PagesCopied ?? live?.PagesCopied ?? 0,
            ZeroPages = stats?.ZeroPages ?? live?.ZeroPages ?? 0,
            ParkedFaults = stats?.ParkedFaults ?? live?.ParkedFaults ?? 0,
            Prefetch = planned == 0 ? null
                : new PrefetchView(planned, stats?.PrefetchedPages ?? live?.PrefetchedPages ?? 0),
            FaultLatencySeconds = stats?.FaultLatencySeconds,
            Tiers = tiers is null ? null : TierView.Of(tiers),
            Reason = r.Reason,
            TakenBack = r.TakenBack ? true : null,
        };
    }
}

/// <summary>Prefetch progress: the plan's pages and those installed ahead of faults.</summary>
public sealed record PrefetchView(long PlannedPages, long PrefetchedPages);

/// <summary>What one tier served a restore: chunks, bytes, and failures.</summary>
public sealed record TierView(string Tier, long Hits, long Bytes, long Errors, long Timeouts, long Corrupt)
{
    public static List<TierView> Of(IReadOnlyList<TierSummary> tiers)
    {
        var list = new List<TierView>(tiers.Count);
        foreach (var t in tiers) list.Add(new TierView(t.Tier, t.Hits, t.Bytes, t.Errors, t.Timeouts, t.Corrupt));
        return list;
    }
}

/// <summary>GET /v1/restores.</summary>
public sealed record RestoreList(IReadOnlyList<RestoreView> Restores);

/// <summary>GET /v1/health.</summary>
public sealed record HealthView(string Status, string Store, int ActiveRestores, int MaxRestores, bool Draining,
    long PlansPublished, string Version);

/// <summary>POST /v1/snapshots/{name}/warm.</summary>
public sealed record WarmView(string Snapshot, int Chunks, long Bytes, double Seconds);

/// <summary>Every error: HTTP status by kind (docs/api.md), the kind (docs/errors.md), a message naming what is
/// wrong, and the input at fault when there is one.</summary>
public sealed record ErrorView(ErrorBody Error);

public sealed record ErrorBody(string Kind, string Message, [property: JsonIgnore(
    Condition = JsonIgnoreCondition.WhenWritingNull)] string? Parameter);
