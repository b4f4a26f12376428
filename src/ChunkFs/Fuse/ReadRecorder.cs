using System.Diagnostics;
using Snapshots.Prefetch;
using Snapshots.Store.Chunks;

namespace Snapshots.ChunkFs.Fuse;

/// <summary>
/// The access log of a file served over FUSE: each page the kernel's reads cover, in the order first read, with
/// the time since the previous first read. The kernel reads what the VM faults on plus its read-ahead, so a mount
/// that records sets read-ahead to 0 (one page per fault, or the caller's own size).
/// </summary>
internal sealed class ReadRecorder(long imageSize)
{
    private readonly long _imageSize = imageSize;
    private readonly ulong[] _seen = new ulong[(imageSize / ChunkGeometry.PageSize + 63) / 64];
    private readonly List<PageTouch> _touches = [];
    private readonly Lock _lock = new();
    private long _last = Stopwatch.GetTimestamp();

    public void Touch(long offset, long length)
    {
        long first = offset / ChunkGeometry.PageSize;
        long last = (offset + length - 1) / ChunkGeometry.PageSize;
        lock (_lock)
        {
            for (long p = first; p <= last; p++)
            {
                ref ulong word = ref _seen[p >> 6];
                ulong bit = 1UL << (int)(p & 63);
                if ((word & bit) != 0) continue;
                word |= bit;
                long now = Stopwatch.GetTimestamp();
                uint delta = (uint)Math.Min(uint.MaxValue, Stopwatch.GetElapsedTime(_last, now).Ticks / 10);
                _touches.Add(new PageTouch((uint)p, delta));
                _last = now;
            }
        }
    }

    public AccessLog Log()
    {
        lock (_lock) return new AccessLog { ImageSize = _imageSize, Touches = [.. _touches] };
    }
}
