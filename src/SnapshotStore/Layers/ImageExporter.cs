using Microsoft.Win32.SafeHandles;
using Snapshots.Store.Chunks;
using Snapshots.Store.Files;

namespace Snapshots.Store.Layers;

public sealed record ExportResult(string Name, string Path, long ImageBytes, int Chunks, int DataChunks, int ZeroChunks,
    double Seconds)
{
    /// <summary>What each tier served (set by the host, which owns the reader).</summary>
    public IReadOnlyList<TierSummary> Tiers { get; init; } = [];
}

/// <summary>
/// Writes a snapshot's full image, resolved through its chain, to a file: sparse where zero, every chunk
/// verified and decrypted first. It writes a temp file beside the target and renames it only when whole, so a
/// failed export never leaves wrong or partial bytes under the target name.
/// </summary>
public sealed class ImageExporter(ChunkReader reader)
{
    public async Task<ExportResult> ExportAsync(
        SnapshotChain chain, string outPath, int parallelism = 0, IProgress<long>? progress = null,
        CancellationToken ct = default)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        using var output = OutputFile.Create(outPath, "out");
        var file = output.Handle;
        int dataChunks = 0;
        RandomAccess.SetLength(file, chain.ImageSize); // sparse: zero chunks are never written
        long done = 0;
        await ChunkWorkers.RunAsync(chain.ChunkCount, parallelism, async (i, cipher, plain) =>
        {
            if (!chain.Chunks[i].IsZero)
            {
                await WriteChunkAsync(chain, i, file, cipher, plain, ct);
                Interlocked.Increment(ref dataChunks);
            }
            progress?.Report(Interlocked.Add(ref done, chain.ChunkLength(i)));
        }, ct);
        output.Commit();
        var target = output.Path;
        return new ExportResult(chain.Name, target, chain.ImageSize, chain.ChunkCount, dataChunks,
            chain.ChunkCount - dataChunks, clock.Elapsed.TotalSeconds);
    }

    private async Task WriteChunkAsync(
        SnapshotChain chain, int index, SafeFileHandle file, byte[] cipher, byte[] plain, CancellationToken ct)
    {
        int n = await chain.ReadCiphertextAsync(reader, index, cipher, ct);
        chain.DecryptOrThrow(index, cipher.AsSpan(0, n), plain);
        RandomAccess.Write(file, plain.AsSpan(0, chain.ChunkLength(index)), ChunkGeometry.ChunkOffset(index));
    }
}
