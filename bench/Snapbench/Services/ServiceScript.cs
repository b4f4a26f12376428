using System.Diagnostics;

namespace Snapshots.Snapbench.Services;

/// <summary>Runs one of the repository's service scripts (scripts/services/NAME.sh start|stop), the same the tests
/// use, with its settings in the environment; the script stops only the processes it started (pid files).</summary>
public static class ServiceScript
{
    /// <summary>Runs scripts/services/SCRIPT ACTION; returns its output; throws naming the script and its output
    /// when it fails.</summary>
    public static async Task<string> RunAsync(Bench bench, string script, string action,
        IReadOnlyDictionary<string, string> env, TimeSpan limit)
    {
        var psi = new ProcessStartInfo("bash")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        psi.ArgumentList.Add(Path.Combine(bench.Tools.Root, "scripts", "services", script));
        psi.ArgumentList.Add(action);
        foreach (var (k, v) in env) psi.Environment[k] = v;
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {script}");
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(limit);
        try
        {
            await p.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"{script} {action} did not finish within {limit.TotalSeconds} s");
        }
        string text = (await stdout) + (await stderr);
        if (p.ExitCode != 0)
            throw new InvalidOperationException($"{script} {action} failed ({p.ExitCode}): {text.Trim()}");
        return text;
    }
}
