using System.CommandLine;
using System.Globalization;

namespace Snapshots.Snapctl.Commands;

/// <summary>A store's figures: size, chunks, manifests, dedup ratio, each layer's unique bytes, and with
/// --cache-dir a local cache's occupancy. Needs no key.</summary>
public static class StatsCommand
{
    public static Command Create()
    {
        var store = CommonOptions.Store();
        var cacheDir = new Option<string?>("--cache-dir") { Description = "Also report this local disk cache" };
        var cacheSize = new Option<string>("--cache-size")
        {
            Description = "The cache's budget, for its occupancy (e.g. 20G)",
            DefaultValueFactory = _ => "10G",
        };
        var json = CommonOptions.Json();
        var cmd = new Command("stats", "Show a store's size, dedup ratio and per-layer unique bytes (no key needed)")
        {
            store, cacheDir, cacheSize, json,
        };
        cmd.SetAction(async (pr, ct) =>
        {
            long budget = SizeParser.Parse(pr.GetValue(cacheSize)!, "--cache-size");
            using var host = await CommonOptions.OpenHostAsync(pr, store, ct);
            var s = await host.StatsAsync(pr.GetValue(cacheDir), budget, ct);
            if (pr.GetValue(json))
            {
                Output.WriteJson(s);
                return 0;
            }
            var inv = CultureInfo.InvariantCulture;
            Console.WriteLine($"store {s.Store}: {Output.Bytes(s.StoreBytes)} in all");
            Console.WriteLine($"  {s.Chunks} chunks ({Output.Bytes(s.ChunkBytes)}), {s.Manifests} manifests "
                + $"({Output.Bytes(s.ManifestBytes)}){(s.UnreadableManifests > 0
                    ? $", {s.UnreadableManifests} unreadable (see ls)" : "")}");
            Console.WriteLine(string.Create(inv, $"  images {Output.Bytes(s.LogicalBytes)}; dedup ratio "
                + $"{(s.DedupRatio is { } r ? r.ToString("F2", inv) : "-")} (image bytes / stored chunk bytes)"));
            Console.WriteLine($"  {s.UnreferencedChunks} chunks ({Output.Bytes(s.UnreferencedBytes)}) referenced by "
                + "no manifest (gc's)");
            foreach (var l in s.Layers)
            {
                Console.WriteLine($"  {l.Name,-24} {l.Layer,-8} {l.DataChunks,7} chunks, {l.UniqueChunks,7} its own "
                    + $"({Output.Bytes(l.UniqueBytes)})");
            }
            if (s.Cache is { } c)
            {
                Console.WriteLine(string.Create(inv, $"cache {c.Directory}: {c.Chunks} chunks, "
                    + $"{Output.Bytes(c.Bytes)} of {Output.Bytes(c.BudgetBytes)} ({100 * c.OccupancyRatio:F1} %)"));
            }
            return 0;
        });
        return cmd;
    }
}
