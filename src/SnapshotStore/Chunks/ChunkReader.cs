namespace Snapshots.Store.Chunks;

/// <summary>
/// Reads a chunk's ciphertext from the nearest tier that has it intact: caches in order, then the origin.
/// Every byte is checked against the chunk's name before it is returned or filled back; a corrupt cache entry
/// is dropped and the next tier asked. A corrupt or missing origin object is an error naming the chunk.
/// </summary>
public sealed class ChunkReader
{
    private readonly IChunkCache[] _caches;
    private readonly IChunkStore _origin;
    private readonly TierCounters[] _counters;

    public ChunkReader(IChunkStore origin, params IChunkCache[] caches)
    {
        _origin = origin;
        _caches = caches;
        _counters = new TierCounters[caches.Length + 1];
        for (int i = 0; i < caches.Length; i++) _counters[i] = new TierCounters(caches[i].Describe);
        _counters[^1] = new TierCounters(origin.Describe);
    }

    public IReadOnlyList<TierCounters> Counters => _counters;

    /// <summary>Returns the ciphertext length in <paramref name="buffer"/>; throws
    /// <see cref="ChunkUnavailableException"/> naming the chunk and <paramref name="context"/>.</summary>
    public async ValueTask<int> ReadAsync(ChunkName name, Memory<byte> buffer, string context, CancellationToken ct = default)
    {
        for (int i = 0; i < _caches.Length; i++)
        {
            var cache = _caches[i];
            int n = await cache.TryGetAsync(name, buffer, ct);
            if (n < 0) { _counters[i].Miss(); continue; }
            if (!cache.VerifiesOnRead && !name.Matches(buffer.Span[..n]))
            {
                _counters[i].CorruptEntry();
                cache.Remove(name);
                continue;
            }
            _counters[i].Hit(n);
            await FillAsync(i, name, buffer[..n], ct);
            return n;
        }

        var origin = _counters[^1];
        int len = await _origin.TryGetAsync(name, buffer, ct);
        if (len < 0)
        {
            origin.Miss();
            throw new ChunkUnavailableException($"chunk {name} of {context} is missing from {_origin.Describe}");
        }
        if (!name.Matches(buffer.Span[..len]))
        {
            origin.CorruptEntry();
            throw new ChunkUnavailableException($"chunk {name} of {context} is corrupt in {_origin.Describe} (its bytes do not hash to its name)");
        }
        origin.Hit(len);
        await FillAsync(_caches.Length, name, buffer[..len], ct);
        return len;
    }

    private async ValueTask FillAsync(int foundAt, ChunkName name, ReadOnlyMemory<byte> ciphertext, CancellationToken ct)
    {
        for (int i = 0; i < foundAt; i++) await _caches[i].PutAsync(name, ciphertext, ct);
    }
}
