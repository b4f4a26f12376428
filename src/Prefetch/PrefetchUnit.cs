using Snapshots.Store.Chunks;

namespace Snapshots.Prefetch;

/// <summary>
/// One chunk's worth of prefetch: the chunk to load and the guest pages to install from it. From the snapshot's
/// own chunks (<see cref="FromPack"/> false) page p sits at slot p % 128 of chunk p / 128; from the working-set
/// pack, unit c holds the plan's pages c*128 .. c*128+127 at consecutive slots.
/// </summary>
public sealed record PrefetchUnit(int Chunk, uint[] Pages, bool FromPack)
{
    public int SlotOf(int i) => FromPack ? i : (int)(Pages[i] % ChunkGeometry.PagesPerChunk);

    /// <summary>The plan as chunks of the snapshot, in the order their first planned page appears.</summary>
    public static List<PrefetchUnit> FromImageChunks(PrefetchPlan plan)
    {
        var order = new List<int>();
        var pages = new Dictionary<int, List<uint>>();
        foreach (var p in plan.Pages)
        {
            int chunk = (int)(p / ChunkGeometry.PagesPerChunk);
            if (!pages.TryGetValue(chunk, out var list)) { pages[chunk] = list = []; order.Add(chunk); }
            list.Add(p);
        }
        var units = new List<PrefetchUnit>(order.Count);
        foreach (var c in order)
        {
            var arr = pages[c].ToArray();
            Array.Sort(arr);
            units.Add(new PrefetchUnit(c, arr, FromPack: false));
        }
        return units;
    }

    /// <summary>The plan as chunks of its working-set pack, in pack order.</summary>
    public static List<PrefetchUnit> FromPackChunks(PrefetchPlan plan)
    {
        var units = new List<PrefetchUnit>();
        for (int start = 0, c = 0; start < plan.Pages.Length; start += ChunkGeometry.PagesPerChunk, c++)
        {
            int count = Math.Min(ChunkGeometry.PagesPerChunk, plan.Pages.Length - start);
            units.Add(new PrefetchUnit(c, plan.Pages.AsSpan(start, count).ToArray(), FromPack: true));
        }
        return units;
    }
}
