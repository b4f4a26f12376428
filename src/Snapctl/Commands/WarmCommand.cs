using System.CommandLine;
using Snapshots.Store;
using Snapshots.Store.Layers;
using Snapshots.Store.Tiers;

namespace Snapshots.Snapctl.Commands;

/// <summary>Pre-fills the local disk cache with every chunk a snapshot's image reads. Needs no key: the cache
/// holds ciphertext, and chunk names are readable in the manifests.</summary>
public static class WarmCommand
{
    public static Command Create()
    {
        var store = CommonOptions.Store();
        var name = CommonOptions.Name();
        var cacheDir = CommonOptions.CacheDir();
        var cacheSize = CommonOptions.CacheSize();
        var distributed = CommonOptions.Distributed();
        var deadline = CommonOptions.Deadline();
        var parallel = new Option<int>("--parallel")
        {
            Description = "Chunks fetched at once", DefaultValueFactory = _ => 16,
        };
        var json = CommonOptions.Json();
        var cmd = new Command(
            "warm", "Pre-fill the local cache with a snapshot's chunks (from the distributed cache or the origin)")
        {
            store, name, cacheDir, cacheSize, distributed, deadline, parallel, json,
        };
        cmd.SetAction(async (pr, ct) =>
        {
            if (pr.GetValue(cacheDir) is null)
                throw new InvalidInputException("warm needs --cache-dir: the local cache to fill");
            if (pr.GetValue(parallel) is < 1 or > 256) throw new InvalidInputException("--parallel must be 1-256");
            var blobs = CommonOptions.OpenStore(pr.GetValue(store)!);
            var snapshot = pr.GetValue(name)!;
            using var reader = CommonOptions.Reader(
                blobs, pr.GetValue(cacheDir), pr.GetValue(cacheSize)!, pr.GetValue(distributed), pr.GetValue(deadline));
            var names = await ChainChunkNames.ResolveAsync(new SnapshotCatalog(blobs), snapshot, ct);
            bool asJson = pr.GetValue(json);
            long estimate = (long)names.Count * Store.Chunks.ChunkGeometry.ChunkSize;
            var result = await Output.WithProgressAsync($"warm {snapshot}", estimate, asJson,
                p => CacheWarmer.WarmAsync(reader, snapshot, names, pr.GetValue(parallel), p, ct));
            if (asJson)
            {
                Output.WriteJson(new
                {
                    result.Name, result.Chunks, result.Bytes, result.Seconds, tiers = TierReport.Of(reader),
                });
                return 0;
            }
            Console.WriteLine($"warmed '{result.Name}': {result.Chunks} chunks, {Output.Bytes(result.Bytes)} " +
                $"in {result.Seconds:F2} s");
            TierReport.Print(reader);
            return 0;
        });
        return cmd;
    }
}
