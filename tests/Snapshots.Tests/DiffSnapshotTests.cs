using Snapshots.Store;
using Snapshots.Store.Chunks;
using Snapshots.Store.Layers;
using Snapshots.Store.Manifests;

namespace Snapshots.Tests;

/// <summary>Sparse memory files as Firecracker writes them: a diff snapshot (the pages dirtied since the base at
/// their offsets, holes elsewhere) and a full snapshot that is sparse where zero.</summary>
internal static class SparseFiles
{
    public const int Page = ChunkGeometry.PageSize;

    /// <summary>A file of <paramref name="size"/> bytes, all holes, with <paramref name="pages"/> (byte offset,
    /// contents) written at their offsets with pwrite, as Firecracker writes a diff snapshot's dirty pages.</summary>
    public static void Write(string path, long size, IEnumerable<(long Offset, byte[] Bytes)> pages)
    {
        using var file = File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite);
        RandomAccess.SetLength(file, size);
        foreach (var (offset, bytes) in pages) RandomAccess.Write(file, bytes, offset);
    }

    /// <summary>Fails loudly unless the file system keeps <paramref name="path"/>'s holes (SEEK_HOLE finds one before
    /// the end): on one that fills them, these tests would prove nothing.</summary>
    public static void AssertKeepsHoles(string path)
    {
        using var source = new FileImageSource(path);
        Assert.True(source.NextHole(0) < source.Size,
            $"THE FILE SYSTEM UNDER {Path.GetDirectoryName(path)} DOES NOT KEEP HOLES (SEEK_HOLE finds none in a "
                + "sparse file): run these tests with TMPDIR on ext4, xfs, btrfs or tmpfs");
    }

    /// <summary>A page of bytes from <paramref name="seed"/> (never all zero).</summary>
    public static byte[] PageOf(int seed, int length = Page)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        bytes[0] = 1;
        return bytes;
    }

    /// <summary><paramref name="basePath"/>'s bytes with <paramref name="pages"/> laid over them.</summary>
    public static byte[] Overlay(string basePath, IEnumerable<(long Offset, byte[] Bytes)> pages)
    {
        var bytes = File.ReadAllBytes(basePath);
        foreach (var (offset, page) in pages) page.CopyTo(bytes.AsSpan((int)offset));
        return bytes;
    }

    /// <summary>How many bytes differ between <paramref name="expected"/> and the file at <paramref name="path"/>.
    /// </summary>
    public static long Differences(byte[] expected, string path)
    {
        var actual = File.ReadAllBytes(path);
        if (actual.Length != expected.Length) return Math.Max(actual.Length, expected.Length);
        long wrong = 0;
        for (int i = 0; i < actual.Length; i++) if (actual[i] != expected[i]) wrong++;
        return wrong;
    }

    /// <summary>The dirty pages of the diff tests over a generated base image: a chunk partly dirty over the
    /// base's data (three pages, one of them zeroed), a chunk wholly rewritten, a page where the base is zero, and
    /// the image's last page. Other chunks with base data are left wholly in holes.</summary>
    public static List<(long Offset, byte[] Bytes)> DirtyPages(string basePath, out int partlyDirtyChunk)
    {
        var image = File.ReadAllBytes(basePath);
        int chunks = ChunkGeometry.ChunkCount(image.Length);
        var withData = Enumerable.Range(0, chunks)
            .Where(i => !ZeroDetector.IsAllZero(image.AsSpan((int)ChunkGeometry.ChunkOffset(i),
                ChunkGeometry.ChunkLength(image.Length, i))))
            .ToList();
        int zeroChunk = Enumerable.Range(0, chunks).First(i => !withData.Contains(i));
        Assert.True(withData.Count >= 4, $"the base has data in only {withData.Count} chunks");
        partlyDirtyChunk = withData[1];
        long partly = ChunkGeometry.ChunkOffset(partlyDirtyChunk);
        long whole = ChunkGeometry.ChunkOffset(withData[2]);
        return
        [
            (partly + 3 * Page, PageOf(1)),
            (partly + 64 * Page, new byte[Page]), // a dirty page the guest zeroed: zeros, not the base's bytes
            (partly + 127 * Page, PageOf(2)),
            (whole, PageOf(3, ChunkGeometry.ChunkSize)),
            (ChunkGeometry.ChunkOffset(zeroChunk) + 5 * Page, PageOf(4)),
            (image.Length - Page, PageOf(5)),
        ];
    }

    /// <summary>Writes DIR/diff.mem the way Firecracker writes a diff snapshot of <paramref name="basePath"/>: the
    /// <see cref="DirtyPages"/> at their offsets, holes elsewhere (checked to stay holes).</summary>
    public static string WriteDiff(TestStore t, string basePath, out List<(long Offset, byte[] Bytes)> pages,
        out int partlyDirtyChunk)
    {
        pages = DirtyPages(basePath, out partlyDirtyChunk);
        var diffPath = t.Path_("diff.mem");
        Write(diffPath, new FileInfo(basePath).Length, pages);
        AssertKeepsHoles(diffPath);
        return diffPath;
    }
}

[Trait("Category", Category.Unit)]
public class DiffSnapshotTests
{
    [Fact]
    public async Task A_diff_built_on_its_base_exports_the_base_overlaid_by_the_dirty_pages()
    {
        using var t = new TestStore();
        var basePath = t.Image("base.img", runtime: 2);
        await t.BuildAsync("base", basePath);
        var diffPath = SparseFiles.WriteDiff(t, basePath, out var pages, out int partly);

        var r = await t.Host.BuildAsync(new BuildRequest
        {
            Name = "fn", MemoryPath = diffPath, Parent = "base", Tenant = "acme", Diff = true,
        });

        var expected = SparseFiles.Overlay(basePath, pages);
        var exported = await t.ExportAsync("fn", tenant: "acme");
        Assert.Equal(0, SparseFiles.Differences(expected, exported));
        Assert.Equal(pages.Sum(p => (long)p.Bytes.Length), r.ReadBytes); // the dirty pages, nothing else
        Assert.Equal(1, r.ParentChunksRead); // only the partly dirty chunk over base data needs the parent's bytes
        Assert.Equal(r.Chunks, r.ZeroChunks + r.InheritedChunks + r.DedupedChunks + r.NewChunks);
        var m = await t.Catalog.LoadAsync("fn");
        Assert.Contains(m.Entries, e => e.Index == partly && e.Kind == EntryKind.Data);
        Assert.Equal(4, m.Entries.Length); // partly, whole, the page over zeros, the last page: the rest inherited
    }

    [Fact]
    public async Task A_diff_chunk_wholly_in_holes_is_inherited_and_zero_beyond_the_parents_end()
    {
        using var t = new TestStore();
        var basePath = t.Image("base.img", runtime: 2, size: 16L << 20);
        await t.BuildAsync("base", basePath);
        long size = 24L << 20; // a diff larger than its base: the new tail is zeros plus its dirty pages
        var pages = new List<(long, byte[])> { ((20L << 20) + SparseFiles.Page, SparseFiles.PageOf(7)) };
        var diffPath = t.Path_("diff.mem");
        SparseFiles.Write(diffPath, size, pages);
        SparseFiles.AssertKeepsHoles(diffPath);

        var r = await t.Host.BuildAsync(new BuildRequest
        {
            Name = "rt", MemoryPath = diffPath, Parent = "base", Layer = LayerKind.Runtime, Diff = true,
        });

        var expected = new byte[size];
        File.ReadAllBytes(basePath).CopyTo(expected, 0);
        SparseFiles.PageOf(7).CopyTo(expected, (20L << 20) + SparseFiles.Page);
        Assert.Equal(0, SparseFiles.Differences(expected, await t.ExportAsync("rt")));
        Assert.Equal(SparseFiles.Page, r.ReadBytes);
        Assert.Equal(0, r.ParentChunksRead);
        Assert.Equal(1, r.NewChunks);
    }

    [Fact]
    public async Task A_sparse_file_with_a_parent_is_refused_unless_its_holes_are_said_to_be_zero()
    {
        using var t = new TestStore();
        var basePath = t.Image("base.img", runtime: 2);
        await t.BuildAsync("base", basePath);
        var diffPath = SparseFiles.WriteDiff(t, basePath, out _, out _);

        var e = await Assert.ThrowsAsync<InvalidInputException>(() => t.Host.BuildAsync(new BuildRequest
        {
            Name = "fn", MemoryPath = diffPath, Parent = "base", Tenant = "acme",
        }));
        Assert.Contains("--diff", e.Message);
        Assert.Contains("--holes-are-zero", e.Message);
        Assert.Contains("sparse", e.Message);
        Assert.False(await t.Catalog.ExistsAsync("fn"));

        // Said to be a full snapshot: its holes are zeros, and so is the export.
        await t.Host.BuildAsync(new BuildRequest
        {
            Name = "fn", MemoryPath = diffPath, Parent = "base", Tenant = "acme", HolesAreZero = true,
        });
        Assert.True(TestStore.SameBytes(diffPath, await t.ExportAsync("fn", tenant: "acme")));

        await Assert.ThrowsAsync<InvalidInputException>(() => t.Host.BuildAsync(new BuildRequest
        {
            Name = "x", MemoryPath = diffPath, Layer = LayerKind.Os, Diff = true,
        }));
    }

    // Found by a reviewer: `cat d1.diff > d1dense.diff; build --parent base --diff --memory d1dense.diff` exited 0
    // and the export had zeros where the parent had data: holes lost in transfer (scp, aws s3 cp, cp without
    // --sparse) turned every page "dirty". A diff with no hole at all is refused, saying why and how to fix it.
    [Fact]
    public async Task A_diff_file_that_lost_its_holes_is_refused()
    {
        using var t = new TestStore();
        var basePath = t.Image("base.img", runtime: 2);
        await t.BuildAsync("base", basePath);
        var diffPath = SparseFiles.WriteDiff(t, basePath, out var pages, out _);
        var densePath = t.Path_("dense.mem");
        File.WriteAllBytes(densePath, File.ReadAllBytes(diffPath)); // as `cat`, scp or cp without --sparse do
        using (var dense = new FileImageSource(densePath)) Assert.Equal(dense.Size, dense.NextHole(0));

        var e = await Assert.ThrowsAsync<InvalidInputException>(() => t.Host.BuildAsync(new BuildRequest
        {
            Name = "fn", MemoryPath = densePath, Parent = "base", Tenant = "acme", Diff = true,
        }));
        Assert.Equal("diff", e.Parameter);
        Assert.Contains("no hole", e.Message);
        Assert.Contains("cp --sparse=always", e.Message);
        Assert.Contains("fallocate --dig-holes", e.Message);
        Assert.Contains("without --diff", e.Message);
        Assert.False(await t.Catalog.ExistsAsync("fn"));

        // Every page really dirty: a full snapshot on the parent, built without --diff, is what it holds.
        await t.Host.BuildAsync(new BuildRequest
        {
            Name = "fn", MemoryPath = densePath, Parent = "base", Tenant = "acme",
        });
        Assert.True(TestStore.SameBytes(densePath, await t.ExportAsync("fn", tenant: "acme")));
    }

    // Found by a reviewer: `ln -s base.img l.img; build --memory l.img` was refused as "8 bytes, not a whole number
    // of 4 KiB pages": the link's own size (the path, lstat), not the file's. An input is only read, so the link is
    // followed and the size is the opened file's; a diff reached through a link keeps its holes too.
    [Fact]
    public async Task A_memory_file_reached_through_a_symlink_is_the_file_it_names()
    {
        using var t = new TestStore();
        var basePath = t.Image("base.img", runtime: 2);
        var baseLink = t.Path_("l.img");
        File.CreateSymbolicLink(baseLink, basePath);
        await t.BuildAsync("base", baseLink);
        Assert.True(TestStore.SameBytes(basePath, await t.ExportAsync("base")));

        var pages = SparseFiles.DirtyPages(basePath, out _);
        var diffPath = t.Path_("diff.mem");
        SparseFiles.Write(diffPath, new FileInfo(basePath).Length, pages);
        var diffLink = t.Path_("diff-link.mem");
        File.CreateSymbolicLink(diffLink, diffPath);
        var r = await t.Host.BuildAsync(new BuildRequest
        {
            Name = "fn", MemoryPath = diffLink, Parent = "base", Tenant = "acme", Diff = true,
        });
        Assert.Equal(pages.Sum(p => (long)p.Bytes.Length), r.ReadBytes);
        var exported = await t.ExportAsync("fn", tenant: "acme");
        Assert.Equal(0, SparseFiles.Differences(SparseFiles.Overlay(basePath, pages), exported));
    }

    /// <summary>A 16 GiB sparse image holding 2,000 data pages took 26 s to build: the builder read 16 GiB of
    /// zeros. Holes are now found with SEEK_DATA and never read.</summary>
    [Fact]
    public async Task Building_a_large_sparse_image_reads_only_its_data()
    {
        using var t = new TestStore();
        const long Size = 8L << 30;
        var rng = new Random(11);
        var offsets = new SortedSet<long>();
        while (offsets.Count < 64) offsets.Add(rng.NextInt64(Size / SparseFiles.Page) * SparseFiles.Page);
        var pages = offsets.Select((o, i) => (o, SparseFiles.PageOf(100 + i))).ToList();
        var path = t.Path_("big.mem");
        SparseFiles.Write(path, Size, pages);
        SparseFiles.AssertKeepsHoles(path);

        var r = await t.BuildAsync("os", path);

        Assert.Equal(64L * SparseFiles.Page, r.ReadBytes);
        int dataChunks = offsets.Select(o => o / ChunkGeometry.ChunkSize).Distinct().Count();
        Assert.Equal(dataChunks, r.NewChunks);
        Assert.Equal(r.Chunks - dataChunks, r.ZeroChunks);
        var chain = await t.OpenAsync("os");
        using var reader = t.Reader();
        var cipher = new byte[Store.Crypto.ConvergentCipher.MaxCiphertextSize];
        var plain = new byte[ChunkGeometry.ChunkSize];
        foreach (var (offset, bytes) in pages)
        {
            int index = (int)(offset / ChunkGeometry.ChunkSize);
            int n = await chain.ReadCiphertextAsync(reader, index, cipher, CancellationToken.None);
            chain.DecryptOrThrow(index, cipher.AsSpan(0, n), plain);
            Assert.True(plain.AsSpan((int)(offset % ChunkGeometry.ChunkSize), bytes.Length).SequenceEqual(bytes));
        }
    }
}

/// <summary>The same through the binary: flags, messages and exit codes.</summary>
[Trait("Category", Category.Process)]
public class DiffSnapshotCliTests
{
    [Fact]
    public async Task Build_diff_through_the_binary_exports_the_base_overlaid_by_the_dirty_pages()
    {
        using var t = new TestStore();
        var basePath = t.Image("base.img", runtime: 2);
        Assert.Equal(0, (await Snapctl.RunAsync(
            t, "build", "--name", "base", "--layer", "runtime", "--memory", basePath)).ExitCode);
        var diffPath = SparseFiles.WriteDiff(t, basePath, out var pages, out _);

        var b = await Snapctl.RunAsync(t, "build", "--name", "fn", "--memory", diffPath, "--parent", "base",
            "--tenant", "acme", "--diff", "--json");
        Assert.True(b.ExitCode == 0, b.Stderr);
        Assert.Equal(pages.Sum(p => (long)p.Bytes.Length), b.Json.GetProperty("readBytes").GetInt64());
        var e = await Snapctl.RunAsync(
            t, "export", "--name", "fn", "--tenant", "acme", "--out", t.Path_("fn.out"));
        Assert.Equal(0, e.ExitCode);
        Assert.Equal(0, SparseFiles.Differences(SparseFiles.Overlay(basePath, pages), t.Path_("fn.out")));
    }

    [Fact]
    public async Task A_sparse_file_with_a_parent_needs_diff_or_holes_are_zero_and_diff_needs_a_parent()
    {
        using var t = new TestStore();
        var basePath = t.Image("base.img", runtime: 2);
        Assert.Equal(0, (await Snapctl.RunAsync(
            t, "build", "--name", "base", "--layer", "runtime", "--memory", basePath)).ExitCode);
        var diffPath = SparseFiles.WriteDiff(t, basePath, out _, out _);

        var refused = await Snapctl.RunAsync(
            t, "build", "--name", "fn", "--memory", diffPath, "--parent", "base", "--tenant", "acme", "--json");
        Assert.Equal(1, refused.ExitCode);
        Assert.Contains("--diff", refused.Stderr);
        Assert.Contains("--holes-are-zero", refused.Stderr);
        Assert.Equal("invalid-input", refused.Json.GetProperty("error").GetProperty("kind").GetString());

        var zeros = await Snapctl.RunAsync(t, "build", "--name", "fn", "--memory", diffPath, "--parent", "base",
            "--tenant", "acme", "--holes-are-zero");
        Assert.True(zeros.ExitCode == 0, zeros.Stderr);

        var noParent = await Snapctl.RunAsync(
            t, "build", "--name", "x", "--layer", "os", "--memory", diffPath, "--diff");
        Assert.Equal(2, noParent.ExitCode);
        Assert.Contains("--diff needs --parent", noParent.Stderr);
        var both = await Snapctl.RunAsync(t, "build", "--name", "y", "--memory", diffPath, "--parent", "base",
            "--tenant", "acme", "--diff", "--holes-are-zero");
        Assert.Equal(2, both.ExitCode);
        Assert.Contains("contradict", both.Stderr);
    }

    [Fact]
    public async Task A_diff_file_that_lost_its_holes_is_refused_naming_diff()
    {
        using var t = new TestStore();
        var basePath = t.Image("base.img", runtime: 2);
        await t.BuildAsync("base", basePath);
        var diffPath = t.Path_("diff.mem");
        SparseFiles.Write(diffPath, new FileInfo(basePath).Length, SparseFiles.DirtyPages(basePath, out _));
        var densePath = t.Path_("dense.mem");
        File.WriteAllBytes(densePath, File.ReadAllBytes(diffPath));

        var r = await Snapctl.RunAsync(t, "build", "--name", "fn", "--memory", densePath, "--parent", "base",
            "--tenant", "acme", "--diff", "--json");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("has no hole at all", r.Stderr);
        Assert.Contains("(option --diff)", r.Stderr);
        Assert.Equal("invalid-input", r.Json.GetProperty("error").GetProperty("kind").GetString());
        Assert.False(await t.Catalog.ExistsAsync("fn"));
    }
}
