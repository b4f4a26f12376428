using Snapshots.Host;
using Snapshots.Store;
using Snapshots.Store.Manifests;

namespace Snapshots.Tests;

/// <summary>The host library in-process, as snapctl, the daemon and the harness call it: every recipe, typed
/// results, and errors that name the input at fault without naming any flag.</summary>
[Trait("Category", Category.Unit)]
public class HostTests
{
    [Fact]
    public async Task Build_export_verify_warm_inspect_list_remove_gc_in_process()
    {
        using var t = new TestStore();
        using var host = new SnapshotHost(t.Blobs, t.Keys);
        var osImg = t.Image("os.img", size: 16L << 20);
        var fnImg = t.Image("fn.img", function: 3, size: 16L << 20);
        var os = await host.BuildAsync(new() { Name = "os", Layer = LayerKind.Os, MemoryPath = osImg });
        var fn = await host.BuildAsync(new()
        {
            Name = "fn", MemoryPath = fnImg, Parent = "os", Tenant = "acme", HolesAreZero = true,
        });
        Assert.Equal("function", fn.Layer);
        Assert.True(fn.InheritedChunks > 0);

        var tiers = new TierSettings { CacheDirectory = t.Path_("cache"), CacheBytes = 1L << 30 };
        var exported = await host.ExportAsync("fn", "acme", t.Path_("fn.out"), tiers);
        Assert.True(TestStore.SameBytes(fnImg, t.Path_("fn.out")));
        Assert.Equal(2, exported.Tiers.Count); // the disk cache, then the origin
        Assert.Equal(exported.DataChunks, exported.Tiers[^1].Hits);
        Assert.Equal(1.0, exported.Tiers[^1].HitRatio);

        var warmed = await host.WarmAsync("fn", tiers, parallelism: 4);
        Assert.Equal(warmed.Chunks, warmed.Tiers[0].Hits); // all from the cache the export filled

        var verified = await host.VerifyAsync("fn", "acme");
        Assert.True(verified.Ok);
        Assert.Equal(2, verified.Layers);

        var chain = await host.InspectAsync("fn");
        Assert.Equal(["fn", "os"], chain.Select(l => l.Name));
        Assert.Equal(os.ManifestHash, chain[1].ManifestHash);
        Assert.Equal(2, (await host.ListAsync()).Count(l => l.Layer is not null));

        var refused = await Assert.ThrowsAsync<InvalidInputException>(() => host.RemoveAsync("os", force: false));
        Assert.Equal("force", refused.Parameter);
        Assert.Contains("is the parent of fn", refused.Message);
        await Assert.ThrowsAsync<KeyUnavailableException>(() => host.RemoveAsync("fn", force: false));
        var removed = await host.RemoveAsync("fn", force: false, tenant: "acme");
        Assert.Empty(removed.OrphanedChildren);
        var gc = await host.CollectGarbageAsync();
        Assert.Equal(fn.NewChunks, gc.ChunksDeleted);
    }

    [Fact]
    public async Task Injected_origin_faults_reach_every_origin_read_and_nothing_else()
    {
        using var t = new TestStore();
        using var host = new SnapshotHost(t.Blobs, t.Keys);
        var img = t.Image("os.img", size: 16L << 20);
        await host.BuildAsync(new() { Name = "os", Layer = LayerKind.Os, MemoryPath = img });
        var slow = new TierSettings
        {
            CacheDirectory = t.Path_("cache"),
            OriginFaults = Store.Faults.FaultProfile.Slow(TimeSpan.FromMilliseconds(30)),
        };
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var first = await host.WarmAsync("os", slow, parallelism: 1);
        Assert.True(first.Chunks >= 8);
        Assert.True(clock.Elapsed >= TimeSpan.FromMilliseconds(30 * first.Chunks * 0.9)); // each origin read waited
        Assert.Equal(first.Chunks, first.Tiers[^1].Hits);
        // From the disk cache now: the origin is not asked, so its injected delay costs nothing.
        var again = await host.ExportAsync("os", null, t.Path_("os.out"), slow);
        Assert.Equal(0, again.Tiers[^1].Hits);
        Assert.True(TestStore.SameBytes(img, t.Path_("os.out")));
        var broken = slow with
        {
            OriginFaults = new Store.Faults.FaultProfile { ErrorRate = 1 },
            CacheDirectory = null,
        };
        await Assert.ThrowsAsync<ChunkUnavailableException>(
            () => host.ExportAsync("os", null, t.Path_("os2.out"), broken with { RetryWindow = TimeSpan.Zero }));
    }

    [Theory]
    [InlineData("a..b", "without \"..\"")]
    [InlineData("..", "is invalid")]
    [InlineData("fn.pack", "is reserved")]
    public async Task Names_that_are_paths_or_reserved_are_refused(string name, string expected)
    {
        using var t = new TestStore();
        using var host = new SnapshotHost(t.Blobs, t.Keys);
        var img = t.Image("os.img", size: 16L << 20);
        var e = await Assert.ThrowsAsync<InvalidInputException>(
            () => host.BuildAsync(new() { Name = name, Layer = LayerKind.Os, MemoryPath = img }));
        Assert.Contains(expected, e.Message);
        Assert.Equal("name", e.Parameter);
        Assert.Empty(await host.ListAsync());
    }

    [Fact]
    public async Task Of_two_concurrent_builds_of_a_new_name_one_wins_and_the_other_says_so()
    {
        using var t = new TestStore();
        using var host = new SnapshotHost(t.Blobs, t.Keys);
        var a = t.Image("a.img", size: 32L << 20);
        var b = t.Image("b.img", runtime: 2, size: 32L << 20);
        for (int round = 0; round < 3; round++)
        {
            var name = $"dup{round}";
            var builds = new[] { a, b }.Select(img => Task.Run(
                () => host.BuildAsync(new() { Name = name, Layer = LayerKind.Os, MemoryPath = img }))).ToArray();
            try { await Task.WhenAll(builds); } catch (InvalidInputException) { }
            var won = builds.Where(x => x.IsCompletedSuccessfully).ToList();
            var lost = builds.Where(x => x.IsFaulted).Select(x => x.Exception!.InnerException).ToList();
            await Assert.Single(won); // the winner, completed
            var e = Assert.IsType<InvalidInputException>(Assert.Single(lost));
            Assert.True(e.Message.Contains("already exists", StringComparison.Ordinal)
                || e.Message.Contains("by another build", StringComparison.Ordinal), e.Message);
            Assert.Equal("replace", e.Parameter);
            var winner = builds[0].IsCompletedSuccessfully ? a : b;
            await host.ExportAsync(name, null, t.Path_($"{name}.out"), TierSettings.OriginOnly);
            Assert.True(TestStore.SameBytes(winner, t.Path_($"{name}.out"))); // whole, one build's image
        }
    }

    [Fact]
    public async Task An_old_manifest_put_back_is_refused_as_a_rollback_unless_allowed()
    {
        using var t = new TestStore();
        using var host = new SnapshotHost(t.Blobs, t.Keys);
        var v1 = t.Image("v1.img", size: 16L << 20);
        var v2 = t.Image("v2.img", runtime: 2, size: 16L << 20);
        await host.BuildAsync(new() { Name = "os", Layer = LayerKind.Os, MemoryPath = v1 });
        var manifest = Path.Combine(t.StoreDir, "manifests", "os.manifest");
        var old = File.ReadAllBytes(manifest);
        await host.BuildAsync(new() { Name = "os", Layer = LayerKind.Os, MemoryPath = v2, Replace = true });
        await host.ExportAsync("os", null, t.Path_("a.out"), TierSettings.OriginOnly); // accepts publication 2
        Assert.True(TestStore.SameBytes(v2, t.Path_("a.out")));

        File.WriteAllBytes(manifest, old); // the attack: a genuine, older manifest back in place
        var e = await Assert.ThrowsAsync<RollbackException>(
            () => host.ExportAsync("os", null, t.Path_("b.out"), TierSettings.OriginOnly));
        Assert.Equal("rollback", e.Kind);
        Assert.Equal("allow-rollback", e.Parameter);
        Assert.Contains("rolled back", e.Message);
        Assert.False(File.Exists(t.Path_("b.out")));
        await Assert.ThrowsAsync<RollbackException>(() => host.VerifyAsync("os", null));

        using var allowing = new SnapshotHost(t.Blobs, t.Keys) { AllowRollback = true };
        await allowing.ExportAsync("os", null, t.Path_("c.out"), TierSettings.OriginOnly);
        Assert.True(TestStore.SameBytes(v1, t.Path_("c.out"))); // asked for: served, and now the accepted one
        await host.ExportAsync("os", null, t.Path_("d.out"), TierSettings.OriginOnly);

        // Found by a reviewer: the same store named another way (a trailing slash, a symlink) was another record.
        await host.BuildAsync(new() { Name = "os", Layer = LayerKind.Os, MemoryPath = v2, Replace = true });
        var current = File.ReadAllBytes(manifest); // the builder recorded its own publication: no export needed
        File.WriteAllBytes(manifest, old);
        await Assert.ThrowsAsync<RollbackException>(
            () => host.ExportAsync("os", null, t.Path_("d2.out"), TierSettings.OriginOnly));
        var link = t.Path_("store-link");
        Directory.CreateSymbolicLink(link, t.StoreDir);
        foreach (var other in new[] { t.StoreDir + "/", link })
        {
            using var blobs = new Store.Origin.FileBlobStore(other, create: false);
            using var viaOther = new SnapshotHost(blobs, t.Keys);
            await Assert.ThrowsAsync<RollbackException>(
                () => viaOther.ExportAsync("os", null, t.Path_("d3.out"), TierSettings.OriginOnly));
        }
        // The records' directory must be a real one of ours: a link or a file there is refused, not ignored.
        var accepted = Path.Combine(t.KeyringDir, "accepted");
        Directory.Move(accepted, accepted + ".moved");
        Directory.CreateSymbolicLink(accepted, accepted + ".moved");
        await Assert.ThrowsAsync<InvalidInputException>(
            () => host.ExportAsync("os", null, t.Path_("d4.out"), TierSettings.OriginOnly));
        File.Delete(accepted);
        Directory.Move(accepted + ".moved", accepted);
        File.WriteAllBytes(manifest, current);

        // A parent put back: its child, rebuilt on the newer parent, is refused by its binding, and the parent
        // itself as a rollback.
        await host.BuildAsync(new() { Name = "os", Layer = LayerKind.Os, MemoryPath = v2, Replace = true });
        var rt = t.Image("rt.img", runtime: 3, size: 16L << 20);
        await host.BuildAsync(new()
        {
            Name = "rt", Layer = LayerKind.Runtime, MemoryPath = rt, Parent = "os", HolesAreZero = true,
        });
        await host.ExportAsync("rt", null, t.Path_("e.out"), TierSettings.OriginOnly);
        File.WriteAllBytes(manifest, old);
        var child = await Assert.ThrowsAsync<SnapshotException>(
            () => host.ExportAsync("rt", null, t.Path_("f.out"), TierSettings.OriginOnly));
        Assert.Contains("another version of 'os'", child.Message);
        await Assert.ThrowsAsync<RollbackException>(
            () => host.ExportAsync("os", null, t.Path_("g.out"), TierSettings.OriginOnly));
    }

    /// <summary>Found by a reviewer: `build --replace` with a mistyped keyring minted a new domain key and
    /// replaced a live snapshot under it.</summary>
    [Fact]
    public async Task Replacing_with_a_keyring_that_lacks_the_domain_key_is_refused()
    {
        using var t = new TestStore();
        await t.BuildAsync("os", t.Image("os.img", size: 16L << 20));
        var fnImg = t.Image("fn.img", function: 3, size: 16L << 20);
        await t.BuildAsync("fn", fnImg, parent: "os", tenant: "acme");
        var typo = new Store.Keys.LocalKeyring(t.Path_("typo-keyring"));
        using var wrong = new SnapshotHost(t.Blobs, typo);
        var e = await Assert.ThrowsAsync<KeyUnavailableException>(() => wrong.BuildAsync(new()
        {
            Name = "fn", MemoryPath = fnImg, Parent = "os", Tenant = "acme", Replace = true,
        }));
        Assert.Contains("no key for", e.Message); // the parent's domain or its own: refused before anything
        Assert.True(TestStore.SameBytes(fnImg, await t.ExportAsync("fn", tenant: "acme")));
    }

    [Fact]
    public async Task Progress_is_begun_with_the_total_then_reported()
    {
        using var t = new TestStore();
        using var host = new SnapshotHost(t.Blobs, t.Keys);
        var img = t.Image("os.img", size: 16L << 20);
        var progress = new RecordingProgress();
        await host.BuildAsync(new() { Name = "os", Layer = LayerKind.Os, MemoryPath = img }, progress);
        Assert.Equal(16L << 20, progress.Total);
        var export = new RecordingProgress();
        await host.ExportAsync("os", null, t.Path_("os.out"), TierSettings.OriginOnly, export);
        Assert.Equal(16L << 20, export.Total);
        Assert.True(export.Last > 0);
    }

    [Fact]
    public async Task Library_errors_name_the_input_never_a_flag()
    {
        using var t = new TestStore();
        using var host = new SnapshotHost(t.Blobs, t.Keys);
        var img = t.Image("os.img", size: 16L << 20);
        await host.BuildAsync(new() { Name = "os", Layer = LayerKind.Os, MemoryPath = img });
        var cases = new (Func<Task> Act, string Parameter)[]
        {
            (() => host.BuildAsync(new() { Name = "os", Layer = LayerKind.Os, MemoryPath = img }), "replace"),
            (() => host.BuildAsync(new() { Name = "fn", MemoryPath = img, Parent = "os", Tenant = "Acme" }), "tenant"),
            (() => host.BuildAsync(new()
            {
                Name = "fn", MemoryPath = img, Parent = "os", Layer = LayerKind.Function,
            }), "tenant"),
            (() => host.BuildAsync(new() { Name = "fn", Layer = LayerKind.Os, MemoryPath = t.Path_("absent.img") }),
                "memory"),
            (() => host.BuildAsync(new() { Name = "nodomain", MemoryPath = img }), "layer"),
            (() => host.ExportAsync("os", null, t.Path_("o"), new TierSettings { Distributed = "redis:/x" }),
                "distributed"),
            (() => host.WarmAsync("os", TierSettings.OriginOnly, 4), "cache-dir"),
        };
        foreach (var (act, parameter) in cases)
        {
            var ex = await Assert.ThrowsAnyAsync<SnapshotException>(act);
            Assert.Equal(parameter, ex.Parameter);
            Assert.DoesNotContain("--", ex.Message);
        }
        var store = await Assert.ThrowsAsync<InvalidInputException>(
            () => SnapshotHost.OpenAsync(new StoreOptions { Address = "" }));
        Assert.Equal("store", store.Parameter);
        Assert.Equal("invalid-input", store.Kind);
    }

    [Fact]
    public async Task Writes_stay_in_the_writers_domain()
    {
        using var t = new TestStore();
        using var host = new SnapshotHost(t.Blobs, t.Keys);
        var img = t.Image("os.img", size: 16L << 20);
        await host.BuildAsync(new() { Name = "os", Layer = LayerKind.Os, MemoryPath = img });
        await host.BuildAsync(
            new() { Name = "fn", MemoryPath = img, Parent = "os", Tenant = "acme", HolesAreZero = true });
        var plan = Prefetch.PlanMerger.Merge(
            [new Prefetch.AccessLog { ImageSize = 16L << 20, Touches = [new Prefetch.PageTouch(1, 0)] }]);

        // Another tenant, or no tenant, cannot replace acme's layer; nor can a tenant replace the shared one.
        await Assert.ThrowsAsync<KeyUnavailableException>(() => host.BuildAsync(
            new() { Name = "fn", MemoryPath = img, Parent = "os", Tenant = "evil", Replace = true }));
        await Assert.ThrowsAsync<KeyUnavailableException>(() => host.BuildAsync(
            new() { Name = "fn", Layer = LayerKind.Runtime, MemoryPath = img, Parent = "os", Replace = true }));
        await Assert.ThrowsAsync<KeyUnavailableException>(() => host.BuildAsync(
            new() { Name = "os", MemoryPath = img, Tenant = "evil", Replace = true }));
        // A tenant cannot attach a plan to a shared layer, nor remove it.
        await Assert.ThrowsAsync<KeyUnavailableException>(
            () => host.AttachPlanAsync("os", "evil", plan, withPack: false, TierSettings.OriginOnly));
        await Assert.ThrowsAsync<KeyUnavailableException>(() => host.RemoveAsync("os", force: true, tenant: "evil"));
        Assert.Equal("function", (await host.InspectAsync("fn"))[0].Layer);
        Assert.Equal("shared", (await host.InspectAsync("os"))[0].Domain);

        // The owner may.
        await host.BuildAsync(new()
        {
            Name = "fn", MemoryPath = img, Parent = "os", Tenant = "acme", Replace = true, HolesAreZero = true,
        });
        await host.AttachPlanAsync("fn", "acme", plan, withPack: false, TierSettings.OriginOnly);
    }

    [Fact]
    public void A_bad_second_output_leaves_the_first_unwritten()
    {
        using var t = new TestStore();
        var img = t.Image("os.img", size: 16L << 20);
        var ex = Assert.Throws<InvalidInputException>(() => PlanFiles.Synthesize(new SynthRequest
        {
            ImagePath = img, OutPath = t.Path_("x.log"), TracePath = t.Dir, Pages = 100,
        }));
        Assert.Equal("trace", ex.Parameter);
        Assert.False(File.Exists(t.Path_("x.log")));
    }

    private sealed class RecordingProgress : IByteProgress
    {
        public long Total, Last;
        public void Begin(long totalBytes) => Total = totalBytes;
        public void Report(long value) => Interlocked.Exchange(ref Last, Math.Max(Last, value));
    }
}
