using System.Runtime.InteropServices;
using Snapshots.ChunkFs.Memory;

namespace Snapshots.Tests;

/// <summary>The loader's chunk buffers: populated ahead, so writing a chunk into one takes no page fault; reused
/// after eviction; never waited for.</summary>
[Trait("Category", Category.Unit)]
public partial class ChunkBufferPoolTests
{
    private const int ChunkSize = 512 * 1024;

    [StructLayout(LayoutKind.Sequential)]
    private struct RUsage
    {
        public long UserSec, UserUsec, SysSec, SysUsec, MaxRss, IxRss, IdRss, IsRss, MinFlt, MajFlt;
        public long NSwap, InBlock, OuBlock, MsgSnd, MsgRcv, NSignals, NvCsw, NivCsw;
    }

    [LibraryImport("libc")]
    private static partial int getrusage(int who, out RUsage usage);

    /// <summary>Minor page faults this thread takes while writing one byte to every 4 KiB page of the buffer.</summary>
    private static unsafe long FaultsWriting(nint buffer)
    {
        const int RUSAGE_THREAD = 1;
        Assert.Equal(0, getrusage(RUSAGE_THREAD, out var before));
        var bytes = (byte*)buffer;
        for (int o = 0; o < ChunkSize; o += 4096) bytes[o] = 1;
        Assert.Equal(0, getrusage(RUSAGE_THREAD, out var after));
        return after.MinFlt - before.MinFlt;
    }

    [Fact]
    public async Task Rented_buffers_take_no_page_fault_and_a_cold_one_is_counted()
    {
        using var pool = new ChunkBufferPool(maxBuffers: 4, reserve: 4);
        await pool.WaitRefilledAsync();
        Assert.Equal(4, pool.Ready);
        FaultsWriting(pool.Rent()); // the measuring code itself is now compiled and warm
        for (int i = 0; i < 3; i++) Assert.True(FaultsWriting(pool.Rent()) <= 2);
        Assert.Equal(0, pool.ColdRents);
        var cold = pool.Rent(); // past the pool's bound: mapped now, its pages faulted on first write
        Assert.Equal(1, pool.ColdRents);
        Assert.True(FaultsWriting(cold) >= 100);
    }

    [Fact]
    public async Task Returned_buffers_are_reused_not_remapped()
    {
        using var pool = new ChunkBufferPool(maxBuffers: 8, reserve: 8);
        await pool.WaitRefilledAsync();
        int mapped = pool.Buffers;
        for (int i = 0; i < 100; i++)
        {
            var a = pool.Rent();
            var b = pool.Rent();
            pool.Return(a);
            pool.Return(b);
        }
        Assert.Equal(mapped, pool.Buffers);
        Assert.Equal(0, pool.ColdRents);
    }

    [Fact]
    public async Task The_refill_keeps_a_reserve_ahead_of_the_loads_and_stops_at_the_bound()
    {
        using var pool = new ChunkBufferPool(maxBuffers: 16, reserve: 8);
        await pool.WaitRefilledAsync();
        Assert.Equal(8, pool.Buffers);
        var held = new List<nint>();
        for (int i = 0; i < 6; i++) held.Add(pool.Rent()); // below half the reserve: a refill starts
        await pool.WaitRefilledAsync();
        Assert.Equal(8, pool.Ready); // back to the reserve
        Assert.Equal(14, pool.Buffers);
        for (int i = 0; i < 8; i++) held.Add(pool.Rent());
        await pool.WaitRefilledAsync();
        Assert.Equal(16, pool.Buffers); // at its bound: nothing more is populated ahead
        held.Add(pool.Rent());
        held.Add(pool.Rent());
        Assert.Equal(0, pool.ColdRents);
        held.Add(pool.Rent()); // past the bound: mapped on the spot
        Assert.Equal(1, pool.ColdRents);
        Assert.Equal(17, held.Distinct().Count());
    }

    [Fact]
    public async Task Small_bounds_and_reserves_are_kept_exactly()
    {
        using (var two = new ChunkBufferPool(maxBuffers: 2, reserve: 2))
        {
            await two.WaitRefilledAsync();
            Assert.Equal(2, two.Buffers); // not a whole slab of 4 past a 2-chunk budget
        }
        using var one = new ChunkBufferPool(maxBuffers: 4, reserve: 1);
        await one.WaitRefilledAsync();
        Assert.Equal(1, one.Ready);
        one.Rent(); // the reserve is empty now: refilled
        await one.WaitRefilledAsync();
        Assert.Equal(1, one.Ready);
        Assert.Equal(0, one.ColdRents);
    }

    [Fact]
    public void Dispose_is_idempotent_and_a_disposed_pool_refuses_rents()
    {
        var pool = new ChunkBufferPool(maxBuffers: 4, reserve: 4);
        pool.Dispose();
        pool.Dispose();
        Assert.Throws<ObjectDisposedException>(() => pool.Rent());
    }
}
