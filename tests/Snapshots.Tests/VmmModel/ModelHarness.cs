using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Snapshots.ChunkFs.Memory;
using Snapshots.ChunkFs.Uffd;
using Snapshots.Prefetch;
using Snapshots.Store.Layers;

namespace Snapshots.Tests.VmmModel;

/// <summary>How the in-process handler serves each restore.</summary>
public sealed record HandlerConfig
{
    public int FaultAround { get; init; } = 4;
    /// <summary>Pages to prefetch (in this order) from the snapshot's own chunks; null: no plan.</summary>
    public uint[]? PlanPages { get; init; }
    /// <summary>Each restore starts with no chunk in memory (demand fetches); else all are preloaded once.</summary>
    public bool Cold { get; init; }

    public override string ToString() =>
        $"fault-around {FaultAround}, {(PlanPages is null ? "no plan" : $"a plan of {PlanPages.Length} pages")}, "
        + (Cold ? "cold chunks" : "chunks in memory");
}

/// <summary>What one script's restore came to: replay-vmm's verdict on every page read, and the handler's.</summary>
public sealed partial record ScriptOutcome(
    int Index, long Reads, long Bad, string? FirstBad, string? Error, string? Handler)
{
    public bool Ok => Bad == 0 && Error is null && Handler is null;

    /// <summary>The kind of failure, without pages, steps and values: shrinking keeps to one kind, so it does not
    /// wander from one bug to another.</summary>
    public string Signature
    {
        get
        {
            if (Handler is { } h)
            {
                return h.Contains("stopped serving", StringComparison.Ordinal) ? "the handler stopped serving early"
                    : Numbers().Replace(h.Split(" [handler log")[0], "N");
            }
            if (Bad > 0 && FirstBad is { } f)
                return "bad page: " + Numbers().Replace(f[(f.IndexOf("expected", StringComparison.Ordinal))..], "N");
            return Error is null ? "ok" : Numbers().Replace(Error.Split(" (at step")[0], "N");
        }
    }

    [System.Text.RegularExpressions.GeneratedRegex("[0-9]+")]
    private static partial System.Text.RegularExpressions.Regex Numbers();

    public string Describe()
    {
        var parts = new List<string>();
        if (Bad > 0) parts.Add($"{Bad} bad page(s); first: {FirstBad}");
        if (Error is not null) parts.Add($"replay-vmm: {Error}");
        if (Handler is not null) parts.Add($"handler: {Handler}");
        return parts.Count == 0 ? "ok" : string.Join("; ", parts);
    }
}

/// <summary>
/// Runs the C# <see cref="UffdHandler"/> in this process against one native/bin/replay-vmm process that restores
/// once per script (a child process each, as Firecracker runs one process per restore): every connection gets a
/// new handler on its own thread. A handler that stops while its VMM still runs (it would leave a vCPU blocked on a
/// fault forever) is reported and the VMM killed at once, so a batch never waits out the timeout for that.
/// </summary>
public sealed class ModelHarness(TestStore store, string snapshot, string image, HandlerConfig config)
{
    /// <summary>replay-vmm's --timeout for each script.</summary>
    public double ScriptTimeoutSeconds { get; init; } = 5;
    public int Vcpus { get; init; } = 1;
    public HandlerConfig Config => config;

    /// <summary>Runs the scripts (all, or until <paramref name="maxFailures"/> have failed); outcomes in script order,
    /// one per script that ran.</summary>
    public async Task<ScriptOutcome[]> RunAsync(IReadOnlyList<VmmScript> scripts, int maxFailures = 0)
    {
        // As RestoreSession does for a real restore: demand fetches run on the thread pool, which must not make them
        // queue behind the blocking work of tests running beside this one (the pool adds threads only slowly).
        ThreadPool.GetMinThreads(out int workers, out int io);
        ThreadPool.SetMinThreads(Math.Max(workers, (4 * Environment.ProcessorCount) + 8), io);
        var id = Guid.NewGuid().ToString("N")[..10];
        var file = store.Path_($"scripts-{id}.txt");
        await File.WriteAllTextAsync(file, VmmScript.ToFile(scripts));
        var chain = await store.OpenAsync(snapshot);
        using var warm = config.Cold ? null : new ResidentChunks(chain, store.Reader(), 1L << 30);
        if (warm is not null) await warm.PreloadAsync(2, CancellationToken.None);
        using var listener = new HandshakeListener(store.Path_($"m-{id}.sock"));
        var notes = new ConcurrentDictionary<int, string>();
        using var stop = new CancellationTokenSource();
        var threads = new ConcurrentQueue<Thread>();
        var args = new List<string>
        {
            "--image", image, "--socket", listener.Path, "--script", file,
            "--timeout", ScriptTimeoutSeconds.ToString(CultureInfo.InvariantCulture),
            "--vcpus", Vcpus.ToString(CultureInfo.InvariantCulture),
        };
        if (maxFailures > 0) args.AddRange(["--max-failures", maxFailures.ToString(CultureInfo.InvariantCulture)]);
        using var vmm = Loader.StartVmm([.. args]);
        var stdout = vmm.StandardOutput.ReadToEndAsync();
        var stderr = vmm.StandardError.ReadToEndAsync();
        var serve = Task.Run(() => ServeAsync(listener, chain, warm, notes, threads, stop.Token));
        using (var limit = new CancellationTokenSource(TimeSpan.FromSeconds(60 + scripts.Count * 2.0)))
        {
            try { await vmm.WaitForExitAsync(limit.Token); }
            catch (OperationCanceledException) { vmm.Kill(entireProcessTree: true); throw; }
        }
        await stop.CancelAsync();
        await serve;
        foreach (var t in threads) t.Join(TimeSpan.FromSeconds(15));
        var outcomes = Parse(await stdout, notes);
        if (vmm.ExitCode == 2 && outcomes.Length == 0)
            throw new InvalidOperationException($"replay-vmm could not run the scripts: {await stderr}");
        return outcomes;
    }

    /// <summary>Index of the first script that fails (with the given signature, if one is given), or -1. A failing
    /// script is run once more and counts only if it fails the same way again: races (prefetch against the guest,
    /// vCPUs against each other) must not lead the shrinker to a script that passes.</summary>
    public async Task<int> FirstFailingAsync(IReadOnlyList<VmmScript> scripts, string? signature = null)
    {
        // Up to the first failure, and on from after it when that failure was of another kind: a failure costs the
        // most (a stopped handler is noticed in 0.3 s, a hang only at the timeout).
        for (int from = 0; from < scripts.Count;)
        {
            var rest = scripts.Skip(from).ToArray();
            var failed = (await RunAsync(rest, maxFailures: 1)).FirstOrDefault(o => !o.Ok);
            if (failed is null) return -1;
            int index = from + failed.Index;
            if (Matches(failed) && (await RunAsync([scripts[index]])).All(o => !o.Ok && Matches(o))) return index;
            from = index + 1;
        }
        return -1;

        bool Matches(ScriptOutcome o) => signature is null || o.Signature == signature;
    }

    private static ScriptOutcome[] Parse(string stdout, ConcurrentDictionary<int, string> notes)
    {
        var outcomes = new List<ScriptOutcome>();
        foreach (var line in stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            if (!line.StartsWith('{')) continue;
            var j = JsonDocument.Parse(line).RootElement;
            if (!j.TryGetProperty("script", out var index)) continue;
            int i = index.GetInt32();
            outcomes.Add(new ScriptOutcome(
                i, j.GetProperty("reads").GetInt64(), j.GetProperty("bad").GetInt64(),
                j.GetProperty("firstBad").GetString(),
                j.TryGetProperty("error", out var e) ? $"{e.GetString()} (at step {j.GetProperty("step")})" : null,
                notes.GetValueOrDefault(i)));
        }
        return [.. outcomes];
    }

    private async Task ServeAsync(
        HandshakeListener listener, SnapshotChain chain, ResidentChunks? warm, ConcurrentDictionary<int, string> notes,
        ConcurrentQueue<Thread> threads, CancellationToken ct)
    {
        for (int index = 0; ; index++)
        {
            UffdSession session;
            try { session = await listener.AcceptAsync(chain.ImageSize, TimeSpan.FromSeconds(10), ct); }
            catch (OperationCanceledException) { return; }
            catch (Exception ex)
                when (ex is Store.SnapshotException or IOException or System.Net.Sockets.SocketException)
            {
                notes[index] = $"handshake failed: {ex.Message}";
                continue;
            }
            int i = index;
            var thread = new Thread(() => Serve(i, session, chain, warm, notes)) { IsBackground = true };
            threads.Enqueue(thread);
            thread.Start();
        }
    }

    private void Serve(
        int index, UffdSession session, SnapshotChain chain, ResidentChunks? warm,
        ConcurrentDictionary<int, string> notes)
    {
        var memory = warm ?? new ResidentChunks(chain, store.Reader(), 1L << 30);
        var log = new ConcurrentQueue<string>();
        try
        {
            var options = new UffdHandlerOptions
            {
                FaultAroundPages = config.FaultAround,
                Log = log.Enqueue,
                Plan = config.PlanPages is { } pages
                    ? new PrefetchPlan
                    {
                        ImageSize = chain.ImageSize, RunsMerged = 1, GroupSizes = [pages.Length], Pages = pages,
                    }
                    : null,
            };
            var stats = new UffdHandler(session, memory, options).Run(CancellationToken.None);
            string reason = stats.Reason is null ? "" : $": {stats.Reason}";
            if (stats.Outcome != RestoreStats.ExitedOutcome)
                notes[index] = $"the handler failed the VM ({stats.Outcome}{reason})";
            else if (StillRunning(session.VmmPid, TimeSpan.FromMilliseconds(300)))
            {
                notes[index] = $"the handler stopped serving (outcome {stats.Outcome}{reason}) while the VMM was still "
                    + "running: a vCPU would wait on its fault forever; the VMM was killed";
                try { Process.GetProcessById(session.VmmPid).Kill(); } catch (ArgumentException) { }
            }
        }
        catch (Exception ex)
        {
            notes[index] = $"the handler threw {ex.GetType().Name}: {ex.Message}";
            try { Process.GetProcessById(session.VmmPid).Kill(); } catch (ArgumentException) { }
        }
        finally
        {
            session.Dispose();
            if (warm is null) memory.Dispose();
            if (notes.TryGetValue(index, out var note) && !log.IsEmpty)
                notes[index] = note + " [handler log: " + string.Join(" / ", log.Take(3)) + "]";
        }
    }

    /// <summary>Whether the process still runs (not exited, not a zombie) after waiting up to the limit.</summary>
    private static bool StillRunning(int pid, TimeSpan limit)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            string stat;
            try { stat = File.ReadAllText($"/proc/{pid}/stat"); }
            catch (IOException) { return false; }
            char state = stat[(stat.LastIndexOf(')') + 2)..][0];
            if (state is 'Z' or 'X' or 'x') return false;
            if (clock.Elapsed > limit) return true;
            Thread.Sleep(5);
        }
    }
}
