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
        var cmd = new Command("verify", "Read every chunk of a snapshot's chain from the origin (no cache), verify "
            + "and decrypt it")
        {
            store, keyring, name, tenant, json, allowRollback,
        };
        cmd.SetAction(async (pr, ct) =>
        {
            using var host = CommonOptions.OpenHost(pr, store, keyring, allowRollback: allowRollback);
            bool asJson = pr.GetValue(json);
            var r = await Output.WithProgressAsync($"verify {pr.GetValue(name)}", asJson,
                p => host.VerifyAsync(pr.GetValue(name)!, pr.GetValue(tenant), p, ct));
            if (asJson)
            {
                Output.WriteJson(
                    new { r.Name, r.Ok, r.Layers, r.ChunksChecked, r.BytesChecked, r.Seconds, bad = r.Bad });
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
