namespace Snapshots.ChunkFs.Memory;

/// <summary>Views of native buffers (<see cref="ChunkBufferPool"/>): the kernel copies guest pages straight out of
/// them (UFFDIO_COPY), and the GC never moves them.</summary>
internal static unsafe class NativeBuffers
{
    // SAFETY: the caller owns [address, address + length) for the span's lifetime (a pinned resident chunk).
    public static Span<byte> Span(nint address, int length) => new((void*)address, length);
}
