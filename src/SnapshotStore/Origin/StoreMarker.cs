using System.Text.Json;
using Snapshots.Store.Chunks;
using Snapshots.Store.Layers;

namespace Snapshots.Store.Origin;

/// <summary>What <see cref="StoreMarker.InitAsync"/> did.</summary>
public enum StoreInitOutcome
{
    /// <summary>An empty (or new) location now holds a marker.</summary>
    Created,
    /// <summary>An unmarked location that already held this project's objects (manifests, chunks) was marked.
    /// </summary>
    Adopted,
    /// <summary>The location already held a marker of a version this code reads; nothing was written.</summary>
    AlreadyInitialised,
}

/// <summary>
/// The store marker: one small object, <see cref="Key"/> = <c>{"format":"snapshots-store","version":1}</c>, at
/// the root of a store (the directory, or the bucket prefix). Init writes it; every other operation requires it,
/// so a mistyped path or bucket is an error (<see cref="NotAStoreException"/>) instead of an empty listing or a
/// fresh store. A marker of a later version is refused naming the version, so old code never writes into a
/// layout it does not know.
/// </summary>
public static class StoreMarker
{
    public const string Key = "snapshots-store.json";
    public const string Format = "snapshots-store";

    /// <summary>The layout version this code reads and writes.</summary>
    public const int Version = 1;

    private const int MaxBytes = 4096;

    /// <summary>The marker's version, or null when the location holds no marker. A marker that is not ours
    /// (not JSON, another format) is a <see cref="NotAStoreException"/>.</summary>
    public static async Task<int?> ReadVersionAsync(IBlobStore blobs, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(blobs);
        var bytes = await blobs.ReadAllAsync(Key, MaxBytes, ct);
        if (bytes is null) return null;
        string why = "";
        try
        {
            using var doc = JsonDocument.Parse(bytes);
            var root = doc.RootElement;
            if (root.ValueKind == JsonValueKind.Object
                && root.TryGetProperty("format", out var format) && format.ValueKind == JsonValueKind.String
                && format.GetString() == Format)
            {
                // A version that is not a JSON number ("1", null, true) is a marker we did not write: refused as
                // one, never a crash (TryGetInt32 throws on anything but a number).
                if (root.TryGetProperty("version", out var version) && version.ValueKind == JsonValueKind.Number
                    && version.TryGetInt32(out var v) && v > 0)
                {
                    return v;
                }
                why = version.ValueKind == JsonValueKind.Undefined
                    ? ": it has no version"
                    : $": its version {Shorten(version.GetRawText())} is not a positive integer";
            }
        }
        catch (JsonException) { }
        throw new NotAStoreException(blobs.Describe, $"its {Key} is not a {Format} marker{why}")
        {
            Parameter = "store",
        };
    }

    /// <summary>Throws unless the location holds a marker this code reads: <see cref="NotAStoreException"/>
    /// without one, <see cref="SnapshotException"/> naming the version for a later one.</summary>
    public static async Task RequireAsync(IBlobStore blobs, CancellationToken ct = default)
    {
        var version = await ReadVersionAsync(blobs, ct)
            ?? throw new NotAStoreException(blobs.Describe, $"it holds no {Key} (stores are created by init)")
            {
                Parameter = "store",
            };
        CheckVersion(blobs, version);
    }

    /// <summary>Marks the location as a store, idempotently: an existing marker is left as it is, an unmarked
    /// location holding this project's objects is adopted. The caller opens the location with create = true
    /// (the directory or bucket is made if missing).</summary>
    public static async Task<StoreInitOutcome> InitAsync(IBlobStore blobs, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(blobs);
        if (await ReadVersionAsync(blobs, ct) is { } version)
        {
            CheckVersion(blobs, version);
            return StoreInitOutcome.AlreadyInitialised;
        }
        bool adopted = await HoldsAnyAsync(blobs, SnapshotCatalog.Prefix, ct)
            || await HoldsAnyAsync(blobs, OriginChunkStore.Prefix, ct);
        await blobs.PutAsync(Key, JsonSerializer.SerializeToUtf8Bytes(new { format = Format, version = Version }), ct);
        await blobs.FlushAsync(ct);
        return adopted ? StoreInitOutcome.Adopted : StoreInitOutcome.Created;
    }

    private static void CheckVersion(IBlobStore blobs, int version)
    {
        if (version <= Version) return;
        var message = $"{blobs.Describe} is a version {version} snapshot store; this code reads version {Version} "
            + "(upgrade it)";
        throw new SnapshotException(message) { Parameter = "store" };
    }

    private static string Shorten(string text) => text.Length <= 40 ? text : text[..40] + "...";

    private static async Task<bool> HoldsAnyAsync(IBlobStore blobs, string prefix, CancellationToken ct)
    {
        await foreach (var _ in blobs.ListAsync(prefix, ct)) return true;
        return false;
    }
}
