using System.CommandLine;

namespace Snapshots.Snapctl.Commands;

/// <summary>The chunks that differ between two snapshots' resolved images, from the manifests alone (no key).
/// Chunk names stand for content only within one trust domain and salt: across tenant domains identical bytes
/// have different names, and the result says so.</summary>
public static class DiffCommand
{
    public static Command Create()
    {
        var store = CommonOptions.Store();
        var a = new Argument<string>("A") { Description = "A snapshot" };
        var b = new Argument<string>("B") { Description = "The snapshot to compare it with" };
        var json = CommonOptions.Json();
        var cmd = new Command("diff", "Show the chunks whose names differ between two snapshots' images (no key "
            + "needed)")
        {
            store, a, b, json,
        };
        cmd.SetAction(async (pr, ct) =>
        {
            using var host = await CommonOptions.OpenHostAsync(pr, store, ct);
            var d = await host.DiffAsync(pr.GetValue(a)!, pr.GetValue(b)!, ct);
            if (pr.GetValue(json))
            {
                Output.WriteJson(d);
                return 0;
            }
            Console.WriteLine($"{d.A} vs {d.B}: {d.DifferingChunks} of {d.Chunks} chunks differ "
                + $"({Output.Bytes(d.DifferingBytes)} in {d.Ranges.Count} ranges), {d.SameChunks} same");
            foreach (var r in d.Ranges)
            {
                Console.WriteLine($"  chunks {r.FirstChunk}-{r.LastChunk}: bytes {r.Offset}-{r.Offset + r.Length} "
                    + $"({Output.Bytes(r.Length)})");
            }
            if (d.Note is not null) Console.WriteLine($"note: {d.Note}");
            return 0;
        });
        return cmd;
    }
}
