using Snapshots.Store;
using Snapshots.Store.Chunks;
using Snapshots.Store.Layers;

namespace Snapshots.Tests;

[Trait("Category", Category.Unit)]
public class FaultTests
{
    [Fact]
    public async Task Missing_empty_or_truncated_memory_file_is_named()
    {
        using var t = new TestStore();
        var missing = await Assert.ThrowsAsync<InvalidInputException>(() => t.BuildAsync("x", t.Path_("nope.img")));
        Assert.Contains("nope.img does not exist", missing.Message);
        File.WriteAllBytes(t.Path_("empty.img"), []);
        var empty = await Assert.ThrowsAsync<InvalidInputException>(() => t.BuildAsync("x", t.Path_("empty.img")));
        Assert.Contains("is empty", empty.Message);
        File.WriteAllBytes(t.Path_("torn.img"), new byte[(1 << 20) + 100]);
        var torn = await Assert.ThrowsAsync<InvalidInputException>(() => t.BuildAsync("x", t.Path_("torn.img")));
        Assert.Contains("not a whole number of 4 KiB pages", torn.Message);
        Assert.Empty(t.ChunkFiles());
        Assert.False(await t.Catalog.ExistsAsync("x"));
    }

    [Fact]
    public async Task Parent_that_does_not_exist_is_named()
    {
        using var t = new TestStore();
        var ex = await Assert.ThrowsAsync<InvalidInputException>(
            () => t.BuildAsync("rt", t.Image("rt.img", runtime: 2), parent: "ghost"));
        Assert.Contains("parent snapshot 'ghost' does not exist", ex.Message);
        var chain = await Assert.ThrowsAsync<SnapshotNotFoundException>(() => t.OpenAsync("ghost"));
        Assert.Contains("'ghost' not found", chain.Message);
    }

    private static async Task<(TestStore T, string Image, string ChunkPath, ChunkName Name)> BuiltAsync()
    {
        var t = new TestStore();
        var img = t.Image("os.img");
        await t.BuildAsync("os", img);
        var m = await t.Catalog.LoadAsync("os");
        var name = m.Entries[m.Entries.Length / 2].Name;
        return (t, img, Path.Combine(t.StoreDir, OriginChunkStore.KeyOf(name)), name);
    }

    [Fact]
    public async Task Flipped_bit_in_a_chunk_object_is_named_by_verify_and_export_writes_nothing()
    {
        var (t, _, chunkPath, name) = await BuiltAsync();
        using var _ = t;
        var bytes = File.ReadAllBytes(chunkPath);
        bytes[12345] ^= 0x10;
        File.WriteAllBytes(chunkPath, bytes);

        var result = await new ChainVerifier(new OriginChunkStore(t.Blobs)).VerifyAsync(await t.OpenAsync("os"));
        var bad = Assert.Single(result.Bad);
        Assert.Equal(name.ToString(), bad.Chunk);
        Assert.Contains("corrupt", bad.Problem);

        var target = t.Path_("os.out");
        var ex = await Assert.ThrowsAsync<ChunkUnavailableException>(() => t.ExportAsync("os", outName: "os.out"));
        Assert.Contains(name.ToString(), ex.Message);
        Assert.Contains("corrupt", ex.Message);
        Assert.False(File.Exists(target));
        Assert.Empty(Directory.GetFiles(t.Dir, "*.tmp"));
    }

    [Theory]
    [InlineData("fifo")]
    [InlineData("symlink")]
    public async Task A_chunk_replaced_by_a_fifo_or_a_link_is_named_at_once_never_waited_on(string planted)
    {
        var (t, _, chunkPath, name) = await BuiltAsync();
        using var _ = t;
        var copy = t.Path_("copy");
        File.Move(chunkPath, copy);
        if (planted == "symlink") File.CreateSymbolicLink(chunkPath, copy); // even to the right bytes
        else using (var mk = System.Diagnostics.Process.Start("mkfifo", chunkPath)!) await mk.WaitForExitAsync();

        var verify = new ChainVerifier(new OriginChunkStore(t.Blobs)).VerifyAsync(await t.OpenAsync("os"));
        var bad = Assert.Single((await verify.WaitAsync(TimeSpan.FromSeconds(30))).Bad);
        Assert.Equal(name.ToString(), bad.Chunk);
        var export = Assert.ThrowsAsync<ChunkUnavailableException>(() => t.ExportAsync("os", outName: "os.out"));
        var ex = await export.WaitAsync(TimeSpan.FromSeconds(30)); // a blocking open would hang here
        Assert.Equal(ChunkFault.Corrupt, ex.Fault);
        Assert.Contains(name.ToString(), ex.Message);
        Assert.Contains(planted == "fifo" ? "a FIFO" : "symlink", ex.Message);
        Assert.False(File.Exists(t.Path_("os.out")));
    }

    /// <summary>Before: rebuilding from the original image (even with --replace) deduplicated against the corrupt
    /// object and uploaded nothing, so a damaged chunk could never be healed.</summary>
    [Fact]
    public async Task A_corrupt_chunk_is_healed_by_a_build_that_verifies_existing_chunks()
    {
        var (t, img, chunkPath, name) = await BuiltAsync();
        using var _ = t;
        var bytes = File.ReadAllBytes(chunkPath);
        bytes[777] ^= 0x01;
        File.WriteAllBytes(chunkPath, bytes);
        var plain = await t.BuildAsync("os", img, replace: true);
        Assert.Equal(0, plain.HealedChunks); // dedup trusts what is there
        Assert.False((await new ChainVerifier(new OriginChunkStore(t.Blobs)).VerifyAsync(await t.OpenAsync("os"))).Ok);

        var healing = await new LayerBuilder(t.Blobs, t.Keys).BuildAsync(new BuildRequest
        {
            Name = "os", Layer = Store.Manifests.LayerKind.Os, MemoryPath = img, Replace = true, VerifyExisting = true,
        });
        Assert.Equal(1, healing.HealedChunks);
        Assert.True((await new ChainVerifier(new OriginChunkStore(t.Blobs)).VerifyAsync(await t.OpenAsync("os"))).Ok);
        Assert.True(name.Matches(File.ReadAllBytes(chunkPath)));
        Assert.True(TestStore.SameBytes(img, await t.ExportAsync("os")));
    }

    [Fact]
    public async Task Verify_repair_rewrites_a_bad_origin_chunk_from_a_cache_that_holds_it_intact()
    {
        var (t, _, chunkPath, name) = await BuiltAsync();
        using var _ = t;
        var tiers = new Host.TierSettings { CacheDirectory = t.Path_("cache") };
        await t.Host.ExportAsync("os", null, t.Path_("warm.out"), tiers); // the disk cache now holds every chunk
        var bytes = File.ReadAllBytes(chunkPath);
        bytes[4242] ^= 0x80;
        File.WriteAllBytes(chunkPath, bytes);

        var r = await t.Host.RepairAsync("os", null, tiers);
        Assert.Equal(name.ToString(), Assert.Single(r.Found).Chunk);
        Assert.Equal(name.ToString(), Assert.Single(r.Repaired));
        Assert.True(r.After.Ok);
        Assert.True(name.Matches(File.ReadAllBytes(chunkPath)));

        // Nothing intact anywhere: it stays bad, and says so.
        File.WriteAllBytes(chunkPath, bytes);
        Directory.Delete(t.Path_("cache"), recursive: true);
        var none = await t.Host.RepairAsync("os", null, tiers);
        Assert.Empty(none.Repaired);
        Assert.False(none.After.Ok);
    }

    [Fact]
    public async Task Chunk_deleted_from_the_origin_is_named()
    {
        var (t, _, chunkPath, name) = await BuiltAsync();
        using var _ = t;
        File.Delete(chunkPath);
        var result = await new ChainVerifier(new OriginChunkStore(t.Blobs)).VerifyAsync(await t.OpenAsync("os"));
        Assert.Contains("missing", Assert.Single(result.Bad).Problem);
        var ex = await Assert.ThrowsAsync<ChunkUnavailableException>(() => t.ExportAsync("os"));
        Assert.Contains($"chunk {name} of snapshot 'os'", ex.Message);
        Assert.Contains("missing", ex.Message);
    }

    [Fact]
    public async Task Chunk_swapped_for_another_valid_chunk_is_caught()
    {
        var (t, _, chunkPath, name) = await BuiltAsync();
        using var _ = t;
        // A replayed object of the right size under the wrong name: the name check catches it.
        var other = t.ChunkFiles().First(f => f != chunkPath);
        File.Copy(other, chunkPath, overwrite: true);
        var ex = await Assert.ThrowsAsync<ChunkUnavailableException>(() => t.ExportAsync("os"));
        Assert.Contains(name.ToString(), ex.Message);
    }

    /// <summary>A memory file rewritten in place while it is chunked would be published torn (old chunks and new):
    /// the build notices and publishes nothing.</summary>
    [Fact]
    public async Task A_memory_file_written_during_the_build_is_never_published()
    {
        using var t = new TestStore();
        var img = t.Image("os.img");
        using var file = new FileImageSource(img);
        using var writing = new WrittenDuringRead(file, img);
        var builder = new LayerBuilder(t.Blobs, t.Keys);
        var e = await Assert.ThrowsAsync<InvalidInputException>(
            () => builder.BuildAsync(
                new BuildRequest { Name = "os", Layer = Store.Manifests.LayerKind.Os, MemoryPath = img }, writing));
        Assert.Contains("written to during the build", e.Message);
        Assert.Equal("memory", e.Parameter);
        Assert.False(await t.Catalog.ExistsAsync("os"));
    }

    /// <summary>Reads through to the file, and on the first read changes a byte of it in place, as a VMM still
    /// running would.</summary>
    private sealed class WrittenDuringRead(IImageSource inner, string path) : IImageSource
    {
        private int _reads;
        public string Describe => inner.Describe;
        public long Size => inner.Size;

        public void Read(long offset, Span<byte> destination)
        {
            if (Interlocked.Increment(ref _reads) == 1)
            {
                using var w = File.OpenHandle(path, FileMode.Open, FileAccess.Write);
                RandomAccess.Write(w, new byte[] { 0x5A }, Size - 1);
                File.SetLastWriteTimeUtc(w, DateTime.UtcNow.AddSeconds(1)); // coarse clocks: a visible change
            }
            inner.Read(offset, destination);
        }

        public void CheckUnchanged() => inner.CheckUnchanged();
        public void Dispose() { }
    }

    [Fact]
    public async Task Export_over_an_existing_file_keeps_it_when_the_export_fails()
    {
        var (t, _, chunkPath, _) = await BuiltAsync();
        using var _ = t;
        var target = t.Path_("keep.out");
        File.WriteAllText(target, "previous contents");
        File.Delete(chunkPath);
        await Assert.ThrowsAsync<ChunkUnavailableException>(() => t.ExportAsync("os", outName: "keep.out"));
        Assert.Equal("previous contents", File.ReadAllText(target));
    }
}

[Trait("Category", Category.Unit)]
public class TornChunkTests
{
    [Fact]
    public async Task A_chunk_file_left_short_by_a_power_loss_is_rewritten_by_the_next_build()
    {
        using var t = new TestStore();
        var img = t.Image("os.img");
        await t.BuildAsync("os", img);
        var m = await t.Catalog.LoadAsync("os");
        var path = Path.Combine(t.StoreDir, OriginChunkStore.KeyOf(m.Entries[0].Name));
        File.WriteAllBytes(path, []); // what ext4 can leave after a crash before writeback
        var again = await t.BuildAsync("os2", img);
        Assert.Equal(1, again.NewChunks);
        Assert.True(TestStore.SameBytes(img, await t.ExportAsync("os")));
    }
}
