using System.Text.Json;

namespace Snapshots.Snapbench;

/// <summary>The restores' own `tiers` figures (docs/api.md, the restore document) summed over a round, per tier
/// by its short name (disk, redis, origin): which tier served the round's chunks, and what each tier failed.</summary>
public sealed class TierSums
{
    private readonly SortedDictionary<string, long[]> _tiers = new(StringComparer.Ordinal);

    private static readonly string[] Fields = ["hits", "errors", "timeouts", "corrupt"];

    public static TierSums Of(IEnumerable<JsonElement> docs)
    {
        var sums = new TierSums();
        foreach (var d in docs)
        {
            if (!d.TryGetProperty("tiers", out var tiers) || tiers.ValueKind != JsonValueKind.Array) continue;
            foreach (var t in tiers.EnumerateArray())
            {
                string name = ShortName(t.GetProperty("tier").GetString() ?? "?");
                if (!sums._tiers.TryGetValue(name, out var v)) sums._tiers[name] = v = new long[Fields.Length];
                for (int i = 0; i < Fields.Length; i++)
                    if (t.TryGetProperty(Fields[i], out var f) && f.ValueKind == JsonValueKind.Number) v[i] += f.GetInt64();
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

    public long Errors(string tier) => Get(tier, 1);

    public long Timeouts(string tier) => Get(tier, 2);

    public long Corrupt(string tier) => Get(tier, 3);

    private long Get(string tier, int field) => _tiers.TryGetValue(tier, out var v) ? v[field] : 0;

    /// <summary>`redis: hits 40, errors 0, timeouts 0, corrupt 0; origin: ...`.</summary>
    public override string ToString() => _tiers.Count == 0 ? "none" : string.Join("; ", _tiers.Select(t =>
        $"{t.Key}: " + string.Join(", ", Fields.Select((f, i) => $"{f} {t.Value[i]}"))));
}
