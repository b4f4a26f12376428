using System.CommandLine;
using Snapshots.Host;
using Snapshots.Store.Origin;

namespace Snapshots.Snapctl.Commands;

/// <summary><c>snapctl init</c>: the one command that creates a store (directory or bucket, and its marker).
/// Every other command refuses a location init has not marked.</summary>
public static class InitCommand
{
    public static Command Create()
    {
        var store = CommonOptions.Store();
        var json = CommonOptions.Json();
        var cmd = new Command("init", "Create a store (the directory or S3 bucket, and its marker); "
            + "idempotent, and adopts an unmarked location that already holds snapshots")
        {
            store, json,
        };
        cmd.SetAction(async (pr, ct) =>
        {
            var (outcome, described) = await SnapshotHost.InitAsync(CommonOptions.StoreOptionsOf(pr, store), ct);
            var word = outcome switch
            {
                StoreInitOutcome.Created => "created",
                StoreInitOutcome.Adopted => "adopted",
                _ => "already-initialised",
            };
            if (pr.GetValue(json))
            {
                Output.WriteJson(new { store = described, outcome = word, version = StoreMarker.Version });
                return 0;
            }
            Console.WriteLine(outcome switch
            {
                StoreInitOutcome.Created => $"initialised store {described} (format version {StoreMarker.Version})",
                StoreInitOutcome.Adopted => $"adopted existing snapshots in {described} as a store "
                    + $"(format version {StoreMarker.Version})",
                _ => $"{described} is already a store; nothing to do",
            });
            return 0;
        });
        return cmd;
    }
}
