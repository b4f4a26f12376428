using System.CommandLine;
using Snapshots.Store.Chunks;
using Snapshots.Store.Keys;
using Snapshots.Store.Layers;

namespace Snapshots.Snapctl.Commands;

public static class VerifyCommand
{
    public static Command Create()
    {
        var store = CommonOptions.Store();
        var keyring = CommonOptions.Keyring();
        var name = CommonOptions.Name();
        var tenant = CommonOptions.Tenant();
        var json = CommonOptions.Json();
        var cmd = new Command(
            "verify", "Read every chunk of a snapshot's chain from the origin (no cache), verify and decrypt it")
        {
            store, keyring, name, tenant, json,
        };
        cmd.SetAction(async (pr, ct) =>
        {
            var blobs = CommonOptions.OpenStore(pr.GetValue(store)!);
            var chain = await SnapshotChain.OpenAsync(
                new SnapshotCatalog(blobs), new LocalKeyring(pr.GetValue(keyring)!), pr.GetValue(name)!,
                pr.GetValue(tenant), ct);
            bool asJson = pr.GetValue(json);
            long total = chain.Layers.Sum(l => l.Entries.LongLength) * Store.Chunks.ChunkGeometry.ChunkSize;
            var result = await Output.WithProgressAsync($"verify {chain.Name}", total, asJson,
                p => new ChainVerifier(new OriginChunkStore(blobs)).VerifyAsync(chain, 0, p, ct));
            if (asJson)
                Output.WriteJson(new
                {
                    result.Name, result.Ok, result.Layers, result.ChunksChecked, result.BytesChecked, result.Seconds,
                    bad = result.Bad,
                });
            else
            {
                Console.WriteLine(result.Ok
                    ? $"'{result.Name}' is intact: {result.ChunksChecked} chunks in {result.Layers} layers verified "
                        + $"in {result.Seconds:F2} s"
                    : $"'{result.Name}' has {result.Bad.Count} bad chunk(s) of {result.ChunksChecked}:");
                foreach (var b in result.Bad)
                    Console.WriteLine($"  layer '{b.Layer}' index {b.Index} chunk {b.Chunk}: {b.Problem}");
            }
            if (!result.Ok)
            {
                Console.Error.WriteLine(
                    $"snapctl: error: snapshot '{result.Name}' failed verification ({result.Bad.Count} bad chunks)");
            }
            return result.Ok ? 0 : 1;
        });
        return cmd;
    }
}
