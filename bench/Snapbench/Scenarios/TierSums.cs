using System.Text.Json;

namespace Snapshots.Snapbench;

/// <summary>The restores' own `tiers` figures (docs/api.md, the restore document) summed over a round, per tier
/// by its short name (disk, redis, origin): which tier served the round's chunks. A restore's figures are its
/// snapshot's (shared by the restores of that snapshot: counted once per snapshot); its failures are the host's,
/// always 0 there (in /metrics instead: <see cref="TierMetrics"/>).</summary>
public sealed class TierSums
{
    private readonly SortedDictionary<string, long[]> _tiers = new(StringComparer.Ordinal);

    private static readonly string[] Fields = ["hits", "bytes"];

    public static TierSums Of(IEnumerable<JsonElement> docs)
    {
        var sums = new TierSums();
        // The last (latest) document of each snapshot.
        var last = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
        foreach (var d in docs)
            if (d.TryGetProperty("snapshot", out var n) && n.GetString() is { } name) last[name] = d;
        foreach (var d in last.Values)
        {
            if (!d.TryGetProperty("tiers", out var tiers) || tiers.ValueKind != JsonValueKind.Array) continue;
            foreach (var t in tiers.EnumerateArray())
            {
                string name = ShortName(t.GetProperty("tier").GetString() ?? "?");
                if (!sums._tiers.TryGetValue(name, out var v)) sums._tiers[name] = v = new long[Fields.Length];
                for (int i = 0; i < Fields.Length; i++)
                {
                    if (t.TryGetProperty(Fields[i], out var f) && f.ValueKind == JsonValueKind.Number)
                        v[i] += f.GetInt64();
                }
            }
        }
        return sums;
    }

    /// <summary>A tier's description (`disk cache DIR`, `redis HOST:PORT,...`, `origin s3://...`) as one word.
    /// </summary>
    public static string ShortName(string describe) =>
        describe.StartsWith("disk", StringComparison.Ordinal) ? "disk"
        : describe.StartsWith("redis", StringComparison.Ordinal) ? "redis"
        : describe.StartsWith("origin", StringComparison.Ordinal) ? "origin"
        : describe.Split(' ')[0];

    public long Hits(string tier) => Get(tier, 0);

    private long Get(string tier, int field) => _tiers.TryGetValue(tier, out var v) ? v[field] : 0;

    /// <summary>`redis: hits 40, bytes 12345; origin: ...`.</summary>
    public override string ToString() => _tiers.Count == 0 ? "none" : string.Join("; ", _tiers.Select(t =>
        $"{t.Key}: " + string.Join(", ", Fields.Select((f, i) => $"{f} {t.Value[i]}"))));
}
