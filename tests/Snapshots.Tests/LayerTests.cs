using Snapshots.Store.Chunks;
using Snapshots.Store.Manifests;

namespace Snapshots.Tests;

[Trait("Category", Category.Unit)]
public class LayerTests
{
    [Fact]
    public async Task Chain_of_three_layers_exports_byte_identical_images()
    {
        using var t = new TestStore();
        var os = t.Image("os.img");
        var rt = t.Image("rt.img", runtime: 2);
        var fn = t.Image("fn.img", runtime: 2, function: 3);
        await t.BuildAsync("os", os);
        await t.BuildAsync("rt", rt, parent: "os");
        await t.BuildAsync("fn", fn, parent: "rt", tenant: "acme");

        Assert.True(TestStore.SameBytes(os, await t.ExportAsync("os")));
        Assert.True(TestStore.SameBytes(rt, await t.ExportAsync("rt")));
        Assert.True(TestStore.SameBytes(fn, await t.ExportAsync("fn", tenant: "acme")));
    }

    [Fact]
    public async Task Every_chunk_is_counted_once_and_zero_chunks_are_not_stored()
    {
        using var t = new TestStore();
        var os = t.Image("os.img");
        var r = await t.BuildAsync("os", os);
        Assert.Equal(64, r.Chunks);
        Assert.Equal(r.Chunks, r.ZeroChunks + r.InheritedChunks + r.DedupedChunks + r.NewChunks);
        Assert.True(r.ZeroChunks > r.Chunks / 2,
            $"a VM-like image is mostly zero, got {r.ZeroChunks} zero of {r.Chunks}");
        Assert.Equal(r.NewChunks, t.ChunkFiles().Count());
        var m = await t.Catalog.LoadAsync("os");
        Assert.All(m.Entries, e => Assert.Equal(EntryKind.Data, e.Kind));
        Assert.Equal(r.Chunks - r.ZeroChunks, m.Entries.Length);
    }

    [Fact]
    public async Task Child_inherits_chunks_equal_to_the_parent_and_stores_only_the_rest()
    {
        using var t = new TestStore();
        var os = await t.BuildAsync("os", t.Image("os.img"));
        var rt = await t.BuildAsync("rt", t.Image("rt.img", runtime: 2), parent: "os");
        Assert.Equal(os.NewChunks, rt.InheritedChunks); // the runtime image keeps every OS chunk
        Assert.True(rt.NewChunks > 0);
        var m = await t.Catalog.LoadAsync("rt");
        Assert.Equal(rt.NewChunks + rt.DedupedChunks, m.Entries.Length);

        // The same image again on the same parent: everything inherited or already stored, nothing uploaded.
        var again = await t.BuildAsync("rt2", t.Path_("rt.img"), parent: "os");
        Assert.Equal(0, again.NewChunks);
        Assert.Equal(0, again.UploadedBytes);
        Assert.Equal(rt.NewChunks, again.DedupedChunks);
    }

    [Fact]
    public async Task Identical_chunks_dedup_within_a_domain_but_not_across_tenants()
    {
        using var t = new TestStore();
        await t.BuildAsync("os", t.Image("os.img"));
        var fn = t.Image("fn.img", function: 3);
        var a1 = await t.BuildAsync("a1", fn, parent: "os", tenant: "alpha");
        var a2 = await t.BuildAsync("a2", fn, parent: "os", tenant: "alpha");
        var b1 = await t.BuildAsync("b1", fn, parent: "os", tenant: "beta");
        Assert.True(a1.NewChunks > 0);
        Assert.Equal(0, a2.NewChunks);
        Assert.Equal(a1.NewChunks, a2.DedupedChunks);
        // Another tenant's identical plaintext gets other keys and names: nothing to confirm, nothing shared.
        Assert.Equal(a1.NewChunks, b1.NewChunks);
        Assert.Equal(0, b1.DedupedChunks);
        var namesA = (await t.Catalog.LoadAsync("a1")).Entries.Select(e => e.Name).ToHashSet();
        Assert.DoesNotContain((await t.Catalog.LoadAsync("b1")).Entries, e => namesA.Contains(e.Name));
    }

    [Fact]
    public async Task Layers_of_odd_sizes_keep_their_size_and_zero_overrides()
    {
        using var t = new TestStore();
        // Parent 32 MiB; child 20 MiB + 12 KiB (short last chunk), with a parent data region zeroed.
        var parentPath = t.Image("p.img");
        await t.BuildAsync("p", parentPath);
        var child = File.ReadAllBytes(parentPath).AsSpan(0, (20 << 20) + 12288).ToArray();
        Array.Clear(child, 2 << 20, 1 << 20); // chunks that hold kernel data in the parent are zero here
        child[^1] = 0x5a;
        var childPath = t.Path_("c.img");
        File.WriteAllBytes(childPath, child);
        var r = await t.BuildAsync("c", childPath, parent: "p");
        Assert.Equal(ChunkGeometry.ChunkCount(child.Length), r.Chunks);
        var m = await t.Catalog.LoadAsync("c");
        Assert.Contains(m.Entries, e => e.Kind == EntryKind.Zero);
        Assert.Equal(child.LongLength, m.ImageSize);
        var output = await t.ExportAsync("c");
        Assert.Equal(child.LongLength, new FileInfo(output).Length);
        Assert.True(TestStore.SameBytes(childPath, output));
    }

    [Fact]
    public async Task Manifest_is_a_tiny_fraction_of_the_image()
    {
        using var t = new TestStore();
        var r = await t.BuildAsync("os", t.Image("os.img", runtime: 2, function: 3, size: 64L << 20));
        Assert.True(r.ManifestBytes < 0.0005 * r.ImageBytes, $"manifest {r.ManifestBytes} bytes for {r.ImageBytes}");
    }

    [Fact]
    public async Task Replacing_a_parent_is_detected_by_its_children()
    {
        using var t = new TestStore();
        await t.BuildAsync("os", t.Image("os.img"));
        await t.BuildAsync("rt", t.Image("rt.img", runtime: 2), parent: "os");
        var ex = await Assert.ThrowsAsync<Store.InvalidInputException>(() => t.BuildAsync("os", t.Path_("os.img")));
        Assert.Contains("already exists", ex.Message);
        await t.BuildAsync("os", t.Image("os2.img", os: 7), replace: true);
        var broken = await Assert.ThrowsAsync<Store.SnapshotException>(() => t.OpenAsync("rt"));
        Assert.Contains("another version of 'os'", broken.Message);
    }
}
