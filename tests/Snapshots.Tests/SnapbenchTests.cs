using System.Diagnostics;
using System.Text.Json;

namespace Snapshots.Tests;

/// <summary>bench/Snapbench end to end: `snapbench run --scenario all --quick` (the quick mode .ci/run runs) starts
/// its own s3rver, Redis Cluster, fault proxy, snapd and replay-vmm processes on loopback, injects every fault,
/// verifies every page and writes report.json, report.md and the PNGs.</summary>
[Trait("Category", "process")]
// Alone, after the parallel tests, as the real guest is: its scenarios keep both cores busy (QEMU, 16 VMs at once)
// and inject faults on a schedule (once every VM has faulted) that other tests' load would only blur.
[Collection(RealGuestCollection.Name)]
public sealed class SnapbenchTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "snapbench-tests", Guid.NewGuid().ToString("N"));

    /// <summary>The snapbench the solution built (bench/Snapbench/bin/CONFIG/net10.0), found upwards from the
    /// tests, as <see cref="SnapdProcess.Dll"/> is.</summary>
    private static string Dll()
    {
        var tests = new DirectoryInfo(AppContext.BaseDirectory);
        string tfm = tests.Name, config = tests.Parent!.Name;
        for (var dir = tests; dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "bench", "Snapbench", "bin", config, tfm, "snapbench.dll");
            if (File.Exists(candidate)) return candidate;
        }
        throw new FileNotFoundException($"snapbench.dll not built (dotnet build Snapshots.sln -c {config})");
    }

    private static Task<(int Code, string Out, string Err)> RunAsync(params string[] args) =>
        RunAsync(new Dictionary<string, string>(), args);

    private static async Task<(int Code, string Out, string Err)> RunAsync(
        Dictionary<string, string> environment, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        psi.ArgumentList.Add(Dll());
        foreach (var a in args) psi.ArgumentList.Add(a);
        foreach (var (k, v) in environment) psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(15));
        try
        {
            await p.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"snapbench {string.Join(' ', args)} ran over 15 minutes:\n{await stderr}");
        }
        return (p.ExitCode, await stdout, await stderr);
    }

    [Fact]
    public async Task List_names_every_scenario_with_a_description()
    {
        var (code, stdout, _) = await RunAsync("list");
        Assert.Equal(0, code);
        foreach (var name in (string[])["strategies", "tiers", "concurrent", "restart", "balloon", "remap",
            "origin-injected", "origin-slow", "origin-errors", "origin-refuse", "origin-down", "guest"])
            Assert.Contains(stdout.Split('\n'),
                l => l.StartsWith(name + " ", StringComparison.Ordinal) && l.Length > 20);
    }

    [Fact]
    public async Task An_unknown_scenario_is_refused()
    {
        var (code, _, stderr) = await RunAsync("run", "--scenario", "nope", "--out", _dir);
        Assert.Equal(2, code);
        Assert.Contains("unknown scenario", stderr);
    }

    /// <summary>A run deletes DIR/work at its start and end: a DIR/work it did not make (someone's own files, or
    /// a link to them) is refused before anything is touched, and so is an --out that is a file.</summary>
    [Fact]
    public async Task An_output_directory_it_did_not_make_is_refused_and_left_alone()
    {
        string own = Path.Combine(_dir, "work", "mine.txt");
        Directory.CreateDirectory(Path.GetDirectoryName(own)!);
        await File.WriteAllTextAsync(own, "not snapbench's");
        var (code, _, stderr) = await RunAsync("run", "--scenario", "balloon", "--quick", "--out", _dir);
        Assert.Equal(2, code);
        Assert.Contains("was not made by snapbench", stderr);
        Assert.Equal("not snapbench's", await File.ReadAllTextAsync(own));

        string file = Path.Combine(_dir, "a-file");
        await File.WriteAllTextAsync(file, "x");
        (code, _, stderr) = await RunAsync("run", "--scenario", "balloon", "--quick", "--out", file);
        Assert.Equal(2, code);
        Assert.Contains("is not a directory", stderr);
        Assert.Equal("x", await File.ReadAllTextAsync(file));

        (code, _, stderr) = await RunAsync("run", "--scenario", "balloon,nope", "--out", _dir);
        Assert.Equal(2, code);
        Assert.Contains("unknown scenario", stderr);

        // Usage errors are 2 however they are found.
        foreach (var bad in (string[][])[["--restores", "abc"], ["--seed", "99999999999"], ["--restores", "0"]])
        {
            (code, _, stderr) = await RunAsync(["run", "--scenario", "balloon", "--out", _dir, .. bad]);
            Assert.True(code == 2, $"{string.Join(' ', bad)}: exit {code}: {stderr}");
        }
    }

    [Fact]
    public async Task Run_all_quick_verifies_every_restore_and_writes_the_reports()
    {
        var (code, _, stderr) = await RunAsync("run", "--scenario", "all", "--quick", "--out", _dir, "--seed", "7");
        Assert.True(code == 0, $"snapbench exited {code}:\n{stderr}\n{ReadOrEmpty("report.md")}");

        using var json = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(_dir, "report.json")));
        var r = json.RootElement;
        Assert.True(r.GetProperty("ok").GetBoolean());
        Assert.Equal(7, r.GetProperty("seed").GetInt32());
        Assert.True(r.GetProperty("quick").GetBoolean());
        Assert.Equal(Environment.ProcessorCount, r.GetProperty("machine").GetProperty("nproc").GetInt32());
        Assert.False(string.IsNullOrEmpty(r.GetProperty("machine").GetProperty("loadStart").GetString()));
        Assert.False(string.IsNullOrEmpty(r.GetProperty("versions").GetProperty("snapd").GetString()));
        var scenarios = r.GetProperty("scenarios").EnumerateArray()
            .ToDictionary(s => s.GetProperty("name").GetString()!);
        var (_, list, _) = await RunAsync("list");
        Assert.Equal(list.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(' ')[0]).Order(),
            scenarios.Keys.Order());
        foreach (var (name, s) in scenarios)
        {
            Assert.True(s.GetProperty("ok").GetBoolean(), s.ToString());
            foreach (var t in s.GetProperty("strategies").EnumerateArray())
            {
                // Never a hang, never a wrong byte; a strategy either completes every restore, or (a fault past the
                // deadline) fails each with a reason within it.
                Assert.Equal(0, t.GetProperty("hung").GetInt32());
                Assert.Equal(0, t.GetProperty("badPages").GetInt64());
                Assert.Equal(0, t.GetProperty("failedLate").GetInt32());
                Assert.False(string.IsNullOrEmpty(t.GetProperty("loader").GetString()), t.ToString());
                int completed = t.GetProperty("completed").GetInt32();
                var restore = t.GetProperty("restoreMs");
                if (t.GetProperty("expectFailure").GetBoolean())
                {
                    Assert.True(t.GetProperty("failedInTime").GetInt32() > 0, t.ToString());
                    Assert.Equal(t.GetProperty("failed").GetInt32(), t.GetProperty("failedInTime").GetInt32());
                    Assert.NotEmpty(t.GetProperty("reasons").EnumerateArray());
                    continue;
                }
                Assert.True(completed > 0, t.ToString());
                Assert.Equal(0, t.GetProperty("failed").GetInt32());
                Assert.Equal(0, t.GetProperty("failedInTime").GetInt32());
                Assert.Empty(t.GetProperty("reasons").EnumerateArray());
                Assert.Equal(completed, restore.GetProperty("count").GetInt64());
                Assert.True(restore.GetProperty("p50").GetDouble() > 0);
                // remap: scripts time no accesses; guest: QEMU, no replay-vmm (invocation latencies are facts).
                if (name is "remap" or "guest") continue;
                var fault = t.GetProperty("faultUs");
                Assert.True(fault.GetProperty("count").GetInt64() > 0, t.ToString());
                Assert.True(fault.GetProperty("p99").GetDouble() >= fault.GetProperty("p50").GetDouble());
            }
            // Every snapd strategy's restores fetched their chunks from snapd's tiers (disk cache, Redis, origin):
            // the restore documents' tiers, summed per strategy.
            foreach (var t in s.GetProperty("strategies").EnumerateArray()
                .Where(t => t.GetProperty("loader").GetString()!.StartsWith("snapd", StringComparison.Ordinal)
                    && !t.GetProperty("expectFailure").GetBoolean()))
            {
                var tiers = t.GetProperty("tiers").EnumerateArray().ToList();
                Assert.NotEmpty(tiers);
                Assert.True(tiers.Sum(x => x.GetProperty("hits").GetInt64()) > 0, t.ToString());
                Assert.True(tiers.Sum(x => x.GetProperty("bytes").GetInt64()) > 0, t.ToString());
                Assert.Equal(1.0, tiers.Sum(x => x.GetProperty("hitRatio").GetDouble()), 2);
            }
            // A timeline per sampled restore: the document sampled while it ran, its counters never going back
            // (the restarted daemon's included: it takes the restore back with its counts).
            foreach (var tl in s.GetProperty("timelines").EnumerateArray())
            {
                var samples = tl.GetProperty("samples").EnumerateArray().ToList();
                Assert.True(samples.Count >= 2, tl.ToString());
                string state = samples[^1].GetProperty("state").GetString()!;
                Assert.Contains(state, (string[])["exited", "failed"]);
                if (state == "exited")
                {
                    Assert.True(samples[^1].GetProperty("faults").GetInt64()
                        + samples[^1].GetProperty("prefetchedPages").GetInt64() > 0, tl.ToString());
                }
                Assert.True(samples[^1].GetProperty("ms").GetDouble() > samples[0].GetProperty("ms").GetDouble());
            }
        }
        foreach (var name in (string[])["strategies", "tiers", "restart", "origin-down", "guest"])
            Assert.NotEmpty(scenarios[name].GetProperty("timelines").EnumerateArray());
        // The real guest under QEMU, through snapd's three ways, every answer checked.
        Assert.Equal(["guest-uffd", "guest-uffd-prefetch", "guest-chunkfs", "guest-uffd-record"],
            scenarios["guest"].GetProperty("strategies").EnumerateArray()
                .Select(t => t.GetProperty("name").GetString()));
        var restart = scenarios["restart"].GetProperty("timelines")[1];
        Assert.NotEmpty(restart.GetProperty("missesMs").EnumerateArray()); // the daemon was away: a gap
        var strategies = scenarios["strategies"].GetProperty("strategies").EnumerateArray()
            .Select(t => t.GetProperty("name").GetString()).ToList();
        Assert.Equal(["resident", "minimal", "snapd", "snapd-prefetch", "chunkfs", "chunkfs-prefetch", "snapd-record"],
            strategies);
        var prefetch = scenarios["strategies"].GetProperty("strategies")[3].GetProperty("ratios");
        Assert.True(prefetch.GetProperty("restoreP50VsTheCeiling").GetDouble() > 0);

        string md = ReadOrEmpty("report.md");
        Assert.StartsWith("# snapbench: ok", md);
        Assert.Contains("p99.9", md);
        Assert.Contains("## Headline", md);
        Assert.Contains("- **strategies**: ok", md);
        Assert.Contains("| hit ratio |", md);
        var pngs = Directory.GetFiles(_dir, "*.png");
        foreach (var name in (string[])["strategies", "tiers", "restart"])
        {
            foreach (var plot in (string[])["latency-cdf", "restore-cdf", "tier-bars", "timeline"])
                Assert.Contains(Path.Combine(_dir, $"{plot}-{name}.png"), pngs);
        }
        foreach (var png in pngs) Assert.Contains($"]({Path.GetFileName(png)})", md);
        foreach (var png in pngs)
            Assert.Equal<byte>([0x89, (byte)'P', (byte)'N', (byte)'G'], File.ReadAllBytes(png).AsSpan(0, 4).ToArray());
        Assert.False(Directory.Exists(Path.Combine(_dir, "work")), "the work directory (store, state) was left");
    }

    /// <summary>A VMM that checks the pages snapd serves for fn1 against fn2's image (3 % of their pages differ):
    /// wrong bytes, as a broken loader would give. The run must fail and say so.</summary>
    [Fact]
    public async Task A_wrong_page_fails_the_run_and_the_report_says_so()
    {
        Directory.CreateDirectory(_dir);
        string wrapper = Path.Combine(_dir, "wrong-vmm.sh");
        await File.WriteAllTextAsync(wrapper, $$"""
            #!/usr/bin/env bash
            args=(); handler=0
            for a in "$@"; do [ "$a" = handler ] && handler=1; done
            for a in "$@"; do
              if [ $handler = 1 ] && [[ "$a" == *fn1.img ]]; then a="${a%fn1.img}fn2.img"; fi
              args+=("$a")
            done
            exec {{NativeBin.Find("replay-vmm")}} "${args[@]}"

            """);
        File.SetUnixFileMode(wrapper, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        string output = Path.Combine(_dir, "out");
        var (code, _, stderr) = await RunAsync(new Dictionary<string, string> { ["SNAPBENCH_VMM"] = wrapper },
            "run", "--scenario", "strategies", "--quick", "--restores", "1", "--out", output);
        Assert.True(code == 1, $"snapbench exited {code}:\n{stderr}");
        using var json = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(output, "report.json")));
        Assert.False(json.RootElement.GetProperty("ok").GetBoolean());
        var strategies = json.RootElement.GetProperty("scenarios")[0].GetProperty("strategies").EnumerateArray()
            .ToDictionary(t => t.GetProperty("name").GetString()!);
        var snapd = strategies["snapd"];
        Assert.True(snapd.GetProperty("badPages").GetInt64() > 0, json.RootElement.ToString());
        Assert.Equal(0, snapd.GetProperty("completed").GetInt32());
        // The failure says why (the VMM's stderr), and when: the time to fail.
        Assert.NotEmpty(snapd.GetProperty("reasons").EnumerateArray());
        Assert.Equal(snapd.GetProperty("failed").GetInt32(),
            snapd.GetProperty("failMs").GetProperty("count").GetInt32());
        var run = snapd.GetProperty("runs")[0];
        Assert.Equal("failed", run.GetProperty("outcome").GetString());
        Assert.False(string.IsNullOrEmpty(run.GetProperty("reason").GetString()));
        Assert.True(strategies["resident"].GetProperty("ok").GetBoolean());
        string md = await File.ReadAllTextAsync(Path.Combine(output, "report.md"));
        Assert.StartsWith("# snapbench: FAILED", md);
        Assert.Contains("bad page at offset", md);
        Assert.Contains("- **strategies**: FAILED", md);
        Assert.Contains("Fault outcomes:", md);
        Assert.Contains("Reasons, snapd:", md);
    }

    private string ReadOrEmpty(string name)
    {
        var path = Path.Combine(_dir, name);
        return File.Exists(path) ? File.ReadAllText(path) : "";
    }

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
