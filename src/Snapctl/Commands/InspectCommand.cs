using System.CommandLine;

namespace Snapshots.Snapctl.Commands;

/// <summary>Shows a manifest and its chain without any key: what gc and an operator can see; and, when the keyring
/// (--keyring) holds the key that wraps a layer, that key's fingerprint.</summary>
public static class InspectCommand
{
    public static Command Create()
    {
        var store = CommonOptions.Store();
        var keyring = CommonOptions.Keyring();
        var name = CommonOptions.Name();
        var json = CommonOptions.Json();
        var cmd = new Command("inspect", "Show a snapshot's manifest and chain (needs no key; names the keyring's "
            + "key for each layer it can open)")
        {
            store, keyring, name, json,
        };
        cmd.SetAction(async (pr, ct) =>
        {
            using var host = await CommonOptions.OpenHostAsync(pr, store, ct, keyring);
            var layers = await host.InspectAsync(pr.GetValue(name)!, ct);
            if (pr.GetValue(json))
            {
                Output.WriteJson(new { name = pr.GetValue(name), chain = layers });
                return 0;
            }
            foreach (var l in layers) Console.WriteLine(LayerText.Line(l));
            return 0;
        });
        return cmd;
    }
}
