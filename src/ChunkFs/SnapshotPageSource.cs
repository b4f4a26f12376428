using System.Buffers;
using Snapshots.Store;
using Snapshots.Store.Chunks;
using Snapshots.Store.Crypto;
using Snapshots.Store.Layers;

namespace Snapshots.ChunkFs;

/// <summary>
/// Pages of a resolved snapshot chain, fetched through a <see cref="ChunkReader"/>, verified and decrypted a
/// whole chunk at a time into pooled buffers. The decrypted memory tier and prefetch come with the loader.
/// </summary>
public sealed class SnapshotPageSource(SnapshotChain chain, ChunkReader reader) : IPageSource
{
    public long Size => chain.ImageSize;

    public bool IsZero(long offset) => chain.Chunks[ChunkIndex(offset)].IsZero;

    public async ValueTask ReadAsync(long offset, Memory<byte> destination, CancellationToken ct = default)
    {
        int index = ChunkIndex(offset);
        int within = (int)(offset - ChunkGeometry.ChunkOffset(index));
        if (offset % ChunkGeometry.PageSize != 0 || within + destination.Length > chain.ChunkLength(index))
            throw new ArgumentOutOfRangeException(nameof(offset), $"read of {destination.Length} at {offset} is unaligned or crosses a chunk");
        var r = chain.Chunks[index];
        if (r.IsZero) { destination.Span.Clear(); return; }

        var cipher = ArrayPool<byte>.Shared.Rent(ConvergentCipher.MaxCiphertextSize);
        var plain = ArrayPool<byte>.Shared.Rent(ChunkGeometry.ChunkSize);
        try
        {
            var context = $"snapshot '{chain.Name}' (index {index})";
            int n = await reader.ReadAsync(r.Name, cipher, context, ct);
            if (chain.TryDecrypt(index, cipher.AsSpan(0, n), plain) is { } problem)
                throw new ChunkUnavailableException($"chunk {r.Name} of {context}: {problem}");
            plain.AsSpan(within, destination.Length).CopyTo(destination.Span);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(cipher);
            ArrayPool<byte>.Shared.Return(plain, clearArray: true);
        }
    }

    private int ChunkIndex(long offset)
    {
        if ((ulong)offset >= (ulong)chain.ImageSize) throw new ArgumentOutOfRangeException(nameof(offset), $"offset {offset} is beyond the {chain.ImageSize}-byte image");
        return (int)(offset / ChunkGeometry.ChunkSize);
    }
}
