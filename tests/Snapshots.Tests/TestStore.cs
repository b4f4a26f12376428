using Snapshots.Host;
using Snapshots.Store.Chunks;
using Snapshots.Store.Images;
using Snapshots.Store.Keys;
using Snapshots.Store.Layers;
using Snapshots.Store.Origin;

namespace Snapshots.Tests;

/// <summary>A scratch directory with a file origin, a keyring and generated images; removed on dispose.</summary>
public sealed class TestStore : IDisposable
{
    public string Dir { get; } = Path.Combine(Path.GetTempPath(), "snapshots-tests", Guid.NewGuid().ToString("N"));
    public string StoreDir => Path.Combine(Dir, "store");
    public string KeyringDir => Path.Combine(Dir, "keyring");
    public FileBlobStore Blobs { get; }
    public LocalKeyring Keys { get; }
    public SnapshotCatalog Catalog { get; }

    /// <summary>The host library over this store and keyring: the recipes the CLI runs, in-process.</summary>
    public SnapshotHost Host { get; }

    public TestStore()
    {
        Directory.CreateDirectory(Dir);
        Blobs = new FileBlobStore(StoreDir, create: true);
        // Made on purpose, as `snapctl init` makes one: the CLI refuses an unmarked directory.
        StoreMarker.InitAsync(Blobs).GetAwaiter().GetResult();
        Keys = new LocalKeyring(KeyringDir);
        Catalog = new SnapshotCatalog(Blobs);
        Host = new SnapshotHost(Blobs, Keys);
    }

    public string Path_(string name) => Path.Combine(Dir, name);

    /// <summary>Generates an image; small by default so tests stay fast.</summary>
    public string Image(
        string name, int runtime = 0, int function = 0, int clone = 0, long size = 32L << 20, int os = 1)
    {
        var path = Path_(name);
        var spec = new VmImageSpec
        {
            Size = size, OsSeed = os, RuntimeSeed = runtime, FunctionSeed = function, CloneSeed = clone,
        };
        VmImageGenerator.Write(spec, path);
        return path;
    }

    public Task<BuildResult> BuildAsync(
        string name, string memory, string? parent = null, string? tenant = null,
        Store.Manifests.LayerKind? layer = null, bool replace = false) =>
        Host.BuildAsync(new BuildRequest
        {
            Name = name, MemoryPath = memory, Parent = parent, Tenant = tenant, Replace = replace,
            // Generated images are full snapshots, sparse where zero: their holes are zero pages.
            HolesAreZero = parent is not null,
            // The tests' habit, said explicitly (the store never guesses a trust domain): a tenant makes a
            // function layer, no parent an os layer, a parent a runtime layer.
            Layer = layer ?? (tenant is not null ? Store.Manifests.LayerKind.Function
                : parent is null ? Store.Manifests.LayerKind.Os : Store.Manifests.LayerKind.Runtime),
        });

    public Task<SnapshotChain> OpenAsync(string name, string? tenant = null) =>
        SnapshotChain.OpenAsync(Catalog, Keys, name, tenant);

    public ChunkReader Reader(params IChunkCache[] caches) => new(new OriginChunkStore(Blobs), caches);

    public async Task<string> ExportAsync(
        string name, string? tenant = null, string? outName = null, params IChunkCache[] caches)
    {
        var output = Path_(outName ?? name + ".out");
        if (caches.Length == 0)
        {
            await Host.ExportAsync(name, tenant, output, TierSettings.OriginOnly);
            return output;
        }
        var chain = await OpenAsync(name, tenant);
        using var reader = Reader(caches); // disposing waits for the background cache fills
        await new ImageExporter(reader).ExportAsync(chain, output);
        return output;
    }

    public IEnumerable<string> ChunkFiles() =>
        Directory.Exists(Path.Combine(StoreDir, "chunks"))
            ? Directory.EnumerateFiles(Path.Combine(StoreDir, "chunks"), "*", SearchOption.AllDirectories)
                .Where(f => !f.EndsWith(".tmp"))
            : [];

    public static bool SameBytes(string a, string b)
    {
        var x = File.ReadAllBytes(a);
        var y = File.ReadAllBytes(b);
        return x.AsSpan().SequenceEqual(y);
    }

    public void Dispose()
    {
        Blobs.Dispose();
        // A ChunkFs mount whose server a test killed stays in the mount table, dead, until detached: the test's
        // directory goes, and its mounts with it.
        foreach (var line in File.ReadAllLines("/proc/self/mounts"))
        {
            string point = line.Split(' ')[1].Replace("\\040", " ", StringComparison.Ordinal);
            if (point.StartsWith(Dir + "/", StringComparison.Ordinal))
                Snapshots.ChunkFs.Native.LibC.umount2(point, Snapshots.ChunkFs.Native.LibC.MNT_DETACH);
        }
        try { Directory.Delete(Dir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
