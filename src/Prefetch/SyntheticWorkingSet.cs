using Snapshots.Store.Chunks;

namespace Snapshots.Prefetch;

/// <summary>
/// A restore-shaped page-access trace for an image, for tests and benchmarks until real guests record them:
/// a working set of short runs (REAP measured 2-3 pages per contiguous run), 90 % on data pages and 10 % on zero
/// pages (fresh heap), in an order fixed by the base seed. A variant seed changes a fraction of the runs and
/// swaps some neighbours, as different invocations of one function do (over 97 % of pages shared, per REAP).
/// </summary>
public static class SyntheticWorkingSet
{
    public static AccessLog Generate(
        string imagePath, int pages, int baseSeed, int variantSeed = 0, double variation = 0.03, uint gapUs = 0)
    {
        var (data, zero) = ClassifyPages(imagePath, out long size);
        var runs = PickRuns(data, zero, pages, new Random(baseSeed));
        if (variantSeed != 0)
        {
            var rng = new Random(variantSeed);
            var fresh = PickRuns(data, zero, (int)(pages * variation) + 1, rng);
            for (int i = 0; i < fresh.Count && runs.Count > 0; i++) runs[rng.Next(runs.Count)] = fresh[i];
            for (int i = 0; i + 1 < runs.Count; i += 1 + rng.Next(8)) (runs[i], runs[i + 1]) = (runs[i + 1], runs[i]);
        }
        var seen = new HashSet<uint>();
        var touches = new List<PageTouch>();
        foreach (var (start, length) in runs)
            for (uint p = start; p < start + length && touches.Count < pages; p++)
                if (seen.Add(p)) touches.Add(new PageTouch(p, gapUs));
        return new AccessLog { ImageSize = size, Touches = [.. touches] };
    }

    private static List<(uint Start, uint Length)> PickRuns(List<uint> data, List<uint> zero, int pages, Random rng)
    {
        var runs = new List<(uint, uint)>();
        int total = 0;
        while (total < pages && (data.Count > 0 || zero.Count > 0))
        {
            var from = (rng.NextDouble() < 0.9 && data.Count > 0) || zero.Count == 0 ? data : zero;
            uint length = (uint)rng.Next(1, 5);
            runs.Add((from[rng.Next(from.Count)], length));
            total += (int)length;
        }
        return runs;
    }

    /// <summary>Page indices of data pages and of zero pages (run starts must stay inside their kind).</summary>
    private static (List<uint> Data, List<uint> Zero) ClassifyPages(string imagePath, out long size)
    {
        using var file = File.OpenHandle(imagePath);
        size = RandomAccess.GetLength(file);
        var data = new List<uint>();
        var zero = new List<uint>();
        var buffer = new byte[ChunkGeometry.ChunkSize];
        for (long offset = 0; offset < size; offset += buffer.Length)
        {
            int n = RandomAccess.Read(file, buffer, offset);
            for (int p = 0; p + ChunkGeometry.PageSize <= n; p += ChunkGeometry.PageSize)
            {
                uint page = (uint)((offset + p) / ChunkGeometry.PageSize);
                (ZeroDetector.IsAllZero(buffer.AsSpan(p, ChunkGeometry.PageSize)) ? zero : data).Add(page);
            }
        }
        return (data, zero);
    }
}
