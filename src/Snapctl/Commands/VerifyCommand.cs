using System.CommandLine;
using System.Globalization;

namespace Snapshots.Snapctl.Commands;

public static class VerifyCommand
{
    public static Command Create()
    {
        var store = CommonOptions.Store();
        var keyring = CommonOptions.Keyring();
        var allowRollback = CommonOptions.AllowRollback();
        var name = CommonOptions.Name();
        var tenant = CommonOptions.Tenant();
        var json = CommonOptions.Json();
        var repair = new Option<bool>("--repair")
        {
            Description = "Rewrite each bad chunk from a tier that holds it intact (--cache-dir, --distributed), "
                + "then verify again",
        };
        var tiers = new CommonOptions.Tiers();
        var cmd = new Command("verify", "Read every chunk of a snapshot's chain from the origin (no cache), verify "
            + "and decrypt it")
        {
            store, keyring, name, tenant, json, allowRollback, repair,
        };
        CommonOptions.AddAll(cmd, tiers.All);
        cmd.SetAction(async (pr, ct) =>
        {
            using var host = await CommonOptions.OpenHostAsync(pr, store, ct, keyring, allowRollback);
            bool asJson = pr.GetValue(json);
            if (pr.GetValue(repair))
            {
                var fixedUp = await Output.WithActivityAsync($"verify {pr.GetValue(name)} --repair",
                    () => host.RepairAsync(pr.GetValue(name)!, pr.GetValue(tenant), tiers.From(pr), ct));
                if (asJson) Output.WriteJson(fixedUp);
                else
                {
                    Console.WriteLine($"'{pr.GetValue(name)}': {fixedUp.Found.Count} bad chunk(s), "
                        + $"{fixedUp.Repaired.Count} repaired from the tiers; now "
                        + (fixedUp.After.Ok ? "intact" : $"{fixedUp.After.Bad.Count} bad"));
                    foreach (var b in fixedUp.After.Bad) Console.WriteLine($"  still bad: layer '{b.Layer}' index "
                        + $"{b.Index} chunk {b.Chunk}: {b.Problem} (rebuild it with --verify-existing)");
                }
                return fixedUp.After.Ok ? 0 : 1;
            }
            var r = await Output.WithProgressAsync($"verify {pr.GetValue(name)}",
                p => host.VerifyAsync(pr.GetValue(name)!, pr.GetValue(tenant), p, ct));
            if (asJson)
            {
                Output.WriteJson(
                    new { r.Name, r.Ok, r.Layers, r.ChunksChecked, r.CheckedBytes, r.Seconds, bad = r.Bad });
            }
            else
            {
                Console.WriteLine(r.Ok
                    ? string.Create(CultureInfo.InvariantCulture,
                        $"'{r.Name}' is intact: {r.ChunksChecked} chunks in {r.Layers} layers verified in "
                            + $"{r.Seconds:F2} s")
                    : $"'{r.Name}' has {r.Bad.Count} bad chunk(s) of {r.ChunksChecked}:");
                foreach (var b in r.Bad) Console.WriteLine($"  layer '{b.Layer}' index {b.Index} chunk {b.Chunk}: "
                    + $"{b.Problem}");
            }
            if (!r.Ok)
                Console.Error.WriteLine($"snapctl: error: snapshot '{r.Name}' failed verification ({r.Bad.Count} bad "
                    + "chunks)");
            return r.Ok ? 0 : 1;
        });
        return cmd;
    }
}
