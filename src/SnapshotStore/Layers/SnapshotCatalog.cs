using System.Runtime.CompilerServices;
using Snapshots.Store.Manifests;
using Snapshots.Store.Origin;

namespace Snapshots.Store.Layers;

/// <summary>The snapshots an origin holds: one manifest object per name (manifests/NAME.manifest). Publishing
/// replaces it atomically; a name always resolves to one exact manifest, whose hash children bind to.</summary>
public sealed class SnapshotCatalog(IBlobStore blobs)
{
    public const string Prefix = "manifests/";
    private const string Suffix = ".manifest";

    public IBlobStore Blobs { get; } = blobs;

    public static string KeyOf(string name) => Prefix + SnapshotName.Validate(name) + Suffix;

    public static bool TryParseKey(string key, out string name)
    {
        name = "";
        if (!key.StartsWith(Prefix, StringComparison.Ordinal) || !key.EndsWith(Suffix, StringComparison.Ordinal))
            return false;
        name = key[Prefix.Length..^Suffix.Length];
        return SnapshotName.IsValid(name);
    }

    public async Task<Manifest?> TryLoadAsync(string name, CancellationToken ct = default)
    {
        var bytes = await Blobs.ReadAllAsync(KeyOf(name), ManifestCodec.MaxManifestBytes, ct);
        if (bytes is null) return null;
        var m = ManifestCodec.Parse(bytes, $"'{name}' in {Blobs.Describe}");
        if (m.Name != name)
        {
            throw new ManifestFormatException(
                $"manifest '{name}' in {Blobs.Describe} is for snapshot '{m.Name}' (swapped manifest)");
        }
        return m;
    }

    public async Task<Manifest> LoadAsync(string name, CancellationToken ct = default) =>
        await TryLoadAsync(name, ct) ?? throw new SnapshotNotFoundException(name, Blobs.Describe);

    public Task<bool> ExistsAsync(string name, CancellationToken ct = default) =>
        Blobs.ExistsAsync(KeyOf(name), ct).AsTask();

    /// <summary>Publishes durably: the caller has already flushed every chunk the manifest names. With
    /// <paramref name="replace"/> false the name must be new, and of two concurrent publishers one wins: the other
    /// gets an <see cref="InvalidInputException"/> naming the race (parameter "replace").</summary>
    public async Task PublishAsync(string name, byte[] manifestBytes, bool replace, CancellationToken ct = default)
    {
        if (replace)
        {
            await Blobs.PutAsync(KeyOf(name), manifestBytes, ct);
            return;
        }
        if (!await Blobs.PutNewAsync(KeyOf(name), manifestBytes, ct))
        {
            throw new InvalidInputException($"snapshot '{name}' was published in {Blobs.Describe} by another build "
                + "while this one ran; nothing of this build was published (its chunks are gc's)", "replace");
        }
    }

    public async Task DeleteAsync(string name, CancellationToken ct = default) =>
        await Blobs.DeleteAsync(KeyOf(name), ct);

    public async IAsyncEnumerable<string> ListNamesAsync([EnumeratorCancellation] CancellationToken ct = default)
    {
        var names = new List<string>();
        await foreach (var blob in Blobs.ListAsync(Prefix, ct))
            if (TryParseKey(blob.Key, out var name)) names.Add(name);
        names.Sort(StringComparer.Ordinal);
        foreach (var n in names) yield return n;
    }
}
