using System.Diagnostics;
using Amazon.S3.Model;
using Snapshots.Store.Cache;
using Snapshots.Store.Chunks;
using StackExchange.Redis;

namespace Snapshots.TierBench;

/// <summary>
/// Per-tier fetch latency of the same 512 KiB objects, sequential (concurrency 1), our reader against the
/// bare client, interleaved sample by sample in one run so both see the same machine. Then the same with one
/// Redis node stalled (SIGSTOP): the whole layout (deadline + breaker, falls back to the origin) against the
/// striped 4-of-5 layout (rebuilds from the first 4 stripes).
/// </summary>
public static class LatencyScenario
{
    public static async Task<string> RunAsync(Setup s, int objects, int samples)
    {
        var names = new ChunkName[objects];
        var disk = new DiskChunkCache(s.DiskDir, 4L << 30);
        var db = s.Whole.Database;
        Console.Error.WriteLine(
            $"filling {objects} objects into s3rver, redis (whole, striped, bare) and the disk cache");
        for (int i = 0; i < objects; i++)
        {
            var bytes = BenchChunks.Bytes(1, i);
            var name = names[i] = BenchChunks.NameOf(bytes);
            await s.Origin.PutIfAbsentAsync(name, bytes);
            await s.Whole.PutAsync(name, bytes);
            await s.Striped.PutAsync(name, bytes);
            await db.StringSetAsync(BareKey(name), bytes);
            await disk.PutAsync(name, bytes);
        }
        await s.Whole.FlushFillsAsync(TimeSpan.FromSeconds(10));
        await s.Striped.FlushFillsAsync(TimeSpan.FromSeconds(10));

        var buffer = new byte[BenchChunks.Size];
        var readers = new (string Label, ChunkReader Reader)[]
        {
            ("reader: local disk", s.Reader(disk)),
            ("reader: redis whole", s.Reader(s.Whole)),
            ("reader: redis striped 4-of-5", s.Reader(s.Striped)),
            ("reader: s3rver origin", s.Reader()),
        };
        var bare = new (string Label, Func<ChunkName, Task> Get)[]
        {
            ("bare: file read", n => { BareFileRead(s.DiskDir, n, buffer); return Task.CompletedTask; }),
            ("bare: SE.Redis GET", async n => { using var lease = await db.StringGetLeaseAsync(BareKey(n)); }),
            // The floor for any reader that verifies: the bare GET plus the BLAKE3 check and the copy out.
            ("bare: SE.Redis GET + verify + copy", async n =>
            {
                using var lease = await db.StringGetLeaseAsync(BareKey(n));
                if (!n.Matches(lease!.Span)) throw new InvalidDataException("bench object changed");
                lease.Span.CopyTo(buffer);
            }),
            ("bare: SDK GET", n => BareS3GetAsync(s, n, buffer)),
        };

        var healthy = new Recorder();
        await MeasureAsync(healthy, names, samples, readers, bare, buffer);
        foreach (var (label, r) in readers)
            Console.Error.WriteLine(
                $"{label}: tier hits {string.Join(", ", r.Counters.Select(c => $"{c.Tier}={c.Hits}"))}");

        // One of five masters stalled: the defence (striped) against none (whole: deadline, breaker, origin).
        int stalledPort = s.Services.RedisBase + 1;
        var stalledReaders = new[] { readers[1], readers[2] };
        var stalled = new Recorder();
        Console.Error.WriteLine($"stalling redis node {stalledPort} (SIGSTOP)");
        s.Services.Signal(stalledPort, "STOP");
        try { await MeasureAsync(stalled, names, samples, stalledReaders, [], buffer); }
        finally { s.Services.Signal(stalledPort, "CONT"); }
        foreach (var (label, r) in stalledReaders)
        {
            var hits = string.Join(", ", r.Counters.Select(c => $"{c.Tier}={c.Hits}/t{c.Timeouts}"));
            Console.Error.WriteLine($"stalled {label}: tier hits {hits}");
        }

        return Report(healthy, stalled, s);
    }

    private static async Task MeasureAsync(Recorder rec, ChunkName[] names, int samples,
        (string Label, ChunkReader Reader)[] readers, (string Label, Func<ChunkName, Task> Get)[] bare, byte[] buffer)
    {
        var rng = new Random(7);
        int warmup = Math.Min(50, samples / 10);
        var order = new List<int>();
        for (int i = 0; i < readers.Length + bare.Length; i++) order.Add(i);
        for (int i = 0; i < samples + warmup; i++)
        {
            var name = names[rng.Next(names.Length)];
            rng.Shuffle(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(order));
            foreach (int m in order)
            {
                long start = Stopwatch.GetTimestamp();
                string label;
                if (m < readers.Length)
                {
                    label = readers[m].Label;
                    await readers[m].Reader.ReadAsync(name, buffer, "bench");
                }
                else
                {
                    label = bare[m - readers.Length].Label;
                    await bare[m - readers.Length].Get(name);
                }
                if (i >= warmup) rec.Record(label, start);
            }
        }
    }

    private static string Report(Recorder healthy, Recorder stalled, Setup s)
    {
        var sb = new System.Text.StringBuilder();
        sb.AppendLine("### Healthy cluster, concurrency 1").AppendLine().AppendLine(Recorder.Header);
        foreach (var l in healthy.Order) sb.AppendLine(healthy.Row(l));
        sb.AppendLine().AppendLine("Overhead at p50, our reader / the bare client (target <= 1.3x):").AppendLine();
        void Ratio(string ours, string bare) =>
            sb.AppendLine($"- {ours} / {bare}: **{healthy.P(ours, 50) / (double)healthy.P(bare, 50):0.00}x** " +
                $"(p99 {healthy.P(ours, 99) / (double)healthy.P(bare, 99):0.00}x)");
        Ratio("reader: redis whole", "bare: SE.Redis GET");
        Ratio("bare: SE.Redis GET + verify + copy", "bare: SE.Redis GET");
        Ratio("reader: redis whole", "bare: SE.Redis GET + verify + copy");
        Ratio("reader: redis striped 4-of-5", "bare: SE.Redis GET");
        Ratio("reader: s3rver origin", "bare: SDK GET");
        Ratio("reader: local disk", "bare: file read");
        sb.AppendLine().AppendLine($"### One of {s.Services.Masters} Redis masters stalled (SIGSTOP), concurrency 1")
            .AppendLine().AppendLine(Recorder.Header);
        foreach (var l in stalled.Order) sb.AppendLine(stalled.Row(l));
        sb.AppendLine().AppendLine("Stalled p99 / healthy p99 of the same reader (target <= 2x with the defence):")
            .AppendLine();
        foreach (var l in stalled.Order)
        {
            sb.AppendLine($"- {l}: p99 **{stalled.P(l, 99) / (double)healthy.P(l, 99):0.00}x**, "
                + $"p99.9 {stalled.P(l, 99.9) / (double)healthy.P(l, 99.9):0.00}x");
        }
        sb.AppendLine($"- striped: {s.Striped.Rebuilt} reads rebuilt from parity, {s.Striped.NodeFailures} node "
            + $"requests failed/late, {s.Striped.ShortCircuited} not sent (breaker open)");
        sb.AppendLine($"- whole: {s.Whole.NodeFailures} node requests failed/late, "
            + $"{s.Whole.ShortCircuited} not sent (breaker open)");
        return sb.ToString();
    }

    private static RedisKey BareKey(ChunkName n) => "bench:" + n;

    private static void BareFileRead(string dir, ChunkName n, byte[] buffer)
    {
        var hex = n.ToString();
        using var h = File.OpenHandle(Path.Combine(dir, hex[..2], hex));
        RandomAccess.Read(h, buffer, 0);
    }

    private static async Task BareS3GetAsync(Setup s, ChunkName n, byte[] buffer)
    {
        using var r = await s.BareS3.GetObjectAsync(
            new GetObjectRequest { BucketName = "bench", Key = "tiers/" + OriginChunkStore.KeyOf(n) });
        int total = 0, read;
        while ((read = await r.ResponseStream.ReadAsync(buffer.AsMemory(total))) > 0) total += read;
    }
}
