using Snapshots.Store;

namespace Snapshots.Prefetch;

/// <summary>
/// Merges the access logs of many restores into a plan: keeps pages seen in at least <c>minFraction</c> of the
/// runs, orders them by their median normalised first-touch position, and cuts the order into groups of
/// <c>groupPages</c>, each sorted by offset so neighbouring pages are fetched and installed together.
/// </summary>
public static class PlanMerger
{
    public const int DefaultGroupPages = 1024;

    public static PrefetchPlan Merge(
        IReadOnlyList<AccessLog> logs, double minFraction = 0.5, int groupPages = DefaultGroupPages)
    {
        if (logs.Count == 0) throw new InvalidInputException("no access logs to merge");
        if (!(minFraction > 0 && minFraction <= 1))
            throw new InvalidInputException("the minimum fraction of runs must be in (0, 1]", "min-fraction");
        if (groupPages < 1) throw new InvalidInputException("pages per group must be at least 1", "group-pages");
        long size = logs[0].ImageSize;
        foreach (var log in logs)
        {
            if (log.ImageSize != size)
            {
                throw new InvalidInputException(
                    $"access logs are of different images ({size} and {log.ImageSize} bytes)");
            }
        }

        var positions = new Dictionary<uint, List<double>>();
        foreach (var log in logs)
        {
            var t = log.Touches;
            for (int i = 0; i < t.Length; i++)
            {
                if (!positions.TryGetValue(t[i].Page, out var list)) positions[t[i].Page] = list = [];
                list.Add(t.Length == 1 ? 0 : i / (double)(t.Length - 1));
            }
        }
        int needed = (int)Math.Ceiling(minFraction * logs.Count);
        var kept = new List<(uint Page, double Rank)>();
        foreach (var (page, list) in positions)
        {
            if (list.Count < needed) continue;
            list.Sort();
            kept.Add((page, list[list.Count / 2]));
        }
        kept.Sort((a, b) => a.Rank != b.Rank ? a.Rank.CompareTo(b.Rank) : a.Page.CompareTo(b.Page));

        var pages = new uint[kept.Count];
        var groups = new List<int>();
        for (int start = 0; start < kept.Count; start += groupPages)
        {
            int n = Math.Min(groupPages, kept.Count - start);
            for (int i = 0; i < n; i++) pages[start + i] = kept[start + i].Page;
            Array.Sort(pages, start, n);
            groups.Add(n);
        }
        return new PrefetchPlan { ImageSize = size, RunsMerged = logs.Count, GroupSizes = [.. groups], Pages = pages };
    }
}
