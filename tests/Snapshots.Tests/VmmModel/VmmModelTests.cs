using System.Diagnostics;
using System.Globalization;
using Snapshots.Store.Chunks;
using Xunit.Abstractions;

namespace Snapshots.Tests.VmmModel;

/// <summary>
/// Model-based tests of the uffd handler: random scripts of what Firecracker's guests and VMM do to guest memory
/// (reads, writes, balloon frees, remaps, several vCPUs at once) replayed by native/bin/replay-vmm against the C#
/// <see cref="ChunkFs.Uffd.UffdHandler"/> in this process, every page read checked against a model. A failure is
/// shrunk to a minimal script, printed with the mismatch. VMM_MODEL_SEED and VMM_MODEL_SCRIPTS (per
/// configuration) override the seed (random per run) and the number of scripts.
/// </summary>
[Trait("Category", Category.Process)]
public class VmmModelTests(ITestOutputHelper output)
{
    private const int PageSize = ChunkGeometry.PageSize;
    private const int Vcpus = 3;

    /// <summary>Random bytes with the given chunks all zero, and a few zero pages inside the data chunks.</summary>
    internal static byte[] RandomImage(int seed, int bytes, params int[] zeroChunks)
    {
        var data = new byte[bytes];
        var rng = new Random(seed);
        rng.NextBytes(data);
        foreach (var c in zeroChunks)
            data.AsSpan(c * ChunkGeometry.ChunkSize, ChunkGeometry.ChunkSize).Clear();
        for (int i = 0; i < bytes / PageSize / 32; i++)
            data.AsSpan(rng.Next(bytes / PageSize) * PageSize, PageSize).Clear();
        return data;
    }

    private static async Task<(string Image, int Pages)> SnapshotAsync(TestStore t, byte[] bytes)
    {
        var image = t.Path_("model.img");
        await File.WriteAllBytesAsync(image, bytes);
        await t.BuildAsync("model", image);
        return (image, bytes.Length / PageSize);
    }

    private static int EnvInt(string name, int fallback) =>
        int.TryParse(Environment.GetEnvironmentVariable(name), NumberStyles.Integer, CultureInfo.InvariantCulture,
            out int v) ? v : fallback;

    public static TheoryData<int, bool, bool> Configurations => new()
    {
        { 1, false, false }, { 4, false, true }, { 1, true, true }, { 4, true, false },
    };

    [Theory]
    [MemberData(nameof(Configurations))]
    public async Task Random_scripts_read_what_the_model_says(int faultAround, bool plan, bool cold)
    {
        using var t = new TestStore();
        var (image, pages) = await SnapshotAsync(t, RandomImage(11, 2 << 20, zeroChunks: 2));
        int seed = EnvInt("VMM_MODEL_SEED", Random.Shared.Next(1, 1 << 30));
        int count = EnvInt("VMM_MODEL_SCRIPTS", 1000);
        var planRng = new Random(seed);
        var config = new HandlerConfig
        {
            FaultAround = faultAround, Cold = cold,
            // A plan over random pages, in a random order, as recorded runs make them.
            PlanPages = plan
                ? [.. Enumerable.Range(0, pages).Where(_ => planRng.Next(3) == 0).OrderBy(_ => planRng.Next())
                    .Select(p => (uint)p)]
                : null,
        };
        var harness = new ModelHarness(t, "model", image, config) { Vcpus = Vcpus, ScriptTimeoutSeconds = 3 };
        var scripts = Enumerable.Range(0, count).Select(i => ScriptGenerator.Generate(seed + i, pages, Vcpus))
            .ToArray();
        var clock = Stopwatch.StartNew();
        var outcomes = await harness.RunAsync(scripts, maxFailures: 25);
        output.WriteLine($"{config}: {outcomes.Length} scripts (seed {seed}) in {clock.Elapsed.TotalSeconds:F1} s, "
            + $"{outcomes.Count(o => !o.Ok)} failed");
        // One shrunk example of each kind of failure (at most three kinds), within a time budget.
        var kinds = outcomes.Where(o => !o.Ok).GroupBy(o => o.Signature).Take(3).ToList();
        if (kinds.Count == 0)
        {
            Assert.Equal(count, outcomes.Length);
            return;
        }
        var reports = new List<string>();
        var budget = TimeSpan.FromSeconds(60.0 / kinds.Count);
        foreach (var kind in kinds)
        {
            var first = kind.First();
            reports.Add(await ShrinkAndExplainAsync(
                harness, scripts[first.Index], first, $"seed {seed + first.Index}", budget));
        }
        Assert.Fail($"{config}: {outcomes.Count(o => !o.Ok)} of {outcomes.Length} scripts failed (stopped after 25), "
            + $"{kinds.Count} kind(s) of failure:\n\n" + string.Join("\n", reports));
    }

    /// <summary>Shrinks a failing script, keeping to its kind of failure and to a time budget, and says what the
    /// smallest one does wrong.</summary>
    private async Task<string> ShrinkAndExplainAsync(
        ModelHarness harness, VmmScript failing, ScriptOutcome outcome, string origin, TimeSpan budget)
    {
        var clock = Stopwatch.StartNew();
        var shrunk = await ScriptShrinker.ShrinkAsync(failing, async candidates =>
            clock.Elapsed > budget ? -1 : await harness.FirstFailingAsync(candidates, outcome.Signature), batch: 32);
        var again = (await harness.RunAsync([shrunk])).Single();
        var message =
            $"[{outcome.Signature}] script ({origin}) failed: {outcome.Describe()}\n"
            + $"shrunk in {clock.Elapsed.TotalSeconds:F0} s to {shrunk.Lines.Count} line(s):\n{shrunk.ToText()}"
            + $"which gives: {again.Describe()}\n"
            + $"original script:\n{failing.ToText()}";
        output.WriteLine(message);
        return message;
    }

    /// <summary>Runs one named script; fails with what went wrong (already small: no shrinking).</summary>
    private async Task RunNamedAsync(byte[] imageBytes, HandlerConfig config, VmmScript script)
    {
        using var t = new TestStore();
        var (image, _) = await SnapshotAsync(t, imageBytes);
        var harness = new ModelHarness(t, "model", image, config) { Vcpus = script.Widest, ScriptTimeoutSeconds = 5 };
        var outcome = (await harness.RunAsync([script])).Single();
        output.WriteLine($"{config}: {outcome.Describe()}");
        Assert.True(outcome.Ok, $"{config}:\n{script.ToText()}gives: {outcome.Describe()}");
    }

    /// <summary>A freed page reads zeros; the pages after it in the same chunk still read the snapshot (serving the
    /// freed page must not zero the rest of its chunk).</summary>
    [Theory]
    [InlineData(4)]
    [InlineData(1)]
    public Task A_freed_page_reads_zeros_and_the_pages_after_it_the_snapshot(int faultAround) =>
        RunNamedAsync(RandomImage(21, 1 << 20), new HandlerConfig { FaultAround = faultAround }, VmmScript.Of(
            [new Read(0, 1)], [new Free(3, 1)], [new Read(3, 1)], [new Read(4, 124)]));

    /// <summary>Pages 10-11 remapped to fresh anonymous memory (no longer registered with the uffd); page 9 is then
    /// faulted (fault-around would reach into 10-11), then 12..40: every page right, the handler still serving.
    /// </summary>
    [Theory]
    [InlineData(4)]
    [InlineData(1)]
    public Task A_remapped_range_next_to_a_fault_neither_stops_nor_confuses_the_handler(int faultAround) =>
        RunNamedAsync(RandomImage(22, 1 << 20), new HandlerConfig { FaultAround = faultAround }, VmmScript.Of(
            [new Remap(10, 2)], [new Read(9, 1)], [new Read(12, 29)], [new Read(10, 2)]));

    /// <summary>Two vCPUs fault at once on different chunks (fetched on demand) while a third reads pages that are
    /// already resident.</summary>
    [Theory]
    [InlineData(4)]
    [InlineData(1)]
    public Task Two_vcpus_faulting_on_different_chunks_and_a_third_on_resident_pages(int faultAround) =>
        RunNamedAsync(RandomImage(23, 2 << 20), new HandlerConfig { FaultAround = faultAround, Cold = true },
            VmmScript.Of(
                [new Read(0, 16)],
                [new Read(128, 32), new Read(384, 32), new Read(0, 16)],
                [new Read(160, 32), new Read(416, 32), new Read(2, 8)],
                [new Read(256, 8), new Read(200, 8), new Read(130, 8)]));
}
