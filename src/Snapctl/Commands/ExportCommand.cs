using System.CommandLine;
using Snapshots.Store.Keys;
using Snapshots.Store.Layers;

namespace Snapshots.Snapctl.Commands;

public static class ExportCommand
{
    public static Command Create()
    {
        var store = CommonOptions.Store();
        var keyring = CommonOptions.Keyring();
        var name = CommonOptions.Name();
        var output = new Option<string>("--out", "-o")
        {
            Description = "Where to write the full image (sparse where zero)", Required = true,
        };
        var tenant = CommonOptions.Tenant();
        var cacheDir = CommonOptions.CacheDir();
        var cacheSize = CommonOptions.CacheSize();
        var distributed = CommonOptions.Distributed();
        var deadline = CommonOptions.Deadline();
        var json = CommonOptions.Json();
        var cmd = new Command("export", "Write a snapshot's full memory image, resolved through its chain")
        {
            store, keyring, name, output, tenant, cacheDir, cacheSize, distributed, deadline, json,
        };
        cmd.SetAction(async (pr, ct) =>
        {
            var blobs = CommonOptions.OpenStore(pr.GetValue(store)!);
            var chain = await SnapshotChain.OpenAsync(
                new SnapshotCatalog(blobs), new LocalKeyring(pr.GetValue(keyring)!), pr.GetValue(name)!,
                pr.GetValue(tenant), ct);
            using var reader = CommonOptions.Reader(
                blobs, pr.GetValue(cacheDir), pr.GetValue(cacheSize)!, pr.GetValue(distributed), pr.GetValue(deadline));
            bool asJson = pr.GetValue(json);
            var result = await Output.WithProgressAsync($"export {chain.Name}", chain.ImageSize, asJson,
                p => new ImageExporter(reader).ExportAsync(chain, pr.GetValue(output)!, 0, p, ct));
            if (asJson)
            {
                Output.WriteJson(new
                {
                    result.Name, result.Path, result.ImageBytes, result.Chunks, result.DataChunks, result.ZeroChunks,
                    result.Seconds, tiers = TierReport.Of(reader),
                });
                return 0;
            }
            Console.WriteLine($"exported '{result.Name}' to {result.Path}: {Output.Bytes(result.ImageBytes)}, " +
                $"{result.DataChunks} data + {result.ZeroChunks} zero chunks in {result.Seconds:F2} s");
            TierReport.Print(reader);
            return 0;
        });
        return cmd;
    }
}
