using System.CommandLine;
using Snapshots.Store.Cache;
using Snapshots.Store.Chunks;
using Snapshots.Store.Keys;
using Snapshots.Store.Origin;

namespace Snapshots.Snapctl.Commands;

/// <summary>Options shared by the commands, and what they open.</summary>
public static class CommonOptions
{
    public static Option<string> Store() => new("--store", "-s")
    {
        Description = "The origin: a directory or file://DIR ($SNAPSHOTS_STORE)",
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("SNAPSHOTS_STORE") ?? "",
    };

    public static Option<string> Keyring() => new("--keyring")
    {
        Description = "Key provider directory (0600 key files, created on first use; $SNAPSHOTS_KEYRING)",
        DefaultValueFactory = _ => LocalKeyring.DefaultDirectory(),
    };

    public static Option<string> Name() => new("--name", "-n") { Description = "Snapshot name", Required = true };
    public static Option<string?> Tenant() => new("--tenant") { Description = "Tenant whose function layers this request may read or write" };
    public static Option<bool> Json() => new("--json") { Description = "Print the result as JSON" };
    public static Option<string?> CacheDir() => new("--cache-dir") { Description = "Local disk cache directory (ciphertext only)" };
    public static Option<string> CacheSize() => new("--cache-size") { Description = "Local disk cache budget (e.g. 2G)", DefaultValueFactory = _ => "10G" };

    public static IBlobStore OpenStore(string address, bool create = false) => StoreLocation.Open(address, create);

    public static ChunkReader Reader(IBlobStore blobs, string? cacheDir, string cacheSize)
    {
        var origin = new OriginChunkStore(blobs);
        return cacheDir is null
            ? new ChunkReader(origin)
            : new ChunkReader(origin, new DiskChunkCache(cacheDir, SizeParser.Parse(cacheSize, "--cache-size")));
    }
}
