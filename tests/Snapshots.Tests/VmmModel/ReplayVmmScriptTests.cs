using System.Text.Json;

namespace Snapshots.Tests.VmmModel;

/// <summary>replay-vmm's --script mode by itself: its model agrees with the kernel when nobody else fills guest
/// memory (resident), and it names what a wrong handler served (minimal: ignores REMOVE).</summary>
[Trait("Category", Category.Process)]
public class ReplayVmmScriptTests
{
    private static async Task<(int Exit, JsonElement[] Lines)> RunAsync(
        TestStore t, IEnumerable<VmmScript> scripts, params string[] args)
    {
        var image = t.Path_("img");
        if (!File.Exists(image)) await File.WriteAllBytesAsync(image, VmmModelTests.RandomImage(5, 2 << 20, 2));
        var file = t.Path_($"s-{Guid.NewGuid():N}.txt");
        await File.WriteAllTextAsync(file, VmmScript.ToFile(scripts));
        var (exit, stdout) = await Loader.VmmAsync(["--image", image, "--script", file, "--timeout", "10", .. args]);
        return (exit, stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => JsonDocument.Parse(l).RootElement).ToArray());
    }

    [Fact]
    public async Task Random_scripts_agree_with_the_kernel_when_memory_is_resident()
    {
        using var t = new TestStore();
        var scripts = Enumerable.Range(0, 300).Select(i => ScriptGenerator.Generate(i, 512, 3)).ToArray();
        var (exit, lines) = await RunAsync(t, scripts, "--mode", "resident", "--vcpus", "3");
        Assert.Equal(300, lines.Length);
        Assert.All(lines, l => Assert.Equal(0, l.GetProperty("bad").GetInt32()));
        Assert.Equal(0, exit);
        Assert.Equal(scripts[7].OpCount, lines[7].GetProperty("ops").GetInt32());
        Assert.True(lines.Sum(l => l.GetProperty("reads").GetInt64()) > 300 * 10);
    }

    [Fact]
    public async Task A_handler_that_ignores_remove_events_is_caught_and_named()
    {
        using var t = new TestStore();
        var good = VmmScript.Of([new Read(0, 4)], [new Write(8, 2, 3), new Read(20, 2)], [new Read(8, 2)]);
        var stale = VmmScript.Of([new Read(0, 4)], [new Free(2, 1)], [new Read(2, 1)]);
        var (exit, lines) = await RunAsync(t, [good, stale], "--mode", "minimal");
        Assert.Equal(1, exit);
        Assert.Equal(0, lines[0].GetProperty("bad").GetInt32());
        Assert.Equal(JsonValueKind.Null, lines[0].GetProperty("firstBad").ValueKind);
        Assert.Equal(1, lines[1].GetProperty("bad").GetInt32());
        Assert.Equal("step 3 (read 2 1): page 2: expected zero, found snapshot bytes",
            lines[1].GetProperty("firstBad").GetString());
    }

    [Fact]
    public async Task A_handler_that_never_serves_times_out_per_script_with_exit_3()
    {
        using var t = new TestStore();
        var socket = t.Path_("silent.sock");
        using var listener = new System.Net.Sockets.Socket(
            System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream,
            System.Net.Sockets.ProtocolType.Unspecified);
        listener.Bind(new System.Net.Sockets.UnixDomainSocketEndPoint(socket));
        listener.Listen(8);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var (exit, lines) = await RunAsync(
            t, [VmmScript.Of([new Read(0, 1)]), VmmScript.Of([new Read(1, 1)])], "--socket", socket,
            "--timeout", "0.5");
        Assert.Equal(3, exit);
        Assert.Equal(2, lines.Length);
        Assert.StartsWith("timed out", lines[1].GetProperty("error").GetString());
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(8), $"{clock.Elapsed}");
    }

    [Fact]
    public async Task Vcpus_split_a_trace_over_threads_that_fault_at_once()
    {
        using var t = new TestStore();
        var image = t.Path_("img");
        await File.WriteAllBytesAsync(image, VmmModelTests.RandomImage(6, 2 << 20, 1));
        var (exit, stdout) = await Loader.VmmAsync(
            "--image", image, "--mode", "minimal", "--touch", "all", "--vcpus", "3", "--timeout", "30");
        var json = JsonDocument.Parse(stdout).RootElement;
        Assert.Equal(0, exit);
        Assert.Equal(3, json.GetProperty("vcpus").GetInt32());
        Assert.Equal(512, json.GetProperty("pages").GetInt32());
        Assert.Equal(0, json.GetProperty("bad").GetInt32());
    }
}
