using System.Runtime.InteropServices;

namespace Snapshots.ChunkFs.Memory;

/// <summary>Page-aligned native buffers: the kernel copies guest pages straight out of them (UFFDIO_COPY),
/// and the GC never moves them.</summary>
internal static unsafe class NativeBuffers
{
    // SAFETY: callers free each buffer once, after every pin on it is released (ResidentChunks.Dispose).
    public static nint Allocate(int bytes) => (nint)NativeMemory.AlignedAlloc((nuint)bytes, 4096);

    public static void Free(nint buffer) => NativeMemory.AlignedFree((void*)buffer);

    // SAFETY: the caller owns [address, address + length) for the span's lifetime (a pinned resident chunk).
    public static Span<byte> Span(nint address, int length) => new((void*)address, length);
}
