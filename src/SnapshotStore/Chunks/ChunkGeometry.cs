namespace Snapshots.Store.Chunks;

/// <summary>Fixed chunking of a raw memory image: 512 KiB chunks of 4 KiB pages; the last chunk may be short.</summary>
public static class ChunkGeometry
{
    public const int ChunkSize = 512 * 1024;
    public const int PageSize = 4096;
    public const int PagesPerChunk = ChunkSize / PageSize;

    /// <summary>Largest image we accept: 1 TiB keeps chunk indices in 21 bits and manifests bounded.</summary>
    public const long MaxImageSize = 1L << 40;

    public static int ChunkCount(long imageSize) => checked((int)((imageSize + ChunkSize - 1) / ChunkSize));

    public static int ChunkLength(long imageSize, int index)
    {
        long start = (long)index * ChunkSize;
        return (int)Math.Min(ChunkSize, imageSize - start);
    }

    public static long ChunkOffset(int index) => (long)index * ChunkSize;
}
