using Snapshots.ChunkFs.Memory;
using Snapshots.Prefetch;
using Snapshots.Store.Chunks;

namespace Snapshots.Host.Restore;

/// <summary>
/// What the restores of one process share (the worker-host daemon): one reader, so at every tier any VM's demand
/// fetch goes before any VM's prefetch (its priority slots); one memory budget, with one memory tier per chain and
/// chunks copied across chains (<see cref="HostMemory"/>); one prefetch bandwidth, granted in arrival order. Their
/// owner creates them, and disposes them after every session that uses them; a session never does.
/// </summary>
/// <param name="Reader">The tiers every restore fetches through. Its retry window applies to every restore (a
/// request's fault deadline does not change it).</param>
/// <param name="Memory">The host's decrypted-chunk budget and buffers.</param>
/// <param name="PrefetchBucket">Prefetch bandwidth of all restores together; null: none beyond each request's
/// <see cref="RestoreRequest.PrefetchBandwidth"/>.</param>
public sealed record RestoreResources(ChunkReader Reader, HostMemory Memory, TokenBucket? PrefetchBucket = null);
