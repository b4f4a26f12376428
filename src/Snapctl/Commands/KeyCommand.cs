using System.CommandLine;
using Snapshots.Host;

namespace Snapshots.Snapctl.Commands;

/// <summary>`snapctl key ls | create`: the keyring's domain keys, by fingerprint. Keys are created explicitly here,
/// or by a build that needs one (and says so).</summary>
public static class KeyCommand
{
    public static Command Create()
    {
        var cmd = new Command("key", "The keyring's domain keys: list them by fingerprint, or create one");
        cmd.Subcommands.Add(List());
        cmd.Subcommands.Add(New());
        return cmd;
    }

    private static Command List()
    {
        var keyring = CommonOptions.Keyring();
        var json = CommonOptions.Json();
        var cmd = new Command("ls", "List the domains the keyring holds keys for, with each key's fingerprint")
        {
            keyring, json,
        };
        cmd.SetAction(pr =>
        {
            var keys = KeyRecipes.List(CommonOptions.OpenKeyring(pr, keyring));
            if (pr.GetValue(json)) Output.WriteJson(new { keys });
            else
            {
                foreach (var k in keys)
                    Console.WriteLine($"{k.Domain,-40} {k.Fingerprint ?? "refused: " + k.Problem}");
            }
            return 0;
        });
        return cmd;
    }

    private static Command New()
    {
        var keyring = CommonOptions.Keyring();
        var tenant = new Option<string?>("--tenant") { Description = "The tenant whose function-layer key to create" };
        var shared = new Option<bool>("--shared") { Description = "Create the shared domain's key (os, runtime)" };
        var json = CommonOptions.Json();
        var cmd = new Command("create", "Create a domain's key (refused when it has one)")
        {
            keyring, tenant, shared, json,
        };
        cmd.SetAction(pr =>
        {
            if ((pr.GetValue(tenant) is null) == !pr.GetValue(shared))
                throw new UsageException("say --tenant ID or --shared (exactly one)");
            var key = KeyRecipes.Create(CommonOptions.OpenKeyring(pr, keyring), pr.GetValue(tenant));
            if (pr.GetValue(json)) Output.WriteJson(key);
            else Console.WriteLine($"created {key.Domain} {key.Fingerprint}");
            return 0;
        });
        return cmd;
    }
}
