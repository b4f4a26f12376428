namespace Snapshots.Tests.VmmModel;

/// <summary>
/// Greedy shrinking of a failing script: try smaller variants (blocks of lines removed, single operations removed,
/// ranges narrowed), biggest cuts first, and keep the first that still fails, until none does. Candidates are run in
/// batches (one replay-vmm run each) by a predicate that returns the index of the first failing one, or -1.
/// </summary>
public static class ScriptShrinker
{
    public static async Task<VmmScript> ShrinkAsync(
        VmmScript failing, Func<IReadOnlyList<VmmScript>, Task<int>> firstFailing, int batch = 48,
        int maxRounds = 300)
    {
        var current = failing;
        for (int round = 0; round < maxRounds; round++)
        {
            var candidates = Candidates(current).ToList();
            VmmScript? smaller = null;
            for (int i = 0; i < candidates.Count && smaller is null; i += batch)
            {
                var slice = candidates.GetRange(i, Math.Min(batch, candidates.Count - i));
                int found = await firstFailing(slice);
                if (found >= 0) smaller = slice[found];
            }
            if (smaller is null) return current;
            current = smaller;
        }
        return current;
    }

    /// <summary>The same, one candidate at a time against a plain predicate (true: still fails).</summary>
    public static VmmScript Shrink(VmmScript failing, Func<VmmScript, bool> fails) =>
        ShrinkAsync(failing, list => Task.FromResult(IndexOf(list, fails)), batch: 1).GetAwaiter().GetResult();

    private static int IndexOf(IReadOnlyList<VmmScript> list, Func<VmmScript, bool> fails)
    {
        for (int i = 0; i < list.Count; i++)
            if (fails(list[i])) return i;
        return -1;
    }

    /// <summary>Every one-step simplification of a script, the biggest first; each is smaller (fewer lines, fewer
    /// operations or fewer pages) so shrinking ends.</summary>
    public static IEnumerable<VmmScript> Candidates(VmmScript s)
    {
        var seen = new HashSet<string> { s.ToText() };
        foreach (var c in Raw(s))
            if (seen.Add(c.ToText())) yield return c;
    }

    private static IEnumerable<VmmScript> Raw(VmmScript s)
    {
        var lines = s.Lines;
        int n = lines.Count;
        for (int size = Math.Max(1, n / 2); ; size /= 2)
        {
            for (int start = 0; start + size <= n; start += size)
                yield return new VmmScript([.. lines.Take(start), .. lines.Skip(start + size)]);
            if (size == 1) break;
        }
        for (int l = 0; l < n; l++)
        {
            if (lines[l].Count < 2) continue;
            for (int o = 0; o < lines[l].Count; o++)
                yield return Replace(s, l, [.. lines[l].Take(o), .. lines[l].Skip(o + 1)]);
        }
        for (int l = 0; l < n; l++)
        {
            for (int o = 0; o < lines[l].Count; o++)
            {
                if (lines[l][o] is not RangeOp { Count: > 1 } r) continue;
                int half = r.Count / 2;
                foreach (var narrowed in new[]
                {
                    r.WithRange(r.Start, half), r.WithRange(r.Start + half, r.Count - half),
                    r.WithRange(r.Start, r.Count - 1), r.WithRange(r.Start + 1, r.Count - 1),
                })
                {
                    var ops = lines[l].ToArray();
                    ops[o] = narrowed;
                    yield return Replace(s, l, ops);
                }
            }
        }
        for (int l = 0; l < n; l++)
        {
            for (int o = 0; o < lines[l].Count; o++)
            {
                if (lines[l][o] is not Write { Value: not 1 } w) continue;
                var ops = lines[l].ToArray();
                ops[o] = w with { Value = 1 };
                yield return Replace(s, l, ops);
            }
        }
    }

    private static VmmScript Replace(VmmScript s, int line, IReadOnlyList<VmmOp> ops)
    {
        var lines = s.Lines.ToArray();
        lines[line] = ops;
        return new VmmScript(lines);
    }
}
