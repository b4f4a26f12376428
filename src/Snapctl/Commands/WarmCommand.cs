using System.CommandLine;
using System.Globalization;

namespace Snapshots.Snapctl.Commands;

/// <summary>Pre-fills the local disk cache with every chunk a snapshot's image reads. Needs no key: the cache
/// holds ciphertext, and chunk names are readable in the manifests.</summary>
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
            var r = await Output.WithProgressAsync($"warm {pr.GetValue(name)}", asJson,
                p => host.WarmAsync(pr.GetValue(name)!, settings, pr.GetValue(parallel), p, ct));
            if (asJson)
            {
                Output.WriteJson(r);
                return 0;
            }
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"warmed '{r.Name}': {r.Chunks} chunks, {Output.Bytes(r.Bytes)} in {r.Seconds:F2} s"));
            Output.PrintTiers(r.Tiers);
            return 0;
        });
        return cmd;
    }
}
