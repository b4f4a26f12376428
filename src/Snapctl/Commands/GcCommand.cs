using System.CommandLine;
using Snapshots.Store.Layers;

namespace Snapshots.Snapctl.Commands;

public static class GcCommand
{
    public static Command Create()
    {
        var store = CommonOptions.Store();
        var json = CommonOptions.Json();
        var cmd = new Command("gc", "Delete chunks no manifest or running build references") { store, json };
        cmd.SetAction(async (pr, ct) =>
        {
            var result = await new GarbageCollector(CommonOptions.OpenStore(pr.GetValue(store)!)).CollectAsync(ct);
            if (pr.GetValue(json)) { Output.WriteJson(result); return 0; }
            Console.WriteLine($"gc: {result.Manifests} manifests, {result.LiveLeases} running builds; " +
                $"{result.ChunksScanned} chunks scanned, {result.ChunksReferenced} referenced, " +
                $"{result.ChunksDeleted} deleted ({Output.Bytes(result.BytesDeleted)}), " +
                $"{result.ChunksReclaimedByBuilds} reclaimed by builds; {result.StaleLeasesRemoved} stale leases and " +
                $"{result.TempFilesRemoved} temp files removed");
            return 0;
        });
        return cmd;
    }
}
