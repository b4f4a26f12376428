using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Snapshots.Store.Layers;
using Snapshots.Store.Manifests;

namespace Snapshots.Snapbench;

/// <summary>The real guest (guest/: Debian's kernel and python3 under QEMU microvm) restored through the run's
/// snapd: by userfaultfd (native/bin/qemu-uffd on the restore's socket), by userfaultfd with the plan one recorded
/// restore left, and from the restore's ChunkFs file (native/bin/qemu-file on its path); every restore invokes the
/// function and checks its answers against the host's own handler.work().</summary>
public sealed class GuestScenario() : Scenario("guest",
    "the real QEMU guest (Debian + python3, TCG) restored through snapd by uffd, uffd + prefetch and ChunkFs; "
    + "ping + work invoked and checked; restore time = POST to the first answer")
{
    private const string Os = "guest-os", Fn = "guest-fn";
    private const string Ping = """{"id":1,"op":"ping"}""";
    private static readonly (string Json, int N, int Seed)[] Works =
        [("""{"id":2,"op":"work","n":2000,"seed":7}""", 2000, 7), ("""{"id":3,"op":"work","n":1500,"seed":11}""",
            1500, 11)];

    /// <summary>An answer's deadline: a work under TCG takes 0.3-0.5 s; a frozen VM must not hold the run.</summary>
    private static readonly TimeSpan AnswerLimit = TimeSpan.FromSeconds(30);

    public override async Task RunAsync(Bench bench, ScenarioResult result, CancellationToken ct)
    {
        var snaps = await GuestSnapshots.PrepareAsync(bench, ct);
        result.Facts["guest snapshots"] = snaps.Reused ? $"reused from {snaps.Dir} (assets, vm.sh and QEMU unchanged)"
            : $"made in {snaps.SnapshotsMs / 1000:F1} s (vm.sh make-snapshots) into {snaps.Dir}";
        result.Facts["guest/build.sh (s)"] = Math.Round(snaps.BuildMs / 1000, 1);
        var clock = Stopwatch.StartNew();
        var os = await bench.BuildLayerAsync(new BuildRequest
        {
            Name = Os, MemoryPath = Path.Combine(snaps.Os, "memory"), Layer = LayerKind.Os,
        }, ct);
        var fn = await bench.BuildLayerAsync(new BuildRequest
        {
            Name = Fn, MemoryPath = Path.Combine(snaps.Function, "memory"), Parent = Os, Tenant = Bench.Tenant,
            HolesAreZero = true, Layer = LayerKind.Function,
        }, ct);
        result.Facts["layers built (s)"] = Math.Round(clock.Elapsed.TotalSeconds, 2);
        result.Facts["layers (chunks / zero / inherited / new)"] = $"{Os} {os.Chunks} / {os.ZeroChunks} / "
            + $"{os.InheritedChunks} / {os.NewChunks}; {Fn} {fn.Chunks} / {fn.ZeroChunks} / {fn.InheritedChunks} / "
            + $"{fn.NewChunks}";
        // A boot with share=off leaves the RAM file all zeros while every restore still "works" (RAM in the stream).
        if (fn.ZeroChunks >= fn.Chunks)
            throw new InvalidOperationException($"{Fn}: every chunk is zero: the snapshot's RAM is not in its file");
        var want = await ExpectedAsync(bench, ct);
        // qemu-uffd's QEMU opens this instead of the RAM file: all zeros, so every page comes from snapd.
        string zero = bench.WorkPath("guest-zero.mem");
        await using (var z = new FileStream(zero, FileMode.Create)) z.SetLength(fn.ImageBytes);
        int invocations = bench.Quick ? 1 : Works.Length;
        result.Facts["invocations per restore"] = $"ping, then {invocations} work (checked against the host's "
            + "handler.work(); every answer re-checks the guest's heap)";
        result.Facts["restore time"] = "POST /v1/restores to the ping's answer (vm.sh restore: QEMU's launch and "
            + "the device state's load, through bash and qmp.py, is in it); invocation latencies are facts below, "
            + "there is no replay-vmm and no fault-latency histogram";

        var uffd = result.Add("guest-uffd", "snapd mode uffd, prefetch: false: native/bin/qemu-uffd on the restore's "
            + "socket (QEMU's RAM from an all-zero placeholder: every page is snapd's), resume, invoke, QMP quit",
            "disk cache warm", "snapd uffd (QEMU)");
        var prefetch = result.Add("guest-uffd-prefetch", "snapd mode uffd, prefetch: true, following the plan "
            + "recorded from one restore of the same invocations (record: true, --plan-merge-logs 1)",
            "disk cache warm", "snapd uffd + prefetch (QEMU)");
        var chunkfs = result.Add("guest-chunkfs", "snapd mode file: native/bin/qemu-file on the restore's ChunkFs "
            + "path (memory-backend-file share=off), the same invocations, then DELETE (unmounts; must say exited)",
            "disk cache warm", "snapd ChunkFs file (QEMU)");
        var recorder = result.Add("guest-uffd-record", "snapd mode uffd, one restore with record: true: its "
            + "access log becomes the plan guest-uffd-prefetch follows", "origin, cache cold", "snapd uffd (QEMU)");
        recorder.Planned = 1;

        // Each restore is a QEMU launch and a Python answering under TCG (about 1-2 s): one per strategy with --quick.
        int restores = bench.Quick ? 1 : bench.Restores;
        foreach (var s in (StrategyResult[])[uffd, prefetch, chunkfs]) s.Planned = restores;
        var snapd = await bench.StartSnapdAsync("st.guest", "--cache-dir", bench.WorkPath("cache.guest"),
            "--plan-merge-logs", "1");
        await NoteVersionAsync(snapd, result);
        var run = new Run(bench, snapd, snaps, zero, want, invocations, result);
        await run.RestoreAsync(recorder, "uffd", prefetch: false, record: true, "record", ct);
        clock.Restart();
        while (await PlansPublishedAsync(snapd) < 1 && clock.Elapsed < TimeSpan.FromSeconds(60))
            await Task.Delay(50, ct);
        if (await PlansPublishedAsync(snapd) < 1)
            result.Errors.Add("no plan published within 60 s of the recorded restore");
        result.Facts["plan published (s after the recorded VM ended)"] = Math.Round(clock.Elapsed.TotalSeconds, 2);
        for (int i = 0; i < restores; i++)
        {
            await run.RestoreAsync(uffd, "uffd", prefetch: false, record: false, $"uffd.{i}", ct,
                timeline: i == 0 ? result.AddTimeline(uffd, $"guest-uffd.{i}") : null);
            await run.RestoreAsync(prefetch, "uffd", prefetch: true, record: false, $"prefetch.{i}", ct);
            await run.RestoreAsync(chunkfs, "file", prefetch: false, record: false, $"chunkfs.{i}", ct);
        }
        foreach (var s in (StrategyResult[])[uffd, prefetch, chunkfs, recorder]) run.NoteLatencies(s);
        await NoteMetricsAsync(snapd, result, "snapd");
    }

    /// <summary>What each work must answer: the host's python3 running the guest's own handler.py.</summary>
    private static async Task<string[]> ExpectedAsync(Bench bench, CancellationToken ct)
    {
        var want = new string[Works.Length];
        string dir = Path.Combine(bench.Tools.Root, "guest");
        for (int i = 0; i < Works.Length; i++)
        {
            var r = await Script.RunAsync(bench, "/usr/bin/python3", ["-B", "-c",
                $"import json, sys; sys.path.insert(0, '{dir}'); import handler; "
                + $"print(json.dumps(handler.work({Works[i].N}, {Works[i].Seed})))"], null, TimeSpan.FromSeconds(60),
                ct);
            if (r.Code != 0) throw new InvalidOperationException($"handler.work on the host: {r.Tail}");
            want[i] = r.Out.Trim();
        }
        return want;
    }

    /// <summary>The scenario's restores: one at a time, each QEMU killed before the next starts.</summary>
    private sealed class Run(Bench bench, SnapdDaemon snapd, GuestSnapshots snaps, string zero, string[] want,
        int invocations, ScenarioResult result)
    {
        private readonly Dictionary<string, List<double>> _latencies = [];

        public async Task RestoreAsync(StrategyResult strategy, string mode, bool prefetch, bool record,
            string label, CancellationToken ct, Timeline? timeline = null)
        {
            var clock = Stopwatch.StartNew();
            string id, where;
            JsonElement posted;
            try
            {
                (id, where, posted) = await snapd.CreateDocAsync(Fn, prefetch, record, mode);
            }
            catch (Exception ex) when (ex is InvalidOperationException or HttpRequestException)
            {
                strategy.AddFailure($"{label}: {ex.Message}", clock.Elapsed.TotalMilliseconds, ex.Message);
                return;
            }
            double postMs = clock.Elapsed.TotalMilliseconds;
            string runDir = Path.Combine(bench.StateRoot, "g." + label);
            if (Directory.Exists(runDir)) Directory.Delete(runDir, recursive: true);
            string? problem = null;
            double firstUs = 0, launchMs = 0, vmShMs = 0;
            var times = new List<double>();
            using var vmDone = new CancellationTokenSource();
            var sampling = timeline?.SampleAsync(snapd, id, clock, Task.Delay(Timeout.Infinite, vmDone.Token), ct)
                ?? Task.CompletedTask;
            try
            {
                (problem, launchMs) = await LaunchAsync(mode, where, runDir, ct);
                firstUs = clock.Elapsed.TotalMicroseconds;
                vmShMs = firstUs / 1000 - postMs;
                if (problem is null) (problem, firstUs) = await InvokeAsync(runDir, clock, times, ct);
            }
            finally
            {
                // Whatever happened: QEMU quit (or SIGKILLed by its pidfile's pid) before the restore is ended.
                await GuestVm.StopAsync(bench, runDir, CancellationToken.None);
                await vmDone.CancelAsync();
                await sampling.ContinueWith(_ => { }, TaskScheduler.Default);
            }
            if (problem is not null) firstUs = clock.Elapsed.TotalMicroseconds; // the time to fail
            JsonElement? doc;
            if (mode == "file")
            {
                // A file restore serves until released: the DELETE's answer is its end (exited when all went well).
                var (status, d) = await snapd.SendAsync(HttpMethod.Delete, "v1/restores/" + id);
                doc = status == System.Net.HttpStatusCode.OK ? d : null;
            }
            else
            {
                doc = await snapd.WaitEndedAsync(id, TimeSpan.FromSeconds(problem is null ? 30 : 5));
                if (doc is null)
                {
                    await snapd.DeleteAsync(id);
                    doc = await snapd.WaitEndedAsync(id, TimeSpan.FromSeconds(10));
                }
            }
            timeline?.Add(doc, clock);
            if (doc is { ValueKind: JsonValueKind.Object } ended) strategy.Tiers.Add(posted, ended);
            problem ??= Problem(label, id, doc);
            strategy.Add(firstUs, problem, Reason(doc) ?? problem, restoreHung: doc is null);
            for (int i = 0; i < times.Count; i++) Latency(strategy, i == 0 ? "ping" : "work", times[i]);
            result.Facts[$"{strategy.Name} {label}"] =
                Describe(postMs, vmShMs, launchMs, firstUs, times, doc, problem);
        }

        /// <summary>vm.sh restore with qemu-uffd on snapd's socket (RAM from the zero placeholder) or qemu-file on
        /// the restore's memory file; the problem (null: running) and vm.sh's launch-to-running ms.</summary>
        private async Task<(string? Problem, double LaunchMs)> LaunchAsync(string mode, string where, string runDir,
            CancellationToken ct)
        {
            string native = Path.Combine(bench.Tools.Root, "native", "bin");
            var env = new Dictionary<string, string> { ["TIMEOUT"] = "30" };
            string memory = where;
            if (mode == "file")
            {
                env["QEMU"] = Path.Combine(native, "qemu-file");
            }
            else
            {
                (env["QEMU"], env["SNAP_UFFD_SOCKET"], env["SNAP_UFFD_MEM_PATH"]) =
                    (Path.Combine(native, "qemu-uffd"), where, zero);
                memory = zero;
            }
            var r = await Script.RunAsync(bench, GuestSnapshots.VmScript(bench),
                ["restore", snaps.Function, runDir, memory], env, TimeSpan.FromSeconds(90), ct);
            return r.Code == 0 ? (null, GuestVm.LaunchMs(r.Out) ?? 0)
                : ($"vm.sh restore exited {r.Code}: {r.Tail}", 0);
        }

        /// <summary>Ping, then the works, each checked; the problem (null: every answer right) and the time of the
        /// first answer (us since the POST).</summary>
        private async Task<(string? Problem, double FirstUs)> InvokeAsync(string runDir, Stopwatch clock,
            List<double> times, CancellationToken ct)
        {
            double firstUs = 0;
            for (int i = 0; i <= invocations; i++)
            {
                string request = i == 0 ? Ping : Works[i - 1].Json;
                var t = Stopwatch.StartNew();
                JsonElement a;
                try
                {
                    a = await GuestVm.RequestAsync(runDir, request, AnswerLimit, ct);
                }
                catch (Exception ex) when (ex is TimeoutException or System.Net.Sockets.SocketException)
                {
                    return ($"{request}: {ex.Message}", firstUs);
                }
                times.Add(t.Elapsed.TotalMilliseconds);
                if (i == 0) firstUs = clock.Elapsed.TotalMicroseconds;
                if (!(Bool(a, "ok") && Bool(a, "heapOk")))
                    return ($"{request}: answer not ok or the guest's heap check failed: {Cut(a)}", firstUs);
                if (i > 0 && !(a.TryGetProperty("result", out var got)
                        && JsonElement.DeepEquals(got, JsonDocument.Parse(want[i - 1]).RootElement)))
                    return ($"{request}: wrong result (not the host's handler.work()): {Cut(a)}", firstUs);
            }
            return (null, firstUs);
        }

        private void Latency(StrategyResult s, string op, double ms)
        {
            string key = $"{s.Name} {op}";
            if (!_latencies.TryGetValue(key, out var l)) _latencies[key] = l = [];
            l.Add(ms);
        }

        /// <summary>Invocation latencies per strategy and op as facts: p50 / max ms over its restores.</summary>
        public void NoteLatencies(StrategyResult s)
        {
            foreach (var op in (string[])["ping", "work"])
            {
                if (!_latencies.TryGetValue($"{s.Name} {op}", out var l) || l.Count == 0) continue;
                l.Sort();
                result.Facts[$"{s.Name} {op} latency ms (p50 / max, {l.Count})"] =
                    $"{l[l.Count / 2]:F1} / {l[^1]:F1}";
            }
        }

        private static string Describe(double postMs, double vmShMs, double launchMs, double firstUs,
            List<double> times, JsonElement? doc, string? problem)
        {
            var ci = CultureInfo.InvariantCulture;
            string answers = times.Count == 0 ? "no answer"
                : $"ping {times[0]:F0} ms" + (times.Count > 1
                    ? $", work {string.Join(" / ", times.Skip(1).Select(t => t.ToString("F0", ci)))} ms" : "");
            string snapd = doc is { ValueKind: JsonValueKind.Object } d
                ? string.Create(ci, $"snapd {Str(d, "state")}: {Str(d, "faults")} faults, {Str(d, "parkedFaults")} "
                    + $"parked, {Str(d, "pagesCopied")} pages copied, {Str(d, "zeroPages")} zero, prefetch "
                    + $"{(d.TryGetProperty("prefetch", out var p) ? p.ToString() : "none")}, fault latency "
                    + $"{Str(d, "faultLatencySeconds")}, tiers {Str(d, "tiers")}")
                : "no restore document";
            return string.Create(ci, $"{(problem is null ? "ok" : "FAILED: " + problem)}; "
                + $"{(problem is null ? "first answer" : "failed")} {firstUs / 1000:F0} ms after the POST (POST "
                + $"{postMs:F0} ms, vm.sh restore {vmShMs:F0} ms of which QEMU's launch->running {launchMs:F0} ms); "
                + $"{answers}; {snapd}");
        }

        private static string Str(JsonElement d, string name) =>
            d.TryGetProperty(name, out var v) ? v.ToString() : "-";

        private static bool Bool(JsonElement a, string name) =>
            a.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.True;

        private static string Cut(JsonElement a)
        {
            string s = a.ToString();
            return s.Length > 300 ? s[..300] + "..." : s;
        }
    }
}
