using System.Globalization;
using Snapshots.Store;
using Snapshots.Store.Layers;

namespace Snapshots.Tests;

/// <summary>Garbage collection. Mixed costs, so the category is on each test: one test SIGKILLs snapctl.</summary>
public class GcTests
{
    [Fact]
    [Trait("Category", Category.Unit)]
    public async Task Deletes_only_chunks_no_manifest_references()
    {
        using var t = new TestStore();
        await t.BuildAsync("os", t.Image("os.img"));
        var rt = await t.BuildAsync("rt", t.Image("rt.img", runtime: 2), parent: "os");
        int before = t.ChunkFiles().Count();
        var idle = await new GarbageCollector(t.Blobs).CollectAsync();
        Assert.Equal(0, idle.ChunksDeleted);
        Assert.Equal(before, idle.ChunksScanned);

        await t.Catalog.DeleteAsync("rt");
        var r = await new GarbageCollector(t.Blobs).CollectAsync();
        Assert.Equal(rt.NewChunks, r.ChunksDeleted);
        Assert.Equal(before - rt.NewChunks, t.ChunkFiles().Count());
        Assert.True(TestStore.SameBytes(t.Path_("os.img"), await t.ExportAsync("os")));
    }

    [Fact]
    [Trait("Category", Category.Unit)]
    public async Task Never_follows_a_planted_link_out_of_the_store()
    {
        using var t = new TestStore();
        await t.BuildAsync("os", t.Image("os.img"));
        int chunks = t.ChunkFiles().Count();
        // Outside the store: files named like chunks, which a gc following links would move in, or delete.
        var outside = t.Path_("outside");
        // A prefix the build did not use (chunk names are random: "ee" itself may hold a real chunk).
        string prefix = Enumerable.Range(0, 256).Select(i => i.ToString("x2", CultureInfo.InvariantCulture))
            .First(p => !Directory.Exists(Path.Combine(t.StoreDir, "chunks", p)));
        var victim = Path.Combine(outside, "chunks", prefix, prefix + new string('e', 62));
        Directory.CreateDirectory(Path.GetDirectoryName(victim)!);
        File.WriteAllBytes(victim, [1, 2, 3]);

        Directory.CreateSymbolicLink(Path.Combine(t.StoreDir, "chunks", prefix), Path.GetDirectoryName(victim)!);
        var clean = await new GarbageCollector(t.Blobs).CollectAsync();
        Assert.Equal(chunks, clean.ChunksScanned); // the linked directory is not the store's: not listed
        Assert.True(File.Exists(victim));

        Directory.CreateSymbolicLink(Path.Combine(t.StoreDir, "trash"), outside);
        var e = await Assert.ThrowsAsync<HostileFileException>(() => new GarbageCollector(t.Blobs).CollectAsync());
        Assert.Contains("trash", e.Message);
        Assert.Contains("a symlink", e.Message);
        Assert.True(File.Exists(victim));
        File.Delete(Path.Combine(t.StoreDir, "chunks", prefix)); // the link (counting below would follow it)
        Assert.Equal(chunks, t.ChunkFiles().Count());
        Assert.True(TestStore.SameBytes(t.Path_("os.img"), await t.ExportAsync("os")));
    }

    /// <summary>A builder in another PID namespace (a container sharing the host name and boot id) has a pid that
    /// means nothing here: gc judged its lease stale by that pid and deleted chunks it was about to publish.
    /// Leases are judged by their renewal time only.</summary>
    [Fact]
    [Trait("Category", Category.Unit)]
    public async Task A_lease_is_judged_by_its_renewals_never_by_a_pid()
    {
        using var t = new TestStore();
        await t.BuildAsync("os", t.Image("os.img"));
        await t.BuildAsync("rt", t.Image("rt.img", runtime: 2), parent: "os");
        var claimed = (await t.Catalog.LoadAsync("rt")).Entries.First(e => e.Kind == Store.Manifests.EntryKind.Data);
        await t.Catalog.DeleteAsync("rt"); // its chunks are unreferenced now, but one is claimed by a lease:
        var host = Store.Layers.ProcessIdentity.Host;
        var boot = Store.Layers.ProcessIdentity.BootId;
        var lease = $"lease v1 {host} {boot} 4000000 12345 other-namespace\n{claimed.Name}\n";
        var leasePath = Path.Combine(t.StoreDir, "leases", "x.lease");
        Directory.CreateDirectory(Path.GetDirectoryName(leasePath)!);
        File.WriteAllText(leasePath, lease);
        var chunk = Path.Combine(t.StoreDir, Store.Chunks.OriginChunkStore.KeyOf(claimed.Name));

        var fresh = await new GarbageCollector(t.Blobs).CollectAsync();
        Assert.Equal(1, fresh.LiveLeases);
        Assert.True(File.Exists(chunk)); // pid 4000000 is nobody here, and still the lease holds

        File.SetLastWriteTimeUtc(leasePath, DateTime.UtcNow - GarbageCollector.DefaultLeaseExpiry * 2);
        var stale = await new GarbageCollector(t.Blobs).CollectAsync();
        Assert.Equal(1, stale.StaleLeasesRemoved);
        Assert.False(File.Exists(chunk));
    }

    [Fact]
    [Trait("Category", Category.Unit)]
    public async Task A_build_whose_lease_lapsed_or_was_removed_publishes_nothing()
    {
        using var t = new TestStore();
        await using var lease = await BuildLease.AcquireAsync(t.Blobs, "x", CancellationToken.None);
        await lease.CheckHeldAsync(GarbageCollector.DefaultLeaseExpiry, CancellationToken.None);
        File.Delete(Path.Combine(t.StoreDir, lease.Key)); // a gc judged it dead
        var e = await Assert.ThrowsAsync<SnapshotException>(
            () => lease.CheckHeldAsync(GarbageCollector.DefaultLeaseExpiry, CancellationToken.None).AsTask());
        Assert.Contains("nothing was published", e.Message);
    }

    /// <summary>Before: a gc killed between moving candidates to trash/ and putting back those a build had claimed
    /// meanwhile left the build's new snapshot unreadable until the next gc.</summary>
    [Fact]
    [Trait("Category", Category.Unit)]
    public async Task A_chunk_left_in_trash_by_a_killed_gc_is_found_and_put_back_by_the_first_reader()
    {
        using var t = new TestStore();
        var img = t.Image("os.img");
        await t.BuildAsync("os", img);
        var name = (await t.Catalog.LoadAsync("os")).Entries.First(e => e.Kind == Store.Manifests.EntryKind.Data).Name;
        var key = Store.Chunks.OriginChunkStore.KeyOf(name);
        var parked = Path.Combine(t.StoreDir, "trash", key);
        Directory.CreateDirectory(Path.GetDirectoryName(parked)!);
        File.Move(Path.Combine(t.StoreDir, key), parked); // where the killed gc left it

        Assert.True(TestStore.SameBytes(img, await t.ExportAsync("os")));
        Assert.True(File.Exists(Path.Combine(t.StoreDir, key)));
        Assert.False(File.Exists(parked));
    }

    [Fact]
    [Trait("Category", Category.Unit)]
    public async Task Refuses_to_collect_when_a_manifest_is_unreadable()
    {
        using var t = new TestStore();
        await t.BuildAsync("os", t.Image("os.img"));
        File.WriteAllBytes(Path.Combine(t.StoreDir, SnapshotCatalog.KeyOf("junk")), [1, 2, 3]);
        int before = t.ChunkFiles().Count();
        var ex = await Assert.ThrowsAsync<SnapshotException>(() => new GarbageCollector(t.Blobs).CollectAsync());
        Assert.Contains("gc stopped", ex.Message);
        Assert.Contains("'junk'", ex.Message);
        Assert.Equal(before, t.ChunkFiles().Count());
    }

    [Fact]
    [Trait("Category", Category.Unit)]
    public async Task Never_deletes_a_chunk_a_concurrent_build_depends_on()
    {
        using var t = new TestStore();
        var imgs = Enumerable.Range(0, 6).Select(i => t.Image($"f{i}.img", function: 10 + i % 2)).ToList();
        using var stop = new CancellationTokenSource();
        // gc in a tight loop while builds dedup against chunks that are unreferenced between builds.
        var gcLoop = Task.Run(async () =>
        {
            int runs = 0;
            while (!stop.IsCancellationRequested) { await new GarbageCollector(t.Blobs).CollectAsync(); runs++; }
            return runs;
        });
        for (int i = 0; i < imgs.Count; i++)
        {
            await t.BuildAsync($"f{i}", imgs[i]);
            if (i % 2 == 1) await t.Catalog.DeleteAsync($"f{i - 1}"); // leaves its chunks unreferenced
        }
        stop.Cancel();
        Assert.True(await gcLoop > 0);
        foreach (var name in new[] { "f1", "f3", "f5" })
        {
            var result = await new ChainVerifier(new Store.Chunks.OriginChunkStore(t.Blobs))
                .VerifyAsync(await t.OpenAsync(name));
            Assert.True(result.Ok, string.Join("; ", result.Bad.Select(b => b.Problem)));
        }
    }

    [Fact]
    [Trait("Category", Category.Process)]
    public async Task A_build_killed_with_sigkill_leaves_no_visible_manifest_and_gc_cleans_up()
    {
        using var t = new TestStore();
        var os = t.Image("os.img", size: 64L << 20);
        await t.BuildAsync("os", os);
        var big = t.Image("big.img", runtime: 2, function: 3, size: 512L << 20);
        int baseline = t.ChunkFiles().Count();

        var rng = new Random(42);
        bool sawPartial = false;
        for (int attempt = 0; attempt < 3; attempt++)
        {
            using var p = Snapctl.Start(t, "build", "--name", $"victim{attempt}", "--memory", big, "--parent", "os",
                "--layer", "runtime", "--holes-are-zero");
            // Wait until the build is under way (its lease exists), however slow the machine, then kill it at a
            // random moment within it.
            var started = System.Diagnostics.Stopwatch.StartNew();
            while (!p.HasExited && started.Elapsed < TimeSpan.FromSeconds(60)
                   && Directory.GetFiles(t.StoreDir, "*.lease", SearchOption.AllDirectories).Length == 0)
            {
                await Task.Delay(5);
            }
            await Task.Delay(rng.Next(0, 400));
            p.Kill(entireProcessTree: true); // SIGKILL
            await p.WaitForExitAsync();
            sawPartial |= t.ChunkFiles().Count() > baseline
                || Directory.GetFiles(t.StoreDir, "*.lease", SearchOption.AllDirectories).Length > 0;

            // Whatever the moment: either the manifest is whole with every chunk, or it is not there at all.
            if (await t.Catalog.ExistsAsync($"victim{attempt}"))
            {
                var result = await new ChainVerifier(new Store.Chunks.OriginChunkStore(t.Blobs))
                    .VerifyAsync(await t.OpenAsync($"victim{attempt}"));
                Assert.True(result.Ok);
                await t.Catalog.DeleteAsync($"victim{attempt}");
            }
        }
        Assert.True(sawPartial, "no kill landed in the middle of a build");
        // The killed builds' leases stop being renewed: past the (here shortened) expiry they are dead builders'.
        int leftLeases = Directory.GetFiles(t.StoreDir, "*.lease", SearchOption.AllDirectories).Length;
        var gcLive = await new GarbageCollector(t.Blobs).CollectAsync();
        Assert.Equal(leftLeases, gcLive.LiveLeases); // just killed: within the expiry, still holding their claims
        await Task.Delay(1500);
        var gc = await new GarbageCollector(t.Blobs, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1)).CollectAsync();
        Assert.Equal(0, gc.LiveLeases);
        Assert.Equal(baseline, t.ChunkFiles().Count());
        Assert.Empty(Directory.GetFiles(t.StoreDir, "*.tmp", SearchOption.AllDirectories));
        Assert.Empty(Directory.GetFiles(t.StoreDir, "*.lease", SearchOption.AllDirectories));
        Assert.True(TestStore.SameBytes(os, await t.ExportAsync("os")));
    }
}
