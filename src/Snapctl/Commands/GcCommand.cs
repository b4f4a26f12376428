using System.CommandLine;

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
            using var host = await CommonOptions.OpenHostAsync(pr, store, ct);
            var r = await host.CollectGarbageAsync(ct);
            if (pr.GetValue(json))
            {
                Output.WriteJson(r);
                return 0;
            }
            Console.WriteLine($"gc: {r.Manifests} manifests, {r.LiveLeases} running builds; {r.ChunksScanned} chunks " +
                $"scanned, {r.ChunksReferenced} referenced, {r.ChunksDeleted} deleted "
                    + $"({Output.Bytes(r.BytesDeleted)}), " +
                $"{r.ChunksReclaimedByBuilds} reclaimed by builds; {r.StaleLeasesRemoved} stale leases and " +
                $"{r.TempFilesRemoved} temp files removed");
            return 0;
        });
        return cmd;
    }
}
