using System.CommandLine;

namespace Snapshots.Snapctl.Commands;

public static class GcCommand
{
    public static Command Create()
    {
        var store = CommonOptions.Store();
        var json = CommonOptions.Json();
        var dryRun = new Option<bool>("--dry-run")
        {
            Description = "Report what would be deleted (--json: the chunk names); delete nothing",
        };
        var cmd = new Command("gc", "Delete chunks no manifest or running build references") { store, dryRun, json };
        cmd.SetAction(async (pr, ct) =>
        {
            using var host = await CommonOptions.OpenHostAsync(pr, store, ct);
            var r = await Output.WithActivityAsync("gc", () => pr.GetValue(dryRun)
                ? host.CollectGarbageDryRunAsync(ct) : host.CollectGarbageAsync(ct));
            if (pr.GetValue(json))
            {
                Output.WriteJson(r);
                return 0;
            }
            if (r.DryRun)
            {
                Console.WriteLine($"gc --dry-run: {r.Manifests} manifests, {r.LiveLeases} running builds; "
                    + $"{r.ChunksScanned} chunks scanned, {r.ChunksReferenced} referenced; would delete "
                    + $"{r.ChunksDeleted} chunks ({Output.Bytes(r.DeletedBytes)}), {r.StaleLeasesRemoved} stale leases "
                    + $"and {r.TempFilesRemoved} temp files; deleted nothing");
                return 0;
            }
            Console.WriteLine($"gc: {r.Manifests} manifests, {r.LiveLeases} running builds; {r.ChunksScanned} chunks " +
                $"scanned, {r.ChunksReferenced} referenced, {r.ChunksDeleted} deleted "
                    + $"({Output.Bytes(r.DeletedBytes)}), " +
                $"{r.ChunksReclaimedByBuilds} reclaimed by builds; {r.StaleLeasesRemoved} stale leases and " +
                $"{r.TempFilesRemoved} temp files removed");
            return 0;
        });
        return cmd;
    }
}
