using Snapshots.Store.Chunks;
using Snapshots.Store.Manifests;
using Snapshots.Store.Origin;

namespace Snapshots.Store.Layers;

/// <summary>What a gc did, or with <see cref="DryRun"/> would do: the counts of deletions are then of what it
/// would delete, and <see cref="WouldDelete"/> names those chunks (null on a real run).</summary>
public sealed record GcResult(int Manifests, int LiveLeases, int StaleLeasesRemoved, int ChunksScanned,
    int ChunksReferenced, int ChunksDeleted, long DeletedBytes, int ChunksReclaimedByBuilds, int TempFilesRemoved,
    double Seconds)
{
    public bool DryRun { get; init; }
    public IReadOnlyList<string>? WouldDelete { get; init; }
}

/// <summary>
/// Deletes chunks that no manifest and no running build references, never one still needed:
///   0. put back anything a crashed gc left in trash/;
///   1. read leases (running builds' claims), then manifests: the referenced set R1;
///   2. list chunks; move every chunk not in R1 to trash/;
///   3. read leases and manifests again (R2) and move back any trashed chunk now in R2;
///   4. delete the rest.
/// A builder claims a chunk in its lease before it checks the chunk exists, so either gc sees the claim in
/// step 3, or the builder finds the chunk gone and uploads it again. Leases not renewed within the lease expiry
/// are dead builders' and removed (a builder past it publishes nothing), as are temp files untouched for the
/// temp grace. Manifests that cannot be parsed stop gc: their chunks are
/// unknown, so deleting anything could break them.
/// </summary>
public sealed class GarbageCollector(IBlobStore blobs, TimeSpan? leaseExpiry = null, TimeSpan? tempGrace = null)
{
    private const string Trash = OriginChunkStore.TrashPrefix;

    /// <summary>A lease not renewed for this long is a dead build's (6 missed heartbeats).</summary>
    public static readonly TimeSpan DefaultLeaseExpiry = BuildLease.Heartbeat * 6;

    /// <summary>A temp file untouched for this long is a dead writer's.</summary>
    public static readonly TimeSpan DefaultTempGrace = TimeSpan.FromHours(1);

    private readonly TimeSpan _leaseExpiry = leaseExpiry ?? DefaultLeaseExpiry;
    private readonly TimeSpan _tempGrace = tempGrace ?? DefaultTempGrace;

    /// <summary>Reports what <see cref="CollectAsync"/> would delete, changing nothing: no chunk moved or
    /// deleted, no lease or temp file removed, nothing put back from trash/. Chunks a crashed gc left in trash/ are
    /// not judged (a real run puts them back first).</summary>
    public async Task<GcResult> DryRunAsync(CancellationToken ct = default)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var temps = await TempFilesAsync(ct);
        var (refs, live, stale, manifests) = await ReferencedAsync(removeStale: true, dryRun: true, ct);
        var (candidates, scanned) = await UnreferencedAsync(refs, ct);
        var doomed = new List<string>(candidates.Count);
        long bytes = 0;
        foreach (var (_, name, size) in candidates)
        {
            doomed.Add(name.ToString());
            bytes += size;
        }
        var result = new GcResult(manifests, live, stale, scanned, scanned - doomed.Count, doomed.Count, bytes, 0,
            temps.Count, clock.Elapsed.TotalSeconds);
        return result with { DryRun = true, WouldDelete = doomed };
    }

    public async Task<GcResult> CollectAsync(CancellationToken ct = default)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        await RestoreTrashAsync(ct);
        int temps = await RemoveTempFilesAsync(ct);

        var (r1, live, stale, manifests) = await ReferencedAsync(removeStale: true, dryRun: false, ct);
        var (candidates, scanned) = await UnreferencedAsync(r1, ct);
        foreach (var (key, _, _) in candidates) await blobs.MoveAsync(key, Trash + key, ct);

        var (r2, _, _, _) = await ReferencedAsync(removeStale: false, dryRun: false, ct);
        int reclaimed = 0, deleted = 0;
        long bytes = 0;
        foreach (var (key, name, size) in candidates)
        {
            if (r2.Contains(name))
            {
                if (await blobs.MoveAsync(Trash + key, key, ct)) reclaimed++;
                continue;
            }
            await blobs.DeleteAsync(Trash + key, ct);
            deleted++;
            bytes += size;
        }
        return new GcResult(manifests, live, stale, scanned, scanned - candidates.Count, deleted, bytes, reclaimed,
            temps, clock.Elapsed.TotalSeconds);
    }

    /// <summary>The chunks in the store that <paramref name="refs"/> does not name, and how many chunks were
    /// scanned: what a gc deletes (or with --dry-run, would).</summary>
    private async Task<(List<(string Key, ChunkName Name, long Size)> Candidates, int Scanned)> UnreferencedAsync(
        HashSet<ChunkName> refs, CancellationToken ct)
    {
        var candidates = new List<(string Key, ChunkName Name, long Size)>();
        int scanned = 0;
        await foreach (var blob in blobs.ListAsync(OriginChunkStore.Prefix, ct))
        {
            if (!OriginChunkStore.TryParseKey(blob.Key, out var name)) continue;
            scanned++;
            if (!refs.Contains(name)) candidates.Add((blob.Key, name, blob.Size));
        }
        return (candidates, scanned);
    }

    /// <summary>With <paramref name="dryRun"/>, stale leases are judged and counted as removed, but not removed.
    /// </summary>
    private async Task<(HashSet<ChunkName> Refs, int LiveLeases, int StaleLeases, int Manifests)> ReferencedAsync(
        bool removeStale, bool dryRun, CancellationToken ct)
    {
        var refs = new HashSet<ChunkName>();
        int live = 0, stale = 0, manifests = 0;
        // Leases first, manifests second: a build publishes its manifest before it drops its lease.
        var leases = new List<BlobInfo>();
        await foreach (var blob in blobs.ListAsync(BuildLease.Prefix, ct)) leases.Add(blob);
        foreach (var blob in leases)
        {
            if (!blob.Key.EndsWith(".lease", StringComparison.Ordinal)) continue;
            byte[]? bytes;
            try { bytes = await blobs.ReadAllAsync(blob.Key, BuildLease.MaxBytes, ct); }
            catch (HostileFileException)
            {
                // Not a lease any builder wrote (a link, a FIFO, oversized): claims nothing; removed, never read.
                if (removeStale)
                {
                    if (!dryRun) await blobs.DeleteAsync(blob.Key, ct);
                    stale++;
                }
                continue;
            }
            if (bytes is null) continue;
            var (owner, claims) = BuildLease.Parse(bytes);
            // By time alone: a pid says nothing about a builder in another PID namespace (a container).
            var age = DateTimeOffset.UtcNow - blob.LastModified;
            // A time far in the future is no renewal (clocks differ by less than the 30 s margin).
            bool isStale = age < -_leaseExpiry / 2 || (owner is null ? age > _tempGrace : age > _leaseExpiry);
            if (isStale && removeStale)
            {
                if (!dryRun) await blobs.DeleteAsync(blob.Key, ct);
                stale++;
                continue;
            }
            live++;
            refs.UnionWith(claims);
        }

        var catalog = new SnapshotCatalog(blobs);
        var names = new List<string>();
        await foreach (var name in catalog.ListNamesAsync(ct)) names.Add(name);
        foreach (var name in names)
        {
            Manifest? m;
            try { m = await catalog.TryLoadAsync(name, ct); }
            catch (ManifestFormatException ex)
            {
                throw new SnapshotException($"gc stopped: {ex.Message}. Repair or remove that manifest first "
                    + "(its chunks are unknown, so nothing can be deleted safely)");
            }
            if (m is null) continue; // removed meanwhile
            manifests++;
            foreach (var e in m.Entries) if (e.Kind == EntryKind.Data) refs.Add(e.Name);
        }
        return (refs, live, stale, manifests);
    }

    private async Task RestoreTrashAsync(CancellationToken ct)
    {
        var trashed = new List<string>();
        await foreach (var blob in blobs.ListAsync(Trash, ct)) trashed.Add(blob.Key);
        foreach (var key in trashed) await blobs.MoveAsync(key, key[Trash.Length..], ct);
    }

    /// <summary>Temp files untouched for the grace period: their writers are gone (judged by time, not pids).
    /// </summary>
    private async Task<int> RemoveTempFilesAsync(CancellationToken ct)
    {
        var doomed = await TempFilesAsync(ct);
        foreach (var key in doomed) await blobs.DeleteAsync(key, ct);
        return doomed.Count;
    }

    private async Task<List<string>> TempFilesAsync(CancellationToken ct)
    {
        var doomed = new List<string>();
        foreach (var prefix in new[] { OriginChunkStore.Prefix, SnapshotCatalog.Prefix })
        {
            await foreach (var blob in blobs.ListAsync(prefix, ct))
            {
                if (!blob.Key.EndsWith(FileBlobStore.TempSuffix, StringComparison.Ordinal)) continue;
                if (DateTimeOffset.UtcNow - blob.LastModified > _tempGrace) doomed.Add(blob.Key);
            }
        }
        return doomed;
    }
}
