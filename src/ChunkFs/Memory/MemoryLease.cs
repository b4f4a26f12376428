namespace Snapshots.ChunkFs.Memory;

/// <summary>
/// One restore's hold on a memory tier shared through <see cref="HostMemory.Lease"/>: the restore uses
/// <see cref="Memory"/> and disposes the lease, never the instance, which lives until its last lease is released.
/// Disposing twice releases once.
/// </summary>
public sealed class MemoryLease : IDisposable
{
    private readonly HostMemory _host;
    private readonly HostMemory.LeaseKey _key;
    private int _released;

    internal MemoryLease(HostMemory host, HostMemory.LeaseKey key, ResidentChunks memory)
    {
        _host = host;
        _key = key;
        Memory = memory;
    }

    /// <summary>The shared memory tier; valid until this lease is disposed.</summary>
    public ResidentChunks Memory { get; }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _released, 1) == 0) _host.Release(_key);
    }
}
