using Snapshots.ChunkFs.Memory;
using Snapshots.ChunkFs.Native;
using Snapshots.ChunkFs.Uffd;
using Snapshots.Store;

namespace Snapshots.Tests;

/// <summary>The removed-page bitmap kept in a file (UffdHandlerOptions.RemovedPagesPath): its bits outlive the
/// mapping; a file of another size, or not a regular file, is refused and left alone.</summary>
[Trait("Category", Category.Unit)]
public sealed class RemovedPagesFileTests
{
    [Fact]
    public void Bits_set_by_one_mapping_are_read_by_the_next()
    {
        using var t = new TestStore();
        var path = t.Path_("removed.bits");
        using (var first = PageBitmap.MapFile(path, 1000))
        {
            first.Set(0);
            first.Set(999);
            first.Set(500);
            first.Clear(500);
        }
        Assert.Equal(PageBitmap.Words(1000) * 8, new FileInfo(path).Length);
        using var second = PageBitmap.MapFile(path, 1000);
        Assert.True(second.Get(0));
        Assert.True(second.Get(999));
        Assert.False(second.Get(500));
        Assert.Equal(2, second.Count());
        Assert.Throws<ArgumentOutOfRangeException>(() => second.Get(1000));
    }

    [Fact]
    public void A_file_of_another_size_or_kind_is_refused_and_left_alone()
    {
        using var t = new TestStore();
        var path = t.Path_("other.bits");
        File.WriteAllBytes(path, new byte[24]);
        var ex = Assert.Throws<InvalidInputException>(() => PageBitmap.MapFile(path, 1000));
        Assert.Equal($"removed-pages file {path} is 24 bytes, not the 128 this memory's removed-page bitmap takes "
            + "(another VM's, or another snapshot's); it is left alone", ex.Message);
        Assert.Equal(24, new FileInfo(path).Length);
        var dir = t.Path_("a-dir");
        Directory.CreateDirectory(dir);
        var notFile = Assert.Throws<InvalidInputException>(() => PageBitmap.MapFile(dir, 1000));
        Assert.Contains("is a directory, not a regular file", notFile.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void One_mapping_at_a_time_a_second_live_handler_is_refused()
    {
        using var t = new TestStore();
        var path = t.Path_("locked.bits");
        using (var live = PageBitmap.MapFile(path, 64))
        {
            var ex = Assert.Throws<InvalidInputException>(() => PageBitmap.MapFile(path, 64));
            Assert.Contains("another live handler may hold it", ex.Message, StringComparison.Ordinal);
        }
        using var next = PageBitmap.MapFile(path, 64); // released with the first mapping (or its process's death)
        Assert.Equal(0, next.Count());
    }

    [Fact]
    public async Task A_handler_holds_the_file_until_disposed_and_never_runs_after_that()
    {
        using var t = new TestStore();
        await t.BuildAsync("os", t.Image("os.img", size: 16L << 20));
        using var memory = new ResidentChunks(await t.OpenAsync("os"), t.Reader(), 1L << 30);
        var path = t.Path_("vm.bits");
        using var session = new UffdSession([new GuestRegion(0x7f0000000000, 16L << 20, 0, 4096)], 0)
        {
            Uffd = new UserfaultFd(-1),
        };
        var handler = new UffdHandler(session, memory, new UffdHandlerOptions { RemovedPagesPath = path });
        Assert.Throws<InvalidInputException>(() => PageBitmap.MapFile(path, 4096)); // one VM, one handler
        handler.Dispose();
        using (PageBitmap.MapFile(path, 4096)) { } // released
        Assert.Throws<InvalidOperationException>(() => handler.Run(CancellationToken.None));
    }
}
