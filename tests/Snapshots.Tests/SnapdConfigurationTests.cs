using System.Diagnostics;
using System.Text.Json;

namespace Snapshots.Tests;

/// <summary>snapd's settings through `snapd --check-config`: file, environment and flags in that order of
/// precedence, and every bad value refused with exit 2, naming its setting.</summary>
[Trait("Category", "process")]
public sealed class SnapdConfigurationTests
{
    private static async Task<(int Exit, string Stdout, string Stderr)> CheckAsync(string[] args,
        Dictionary<string, string>? env = null)
    {
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        foreach (var a in (string[])[SnapdProcess.Dll, "--check-config", .. args]) psi.ArgumentList.Add(a);
        psi.Environment.Remove("SNAPSHOTS_STORE");
        foreach (var (k, v) in env ?? []) psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        var o = p.StandardOutput.ReadToEndAsync();
        var e = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        return (p.ExitCode, await o, await e);
    }

    [Fact]
    public async Task Flags_win_over_the_environment_which_wins_over_the_file()
    {
        using var t = new TestStore();
        var file = t.Path_("snapd.json");
        File.WriteAllText(file,
            """{"Store": "/from/file", "MemoryBudget": "1G", "MaxRestores": 8, "CacheSize": "5G"}""");
        var (exit, stdout, stderr) = await CheckAsync(["--config", file, "--max-restores", "9"],
            new() { ["SNAPD_MEMORYBUDGET"] = "3G", ["SNAPD_MAXRESTORES"] = "7" });
        Assert.True(exit == 0, stderr);
        var s = JsonDocument.Parse(stdout).RootElement;
        Assert.Equal("/from/file", s.GetProperty("store").GetString());
        Assert.Equal(3L << 30, s.GetProperty("memoryBudgetBytes").GetInt64());
        Assert.Equal(9, s.GetProperty("maxRestores").GetInt32());
        Assert.Equal(5L << 30, s.GetProperty("cacheBytes").GetInt64());
        Assert.Equal(10, s.GetProperty("faultDeadlineSeconds").GetDouble());
    }

    [Theory]
    [InlineData("MemoryBudget", "--memory-budget", "12Q")]
    [InlineData("CacheSize", "--cache-size", "-1G")]
    [InlineData("MaxRestores", "--max-restores", "0")]
    [InlineData("FaultDeadlineSeconds", "--fault-deadline", "0")]
    [InlineData("RecordShare", "--record-share", "1.5")]
    [InlineData("cache watermarks", "--cache-low-watermark", "0.95")]
    [InlineData("MaxRestores", "--max-restores", "many")]
    [InlineData("LogFormat", "--log-format", "xml")]
    [InlineData("Redis", "--redis", "redis://")]
    [InlineData("MemoryBudget", "--memory-budget", "1000T")]
    [InlineData("OriginFaults", "--origin-faults", "latency=5")]
    [InlineData("OriginFaults", "--origin-faults", "error=1.5")]
    [InlineData("OriginFaults", "--origin-faults", "errors=0.1")]
    [InlineData("OriginFaults", "--origin-faults", "error=60%,stall=0.6")]
    [InlineData("OriginFaults", "--origin-faults", "latency=5ms,latency=6ms")]
    public async Task A_bad_value_is_refused_with_exit_2_naming_its_setting(string setting, string flag, string value)
    {
        var (exit, stdout, stderr) = await CheckAsync(["--store", "/s", flag, value]);
        Assert.Equal(2, exit);
        Assert.Empty(stdout);
        Assert.StartsWith("snapd: ", stderr, StringComparison.Ordinal);
        Assert.Contains(setting, stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Origin_faults_are_parsed_at_start_and_printed_as_given()
    {
        const string Mix = "latency=5ms,jitter=2ms,error=20%,stall=0.02,stall-for=200ms,corrupt=0.01,miss=0";
        var (exit, stdout, stderr) = await CheckAsync(["--store", "/s", "--origin-faults", Mix]);
        Assert.True(exit == 0, stderr);
        Assert.Equal(Mix, JsonDocument.Parse(stdout).RootElement.GetProperty("originFaults").GetString());
        (exit, stdout, stderr) = await CheckAsync(["--store", "/s"], new() { ["SNAPD_ORIGINFAULTS"] = "stall=1" });
        Assert.True(exit == 0, stderr);
        Assert.Equal("stall=1", JsonDocument.Parse(stdout).RootElement.GetProperty("originFaults").GetString());
        (exit, stdout, _) = await CheckAsync(["--store", "/s"]);
        Assert.Equal(0, exit);
        Assert.False(JsonDocument.Parse(stdout).RootElement.TryGetProperty("originFaults", out _));
    }

    [Fact]
    public async Task No_store_and_a_missing_config_file_are_named_and_a_password_is_never_printed()
    {
        var (exit, _, stderr) = await CheckAsync([]);
        Assert.Equal(2, exit);
        Assert.Contains("no store", stderr, StringComparison.Ordinal);
        (exit, _, stderr) = await CheckAsync(["--config", "/nonexistent/snapd.json"]);
        Assert.Equal(2, exit);
        Assert.Contains("/nonexistent/snapd.json", stderr, StringComparison.Ordinal);
        var (ok, stdout, _) = await CheckAsync(["--store", "/s", "--redis", "redis://user:topsecret@127.0.0.1:7000"]);
        Assert.Equal(0, ok);
        Assert.DoesNotContain("topsecret", stdout, StringComparison.Ordinal);
        Assert.Contains("127.0.0.1:7000", stdout, StringComparison.Ordinal);
    }
}
