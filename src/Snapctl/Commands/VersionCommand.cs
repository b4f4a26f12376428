using System.CommandLine;
using System.Reflection;
using System.Runtime.InteropServices;

namespace Snapshots.Snapctl.Commands;

/// <summary>`snapctl version`: what is running, for bug reports: snapctl's version, the git commit it was built
/// from (when the build knew it) and the .NET runtime.</summary>
public static class VersionCommand
{
    /// <summary>What `version --json` prints; <see cref="Commit"/> is null when the build did not record one.
    /// </summary>
    public sealed record VersionInfo(string Version, string? Commit, string Runtime, string Os);

    public static VersionInfo Current()
    {
        var assembly = typeof(VersionCommand).Assembly;
        // The SDK writes "VERSION+COMMIT" into the informational version when it builds from a git work tree.
        string informational = assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()
            ?.InformationalVersion ?? assembly.GetName().Version?.ToString() ?? "0.0.0";
        int plus = informational.IndexOf('+', StringComparison.Ordinal);
        return new VersionInfo(
            plus < 0 ? informational : informational[..plus],
            plus < 0 ? null : informational[(plus + 1)..],
            RuntimeInformation.FrameworkDescription,
            $"{RuntimeInformation.OSDescription} {RuntimeInformation.OSArchitecture}".ToLowerInvariant());
    }

    public static Command Create()
    {
        var json = CommonOptions.Json();
        var cmd = new Command("version", "Show snapctl's version, the commit it was built from and the .NET runtime")
        {
            json,
        };
        cmd.SetAction(pr => Output.Result(Current(), pr.GetValue(json), v => Console.WriteLine(
            $"snapctl {v.Version}{(v.Commit is null ? "" : $" (commit {v.Commit})")}, {v.Runtime}, {v.Os}")));
        return cmd;
    }
}
