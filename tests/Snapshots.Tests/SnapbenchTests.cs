using System.Diagnostics;
using System.Text.Json;

namespace Snapshots.Tests;

/// <summary>bench/Snapbench end to end: `snapbench run --scenario all --quick` starts its own snapd and replay-vmm
/// processes, verifies every page and writes report.json, report.md and the latency PNGs.</summary>
[Trait("Category", "process")]
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
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        try
        {
            await p.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"snapbench {string.Join(' ', args)} ran over 5 minutes:\n{await stderr}");
        }
        return (p.ExitCode, await stdout, await stderr);
    }

    [Fact]
    public async Task List_names_every_scenario_with_a_description()
    {
        var (code, stdout, _) = await RunAsync("list");
        Assert.Equal(0, code);
        foreach (var name in (string[])["strategies", "concurrent", "restart"])
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
        // Every scenario `list` names ran: the list grows with the harness.
        var (_, listed, _) = await RunAsync("list");
        Assert.Equal(listed.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(' ')[0]).Order(),
            scenarios.Keys.Order());
        foreach (var s in scenarios.Values)
        {
            Assert.True(s.GetProperty("ok").GetBoolean(), s.ToString());
            foreach (var t in s.GetProperty("strategies").EnumerateArray())
            {
                Assert.True(t.GetProperty("completed").GetInt32() > 0, t.ToString());
                Assert.Equal(0, t.GetProperty("failed").GetInt32());
                Assert.Equal(0, t.GetProperty("hung").GetInt32());
                Assert.Equal(0, t.GetProperty("badPages").GetInt64());
                var restore = t.GetProperty("restoreMs");
                Assert.Equal(t.GetProperty("completed").GetInt32(), restore.GetProperty("count").GetInt64());
                Assert.True(restore.GetProperty("p50").GetDouble() > 0);
                var fault = t.GetProperty("faultUs");
                Assert.True(fault.GetProperty("count").GetInt64() > 0);
                Assert.True(fault.GetProperty("p99").GetDouble() >= fault.GetProperty("p50").GetDouble());
            }
        }
        var strategies = scenarios["strategies"].GetProperty("strategies").EnumerateArray()
            .Select(t => t.GetProperty("name").GetString()).ToList();
        Assert.Equal(["resident", "minimal", "snapd", "snapd-prefetch", "snapd-record"], strategies);
        var prefetch = scenarios["strategies"].GetProperty("strategies")[3].GetProperty("ratios");
        Assert.True(prefetch.GetProperty("restoreP50VsTheCeiling").GetDouble() > 0);

        string md = ReadOrEmpty("report.md");
        Assert.StartsWith("# snapbench: ok", md);
        Assert.Contains("p99.9", md);
        var pngs = Directory.GetFiles(_dir, "*.png");
        Assert.NotEmpty(pngs);
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
        Assert.True(strategies["snapd"].GetProperty("badPages").GetInt64() > 0, json.RootElement.ToString());
        Assert.Equal(0, strategies["snapd"].GetProperty("completed").GetInt32());
        Assert.True(strategies["resident"].GetProperty("ok").GetBoolean());
        string md = await File.ReadAllTextAsync(Path.Combine(output, "report.md"));
        Assert.StartsWith("# snapbench: FAILED", md);
        Assert.Contains("bad page at offset", md);
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
