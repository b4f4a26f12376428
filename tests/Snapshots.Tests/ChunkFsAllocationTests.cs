using System.Runtime.InteropServices;
using Snapshots.ChunkFs.Native;

namespace Snapshots.Tests;

/// <summary>The process-wide allocation count of a read served from memory: alone, so that no other test's
/// allocations are counted.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class AloneCollection
{
    public const string Name = "alone";
}

[Trait("Category", Category.Process)]
[Collection(AloneCollection.Name)]
public sealed class ChunkFsAllocationTests
{
    [Fact]
    public async Task A_read_served_from_memory_allocates_nothing()
    {
        using var t = new TestStore();
        await ChunkFsTests.BuildChainAsync(t);
        using var reader = t.Reader();
        using var m = await ChunkFsTests.MountAsync(t, reader, ["rt"]);
        long size = new FileInfo(m.PathOf("rt")).Length;
        ReadDirect(m.PathOf("rt"), size, 0, out _); // every chunk resident
        long readsBefore = m.Server.Stats()[0].Reads;
        ReadDirect(m.PathOf("rt"), size, 5000, out long allocated);
        long served = m.Server.Stats()[0].Reads - readsBefore; // counted after each reply: the last may lag
        Assert.True(served >= 4990, $"only {served} of 5,000 reads reached the mount");
        // The whole process, this thread's reads included: well under a byte per request.
        Assert.True(allocated < 4096, $"{allocated} bytes allocated over 5,000 reads served from memory");
    }

    /// <summary>32 KiB O_DIRECT reads (each one a FUSE request): the whole file when <paramref name="count"/> is 0,
    /// else that many; the bytes the process allocated meanwhile.</summary>
    private static unsafe void ReadDirect(string path, long size, int count, out long allocated)
    {
        const int Block = 32 << 10, O_DIRECT = 0x4000;
        int fd = LibC.open(path, O_DIRECT);
        Assert.True(fd >= 0, $"open O_DIRECT: errno {LibC.Errno}");
        byte* buffer = (byte*)NativeMemory.AlignedAlloc(Block, 4096);
        try
        {
            long before = GC.GetTotalAllocatedBytes(precise: true);
            int n = count == 0 ? (int)(size / Block) : count;
            for (int i = 0; i < n; i++)
            {
                if (pread(fd, buffer, Block, i % (size / Block) * Block) != Block)
                    Assert.Fail($"read {i}: errno {LibC.Errno}");
            }
            allocated = GC.GetTotalAllocatedBytes(precise: true) - before;
        }
        finally
        {
            NativeMemory.AlignedFree(buffer);
            LibC.close(fd);
        }
    }

    [DllImport("libc", SetLastError = true)]
    private static extern unsafe nint pread(int fd, byte* buffer, nuint count, long offset);
}
