using System.Buffers;
using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using Snapshots.Store.Chunks;
using Snapshots.Store.Crypto;
using Snapshots.Store.Keys;
using Snapshots.Store.Manifests;
using Snapshots.Store.Origin;

namespace Snapshots.Store.Layers;

/// <summary>
/// Builds one layer from a raw memory file: 512 KiB chunks; all-zero chunks dropped; chunks equal to the
/// parent chain's at the same index inherited; the rest encrypted convergently and put-if-absent to the origin
/// (so identical chunks in the same domain are stored once). The manifest is published only after every
/// chunk it names is durable, so no reader ever sees a manifest with missing chunks. Holes in a sparse memory file
/// are found with SEEK_DATA and never read: zeros, or with <see cref="BuildRequest.Diff"/> the parent's bytes.
/// </summary>
/// <param name="blobs">The store written to.</param>
/// <param name="keys">The domain keys.</param>
/// <param name="parentReader">Reads the parent's chunks a diff build completes (chunks partly in holes); null: a
/// reader over the origin for the build.</param>
public sealed class LayerBuilder(IBlobStore blobs, IKeyProvider keys, ChunkReader? parentReader = null)
{
    private readonly SnapshotCatalog _catalog = new(blobs);
    private readonly OriginChunkStore _origin = new(blobs);

    public async Task<BuildResult> BuildAsync(
        BuildRequest req, IProgress<long>? progress = null, CancellationToken ct = default)
    {
        SnapshotName.Validate(req.Name);
        using var source = new FileImageSource(req.MemoryPath);
        return await BuildAsync(req, source, progress, ct);
    }

    /// <summary>
    /// Builds from any image source (<see cref="BuildRequest.MemoryPath"/> is then only descriptive).
    /// </summary>
    public async Task<BuildResult> BuildAsync(
        BuildRequest req, IImageSource source, IProgress<long>? progress = null, CancellationToken ct = default)
    {
        var clock = Stopwatch.StartNew();
        SnapshotName.Validate(req.Name);
        long imageSize = source.Size;
        if (!req.Replace && await _catalog.ExistsAsync(req.Name, ct))
            throw new InvalidInputException(
                $"snapshot '{req.Name}' already exists in {blobs.Describe}; publishing a new version must be asked for")
            {
                Parameter = "replace",
            };
        var salt = Encoding.UTF8.GetBytes(req.Salt);
        if (salt.Length is 0 or > 64) throw new InvalidInputException("salt must be 1-64 bytes", "salt");
        if (req.Diff && req.Parent is null)
            throw new InvalidInputException(
                "a diff build needs its base as the parent: a diff snapshot's holes mean unchanged from it", "diff");
        if (req.Diff && req.HolesAreZero)
            throw new InvalidInputException(
                "a diff snapshot's holes are the parent's bytes, not zeros: ask for diff or holes-are-zero", "diff");

        SnapshotChain? parent = null;
        if (req.Parent is not null)
        {
            SnapshotName.Validate(req.Parent, "parent");
            if (req.Parent == req.Name)
                throw new InvalidInputException($"snapshot '{req.Name}' cannot be its own parent", "parent");
            if (!await _catalog.ExistsAsync(req.Parent, ct))
                throw new InvalidInputException(
                    $"parent snapshot '{req.Parent}' does not exist in {blobs.Describe}", "parent");
            parent = await SnapshotChain.OpenAsync(_catalog, keys, req.Parent, req.Tenant, ct);
        }
        var layer = ResolveLayer(req, parent);
        var domain = layer == LayerKind.Function ? TrustDomain.ForTenant(req.Tenant!) : TrustDomain.Shared;
        if (req.Replace && await _catalog.TryLoadAsync(req.Name, ct) is { } existing)
        {
            // A new version stays in its domain: no tenant replaces another's layer or a shared one, and a shared
            // layer never becomes a tenant's (or the reverse).
            SnapshotChain.CheckWrite(existing, req.Tenant);
            if (existing.Domain != domain)
            {
                throw new InvalidInputException(
                    $"replacing '{req.Name}' would move it from domain {existing.Domain} to {domain}", "replace");
            }
            // The snapshot exists under this domain, so its key exists somewhere: a keyring without it is the wrong
            // one (a mistyped --keyring would otherwise mint a new key and replace a live snapshot under it).
            if (keys.Fingerprint(domain) is null)
            {
                throw new KeyUnavailableException($"'{req.Name}' exists in domain {domain}, but {keys.Describe} has "
                    + "no key for that domain: check the keyring, or create the key explicitly if it was lost");
            }
        }

        if (parent is not null && !req.Diff && !req.HolesAreZero && source.NextHole(0) is var hole && hole < imageSize)
        {
            // Firecracker's diff snapshots are sparse files whose holes mean "unchanged": read as zeros they would
            // erase the parent's data. A full snapshot's holes are zeros. Only the caller knows which this is.
            throw new InvalidInputException(
                $"{source.Describe} is sparse (a hole at byte {hole} of {imageSize}) and is built on parent "
                    + $"'{req.Parent}': say what its holes mean: --diff (a Firecracker diff snapshot: holes are "
                    + "unchanged from the parent) or --holes-are-zero (a full snapshot: holes are zero pages)",
                "memory");
        }

        if (req.Diff && source.NextHole(0) >= imageSize)
        {
            // A diff snapshot is mostly holes (the pages the guest did not touch). One with none at all is almost
            // surely one whose holes were filled in transfer (scp, aws s3 cp, cp without --sparse): built as a diff,
            // every page would be taken as dirty and its zeros would overwrite the parent's data, silently.
            throw new InvalidInputException(
                $"{source.Describe} has no hole at all, but a diff snapshot's holes are the pages unchanged from "
                    + $"parent '{req.Parent}': one whose holes were filled in transfer (scp, aws s3 cp, cp without "
                    + "--sparse) would overwrite the parent with zeros. Restore its holes (cp --sparse=always, or "
                    + "fallocate --dig-holes), or build it without --diff if every page really is dirty",
                "diff");
        }

        int chunkCount = ChunkGeometry.ChunkCount(imageSize);
        var entries = new ManifestEntry?[chunkCount];
        var secrets = new ChunkSecret[chunkCount];
        var counts = new Counts();
        var convergenceKey = keys.GetConvergenceKey(domain, create: true);
        var ownReader = req.Diff && parentReader is null ? new ChunkReader(_origin) : null;
        try
        {
            await using var lease = await BuildLease.AcquireAsync(blobs, req.Name, ct);
            var job = new ChunkJob(
                this, source, imageSize, parent, convergenceKey, salt, lease, entries, secrets, counts, progress,
                req.VerifyExisting, req.Diff ? parentReader ?? ownReader : null);
            int next = -1;
            var workers = new Task[Math.Max(1, req.Parallelism)];
            for (int w = 0; w < workers.Length; w++)
                workers[w] = Task.Run(async () =>
                {
                    var plain = ArrayPool<byte>.Shared.Rent(ChunkGeometry.ChunkSize);
                    var cipher = ArrayPool<byte>.Shared.Rent(ConvergentCipher.MaxCiphertextSize);
                    try
                    {
                        for (int i = Interlocked.Increment(ref next); i < chunkCount;
                            i = Interlocked.Increment(ref next))
                        {
                            await job.ProcessAsync(i, plain, cipher, ct);
                        }
                    }
                    finally
                    {
                        ArrayPool<byte>.Shared.Return(plain, clearArray: true);
                        ArrayPool<byte>.Shared.Return(cipher);
                    }
                }, ct);
            await Task.WhenAll(workers);

            // Every chunk durable before the manifest that names them can be seen.
            await blobs.FlushAsync(ct);
            source.CheckUnchanged(); // the last moment before anything is visible
            await lease.CheckHeldAsync(GarbageCollector.DefaultLeaseExpiry, ct);
            var (bytes, hash) = await PublishAsync(req, layer, domain, salt, imageSize, parent, entries, secrets, ct);
            return new BuildResult
            {
                Name = req.Name, Layer = layer.ToText(), Domain = domain.Id, Parent = req.Parent,
                ImageBytes = imageSize, Chunks = chunkCount,
                ZeroChunks = counts.Zero, InheritedChunks = counts.Inherited, DedupedChunks = counts.Deduped,
                NewChunks = counts.New, UploadedBytes = counts.UploadedBytes, HealedChunks = counts.Healed,
                ReadBytes = counts.ReadBytes, ParentChunksRead = counts.ParentReads,
                ManifestBytes = bytes, ManifestHash = Convert.ToHexStringLower(hash),
                Seconds = clock.Elapsed.TotalSeconds,
            };
        }
        finally
        {
            CryptographicOperations.ZeroMemory(convergenceKey);
            ownReader?.Dispose();
        }
    }

    /// <summary>A publication's sequence: its time in milliseconds since the epoch, or one more than the
    /// publication it replaces (or that this builder has accepted) when that is later. So it only grows for a
    /// name, also across a removal and a new build, whatever the builders' clocks say within a store.</summary>
    private async Task<long> NextSequenceAsync(string name, DateTimeOffset created, CancellationToken ct)
    {
        long previous = keys.AcceptedSequence(blobs.Describe, name);
        try
        {
            if (await _catalog.TryLoadAsync(name, ct) is { } current) previous = Math.Max(previous, current.Sequence);
        }
        catch (ManifestFormatException) { } // a damaged manifest being replaced: its number is unknown
        return Math.Max(created.ToUnixTimeMilliseconds(), previous + 1);
    }

    private async Task<(int Bytes, byte[] Hash)> PublishAsync(
        BuildRequest req, LayerKind layer, TrustDomain domain, byte[] salt, long imageSize, SnapshotChain? parent,
        ManifestEntry?[] entries, ChunkSecret[] secrets, CancellationToken ct)
    {
        var list = new List<ManifestEntry>();
        var listSecrets = new List<ChunkSecret>();
        for (int i = 0; i < entries.Length; i++)
        {
            if (entries[i] is not { } e) continue;
            list.Add(e);
            listSecrets.Add(secrets[i]);
        }
        var id = RandomNumberGenerator.GetBytes(16);
        var layerKey = RandomNumberGenerator.GetBytes(32);
        try
        {
            var created = DateTimeOffset.UtcNow;
            var manifest = new Manifest
            {
                Id = id, Name = req.Name, Layer = layer, Domain = domain, Salt = salt,
                ImageSize = imageSize, ChunkSize = ChunkGeometry.ChunkSize, Created = created,
                Sequence = await NextSequenceAsync(req.Name, created, ct),
                ParentName = parent?.Name, ParentHash = parent?.Top.Hash,
                WrappedLayerKey = keys.WrapLayerKey(
                    domain, layerKey, ManifestCodec.LayerKeyContext(id, domain), create: true),
                Entries = [.. list],
            };
            var bytes = ManifestCodec.Serialize(manifest, listSecrets.ToArray(), layerKey);
            await _catalog.PublishAsync(req.Name, bytes, req.Replace, ct);
            keys.Accept(blobs.Describe, req.Name, manifest.Sequence); // a rollback to before it is then refused here
            return (bytes.Length, bytes[^ContentHash.Size..]);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(layerKey);
        }
    }

    private static LayerKind ResolveLayer(BuildRequest req, SnapshotChain? parent)
    {
        // The trust domain is never chosen by omission: a layer left shared by mistake would let anyone with the
        // shared key confirm its chunks.
        var layer = req.Layer ?? (req.Tenant is not null ? LayerKind.Function
            : throw new InvalidInputException("say which trust domain the layer is in: layer os or runtime for the "
                + "shared domain (content anyone may confirm), or a tenant for a function layer", "layer"));
        if (layer == LayerKind.Function && req.Tenant is null)
            throw new InvalidInputException(
                "a function layer needs a tenant: function layers are encrypted per tenant", "tenant");
        if (layer != LayerKind.Function && req.Tenant is not null)
            throw new InvalidInputException(
                $"a tenant applies to function layers only, not to a {layer.ToText()} layer", "tenant");
        if (layer == LayerKind.Os && parent is not null)
            throw new InvalidInputException("an os layer has no parent", "parent");
        if (parent is not null && layer != LayerKind.Function && parent.Top.Layer == LayerKind.Function)
            throw new InvalidInputException(
                $"a {layer.ToText()} layer cannot build on function layer '{parent.Name}'", "parent");
        if (req.Tenant is not null) TrustDomain.ForTenant(req.Tenant); // validates the id, with a clear message
        return layer;
    }

    /// <summary>True when the stored chunk is a regular object of the expected length hashing to its name.
    /// </summary>
    private async ValueTask<bool> IsIntactAsync(ChunkName name, int length, CancellationToken ct)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(ConvergentCipher.MaxCiphertextSize);
        try
        {
            int n;
            try { n = await _origin.TryGetAsync(name, buffer, ct); }
            catch (SnapshotException) { return false; } // planted, oversized: not the chunk
            return n == length && name.Matches(buffer.AsSpan(0, n));
        }
        finally { ArrayPool<byte>.Shared.Return(buffer); }
    }

    private sealed class Counts
    {
        public int Zero, Inherited, Deduped, New, Healed, ParentReads;
        public long UploadedBytes, Processed, ReadBytes;
    }

    /// <summary>The per-chunk step, shared by the build's workers. <paramref name="diffReader"/> is set for a diff
    /// build: holes are then the parent's bytes, read through it.</summary>
    private sealed class ChunkJob(LayerBuilder owner, IImageSource source, long imageSize, SnapshotChain? parent,
        byte[] convergenceKey, byte[] salt, BuildLease lease, ManifestEntry?[] entries, ChunkSecret[] secrets,
        Counts counts, IProgress<long>? progress, bool verifyExisting, ChunkReader? diffReader)
    {
        public async ValueTask ProcessAsync(int index, byte[] plainBuffer, byte[] cipherBuffer, CancellationToken ct)
        {
            ct.ThrowIfCancellationRequested();
            int length = ChunkGeometry.ChunkLength(imageSize, index);
            long start = ChunkGeometry.ChunkOffset(index), end = start + length;
            var plain = plainBuffer.AsMemory(0, length);
            bool parentHas = parent is not null && index < parent.ChunkCount && !parent.Chunks[index].IsZero;

            long data = source.NextData(start);
            if (data == start && source.NextHole(start) >= end)
            {
                source.Read(start, plain.Span); // all data: the common case of a full snapshot
                Interlocked.Add(ref counts.ReadBytes, length);
            }
            else
            {
                bool fromParent = diffReader is not null && parentHas;
                if (data >= end && fromParent && parent!.ChunkLength(index) == length)
                {
                    // Wholly in holes of a diff: unchanged, so no entry; the chain resolves it to the parent's.
                    Interlocked.Increment(ref counts.Inherited);
                    Done(length);
                    return;
                }
                if (fromParent)
                {
                    await ReadParentAsync(index, plainBuffer, length, cipherBuffer, ct);
                }
                else
                {
                    // Holes are zeros: a full snapshot, or a diff whose parent has nothing here.
                    if (data >= end)
                    {
                        if (parentHas) entries[index] = new ManifestEntry(index, EntryKind.Zero, default);
                        Interlocked.Increment(ref counts.Zero);
                        Done(length);
                        return;
                    }
                    plain.Span.Clear();
                }
                if (data < end) Interlocked.Add(ref counts.ReadBytes, ReadExtents(start, plain.Span, data));
            }

            if (ZeroDetector.IsAllZero(plain.Span))
            {
                if (parentHas) entries[index] = new ManifestEntry(index, EntryKind.Zero, default);
                Interlocked.Increment(ref counts.Zero);
            }
            else if (TryInherit(index, plain.Span, out var hash))
            {
                Interlocked.Increment(ref counts.Inherited);
            }
            else
            {
                Bytes32 key = default;
                ConvergentCipher.DeriveKey(convergenceKey, salt, hash, key);
                int n = ConvergentCipher.Encrypt(key, plain.Span, cipherBuffer);
                var name = ChunkName.OfCiphertext(cipherBuffer.AsSpan(0, n));
                await lease.ClaimAsync(name, ct); // claim before the existence check: see BuildLease
                if (await owner._origin.PutIfAbsentAsync(name, cipherBuffer.AsMemory(0, n), ct))
                {
                    Interlocked.Increment(ref counts.New);
                    Interlocked.Add(ref counts.UploadedBytes, n);
                }
                else
                {
                    Interlocked.Increment(ref counts.Deduped);
                    if (verifyExisting && !await owner.IsIntactAsync(name, n, ct))
                    {
                        var objectKey = OriginChunkStore.KeyOf(name);
                        await owner._origin.Blobs.PutAsync(objectKey, cipherBuffer.AsMemory(0, n), ct);
                        Interlocked.Increment(ref counts.Healed);
                    }
                }
                entries[index] = new ManifestEntry(index, EntryKind.Data, name);
                secrets[index] = new ChunkSecret(key, hash);
                CryptographicOperations.ZeroMemory(key);
            }
            Done(length);
        }

        private void Done(int length) => progress?.Report(Interlocked.Add(ref counts.Processed, length));

        /// <summary>Reads the data extents of [start, start + chunk.Length) into <paramref name="chunk"/> at their
        /// offsets, from <paramref name="data"/> (the first data offset in it); the holes' bytes are left as they
        /// are. Returns the bytes read.</summary>
        private long ReadExtents(long start, Span<byte> chunk, long data)
        {
            long end = start + chunk.Length, read = 0;
            while (data < end)
            {
                long hole = Math.Min(source.NextHole(data), end);
                source.Read(data, chunk[(int)(data - start)..(int)(hole - start)]);
                read += hole - data;
                data = hole < end ? source.NextData(hole) : end;
            }
            return read;
        }

        /// <summary>The parent's plaintext of chunk <paramref name="index"/> into <paramref name="plain"/>[..length]
        /// (zeros past a shorter parent's end), read and authenticated through the chain with its key.</summary>
        private async ValueTask ReadParentAsync(
            int index, byte[] plain, int length, byte[] cipher, CancellationToken ct)
        {
            int n = await parent!.ReadCiphertextAsync(diffReader!, index, cipher, ct);
            parent.DecryptOrThrow(index, cipher.AsSpan(0, n), plain);
            int have = parent.ChunkLength(index);
            if (have < length) plain.AsSpan(have, length - have).Clear();
            Interlocked.Increment(ref counts.ParentReads);
        }

        private bool TryInherit(int index, ReadOnlySpan<byte> plain, out Bytes32 hash)
        {
            hash = default;
            ContentHash.Compute(plain, hash);
            if (parent is null || index >= parent.ChunkCount) return false;
            ref readonly var p = ref parent.Chunks[index];
            return !p.IsZero && ((ReadOnlySpan<byte>)hash).SequenceEqual(p.Secret.PlaintextHash);
        }
    }
}
