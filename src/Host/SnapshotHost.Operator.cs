using Snapshots.Store;
using Snapshots.Store.Cache;
using Snapshots.Store.Chunks;
using Snapshots.Store.Crypto;
using Snapshots.Store.Layers;
using Snapshots.Store.Manifests;

namespace Snapshots.Host;

/// <summary>A store's figures (`snapctl stats`), all sizes in bytes. <see cref="DedupRatio"/> is
/// <see cref="LogicalBytes"/> (the images the snapshots resolve to, zeros included) over
/// <see cref="ChunkBytes"/> (unique chunks stored); null when nothing is stored. Unreferenced chunks are those no
/// manifest names (a gc deletes them unless a running build claims them).</summary>
public sealed record StoreStats(string Store, long StoreBytes, int Chunks, long ChunkBytes, int Manifests,
    long ManifestBytes, int UnreadableManifests, long LogicalBytes, double? DedupRatio, int UnreferencedChunks,
    long UnreferencedBytes, IReadOnlyList<LayerStats> Layers, CacheStats? Cache);

/// <summary>One manifest's share: its data chunks, and those no other manifest names (what removing it and
/// running gc would free, in <see cref="UniqueBytes"/>).</summary>
public sealed record LayerStats(string Name, string Layer, string Domain, string? Parent, long ImageBytes,
    int DataChunks, int UniqueChunks, long UniqueBytes);

/// <summary>A local disk cache directory's occupancy: chunk files and bytes held, against the budget given
/// (the cache records none: each user passes its own --cache-size); <see cref="OccupancyRatio"/> is Bytes / Budget.
/// </summary>
public sealed record CacheStats(string Directory, int Chunks, long Bytes, long BudgetBytes, double OccupancyRatio);

/// <summary>`snapctl diff A B`: chunk indexes whose chunk names differ between the two resolved images (a zero
/// chunk and a data chunk differ; indexes past the end of the shorter image differ), as counts and as byte ranges
/// of the image. <see cref="Note"/> says when names cannot tell content apart (different trust domains or salts:
/// identical plaintext encrypts to different names there).</summary>
public sealed record DiffResult(string A, string B, long ImageBytesA, long ImageBytesB, int ChunkBytes, int Chunks,
    int SameChunks, int DifferingChunks, long DifferingBytes, IReadOnlyList<DiffRange> Ranges, string? Note);

/// <summary>Consecutive differing chunk indexes [<see cref="FirstChunk"/>, <see cref="LastChunk"/>] and the image
/// bytes they cover, [<see cref="Offset"/>, Offset + <see cref="Length"/>).</summary>
public sealed record DiffRange(int FirstChunk, int LastChunk, long Offset, long Length);

/// <summary>`snapctl cp`: the chain's manifests copied (parents first) or already there, its distinct chunks and
/// how many were copied (verified against their names) or already present, bytes copied, seconds.</summary>
public sealed record CopyResult(string Name, string From, string To, IReadOnlyList<string> ManifestsCopied,
    IReadOnlyList<string> ManifestsPresent, int Chunks, int ChunksCopied, int ChunksPresent, long CopiedBytes,
    double Seconds);

public sealed partial class SnapshotHost
{
    /// <summary>The store's figures (<see cref="StoreStats"/>); with <paramref name="cacheDirectory"/>, also that
    /// cache's occupancy against <paramref name="cacheBudget"/> bytes, read without touching it. No key needed.
    /// </summary>
    public async Task<StoreStats> StatsAsync(string? cacheDirectory = null, long cacheBudget = 0,
        CancellationToken ct = default)
    {
        var sizes = new Dictionary<ChunkName, long>();
        long storeBytes = 0, chunkBytes = 0, manifestBytes = 0;
        await foreach (var blob in Blobs.ListAsync("", ct))
        {
            storeBytes += blob.Size;
            if (OriginChunkStore.TryParseKey(blob.Key, out var chunk))
            {
                sizes[chunk] = blob.Size;
                chunkBytes += blob.Size;
            }
            else if (SnapshotCatalog.TryParseKey(blob.Key, out _)) manifestBytes += blob.Size;
        }

        var manifests = new List<Manifest>();
        int unreadable = 0;
        await foreach (var n in Catalog.ListNamesAsync(ct))
        {
            try
            {
                if (await Catalog.TryLoadAsync(n, ct) is { } m) manifests.Add(m);
            }
            catch (SnapshotException) { unreadable++; } // counted; `ls` names it and its error
        }

        // How many manifests name each chunk: a chunk named by one is that layer's alone.
        var refs = new Dictionary<ChunkName, int>();
        foreach (var m in manifests)
        {
            foreach (var name in DataChunks(m)) refs[name] = refs.GetValueOrDefault(name) + 1;
        }
        var layers = new List<LayerStats>(manifests.Count);
        long logical = 0;
        foreach (var m in manifests)
        {
            logical += m.ImageSize;
            int data = 0, unique = 0;
            long uniqueBytes = 0;
            foreach (var name in DataChunks(m))
            {
                data++;
                if (refs[name] != 1) continue;
                unique++;
                uniqueBytes += sizes.GetValueOrDefault(name);
            }
            layers.Add(new LayerStats(m.Name, m.Layer.ToText(), m.Domain.Id, m.ParentName, m.ImageSize, data, unique,
                uniqueBytes));
        }
        int unreferenced = 0;
        long unreferencedBytes = 0;
        foreach (var (name, size) in sizes)
        {
            if (refs.ContainsKey(name)) continue;
            unreferenced++;
            unreferencedBytes += size;
        }
        CacheStats? cache = null;
        if (cacheDirectory is not null)
        {
            var (count, bytes) = DiskChunkCache.Occupancy(cacheDirectory);
            cache = new CacheStats(Path.GetFullPath(cacheDirectory), count, bytes, cacheBudget,
                cacheBudget > 0 ? Math.Round((double)bytes / cacheBudget, 4) : 0);
        }
        double? ratio = chunkBytes > 0 ? Math.Round((double)logical / chunkBytes, 2) : null;
        return new StoreStats(Blobs.Describe, storeBytes, sizes.Count, chunkBytes, manifests.Count, manifestBytes,
            unreadable, logical, ratio, unreferenced, unreferencedBytes, layers, cache);
    }

    /// <summary>The distinct data chunks one manifest names (its own entries, not its parents').</summary>
    private static HashSet<ChunkName> DataChunks(Manifest m)
    {
        var set = new HashSet<ChunkName>();
        foreach (var e in m.Entries) if (e.Kind == EntryKind.Data) set.Add(e.Name);
        return set;
    }

    /// <summary>Compares the resolved images of <paramref name="a"/> and <paramref name="b"/> chunk by chunk from
    /// the manifests alone (no key). Throws <see cref="SnapshotNotFoundException"/> naming an unknown snapshot.
    /// </summary>
    public async Task<DiffResult> DiffAsync(string a, string b, CancellationToken ct = default)
    {
        var (topA, slotsA, chainA) = await ChainChunkNames.ResolveSlotsAsync(Catalog, a, ct);
        var (topB, slotsB, chainB) = await ChainChunkNames.ResolveSlotsAsync(Catalog, b, ct);
        int size = ChunkGeometry.ChunkSize;
        int indexes = Math.Max(slotsA.Length, slotsB.Length);
        long imageEnd = Math.Max(topA.ImageSize, topB.ImageSize);
        var ranges = new List<DiffRange>();
        int same = 0, differ = 0, first = -1;
        long differBytes = 0;
        for (int i = 0; i <= indexes; i++)
        {
            bool differs = i < indexes && (i >= slotsA.Length || i >= slotsB.Length || slotsA[i] != slotsB[i]);
            if (i < indexes)
            {
                if (differs) differ++;
                else same++;
            }
            if (differs && first < 0) first = i;
            if (differs || first < 0) continue;
            long offset = (long)first * size, end = Math.Min((long)i * size, imageEnd);
            ranges.Add(new DiffRange(first, i - 1, offset, end - offset));
            differBytes += end - offset;
            first = -1;
        }
        return new DiffResult(a, b, topA.ImageSize, topB.ImageSize, size, indexes, same, differ, differBytes, ranges,
            DiffNote(chainA, chainB));
    }

    /// <summary>Names decide equality only within one domain and salt: a chunk name is a hash of ciphertext whose
    /// key derives from the domain's secret and the salt (docs/format.md).</summary>
    private static string? DiffNote(List<Manifest> a, List<Manifest> b)
    {
        var keysA = a.Select(m => (m.Domain.Id, Salt: Convert.ToHexString(m.Salt))).ToHashSet();
        var keysB = b.Select(m => (m.Domain.Id, Salt: Convert.ToHexString(m.Salt))).ToHashSet();
        if (keysA.SetEquals(keysB)) return null;
        return "the two chains span different trust domains or salts ("
            + string.Join(", ", keysA.Union(keysB).Select(k => k.Id).Distinct().Order(StringComparer.Ordinal))
            + "): identical content encrypts to different chunk names across them, so differing chunks there may "
            + "hold the same bytes";
    }

    /// <summary>Copies snapshot <paramref name="name"/> and its parents from this store to
    /// <paramref name="to"/>: per layer, parents first, its chunks (each read, checked against its name, written
    /// unless <paramref name="to"/> holds it intact), then a flush, then its manifest, byte for byte, so no
    /// manifest is visible before everything it names. A chunk already there counts as present only when it reads
    /// back through the store's safe read path and hashes to its name; a planted link, a short or corrupt object
    /// is replaced (a file store renames over the name: the link is replaced, never written through) and read
    /// back, else the copy fails naming it. The copy holds a build lease on <paramref name="to"/>, so a concurrent
    /// gc there keeps the chunks. Idempotent: intact chunks and identical manifests already there are skipped.
    /// Throws
    /// <see cref="InvalidInputException"/> when both are one store, or when <paramref name="to"/> holds another
    /// version of a layer under the same name; <see cref="ChunkUnavailableException"/> naming a chunk missing or
    /// corrupt here. Progress is in ciphertext bytes.</summary>
    public async Task<CopyResult> CopyToAsync(SnapshotHost to, string name, int parallelism,
        IByteProgress? progress = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(to);
        if (to.Blobs.Describe == Blobs.Describe)
            throw new InvalidInputException($"{Blobs.Describe} is both the source and the destination", "to");
        if (parallelism is < 1 or > 256)
            throw new InvalidInputException($"parallelism {parallelism} must be 1-256", "parallel");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var (_, _, chain) = await ChainChunkNames.ResolveSlotsAsync(Catalog, name, ct);
        chain.Reverse(); // parents first: a child is never visible before its parent
        var copied = new List<string>();
        var present = new List<string>();
        var pending = new List<(Manifest M, byte[] Raw)>();
        long total = 0;
        foreach (var m in chain)
        {
            var raw = await Blobs.ReadAllAsync(SnapshotCatalog.KeyOf(m.Name), ManifestCodec.MaxManifestBytes, ct)
                ?? throw new SnapshotNotFoundException(m.Name, Blobs.Describe);
            var there = await to.Blobs.ReadAllAsync(SnapshotCatalog.KeyOf(m.Name), ManifestCodec.MaxManifestBytes, ct);
            if (there is not null)
            {
                if (!there.AsSpan().SequenceEqual(raw))
                {
                    throw new InvalidInputException($"snapshot '{m.Name}' in {to.Blobs.Describe} is another version "
                        + $"than in {Blobs.Describe}; remove it there first", "to");
                }
                present.Add(m.Name);
                continue;
            }
            pending.Add((m, raw));
            total += DataChunks(m).Count * (long)ConvergentCipher.MaxCiphertextSize;
        }
        progress?.Begin(total);

        var source = new OriginChunkStore(Blobs);
        var destination = new OriginChunkStore(to.Blobs);
        int chunks = 0, chunksCopied = 0, chunksPresent = 0;
        long bytesCopied = 0, done = 0;
        await using var lease = await BuildLease.AcquireAsync(to.Blobs, name, ct);
        foreach (var (m, raw) in pending)
        {
            var names = DataChunks(m).ToList();
            chunks += names.Count;
            int next = -1;
            var workers = new Task[Math.Min(parallelism, Math.Max(1, names.Count))];
            for (int w = 0; w < workers.Length; w++)
            {
                workers[w] = Task.Run(async () =>
                {
                    var buffer = new byte[ConvergentCipher.MaxCiphertextSize];
                    var there = new byte[ConvergentCipher.MaxCiphertextSize];
                    for (int i = Interlocked.Increment(ref next); i < names.Count; i = Interlocked.Increment(ref next))
                    {
                        var chunk = names[i];
                        await lease.ClaimAsync(chunk, ct); // claim before the existence check, as a build does
                        // A chunk found there counts only once it reads back intact through the store's safe
                        // read path: a planted link, a short or a corrupt object is replaced below, never kept.
                        var found = await CheckPresentAsync(destination, chunk, there, ct);
                        if (found is null)
                        {
                            Interlocked.Increment(ref chunksPresent);
                        }
                        else
                        {
                            int n = await source.TryGetAsync(chunk, buffer, ct);
                            if (n < 0)
                            {
                                throw new ChunkUnavailableException(
                                    $"chunk {chunk} of snapshot '{m.Name}' is missing from {Blobs.Describe}",
                                    ChunkFault.Missing);
                            }
                            if (!chunk.Matches(buffer.AsSpan(0, n)))
                            {
                                throw new ChunkUnavailableException($"chunk {chunk} of snapshot '{m.Name}' is corrupt "
                                    + $"in {Blobs.Describe} (its bytes do not hash to its name)", ChunkFault.Corrupt);
                            }
                            await WriteVerifiedAsync(to, chunk, buffer.AsMemory(0, n), found, there, ct);
                            Interlocked.Increment(ref chunksCopied);
                            Interlocked.Add(ref bytesCopied, n);
                        }
                        progress?.Report(Interlocked.Add(ref done, ConvergentCipher.MaxCiphertextSize));
                    }
                }, ct);
            }
            await Task.WhenAll(workers);
            await to.Blobs.FlushAsync(ct); // every chunk durable before the manifest that names it is visible
            await lease.CheckHeldAsync(GarbageCollector.DefaultLeaseExpiry, ct);
            await to.Catalog.PublishAsync(m.Name, raw, replace: false, ct);
            copied.Add(m.Name);
        }
        return new CopyResult(name, Blobs.Describe, to.Blobs.Describe, copied, present, chunks, chunksCopied,
            chunksPresent, bytesCopied, clock.Elapsed.TotalSeconds);
    }

    /// <summary>Null when <paramref name="store"/> holds <paramref name="chunk"/> intact (read back through the
    /// store's own read path, which refuses links, FIFOs and oversized files, and hashed against the name);
    /// otherwise what is wrong with what it holds: "absent", or why it is bad.</summary>
    private static async Task<string?> CheckPresentAsync(OriginChunkStore store, ChunkName chunk, byte[] buffer,
        CancellationToken ct)
    {
        try
        {
            int n = await store.TryGetAsync(chunk, buffer, ct);
            if (n < 0) return "absent";
            return chunk.Matches(buffer.AsSpan(0, n)) ? null : "corrupt (its bytes do not hash to its name)";
        }
        catch (HostileFileException ex) { return ex.Message; }
        catch (CorruptObjectException ex) { return ex.Message; }
    }

    /// <summary>Stores a verified chunk in <paramref name="to"/>: put-if-absent when it was absent, else a
    /// replacing put (a file store renames over the name, so a planted link is replaced, never written through);
    /// then reads it back. A chunk that still does not verify there fails the copy, naming it, before any manifest
    /// that names it is published.</summary>
    private static async Task WriteVerifiedAsync(SnapshotHost to, ChunkName chunk, ReadOnlyMemory<byte> data,
        string found, byte[] scratch, CancellationToken ct)
    {
        var key = OriginChunkStore.KeyOf(chunk);
        var destination = new OriginChunkStore(to.Blobs);
        if (found == "absent" && await to.Blobs.PutIfAbsentAsync(key, data, ct)) return;
        // Present but bad, or another writer stored it between the check and the put: check, and replace.
        if (await CheckPresentAsync(destination, chunk, scratch, ct) is null) return;
        await to.Blobs.PutAsync(key, data, ct);
        if (await CheckPresentAsync(destination, chunk, scratch, ct) is { } still)
        {
            throw new ChunkUnavailableException($"chunk {chunk} in {to.Blobs.Describe} does not verify after it was "
                + $"replaced: {still}", ChunkFault.Corrupt);
        }
    }
}
