using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Snapshots.Tests;

/// <summary>snapctl as installed: the self-contained single file (out/snapctl/snapctl, which scripts/test.sh's
/// build_all publishes) runs alone on a host without .NET, and bin/snapctl works linked or copied anywhere.</summary>
[Trait("Category", Category.Process)]
public sealed class InstallTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("snapctl-install-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>The repository's <paramref name="relative"/> path, searching up from the test's output directory;
    /// FileNotFoundException naming the command that makes it.</summary>
    private static string Published(string relative)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, relative);
            if (File.Exists(candidate)) return candidate;
        }
        throw new FileNotFoundException($"{relative} is not built: run scripts/test.sh or scripts/setup.sh "
            + "(build_all publishes the single-file snapctl and links bin/snapctl to it)");
    }

    /// <summary>Runs <paramref name="exe"/> --help with an environment naming no .NET: no dotnet on PATH, no
    /// DOTNET_* variable. As root, the .NET installation this test runs on is also hidden (a
    /// private mount namespace with an empty tmpfs over it), so a binary that needed a runtime could not find
    /// one at its default location either.</summary>
    private static async Task<(int Code, string Stdout, string Stderr)> RunWithoutDotnetAsync(string exe)
    {
        // .../dotnet/shared/Microsoft.NETCore.App/10.0.x/ -> .../dotnet
        string dotnetRoot = Path.GetFullPath(Path.Combine(RuntimeEnvironment.GetRuntimeDirectory(), "../../.."));
        bool hide = Environment.UserName == "root" && File.Exists("/usr/bin/unshare");
        var psi = hide
            ? new ProcessStartInfo("/usr/bin/unshare")
            {
                ArgumentList = { "--mount", "/bin/sh", "-c", "/bin/mount -t tmpfs none \"$1\" && exec \"$2\" --help",
                    "sh", dotnetRoot, exe },
            }
            : new ProcessStartInfo(exe) { ArgumentList = { "--help" } };
        psi.RedirectStandardOutput = psi.RedirectStandardError = true;
        psi.UseShellExecute = false;
        psi.Environment.Clear();
        // The system's tools stay on PATH only where dotnet is hidden (a dotnet link there points into the empty
        // tmpfs); otherwise PATH is the binary's directory alone.
        psi.Environment["PATH"] = Path.GetDirectoryName(exe) + (hide ? ":/usr/bin:/bin" : "");
        psi.Environment["HOME"] = Path.GetTempPath();
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        await p.WaitForExitAsync(timeout.Token);
        return (p.ExitCode, await stdout, await stderr);
    }

    [Fact]
    public async Task The_single_file_runs_alone_in_a_directory_on_a_host_without_dotnet()
    {
        var copy = Path.Combine(_dir, "snapctl");
        File.Copy(Published("out/snapctl/snapctl"), copy);
        var (code, stdout, stderr) = await RunWithoutDotnetAsync(copy);
        Assert.True(code == 0, $"exit {code}: {stderr}");
        Assert.Contains("snapctl", stdout);
    }

    [Fact]
    public async Task The_launcher_works_symlinked_into_another_directory_and_copied()
    {
        string launcher = Published("bin/snapctl");
        var link = Path.Combine(_dir, "link", "snapctl");
        Directory.CreateDirectory(Path.GetDirectoryName(link)!);
        File.CreateSymbolicLink(link, launcher);
        var linked = await RunWithoutDotnetAsync(link);
        Assert.True(linked.Code == 0, $"symlinked: exit {linked.Code}: {linked.Stderr}");

        // cp follows the link: the copy is the binary itself, which needs nothing beside it.
        var copy = Path.Combine(_dir, "copy", "snapctl");
        Directory.CreateDirectory(Path.GetDirectoryName(copy)!);
        File.Copy(launcher, copy);
        var copied = await RunWithoutDotnetAsync(copy);
        Assert.True(copied.Code == 0, $"copied: exit {copied.Code}: {copied.Stderr}");
    }

    [Fact]
    public async Task The_bash_completion_script_completes_commands_and_options()
    {
        string exe = Published("out/snapctl/snapctl");
        // The script as a user's shell runs it, on a line typed so far: COMP_* as bash sets them.
        string script = $$"""
            eval "$('{{exe}}' completion bash)"
            complete_line() {
              COMP_LINE="$1"; COMP_POINT=${#COMP_LINE}; read -ra COMP_WORDS <<< "$1"
              COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _snapctl_complete; echo "${COMPREPLY[*]}"
            }
            complete_line '{{exe}} gc --dr'
            complete_line '{{exe}} sta'
            """;
        var psi = new ProcessStartInfo("/bin/bash") { ArgumentList = { "-c", script } };
        psi.RedirectStandardOutput = psi.RedirectStandardError = true;
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        Assert.True(p.ExitCode == 0, await stderr);
        Assert.Equal(["--dry-run", "stats"], (await stdout).Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }
}
