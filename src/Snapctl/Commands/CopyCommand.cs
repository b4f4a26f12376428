using System.CommandLine;
using System.Globalization;

namespace Snapshots.Snapctl.Commands;

/// <summary>Copies a snapshot and its parents between stores: chunks first (each checked against its name),
/// each manifest last, parents before children; chunks and identical manifests already there are skipped. Needs
/// no key: it copies ciphertext.</summary>
public static class CopyCommand
{
    public static Command Create()
    {
        var from = new Option<string>("--from")
        {
            Description = "The store to copy from (as --store) (default: $SNAPSHOTS_STORE)",
        };
        var to = new Option<string>("--to") { Description = "The store to copy to (as --store)", Required = true };
        var name = CommonOptions.Name();
        var parallel = new Option<int>("--parallel")
        {
            Description = "Chunks copied at once",
            DefaultValueFactory = _ => 16,
        };
        var json = CommonOptions.Json();
        var cmd = new Command("cp", "Copy a snapshot and its parents to another store (verified; idempotent)")
        {
            from, to, name, parallel, json,
        };
        cmd.SetAction(async (pr, ct) =>
        {
            using var source = await CommonOptions.OpenHostAsync(pr, from, ct);
            using var destination = await CommonOptions.OpenHostAsync(pr, to, ct);
            bool asJson = pr.GetValue(json);
            var r = await Output.WithProgressAsync($"cp {pr.GetValue(name)}",
                p => source.CopyToAsync(destination, pr.GetValue(name)!, pr.GetValue(parallel), p, ct));
            if (asJson)
            {
                Output.WriteJson(r);
                return 0;
            }
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"copied '{r.Name}' to {r.To}: "
                + $"{r.ManifestsCopied.Count} manifests ({r.ManifestsPresent.Count} already there), {r.ChunksCopied} "
                + $"chunks ({Output.Bytes(r.CopiedBytes)}; {r.ChunksPresent} already there) in {r.Seconds:F2} s"));
            return 0;
        });
        return cmd;
    }
}
