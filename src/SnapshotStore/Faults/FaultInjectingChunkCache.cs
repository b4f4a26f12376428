using Snapshots.Store.Chunks;

namespace Snapshots.Store.Faults;

/// <summary>
/// A <see cref="FaultInjectingChunkStore"/> over a cache: reads are disturbed as the profile says; fills and
/// removals pass straight through, so the reader still fills the cache and drops the entries it finds corrupt.
/// <see cref="VerifiesOnRead"/> is false whatever the inner cache does: it may have checked its bytes, but this
/// decorator can flip one after that check, so the reader must hash every read.
/// </summary>
public sealed class FaultInjectingChunkCache(IChunkCache inner, FaultProfile profile, int seed)
    : FaultInjectingChunkStore(inner, profile, seed), IChunkCache
{
    private readonly IChunkCache _cache = inner;

    public bool VerifiesOnRead => false;

    public ValueTask PutAsync(ChunkName name, ReadOnlyMemory<byte> ciphertext, CancellationToken ct = default) =>
        _cache.PutAsync(name, ciphertext, ct);

    public void Remove(ChunkName name) => _cache.Remove(name);

    public long DroppedCorrupt => _cache.DroppedCorrupt;
}
