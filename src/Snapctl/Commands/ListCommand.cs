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
                    if (m is not null) rows.Add(LayerInfo.Of(m));
                }
                catch (SnapshotException ex)
                {
                    rows.Add(new Unreadable(n, ex.Message)); // one bad manifest does not hide the others
                }
            }
            if (pr.GetValue(json)) { Output.WriteJson(new { snapshots = rows }); return 0; }
            foreach (var r in rows)
                Console.WriteLine(
                    r is LayerInfo l ? l.Row() : r is Unreadable u ? $"{u.Name,-24} ERROR {u.Error}" : r.ToString());
            return 0;
        });
        return cmd;
    }

    private sealed record Unreadable(string Name, string Error);
}
