using Snapshots.Store;
using Snapshots.Store.Chunks;
using Snapshots.Store.Crypto;
using Snapshots.Store.Keys;
using Snapshots.Store.Layers;
using Snapshots.Store.Manifests;
using Snapshots.Store.Origin;

namespace Snapshots.Prefetch;

/// <summary>
/// A snapshot's working set, stored the way REAP and FaaSnap read it: the plan's pages back to back, in plan
/// order, as a layer of its own (snapshot NAME.pack, same trust domain, convergent chunks like any layer). A
/// restore then fetches the pages it will need in about PAGES/128 chunks instead of every chunk they are spread
/// over (a 24 MiB working set can touch hundreds of 512 KiB chunks). The pack is built from the stored snapshot
/// (verified, decrypted), never from anything the caller hands in.
/// </summary>
public static class WorkingSetPack
{
    public const string Suffix = ".pack";
    public const long MaxPages = 1L << 18; // 1 GiB of working set

    public static string NameFor(string snapshot)
    {
        var name = snapshot + Suffix;
        if (!SnapshotName.IsValid(name))
            throw new InvalidInputException($"snapshot name '{snapshot}' is too long to carry a working-set pack");
        return name;
    }

    /// <summary>The bytes of the snapshot chunks a pack of <paramref name="plan"/> goes through: a whole chunk
    /// per chunk holding a planned page (the total <see cref="BuildAsync"/>'s progress counts to).</summary>
    public static long SourceBytes(PrefetchPlan plan)
    {
        ArgumentNullException.ThrowIfNull(plan);
        var chunks = new HashSet<long>();
        foreach (var page in plan.Pages) chunks.Add(page / ChunkGeometry.PagesPerChunk);
        return chunks.Count * (long)ChunkGeometry.ChunkSize;
    }

    /// <summary>
    /// Builds the pack of <paramref name="plan"/> for <paramref name="chain"/> (opened with the caller's tenant).
    /// <paramref name="progress"/> gets the bytes of the source chunks gone through so far, of
    /// <see cref="SourceBytes"/>.
    /// </summary>
    public static async Task<BuildResult> BuildAsync(
        IBlobStore blobs, IKeyProvider keys, SnapshotChain chain, ChunkReader reader, PrefetchPlan plan,
        IProgress<long>? progress = null, CancellationToken ct = default)
    {
        if (plan.Pages.Length == 0) throw new InvalidInputException("the plan has no pages to pack");
        if (plan.Pages.Length > MaxPages)
        {
            throw new InvalidInputException(
                $"the plan's {plan.Pages.Length} pages are over the {MaxPages}-page pack limit");
        }
        var image = new byte[(long)plan.Pages.Length * ChunkGeometry.PageSize];

        // Each source chunk is fetched and decrypted once, however many planned pages it holds.
        var slotsByChunk = new SortedDictionary<int, List<int>>();
        for (int slot = 0; slot < plan.Pages.Length; slot++)
        {
            int chunk = (int)(plan.Pages[slot] / ChunkGeometry.PagesPerChunk);
            if (!slotsByChunk.TryGetValue(chunk, out var list)) slotsByChunk[chunk] = list = [];
            list.Add(slot);
        }
        var cipher = new byte[ConvergentCipher.MaxCiphertextSize];
        var plain = new byte[ChunkGeometry.ChunkSize];
        long done = 0;
        foreach (var (chunk, slots) in slotsByChunk)
        {
            progress?.Report(done += ChunkGeometry.ChunkSize);
            if (chain.Chunks[chunk].IsZero) continue; // zero pages stay zero in the pack
            int n = await chain.ReadCiphertextAsync(reader, chunk, cipher, ct);
            chain.DecryptOrThrow(chunk, cipher.AsSpan(0, n), plain);
            foreach (var slot in slots)
            {
                int within = (int)(plan.Pages[slot] % ChunkGeometry.PagesPerChunk) * ChunkGeometry.PageSize;
                plain.AsSpan(within, ChunkGeometry.PageSize).CopyTo(image.AsSpan(slot * ChunkGeometry.PageSize));
            }
        }
        System.Security.Cryptography.CryptographicOperations.ZeroMemory(plain);

        var top = chain.Top;
        var request = new BuildRequest
        {
            Name = NameFor(chain.Name), MemoryPath = $"working set of '{chain.Name}'",
            Layer = top.Layer == LayerKind.Function ? LayerKind.Function : LayerKind.Os,
            Tenant = top.Domain.Tenant, Salt = System.Text.Encoding.UTF8.GetString(top.Salt), Replace = true,
        };
        using var source = new MemoryImageSource(image, request.MemoryPath);
        try { return await new LayerBuilder(blobs, keys).BuildAsync(request, source, null, ct); }
        finally { System.Security.Cryptography.CryptographicOperations.ZeroMemory(image); }
    }
}
