using System.CommandLine;
using System.Globalization;

namespace Snapshots.Snapctl.Commands;

/// <summary>Pre-fills the local disk cache (and the distributed one, when given) with every chunk a snapshot's
/// image reads, and returns once they hold them; exit 1 when some fill failed. Needs no key: the caches hold
/// ciphertext, and chunk names are readable in the manifests.</summary>
public static class WarmCommand
{
    public static Command Create()
    {
        var store = CommonOptions.Store();
        var name = CommonOptions.Name();
        var tiers = new CommonOptions.Tiers();
        var parallel = new Option<int>("--parallel")
        {
            Description = "Chunks fetched at once",
            DefaultValueFactory = _ => 16,
        };
        var json = CommonOptions.Json();
        var cmd = new Command("warm", "Pre-fill the local cache with a snapshot's chunks (from the distributed cache "
            + "or the origin)")
        {
            store, name, parallel, json,
        };
        CommonOptions.AddAll(cmd, tiers.All);
        cmd.SetAction(async (pr, ct) =>
        {
            var settings = tiers.From(pr);
            using var host = await CommonOptions.OpenHostAsync(pr, store, ct);
            bool asJson = pr.GetValue(json);
            var r = await Output.WithProgressAsync($"warm {pr.GetValue(name)}",
                p => host.WarmAsync(pr.GetValue(name)!, settings, pr.GetValue(parallel), p, ct));
            if (asJson) Output.WriteJson(r);
            else
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"warmed '{r.Name}': {r.Chunks} chunks, {Output.Bytes(r.Bytes)} in {r.Seconds:F2} s"));
                Output.PrintTiers(r.Tiers);
            }
            // Warm means warm: a cache left without some chunks is a failed warm-up, said after the figures.
            if (!r.Fills.Complete)
            {
                throw new Store.SnapshotException($"warm '{r.Name}': the caches do not hold every chunk: "
                    + $"{r.Fills.Failed} writes failed, {r.Fills.Skipped} skipped, {r.Fills.Pending} still pending "
                    + $"after {CacheWarmerLimit} s");
            }
            return 0;
        });
        return cmd;
    }

    private static double CacheWarmerLimit => Store.Tiers.CacheWarmer.FlushLimit.TotalSeconds;
}
