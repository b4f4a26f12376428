using Snapshots.Store.Chunks;
using Snapshots.Store.Images;

namespace Snapshots.Benchmarks;

/// <summary>
/// Chunk contents for the benchmarks, made the way gen-image makes images: VmImageGenerator.FillPage over one
/// 512 KiB chunk of a function image's kernel region. Pages are pseudo-random, about a quarter of them half
/// zero, like real guest RAM; a Random-filled buffer would never show the partial-zero pages the store meets.
/// </summary>
public static class VmChunks
{
    /// <summary>A 256 MiB function image: the spec the dedup script also builds from.</summary>
    public static readonly VmImageSpec Spec = new() { Size = 256L << 20, RuntimeSeed = 2, FunctionSeed = 3 };

    /// <summary>Chunk 2 covers pages 256-383: the start of the kernel region, all pages data.</summary>
    public const int DataChunkIndex = 2;

    public static byte[] Data()
    {
        var chunk = new byte[ChunkGeometry.ChunkSize];
        long firstPage = (long)DataChunkIndex * ChunkGeometry.PagesPerChunk;
        for (int p = 0; p < ChunkGeometry.PagesPerChunk; p++)
        {
            var page = chunk.AsSpan(p * ChunkGeometry.PageSize, ChunkGeometry.PageSize);
            if (!VmImageGenerator.FillPage(Spec, firstPage + p, page))
            {
                throw new InvalidOperationException(
                    $"page {firstPage + p} of the benchmark chunk is zero: the generator's layout changed");
            }
        }
        return chunk;
    }

    public static byte[] Zero() => new byte[ChunkGeometry.ChunkSize];
}
