using System.CommandLine;
using Snapshots.Store;
using Snapshots.Store.Layers;

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
            var catalog = new SnapshotCatalog(CommonOptions.OpenStore(pr.GetValue(store)!));
            var rows = new List<object>();
            await foreach (var n in catalog.ListNamesAsync(ct))
            {
                try
                {
                    var m = await catalog.TryLoadAsync(n, ct);
                    if (m is not null) rows.Add(InspectCommand.Describe(m));
                }
                catch (SnapshotException ex)
                {
                    rows.Add(new { name = n, error = ex.Message }); // one bad manifest does not hide the others
                }
            }
            if (pr.GetValue(json)) { Output.WriteJson(new { snapshots = rows }); return 0; }
            foreach (var r in rows) Console.WriteLine(Format(r));
            return 0;
        });
        return cmd;
    }

    private static string Format(object row)
    {
        var t = row.GetType();
        string Get(string p) => t.GetProperty(p)?.GetValue(row)?.ToString() ?? "-";
        if (t.GetProperty("error") is not null) return $"{Get("name"),-24} ERROR {Get("error")}";
        return $"{Get("name"),-24} {Get("layer"),-8} {Get("domain"),-20} {Output.Bytes(long.Parse(Get("imageBytes"))),10}  parent {Get("parent")}";
    }
}
