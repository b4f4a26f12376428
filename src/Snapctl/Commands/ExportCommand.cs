using System.CommandLine;
using System.Globalization;

namespace Snapshots.Snapctl.Commands;

public static class ExportCommand
{
    public static Command Create()
    {
        var store = CommonOptions.Store();
        var keyring = CommonOptions.Keyring();
        var allowRollback = CommonOptions.AllowRollback();
        var name = CommonOptions.Name();
        var output = new Option<string>("--out", "-o")
        {
            Description = "Where to write the full image (sparse where zero)",
            Required = true,
        };
        var tenant = CommonOptions.Tenant();
        var tiers = new CommonOptions.Tiers();
        var json = CommonOptions.Json();
        var cmd = new Command("export", "Write a snapshot's full memory image, resolved through its chain")
        {
            store, keyring, name, output, tenant, json, allowRollback,
        };
        CommonOptions.AddAll(cmd, tiers.All);
        cmd.SetAction(async (pr, ct) =>
        {
            var settings = tiers.From(pr);
            using var host = await CommonOptions.OpenHostAsync(pr, store, ct, keyring, allowRollback);
            bool asJson = pr.GetValue(json);
            var r = await Output.WithProgressAsync($"export {pr.GetValue(name)}",
                p => host.ExportAsync(pr.GetValue(name)!, pr.GetValue(tenant), pr.GetValue(output)!, settings, p, ct));
            if (asJson)
            {
                Output.WriteJson(r);
                return 0;
            }
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"exported '{r.Name}' to {r.Path}: {Output.Bytes(r.ImageBytes)}, {r.DataChunks} data + " +
                $"{r.ZeroChunks} zero chunks in {r.Seconds:F2} s"));
            Output.PrintTiers(r.Tiers);
            return 0;
        });
        return cmd;
    }
}
