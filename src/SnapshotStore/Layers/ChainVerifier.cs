using System.Collections.Concurrent;
using Snapshots.Store.Chunks;
using Snapshots.Store.Crypto;
using Snapshots.Store.Manifests;

namespace Snapshots.Store.Layers;

public sealed record BadChunk(string Layer, int Index, string Chunk, string Problem);

public sealed record VerifyResult(
    string Name, int Layers, int ChunksChecked, long CheckedBytes, IReadOnlyList<BadChunk> Bad, double Seconds)
{
    public bool Ok => Bad.Count == 0;
}

/// <summary>
/// Reads every data chunk of every layer of a chain straight from the origin (no cache), checks its name,
/// authenticates and decrypts it, checks its plaintext hash and length, and names each bad one.
/// </summary>
public sealed class ChainVerifier(IChunkStore origin)
{
    public async Task<VerifyResult> VerifyAsync(
        SnapshotChain chain, int parallelism = 0, IProgress<long>? progress = null, CancellationToken ct = default)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var work = new List<(int Layer, int Entry)>();
        for (int l = 0; l < chain.Layers.Count; l++)
            for (int e = 0; e < chain.Layers[l].Entries.Length; e++)
                if (chain.Layers[l].Entries[e].Kind == EntryKind.Data) work.Add((l, e));

        var bad = new ConcurrentBag<BadChunk>();
        long bytes = 0;
        await ChunkWorkers.RunAsync(work.Count, parallelism, async (i, cipher, plain) =>
        {
            var (l, e) = work[i];
            var layer = chain.Layers[l];
            var entry = layer.Entries[e];
            var problem = await CheckAsync(layer, entry, chain.Secrets[l][e], cipher, plain, ct);
            if (problem is not null) bad.Add(new BadChunk(layer.Name, entry.Index, entry.Name.ToString(), problem));
            long total = Interlocked.Add(ref bytes, ChunkGeometry.ChunkLength(layer.ImageSize, entry.Index));
            progress?.Report(total);
        }, ct);
        var sorted = bad.OrderBy(b => b.Layer, StringComparer.Ordinal).ThenBy(b => b.Index).ToList();
        return new VerifyResult(chain.Name, chain.Layers.Count, work.Count, bytes, sorted, clock.Elapsed.TotalSeconds);
    }

    private async Task<string?> CheckAsync(
        Manifest layer, ManifestEntry entry, ChunkSecret secret, byte[] cipher, byte[] plain, CancellationToken ct)
    {
        int n;
        try { n = await origin.TryGetAsync(entry.Name, cipher, ct); }
        catch (SnapshotException ex) { return ex.Message; }
        if (n < 0) return $"missing from {origin.Describe}";
        if (!entry.Name.Matches(cipher.AsSpan(0, n))) return "corrupt: its bytes do not hash to its name";
        int expected = ChunkGeometry.ChunkLength(layer.ImageSize, entry.Index);
        if (n != expected + ConvergentCipher.TagSize)
            return $"ciphertext is {n} bytes, expected {expected + ConvergentCipher.TagSize}";
        return SnapshotChain.TryDecrypt(secret, cipher.AsSpan(0, n), plain);
    }
}
