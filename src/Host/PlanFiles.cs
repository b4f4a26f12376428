using Snapshots.Prefetch;
using Snapshots.Store;
using Snapshots.Store.Chunks;
using Snapshots.Store.Files;
using Snapshots.Store.Images;

namespace Snapshots.Host;

/// <summary>
/// The file tools around restores that need no store: merging access logs into a prefetch plan, describing a
/// log or plan, writing a log as a replay-vmm trace, synthesizing restore-shaped logs, and generating VM-like
/// images. Inputs must be regular files (a FIFO would block); outputs are written whole or not at all, never
/// through a planted symlink (<see cref="OutputFile"/>).
/// </summary>
public static class PlanFiles
{
    /// <summary>Merges access logs into a plan (<see cref="PlanMerger"/>) and writes it to
    /// <paramref name="outPath"/>.</summary>
    public static MergeResult MergeLogs(IReadOnlyList<string> logPaths, double minFraction, int groupPages,
        string outPath)
    {
        ArgumentNullException.ThrowIfNull(logPaths);
        var logs = new List<AccessLog>(logPaths.Count);
        foreach (var path in logPaths) logs.Add(AccessLog.Load(path));
        var plan = PlanMerger.Merge(logs, minFraction, groupPages);
        OutputFile.WriteAllBytes(outPath, plan.Serialize(), "out");
        return new MergeResult(outPath, plan.RunsMerged, plan.Pages.Length, plan.GroupSizes.Length);
    }

    /// <summary>What a plan or access log file holds.</summary>
    public static object Describe(string path)
    {
        var bytes = InputFile.ReadAll(path, "file", PrefetchPlan.MaxBytes + 64);
        if (PrefetchPlan.IsPlan(bytes))
        {
            var plan = PrefetchPlan.Parse(bytes, path);
            var chunks = new HashSet<uint>();
            foreach (var p in plan.Pages) chunks.Add(p / (uint)ChunkGeometry.PagesPerChunk);
            return new PlanSummary("plan", plan.ImageSize, plan.Pages.Length, plan.GroupSizes.Length,
                plan.RunsMerged, chunks.Count, Convert.ToHexStringLower(plan.ManifestHash), plan.PackName);
        }
        var log = AccessLog.Parse(bytes, path);
        long span = 0;
        foreach (var t in log.Touches) span += t.DeltaUs;
        return new AccessLogSummary("access-log", log.ImageSize, log.Touches.Length, span / 1e6);
    }

    /// <summary>Writes an access log as a replay-vmm text trace.</summary>
    public static void ToTrace(string logPath, string outPath) => TraceText.Write(AccessLog.Load(logPath), outPath);

    /// <summary>Generates a restore-shaped access log for an image (<see cref="SyntheticWorkingSet"/>) and
    /// writes it, and optionally its replay-vmm trace.</summary>
    public static int Synthesize(SynthRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        FileKinds.RequireRegular(request.ImagePath, "image");
        // Both outputs are checked before either is written: a bad --trace must not leave --out published.
        OutputFile.Check(request.OutPath, "out");
        if (request.TracePath is { } tracePath) OutputFile.Check(tracePath, "trace");
        if (request.Pages < 1) throw new InvalidInputException($"{request.Pages} pages: use at least 1", "pages");
        if (request.Variation is < 0 or > 1 or double.NaN)
            throw new InvalidInputException($"variation {request.Variation} is not 0-1", "variation");
        var log = SyntheticWorkingSet.Generate(request.ImagePath, request.Pages, request.Seed, request.Variant,
            request.Variation, request.GapUs);
        OutputFile.WriteAllBytes(request.OutPath, log.Serialize(), "out");
        if (request.TracePath is { } trace) TraceText.Write(log, trace, "trace");
        return log.Touches.Length;
    }

    /// <summary>Writes a VM-like test image (<see cref="VmImageGenerator"/>), whole or not at all; progress in
    /// bytes of the image once it starts (refused first when the size does not fit the disk).</summary>
    public static void GenerateImage(VmImageSpec spec, string outPath, IByteProgress? progress = null,
        CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(spec);
        progress?.Begin(spec.Size);
        VmImageGenerator.Write(spec, outPath, progress, ct);
    }
}

/// <summary>What `log merge` wrote: the plan file, the runs merged, its pages and groups.</summary>
public sealed record MergeResult(string Plan, int Runs, int Pages, int Groups);

/// <summary>A plan file's header: image bytes, pages, groups, runs merged, chunks spanned, binding.</summary>
public sealed record PlanSummary(string Kind, long ImageBytes, int Pages, int Groups, int Runs,
    int SpannedChunks, string ManifestHash, string? Pack);

/// <summary>An access log's header: image bytes, first touches and their time span in seconds.</summary>
public sealed record AccessLogSummary(string Kind, long ImageBytes, int Touches, double SpanSeconds);

/// <summary>A synthetic working set: <see cref="SyntheticWorkingSet.Generate"/>'s parameters and outputs.</summary>
public sealed record SynthRequest
{
    public required string ImagePath { get; init; }
    public required string OutPath { get; init; }
    public string? TracePath { get; init; }
    public int Pages { get; init; } = 6000;
    public int Seed { get; init; } = 1;
    public int Variant { get; init; }
    public double Variation { get; init; } = 0.03;
    public uint GapUs { get; init; }
}
