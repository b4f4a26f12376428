using System.Diagnostics;

namespace Snapshots.Tests.Services;

/// <summary>Runs the repo's scripts/services/*.sh, which start and stop the real services on loopback.</summary>
public static class ServiceScripts
{
    public static string RepoRoot { get; } = FindRoot();

    private static string FindRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Snapshots.sln"))) dir = dir.Parent;
        return dir?.FullName
            ?? throw new InvalidOperationException($"no Snapshots.sln above {AppContext.BaseDirectory}");
    }

    /// <summary>Runs a script and fails loudly (with its output) when it does not exit 0: a service that
    /// cannot start is a failed test, never a skipped one.</summary>
    public static string Run(string script, string verb, IReadOnlyDictionary<string, string> env)
    {
        var psi = new ProcessStartInfo("bash")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        psi.ArgumentList.Add(Path.Combine(RepoRoot, "scripts", "services", script));
        psi.ArgumentList.Add(verb);
        foreach (var (k, v) in env) psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromMinutes(5)))
        {
            p.Kill(entireProcessTree: true);
            throw new InvalidOperationException($"{script} {verb} did not finish in 5 minutes");
        }
        var output = stdout.Result + stderr.Result;
        if (p.ExitCode != 0)
            throw new InvalidOperationException($"{script} {verb} failed (exit {p.ExitCode}):\n{output}");
        return output;
    }

    public static string StateDir(string name) => Path.Combine(RepoRoot, ".work", "test-services", name);
}
