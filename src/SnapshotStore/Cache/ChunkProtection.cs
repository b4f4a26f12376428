using Snapshots.Store.Chunks;

namespace Snapshots.Store.Cache;

/// <summary>
/// The chunk names eviction must pass over: refcounted, since several restores may serve the same chunk, and each
/// lease releases exactly what it added. A name may be protected before its chunk is in the cache (a restore
/// protects its whole snapshot, and the cache fills as it reads).
/// </summary>
internal sealed class ChunkProtection
{
    private readonly Lock _lock = new();
    private readonly Dictionary<ChunkName, int> _counts = [];

    /// <summary>Distinct names under at least one lease.</summary>
    public int Count { get { lock (_lock) return _counts.Count; } }

    public bool Contains(ChunkName name)
    {
        lock (_lock) return _counts.ContainsKey(name);
    }

    /// <summary>Protects <paramref name="names"/> until the lease is disposed; <paramref name="released"/> runs
    /// once, after the names are released.</summary>
    public IDisposable Add(IEnumerable<ChunkName> names, Action released)
    {
        var held = names.ToArray();
        lock (_lock)
        {
            foreach (var name in held)
            {
                _counts.TryGetValue(name, out int n);
                _counts[name] = n + 1;
            }
        }
        return new Lease(this, held, released);
    }

    private void Release(ChunkName[] names)
    {
        lock (_lock)
        {
            foreach (var name in names)
            {
                int n = _counts[name] - 1;
                if (n == 0) _counts.Remove(name);
                else _counts[name] = n;
            }
        }
    }

    private sealed class Lease(ChunkProtection owner, ChunkName[] names, Action released) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) != 0) return; // a second dispose releases nothing twice
            owner.Release(names);
            released();
        }
    }
}
