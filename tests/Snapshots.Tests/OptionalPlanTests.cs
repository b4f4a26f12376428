using System.Diagnostics;
using Snapshots.Host;
using Snapshots.Prefetch;
using Snapshots.Store.Chunks;

namespace Snapshots.Tests;

/// <summary>A prefetch plan and its working-set pack are a speed-up: damaged, missing or odd ones mean a warning
/// and serving on demand, never a refused, crashed or hung restore. And a pack chunk that is all zeros is served.
/// </summary>
[Trait("Category", Category.Process)]
public class OptionalPlanTests
{
    private const int Pages = 8 * ChunkGeometry.PagesPerChunk; // a 4 MiB image: 8 chunks of 128 pages

    /// <summary>Every chunk holds data; pages 64-191 (the second half of chunk 0 and the first half of chunk 1)
    /// are zeros, so a plan of exactly those pages gives a pack whose only chunk is all zeros.</summary>
    private static async Task<(TestStore T, string Image)> SnapshotAsync()
    {
        var t = new TestStore();
        var bytes = new byte[Pages * ChunkGeometry.PageSize];
        new Random(3).NextBytes(bytes);
        Array.Clear(bytes, 64 * ChunkGeometry.PageSize, 128 * ChunkGeometry.PageSize);
        var img = t.Path_("img");
        await File.WriteAllBytesAsync(img, bytes);
        await t.BuildAsync("fn", img);
        return (t, img);
    }

    private static PrefetchPlan PlanOf(IEnumerable<int> pages)
    {
        var touches = pages.Select(p => new PageTouch((uint)p, 10)).ToArray();
        var log = new AccessLog { ImageSize = (long)Pages * ChunkGeometry.PageSize, Touches = touches };
        return PlanMerger.Merge([log]);
    }

    private static string Trace(TestStore t, IEnumerable<int> pages)
    {
        var path = t.Path_($"trace-{Guid.NewGuid():N}.txt");
        File.WriteAllLines(path, pages.Select(p => $"{(long)p * ChunkGeometry.PageSize} 0"));
        return path;
    }

    [Fact]
    public async Task A_pack_chunk_of_zero_pages_is_served()
    {
        var (t, img) = await SnapshotAsync();
        using var scope = t;
        var zeros = Enumerable.Range(64, 128).ToArray();
        var attached = await t.Host.AttachPlanAsync("fn", null, PlanOf(zeros), withPack: true, TierSettings.OriginOnly);
        Assert.NotNull(attached.Pack);
        foreach (var prefetch in new[] { "--prefetch", "--prefetch-concurrency=1" })
        {
            var run = await Loader.RestoreAsync(
                t, ["--name", "fn", prefetch], ["--image", img, "--trace", Trace(t, zeros)]);
            Assert.Equal(0, run.Handler.ExitCode);
            Assert.Equal(0, run.Vmm.GetProperty("bad").GetInt32());
        }
    }

    [Fact]
    public async Task A_damaged_plan_a_missing_pack_or_a_fifo_means_on_demand_with_a_warning()
    {
        var (t, img) = await SnapshotAsync();
        using var scope = t;
        var pages = Enumerable.Range(300, 200).ToArray();
        await t.Host.AttachPlanAsync("fn", null, PlanOf(pages), withPack: true, TierSettings.OriginOnly);
        var trace = Trace(t, Enumerable.Range(0, Pages).Where(p => p % 3 == 0));

        // The pack deleted: the plan still prefetches, from the snapshot's own chunks.
        File.Delete(Path.Combine(t.StoreDir, "manifests", "fn.pack.manifest"));
        var noPack = await Loader.RestoreAsync(t, ["--name", "fn", "--prefetch"], ["--image", img, "--trace", trace]);
        Assert.Equal(0, noPack.Handler.ExitCode);
        Assert.Equal(0, noPack.Vmm.GetProperty("bad").GetInt32());
        Assert.Contains("warning: working-set pack 'fn.pack' is unusable", noPack.Handler.Stderr);

        // One bit flipped in the stored plan.
        var planPath = Path.Combine(t.StoreDir, "plans", "fn.plan");
        var bytes = await File.ReadAllBytesAsync(planPath);
        bytes[bytes.Length / 2] ^= 0x04;
        await File.WriteAllBytesAsync(planPath, bytes);
        var flipped = await Loader.RestoreAsync(t, ["--name", "fn", "--prefetch"], ["--image", img, "--trace", trace]);
        Assert.Equal(0, flipped.Handler.ExitCode);
        Assert.Equal(0, flipped.Vmm.GetProperty("bad").GetInt32());
        Assert.Contains("warning: the prefetch plan is unusable", flipped.Handler.Stderr);
        Assert.Equal(0, flipped.Stats.GetProperty("prefetchedPages").GetInt64());

        // A FIFO given as the plan file: reading it would block forever.
        var fifo = t.Path_("plan.fifo");
        using (var mk = Process.Start("mkfifo", fifo)!)
        {
            await mk.WaitForExitAsync();
            Assert.Equal(0, mk.ExitCode);
        }
        var clock = Stopwatch.StartNew();
        var fromFifo = await Loader.RestoreAsync(
            t, ["--name", "fn", "--plan", fifo], ["--image", img, "--trace", trace]);
        Assert.Equal(0, fromFifo.Handler.ExitCode);
        Assert.Contains("is not a readable regular file", fromFifo.Handler.Stderr);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"took {clock.Elapsed}");
    }
}
