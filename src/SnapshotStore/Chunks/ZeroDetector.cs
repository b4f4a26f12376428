namespace Snapshots.Store.Chunks;

/// <summary>All-zero chunks are never stored; this check runs on every chunk of every build.</summary>
public static class ZeroDetector
{
    // IndexOfAnyExcept is vectorised (AVX2/AVX-512) and stops at the first non-zero byte.
    public static bool IsAllZero(ReadOnlySpan<byte> data) => data.IndexOfAnyExcept((byte)0) < 0;
}
