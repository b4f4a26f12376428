using System.Diagnostics;
using System.Text.Json;

namespace Snapshots.Tests;

/// <summary>Runs the real snapctl binary (built next to the tests) as a separate process.</summary>
public static class Snapctl
{
    public sealed record Result(int ExitCode, string Stdout, string Stderr)
    {
        public JsonElement Json => JsonDocument.Parse(Stdout).RootElement;
    }

    /// <summary>The snapctl built beside the tests; $SNAPCTL_TEST_DLL runs the process tests against another
    /// build (an older one, to show a test failed before a fix).</summary>
    public static string Dll => Environment.GetEnvironmentVariable("SNAPCTL_TEST_DLL") is { Length: > 0 } other
        ? other
        : Path.Combine(AppContext.BaseDirectory, "snapctl.dll");

    public static Process Start(TestStore env, params string[] args) => Start(env, null, args);

    /// <summary>Starts snapctl with <paramref name="environment"/> on top of this process's (a null value
    /// removes the variable).</summary>
    public static Process Start(TestStore env, IReadOnlyDictionary<string, string?>? environment, string[] args)
    {
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        psi.ArgumentList.Add(Dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["SNAPSHOTS_STORE"] = env.StoreDir;
        psi.Environment["SNAPSHOTS_KEYRING"] = env.KeyringDir;
        foreach (var (k, v) in environment ?? new Dictionary<string, string?>())
        {
            if (v is null) psi.Environment.Remove(k);
            else psi.Environment[k] = v;
        }
        return Process.Start(psi)!;
    }

    public static Task<Result> RunAsync(TestStore env, params string[] args) => RunAsync(env, null, args);

    public static async Task<Result> RunAsync(
        TestStore env, IReadOnlyDictionary<string, string?>? environment, params string[] args)
    {
        using var p = Start(env, environment, args);
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await p.WaitForExitAsync(timeout.Token);
        return new Result(p.ExitCode, await stdout, await stderr);
    }
}
