using System.CommandLine;
using Snapshots.Store.Chunks;
using Snapshots.Store.Layers;
using Snapshots.Store.Manifests;

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
            var layers = new List<object>();
            string? next = pr.GetValue(name)!;
            while (next is not null && layers.Count < SnapshotChain.MaxDepth)
            {
                var m = await catalog.LoadAsync(next, ct);
                layers.Add(Describe(m));
                next = m.ParentName;
            }
            if (pr.GetValue(json)) { Output.WriteJson(new { name = pr.GetValue(name), chain = layers }); return 0; }
            foreach (dynamic l in layers)
                Console.WriteLine($"{l.name}: {l.layer} layer, domain {l.domain}, {Output.Bytes(l.imageBytes)} image, {l.chunks} chunks, " +
                    $"{l.dataEntries} data + {l.zeroEntries} zero entries, manifest {Output.Bytes(l.manifestBytes)} ({l.manifestFraction:P4}), " +
                    $"parent {l.parent ?? "-"}, created {l.created:u}, hash {l.manifestHash}");
            return 0;
        });
        return cmd;
    }

    public static object Describe(Manifest m) => new
    {
        name = m.Name,
        layer = m.Layer.ToText(),
        domain = m.Domain.Id,
        parent = m.ParentName,
        imageBytes = m.ImageSize,
        chunks = ChunkGeometry.ChunkCount(m.ImageSize),
        dataEntries = m.Entries.Count(e => e.Kind == EntryKind.Data),
        zeroEntries = m.Entries.Count(e => e.Kind == EntryKind.Zero),
        manifestBytes = m.SerializedSize,
        manifestFraction = m.SerializedSize / (double)m.ImageSize,
        manifestHash = Convert.ToHexStringLower(m.Hash),
        formatVersion = ManifestCodec.Version,
        created = m.Created,
    };
}
