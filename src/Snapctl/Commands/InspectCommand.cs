using System.CommandLine;
using Snapshots.Store.Layers;

namespace Snapshots.Snapctl.Commands;

/// <summary>Shows a manifest and its chain without any key: what gc and an operator can see.</summary>
public static class InspectCommand
{
    public static Command Create()
    {
        var store = CommonOptions.Store();
        var name = CommonOptions.Name();
        var json = CommonOptions.Json();
        var cmd = new Command("inspect", "Show a snapshot's manifest and chain (needs no key)") { store, name, json };
        cmd.SetAction(async (pr, ct) =>
        {
            var catalog = new SnapshotCatalog(CommonOptions.OpenStore(pr.GetValue(store)!));
            var layers = new List<LayerInfo>();
            string? next = pr.GetValue(name)!;
            while (next is not null && layers.Count < SnapshotChain.MaxDepth)
            {
                var m = await catalog.LoadAsync(next, ct);
                layers.Add(LayerInfo.Of(m));
                next = m.ParentName;
            }
            if (pr.GetValue(json)) { Output.WriteJson(new { name = pr.GetValue(name), chain = layers }); return 0; }
            foreach (var l in layers) Console.WriteLine(l.Line());
            return 0;
        });
        return cmd;
    }
}
