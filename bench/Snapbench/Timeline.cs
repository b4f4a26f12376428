using System.Diagnostics;
using System.Text.Json;

namespace Snapshots.Snapbench;

/// <summary>One restore document as sampled while the restore ran: milliseconds since its POST, the live
/// counters, and its state.</summary>
public sealed record TimelineSample(double Ms, long Faults, long ParkedFaults, long PrefetchedPages,
    long PagesCopied, long ZeroPages, string State);

/// <summary>One chosen restore's document sampled every <see cref="Interval"/> while it runs (GET /v1/restores/ID):
/// faults, parked faults, prefetch and pages copied over time, for the timeline plot. Sampling costs the daemon one
/// small GET per interval; the sampled restore still counts in its strategy's figures.</summary>
public sealed class Timeline(string strategy, string label)
{
    public static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(10);

    private readonly List<TimelineSample> _samples = [];
    private readonly List<double> _missMs = [];

    public string Strategy { get; } = strategy;

    /// <summary>Which restore (the scenario's label for it).</summary>
    public string Label { get; } = label;

    /// <summary>The restore's id, once sampling starts.</summary>
    public string? Id { get; private set; }

    /// <summary>When (ms since the POST) a GET failed: the daemon restarting, say. The gaps in the samples.</summary>
    public IReadOnlyList<double> MissMs
    {
        get
        {
            lock (_samples) return [.. _missMs];
        }
    }

    public IReadOnlyList<TimelineSample> Samples
    {
        get
        {
            lock (_samples) return [.. _samples.OrderBy(s => s.Ms)]; // the ended document may come in last
        }
    }

    /// <summary>Samples restore ID on SNAPD every <see cref="Interval"/> until UNTIL (the VMM's run) completes,
    /// then once more; CLOCK started at the POST. A failed GET is a gap, never an error of the run. The ended
    /// document, when the caller has it, is the last sample (<see cref="Add"/>).</summary>
    public async Task SampleAsync(SnapdDaemon snapd, string id, Stopwatch clock, Task until, CancellationToken ct)
    {
        Id = id;
        while (!until.IsCompleted && !ct.IsCancellationRequested)
        {
            await SampleOnceAsync(snapd, id, clock);
            await Task.WhenAny(until, Task.Delay(Interval, ct));
        }
        await SampleOnceAsync(snapd, id, clock);
    }

    private async Task SampleOnceAsync(SnapdDaemon snapd, string id, Stopwatch clock)
    {
        JsonElement doc;
        try
        {
            doc = await snapd.GetAsync(id);
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException or JsonException
            or TaskCanceledException)
        {
            Miss(clock);
            return;
        }
        if (!Add(doc, clock)) Miss(clock);
    }

    private void Miss(Stopwatch clock)
    {
        lock (_samples) _missMs.Add(Math.Round(clock.Elapsed.TotalMilliseconds, 2));
    }

    /// <summary>Adds DOC (a restore document) as a sample at CLOCK's time; false if it is not one.</summary>
    public bool Add(JsonElement? doc, Stopwatch clock)
    {
        if (doc is not { ValueKind: JsonValueKind.Object } d || !d.TryGetProperty("state", out var state)) return false;
        long prefetched = d.TryGetProperty("prefetch", out var p) && p.ValueKind == JsonValueKind.Object
            ? Long(p, "prefetchedPages") : 0;
        var sample = new TimelineSample(Math.Round(clock.Elapsed.TotalMilliseconds, 2), Long(d, "faults"),
            Long(d, "parkedFaults"), prefetched, Long(d, "pagesCopied"), Long(d, "zeroPages"),
            state.GetString() ?? "");
        lock (_samples) _samples.Add(sample);
        return true;
    }

    private static long Long(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.TryGetInt64(out var n) ? n : 0;
}
