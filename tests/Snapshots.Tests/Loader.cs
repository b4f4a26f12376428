using System.Diagnostics;
using System.Text.Json;

namespace Snapshots.Tests;

/// <summary>Runs `snapctl restore` and native/bin/replay-vmm (Firecracker's side) against each other.</summary>
public static class Loader
{
    public static string ReplayVmm => NativeBin.Find("replay-vmm");

    public sealed record Run(Snapctl.Result Handler, int VmmExit, string VmmStdout, string VmmStderr)
    {
        public JsonElement Stats => Handler.Json;
        public JsonElement Vmm => JsonDocument.Parse(VmmStdout.Trim().Split('\n')[^1]).RootElement;
    }

    /// <summary>
    /// Starts the handler, waits for its socket, runs the VMM to completion, then collects the handler.
    /// </summary>
    public static async Task<Run> RestoreAsync(
        TestStore t, string[] restoreArgs, string[] vmmArgs, TimeSpan? limit = null)
    {
        var socket = t.Path_($"uffd-{Guid.NewGuid():N}.sock");
        using var handler = Snapctl.Start(
            t, ["restore", "--json", "--uffd-socket", socket, "--accept-timeout", "60", .. restoreArgs]);
        var hout = handler.StandardOutput.ReadToEndAsync();
        var herr = handler.StandardError.ReadToEndAsync();
        var clock = Stopwatch.StartNew();
        while (!File.Exists(socket) && !handler.HasExited && clock.Elapsed < TimeSpan.FromSeconds(30))
            await Task.Delay(20);

        using var vmm = StartVmm(["--socket", socket, "--timeout", "60", .. vmmArgs]);
        var vout = vmm.StandardOutput.ReadToEndAsync();
        var verr = vmm.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(limit ?? TimeSpan.FromSeconds(90));
        await vmm.WaitForExitAsync(cts.Token);
        await handler.WaitForExitAsync(cts.Token);
        return new Run(
            new Snapctl.Result(handler.ExitCode, await hout, await herr), vmm.ExitCode, await vout, await verr);
    }

    public static Process StartVmm(string[] args)
    {
        var psi = new ProcessStartInfo(ReplayVmm)
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        return Process.Start(psi)!;
    }

    public static async Task<(int Exit, string Stdout)> VmmAsync(params string[] args)
    {
        using var p = StartVmm(args);
        var o = p.StandardOutput.ReadToEndAsync();
        await p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        return (p.ExitCode, await o);
    }
}
