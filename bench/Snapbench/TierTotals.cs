using System.Text.Json;

namespace Snapshots.Snapbench;

/// <summary>What one tier (local disk cache, distributed cache, origin: snapd's names) served a strategy's
/// restores, summed over them, and its share of the chunks all tiers served.</summary>
public sealed record TierFigures(string Tier, long Hits, long Bytes, long Errors, long Timeouts, long Corrupt,
    double HitRatio);

/// <summary>A strategy's restores' `tiers` (docs/api.md), summed per tier, and any memory-tier figures the
/// documents carry. A restore document's tiers are its snapshot's memory tier's fetches, cumulative and shared by
/// every restore of that snapshot: each restore counts its end document minus the document POST returned (what was
/// fetched while it ran), so sequential restores are not counted again; restores of one snapshot at the same time
/// still see each other's fetches.</summary>
public sealed class TierTotals
{
    private static readonly string[] Fields = ["hits", "bytes", "errors", "timeouts", "corrupt"];
    private readonly Dictionary<string, long[]> _tiers = [];
    private readonly Dictionary<string, double> _memory = [];

    /// <summary>Restores whose documents had tiers.</summary>
    public int Restores { get; private set; }

    /// <summary>Adds one restore: END's tiers minus START's (null: nothing was known at the start).</summary>
    public void Add(JsonElement? start, JsonElement end)
    {
        var before = Read(start);
        var after = Read(end);
        if (after.Count == 0) return;
        lock (_tiers)
        {
            Restores++;
            foreach (var (tier, values) in after)
            {
                if (!_tiers.TryGetValue(tier, out var sum)) _tiers[tier] = sum = new long[Fields.Length];
                before.TryGetValue(tier, out var b);
                // A memory tier dropped and made again between the two documents starts from 0: never subtract
                // more than is there.
                for (int i = 0; i < sum.Length; i++) sum[i] += Math.Max(0, values[i] - (b?[i] ?? 0));
            }
            if (end.TryGetProperty("memoryTier", out var m) && m.ValueKind == JsonValueKind.Object)
            {
                foreach (var p in m.EnumerateObject())
                {
                    if (p.Value.ValueKind == JsonValueKind.Number)
                        _memory[p.Name] = _memory.GetValueOrDefault(p.Name) + p.Value.GetDouble();
                }
            }
        }
    }

    /// <summary>Per tier, in the order first seen (snapd lists them nearest first).</summary>
    public IReadOnlyList<TierFigures> Tiers
    {
        get
        {
            lock (_tiers)
            {
                long all = _tiers.Values.Sum(v => v[0]);
                return [.. _tiers.Select(t => new TierFigures(t.Key, t.Value[0], t.Value[1], t.Value[2], t.Value[3],
                    t.Value[4], all == 0 ? 0 : Math.Round(t.Value[0] / (double)all, 4)))];
            }
        }
    }

    /// <summary>The documents' `memoryTier` numbers summed, when snapd reports them (empty otherwise).</summary>
    public IReadOnlyDictionary<string, double> Memory
    {
        get
        {
            lock (_tiers) return new Dictionary<string, double>(_memory);
        }
    }

    private static Dictionary<string, long[]> Read(JsonElement? doc)
    {
        var map = new Dictionary<string, long[]>();
        if (doc is not { ValueKind: JsonValueKind.Object } d || !d.TryGetProperty("tiers", out var tiers)
            || tiers.ValueKind != JsonValueKind.Array)
            return map;
        foreach (var t in tiers.EnumerateArray())
        {
            if (!t.TryGetProperty("tier", out var name) || name.GetString() is not { } tier) continue;
            map[tier] = [.. Fields.Select(f => t.TryGetProperty(f, out var v) && v.TryGetInt64(out var n) ? n : 0)];
        }
        return map;
    }
}
