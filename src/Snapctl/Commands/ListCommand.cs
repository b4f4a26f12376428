using System.CommandLine;

namespace Snapshots.Snapctl.Commands;

public static class ListCommand
{
    public static Command Create()
    {
        var store = CommonOptions.Store();
        var json = CommonOptions.Json();
        var cmd = new Command("ls", "List the snapshots in a store") { store, json };
        cmd.SetAction(async (pr, ct) =>
        {
            using var host = await CommonOptions.OpenHostAsync(pr, store, ct);
            var rows = await host.ListAsync(ct);
            if (pr.GetValue(json))
            {
                // A readable layer prints as itself; an unreadable one as its name and error.
                var shown = new List<object>(rows.Count);
                foreach (var r in rows) shown.Add(r.Layer is { } l ? l : new { r.Name, r.Error });
                Output.WriteJson(new { snapshots = shown });
                return 0;
            }
            foreach (var r in rows) Console.WriteLine(r.Layer is { } l ? LayerText.Row(l) : $"{r.Name,-24} ERROR "
                + $"{r.Error}");
            return 0;
        });
        return cmd;
    }
}
