using Snapshots.Store.Chunks;

namespace Snapshots.Store.Cache;

/// <summary>Eviction: in batches between the watermarks, oldest first, passing over protected chunks.</summary>
public sealed partial class DiskChunkCache
{
    private readonly ChunkProtection _protection = new();
    private long _evictions, _evictedBytes, _protectedSkips, _protectedOverruns;

    // After a pass that protected entries held above its target, the next starts only once the cache has grown by
    // another batch (or a lease ends): a cache full of protected chunks would otherwise walk them all at every write.
    private long _retryAbove;

    /// <summary>Keeps <paramref name="names"/> (duplicates allowed) from eviction until the returned lease is
    /// disposed; leases are counted per name, so a chunk stays protected while any lease on it lives. A name need not
    /// be cached yet: it is protected once filled. When everything left is protected the cache goes over its
    /// watermarks rather than evict it (<see cref="DiskCacheCounters.ProtectedOverruns"/>); ending a lease evicts
    /// back down if the cache is over its high watermark. Protection is per process: another process sharing the
    /// directory does not see it. Costs a dictionary entry per name (a 4 GiB snapshot: about 8,000).</summary>
    public IDisposable Protect(IEnumerable<ChunkName> names)
    {
        ArgumentNullException.ThrowIfNull(names);
        return _protection.Add(names, LeaseEnded);
    }

    /// <summary>The cache's gauges and counters now, for metrics.</summary>
    public DiskCacheCounters Counters
    {
        get
        {
            lock (_lock)
            {
                return new DiskCacheCounters(
                    OccupancyBytes: _bytes,
                    Entries: _index.Count,
                    BudgetBytes: _options.BudgetBytes,
                    HighWatermarkBytes: _options.HighWatermarkBytes,
                    LowWatermarkBytes: _options.LowWatermarkBytes,
                    ProtectedChunks: _protection.Count,
                    Evictions: _evictions,
                    EvictedBytes: _evictedBytes,
                    FullDiskEvents: Interlocked.Read(ref _fullDiskEvents),
                    FullDiskSkips: Interlocked.Read(ref _fullDiskSkips),
                    CorruptDropped: Interlocked.Read(ref _dropped),
                    ProtectedSkips: _protectedSkips,
                    ProtectedOverruns: _protectedOverruns);
            }
        }
    }

    private void LeaseEnded()
    {
        List<ChunkName>? victims;
        lock (_lock)
        {
            _retryAbove = 0;
            victims = EvictAboveHighLocked();
        }
        DeleteEntries(victims);
    }

    /// <summary>Past the high watermark, evicts down to the low one. The entries to delete are returned, to be
    /// deleted once the lock is released (a batch is thousands of files; reads must not wait for them).</summary>
    private List<ChunkName>? EvictAboveHighLocked() =>
        _bytes > Math.Max(_options.HighWatermarkBytes, _retryAbove)
            ? EvictDownToLocked(_options.LowWatermarkBytes, keepNewest: true)
            : null;

    /// <summary>Evicts the least recently used unprotected entries until the cache holds at most
    /// <paramref name="target"/> bytes; with <paramref name="keepNewest"/> the most recent entry (the one just
    /// written or read) is never its own write's victim, however small the budget.</summary>
    private List<ChunkName>? EvictDownToLocked(long target, bool keepNewest)
    {
        List<ChunkName>? victims = null;
        long skipped = 0;
        var node = _lru.Last;
        while (_bytes > target && node is not null && !(keepNewest && node == _lru.First))
        {
            var newer = node.Previous;
            var (name, size) = node.Value;
            if (_protection.Contains(name))
            {
                skipped++;
            }
            else
            {
                _lru.Remove(node);
                _index.Remove(name);
                _bytes -= size;
                _evictions++;
                _evictedBytes += size;
                (victims ??= []).Add(name);
            }
            node = newer;
        }
        _protectedSkips += skipped;
        _retryAbove = 0;
        if (skipped > 0 && _bytes > target)
        {
            _retryAbove = _bytes + Math.Max(1, _options.HighWatermarkBytes - _options.LowWatermarkBytes);
            if (_bytes > _options.HighWatermarkBytes) _protectedOverruns++;
        }
        return victims;
    }

    /// <summary>Deletes evicted entries' files. An entry filled again between its eviction and this delete loses
    /// its file: the next read finds none and forgets it (a miss, never wrong bytes).</summary>
    private void DeleteEntries(List<ChunkName>? victims)
    {
        if (victims is null) return;
        foreach (var name in victims) DeleteFile(PathOf(name));
    }
}
