using System.Collections.Concurrent;
using Snapshots.Store.Chunks;

namespace Snapshots.Store.Cache;

/// <summary>
/// Ciphertext chunks in a dictionary: a cache, or an origin, for tests, benchmarks and the chaos harness
/// (usually under a <see cref="Faults.FaultInjectingChunkCache"/>). Unbounded, never evicts, and trusts nothing
/// (<see cref="VerifiesOnRead"/> is false: the reader hashes every read). Not the loader's memory tier
/// (ResidentChunks), which holds decrypted pages.
/// </summary>
public sealed class MemoryChunkStore(string describe = "memory store") : IChunkCache
{
    private readonly ConcurrentDictionary<ChunkName, byte[]> _entries = new();
    private long _gets;

    public string Describe => describe;
    public bool VerifiesOnRead => false;

    /// <summary>Reads asked of this store, hits and misses.</summary>
    public long Gets => Interlocked.Read(ref _gets);

    public int Count => _entries.Count;

    public bool Contains(ChunkName name) => _entries.ContainsKey(name);

    /// <summary>Stores a copy of <paramref name="ciphertext"/> under its own name (BLAKE3), and returns it.</summary>
    public ChunkName Add(ReadOnlySpan<byte> ciphertext)
    {
        var name = ChunkName.OfCiphertext(ciphertext);
        _entries[name] = ciphertext.ToArray();
        return name;
    }

    /// <summary>Copies the chunk into <paramref name="buffer"/> and returns its length, or -1 when absent;
    /// ArgumentException when the buffer is smaller than the chunk.</summary>
    public ValueTask<int> TryGetAsync(ChunkName name, Memory<byte> buffer, CancellationToken ct = default)
    {
        ct.ThrowIfCancellationRequested();
        Interlocked.Increment(ref _gets);
        if (!_entries.TryGetValue(name, out var bytes)) return ValueTask.FromResult(-1);
        bytes.AsSpan().CopyTo(buffer.Span);
        return ValueTask.FromResult(bytes.Length);
    }

    /// <summary>Stores a copy of <paramref name="ciphertext"/> as given (not checked against the name, so a
    /// test can plant a bad entry).</summary>
    public ValueTask PutAsync(ChunkName name, ReadOnlyMemory<byte> ciphertext, CancellationToken ct = default)
    {
        ct.ThrowIfCancellationRequested();
        _entries[name] = ciphertext.ToArray();
        return ValueTask.CompletedTask;
    }

    public void Remove(ChunkName name) => _entries.TryRemove(name, out _);
}
