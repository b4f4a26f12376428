using System.CommandLine;

namespace Snapshots.Snapctl.Commands;

public static class RemoveCommand
{
    public static Command Create()
    {
        var store = CommonOptions.Store();
        var name = CommonOptions.Name();
        var force = new Option<bool>("--force") { Description = "Remove even when other snapshots build on it" };
        var tenant = CommonOptions.Tenant();
        var json = CommonOptions.Json();
        var cmd = new Command("rm", "Remove a snapshot's manifest (its chunks go at the next gc)")
        {
            store,
            name,
            force,
            tenant,
            json,
        };
        cmd.SetAction(async (pr, ct) =>
        {
            using var host = await CommonOptions.OpenHostAsync(pr, store, ct);
            var r = await host.RemoveAsync(pr.GetValue(name)!, pr.GetValue(force), pr.GetValue(tenant), ct);
            if (pr.GetValue(json))
            {
                Output.WriteJson(r);
                return 0;
            }
            Console.WriteLine($"removed '{r.Removed}'" + (r.OrphanedChildren.Count > 0
                ? $" (children left without their parent: {string.Join(", ", r.OrphanedChildren)})"
                : ""));
            return 0;
        });
        return cmd;
    }
}
