using Snapshots.Store.Chunks;
using Snapshots.Store.Crypto;
using Snapshots.Store.Keys;
using Snapshots.Store.Manifests;

namespace Snapshots.Store.Layers;

/// <summary>Where one chunk index of a resolved image comes from.</summary>
public readonly struct ChunkRef
{
    public readonly ChunkName Name;
    public readonly ChunkSecret Secret;
    /// <summary>Index into <see cref="SnapshotChain.Layers"/> of the layer that set it; -1 for zero.</summary>
    public readonly short Layer;

    public ChunkRef(ChunkName name, ChunkSecret secret, short layer) { Name = name; Secret = secret; Layer = layer; }

    public bool IsZero => Layer < 0;
    public static ChunkRef Zero => new(default, default, -1);
}

/// <summary>
/// A snapshot resolved through its parents (function -> runtime -> os): for every chunk index, the name, key
/// and plaintext hash of the layer that last set it, or zero. Opening checks that each child was built on the
/// exact parent version it names, that the caller may read every layer's domain, and unseals every key table.
/// </summary>
public sealed class SnapshotChain
{
    public const int MaxDepth = 16;

    /// <summary>The layers, top (the snapshot itself) first.</summary>
    public required IReadOnlyList<Manifest> Layers { get; init; }
    public required ChunkRef[] Chunks { get; init; }
    /// <summary>Every layer's secrets, aligned with its entries (verify reads shadowed chunks too).</summary>
    public required IReadOnlyList<ChunkSecret[]> Secrets { get; init; }

    public Manifest Top => Layers[0];
    public string Name => Top.Name;
    public long ImageSize => Top.ImageSize;
    public int ChunkCount => Chunks.Length;

    public int ChunkLength(int index) => ChunkGeometry.ChunkLength(ImageSize, index);

    public static Task<SnapshotChain> OpenAsync(
        SnapshotCatalog catalog, IKeyProvider keys, string name, string? tenant, CancellationToken ct = default) =>
        OpenAsync(catalog, keys, name, tenant, allowRollback: false, ct);

    /// <summary>Opens the chain of <paramref name="name"/>: every layer's manifest parsed, bound to its parent by
    /// hash, authenticated under its layer key, and not older than the publication this reader last accepted
    /// (<see cref="RollbackException"/> unless <paramref name="allowRollback"/>); the accepted publications are
    /// then recorded with the keys.</summary>
    public static async Task<SnapshotChain> OpenAsync(SnapshotCatalog catalog, IKeyProvider keys, string name,
        string? tenant, bool allowRollback, CancellationToken ct = default)
    {
        var layers = new List<Manifest>();
        var top = await catalog.LoadAsync(name, ct);
        layers.Add(top);
        var current = top;
        while (current.ParentName is { } parentName)
        {
            if (layers.Count >= MaxDepth)
                throw new ManifestFormatException($"snapshot '{name}': chain deeper than {MaxDepth} layers");
            foreach (var seen in layers)
                if (seen.Name == parentName)
                    throw new ManifestFormatException($"snapshot '{name}': the chain loops at '{parentName}'");
            var parent = await catalog.TryLoadAsync(parentName, ct)
                ?? throw new SnapshotException($"snapshot '{current.Name}' needs parent '{parentName}', "
                    + $"which is not in {catalog.Blobs.Describe}");
            if (!parent.Hash.AsSpan().SequenceEqual(current.ParentHash))
                throw new SnapshotException(
                    $"snapshot '{current.Name}' was built on another version of '{parentName}' "
                    + "(parent manifest hash mismatch): rebuild it on the current parent");
            CheckLayering(current, parent);
            layers.Add(parent);
            current = parent;
        }

        foreach (var layer in layers) CheckAccess(layer, tenant);

        var secrets = new ChunkSecret[layers.Count][];
        for (int i = 0; i < layers.Count; i++) secrets[i] = ManifestCodec.OpenKeyTable(layers[i], keys);
        // Only now are the sequences authenticated (the key table seals the header).
        CheckNotRolledBack(catalog.Blobs.Describe, keys, layers, allowRollback);

        var chunks = new ChunkRef[top.ChunkCount];
        Array.Fill(chunks, ChunkRef.Zero);
        for (int l = layers.Count - 1; l >= 0; l--)
        {
            var entries = layers[l].Entries;
            for (int e = 0; e < entries.Length; e++)
            {
                int index = entries[e].Index;
                if (index >= chunks.Length) continue; // a smaller child drops the parent's tail
                chunks[index] = entries[e].Kind == EntryKind.Zero
                    ? ChunkRef.Zero
                    : new ChunkRef(entries[e].Name, secrets[l][e], (short)l);
            }
        }
        return new SnapshotChain { Layers = layers, Chunks = chunks, Secrets = secrets };
    }

    private static void CheckNotRolledBack(
        string store, IKeyProvider keys, List<Manifest> layers, bool allowRollback)
    {
        var accepted = new long[layers.Count]; // each record read once: it is a file in the keyring
        for (int i = 0; i < layers.Count; i++)
        {
            var layer = layers[i];
            accepted[i] = keys.AcceptedSequence(store, layer.Name);
            if (layer.Sequence < accepted[i] && !allowRollback)
            {
                throw new RollbackException(
                    $"snapshot '{layer.Name}' in {store} is publication {layer.Sequence}, older than publication "
                        + $"{accepted[i]} this reader already accepted: the store was rolled back (an old manifest put "
                        + "back). Refused; allow it explicitly only if the rollback was yours")
                {
                    Parameter = "allow-rollback",
                };
            }
        }
        for (int i = 0; i < layers.Count; i++)
            if (layers[i].Sequence != accepted[i]) keys.Accept(store, layers[i].Name, layers[i].Sequence);
    }

    /// <summary>
    /// One tenant's request never reaches another tenant's layers; shared layers are readable by all.
    /// </summary>
    public static void CheckAccess(Manifest layer, string? tenant)
    {
        if (layer.Domain.Tenant is not { } owner) return;
        if (tenant is null)
            throw new KeyUnavailableException(
                $"snapshot '{layer.Name}' is a tenant's function layer: name its tenant to read it")
            {
                Parameter = "tenant",
            };
        if (owner != tenant)
            throw new KeyUnavailableException(
                $"snapshot '{layer.Name}' belongs to another tenant's domain; this request is for tenant '{tenant}'")
            {
                Parameter = "tenant",
            };
    }

    /// <summary>
    /// Writes (replacing a layer, attaching its plan, removing it) stay in the writer's own domain: a tenant's
    /// request only changes that tenant's layers, a request without a tenant only shared layers.
    /// </summary>
    public static void CheckWrite(Manifest layer, string? tenant)
    {
        ArgumentNullException.ThrowIfNull(layer);
        CheckAccess(layer, tenant);
        if (tenant is not null && layer.Domain.IsShared)
        {
            throw new KeyUnavailableException(
                $"snapshot '{layer.Name}' is a shared layer: a tenant's request cannot change it")
            {
                Parameter = "tenant",
            };
        }
    }

    /// <summary>
    /// OS and runtime layers only build on shared layers; a function layer on shared layers or its own tenant's.
    /// </summary>
    public static void CheckLayering(Manifest child, Manifest parent)
    {
        if (!parent.Domain.IsShared && parent.Domain != child.Domain)
        {
            throw new ManifestFormatException(
                $"snapshot '{child.Name}' ({child.Domain}) cannot build on '{parent.Name}' ({parent.Domain})");
        }
    }

    /// <summary>How messages name chunk <paramref name="index"/>: its snapshot, index and layer.</summary>
    public string ContextOf(int index)
    {
        var r = Chunks[index];
        return r.IsZero
            ? $"snapshot '{Name}' (index {index})"
            : $"snapshot '{Name}' (index {index}, layer '{Layers[r.Layer].Name}')";
    }

    /// <summary>Reads chunk <paramref name="index"/> through <paramref name="reader"/> into <paramref name="cipher"/>;
    /// returns the ciphertext length. Decrypt it with <see cref="DecryptOrThrow"/>.</summary>
    public ValueTask<int> ReadCiphertextAsync(
        ChunkReader reader, int index, Memory<byte> cipher, CancellationToken ct) =>
        reader.ReadAsync(Chunks[index].Name, cipher, ContextOf(index), ct);

    /// <summary>Reads chunk <paramref name="index"/>'s ciphertext at <paramref name="ticket"/>'s priority.</summary>
    public ValueTask<int> ReadCiphertextAsync(
        ChunkReader reader, int index, Memory<byte> cipher, Tiers.FetchTicket ticket, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(reader);
        return reader.ReadAsync(Chunks[index].Name, cipher, ContextOf(index), ticket, ct);
    }

    /// <summary>
    /// Authenticates and decrypts chunk <paramref name="index"/>, or throws naming the chunk and what is wrong.
    /// </summary>
    public void DecryptOrThrow(int index, ReadOnlySpan<byte> ciphertext, Span<byte> plaintext)
    {
        if (TryDecrypt(index, ciphertext, plaintext) is { } problem)
            throw new ChunkUnavailableException($"chunk {Chunks[index].Name} of {ContextOf(index)}: {problem}");
    }

    /// <summary>Authenticates and decrypts one chunk's ciphertext into <paramref name="plaintext"/>; null when
    /// intact, else what is wrong.</summary>
    public string? TryDecrypt(int index, ReadOnlySpan<byte> ciphertext, Span<byte> plaintext)
    {
        ref readonly var r = ref Chunks[index];
        int expected = ChunkLength(index);
        if (ciphertext.Length != expected + ConvergentCipher.TagSize)
            return $"ciphertext is {ciphertext.Length} bytes, expected {expected + ConvergentCipher.TagSize}";
        return TryDecrypt(r.Secret, ciphertext, plaintext[..expected]);
    }

    public static string? TryDecrypt(in ChunkSecret secret, ReadOnlySpan<byte> ciphertext, Span<byte> plaintext)
    {
        if (!ConvergentCipher.TryDecrypt(secret.Key, ciphertext, plaintext))
            return "does not decrypt under its manifest key (authentication failed)";
        Span<byte> hash = stackalloc byte[ContentHash.Size];
        ContentHash.Compute(plaintext[..(ciphertext.Length - ConvergentCipher.TagSize)], hash);
        if (!hash.SequenceEqual(secret.PlaintextHash))
            return "plaintext hash does not match the manifest";
        return null;
    }
}
