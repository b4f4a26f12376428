using Snapshots.Store;
using Snapshots.Store.Chunks;
using Snapshots.Store.Crypto;
using Snapshots.Store.Layers;

namespace Snapshots.Host;

/// <summary>What `verify --repair` did: the chunks found bad, those rewritten from a tier that held them intact,
/// and the verification after.</summary>
public sealed record RepairResult(IReadOnlyList<BadChunk> Found, IReadOnlyList<string> Repaired, VerifyResult After);

public sealed partial class SnapshotHost
{
    /// <summary>Verifies the chain from the origin; each bad chunk is then read through <paramref name="tiers"/>
    /// (the local disk cache, the distributed cache: nearest first), checked against its name and decrypted under
    /// its manifest key, and written back to the origin. Chunks no tier holds intact stay bad (rebuild from the
    /// image with VerifyExisting to heal those). The chain is verified again at the end.</summary>
    public async Task<RepairResult> RepairAsync(string name, string? tenant, TierSettings tiers,
        CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(tiers);
        var before = await VerifyAsync(name, tenant, null, ct);
        var repaired = new List<string>();
        if (!before.Ok)
        {
            var chain = await OpenChainAsync(name, tenant, ct);
            using var reader = await OpenReaderAsync(tiers, ct);
            var cipher = new byte[ConvergentCipher.MaxCiphertextSize];
            var plain = new byte[ChunkGeometry.ChunkSize];
            foreach (var bad in before.Bad)
            {
                int l = chain.Layers.ToList().FindIndex(x => x.Name == bad.Layer);
                int e = Array.FindIndex(chain.Layers[l].Entries, x => x.Index == bad.Index);
                var entry = chain.Layers[l].Entries[e];
                int n;
                try { n = await reader.ReadAsync(entry.Name, cipher, $"snapshot '{bad.Layer}'", ct); }
                catch (ChunkUnavailableException) { continue; } // no tier holds it intact
                if (SnapshotChain.TryDecrypt(chain.Secrets[l][e], cipher.AsSpan(0, n), plain) is not null) continue;
                await Blobs.PutAsync(OriginChunkStore.KeyOf(entry.Name), cipher.AsMemory(0, n), ct);
                repaired.Add(bad.Chunk);
                Log($"repaired chunk {bad.Chunk} of '{bad.Layer}' (index {bad.Index}) from the tiers");
            }
        }
        var after = repaired.Count == 0 ? before : await VerifyAsync(name, tenant, null, ct);
        return new RepairResult(before.Bad, repaired, after);
    }
}
