namespace Snapshots.Tests;

/// <summary>docs/errors.md as snapctl users see it: one line on stderr, a typed JSON error, exit 1 for a failed
/// operation and 2 for a wrong command line, the flag named by the CLI (never by the library), no stack
/// trace.</summary>
[Trait("Category", Category.Process)]
public class CliErrorTests
{
    private static void OneLine(Snapctl.Result r)
    {
        var lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1, $"expected one stderr line, got:\n{r.Stderr}");
        Assert.StartsWith("snapctl: error: ", lines[0]);
        Assert.DoesNotContain("   at ", r.Stderr); // no stack trace
        Assert.NotEqual(134, r.ExitCode);
    }

    [Theory]
    [InlineData("build", "--name", "fn", "--memory", "IMG", "--parent", "os", "--tenant", "Acme")]
    [InlineData("build", "--name", "fn", "--memory", "IMG", "--parent", "os", "--tenant", "a/b")]
    [InlineData("build", "--name", "fn", "--memory", "IMG", "--parent", "os", "--layer", "function")]
    [InlineData("build", "--name", "os", "--memory", "IMG")]
    [InlineData("build", "--name", "other", "--memory", "IMG")]
    [InlineData("export", "--name", "fn", "--out", "OUT")]
    [InlineData("export", "--name", "os", "--out", "OUT", "--distributed", "redis:/nowhere")]
    [InlineData("rm", "--name", "os")]
    public async Task A_failed_operation_is_one_line_naming_the_flag_with_exit_1(params string[] args)
    {
        using var t = new TestStore();
        var img = t.Image("os.img", size: 16L << 20);
        await t.BuildAsync("os", img);
        await t.BuildAsync("fn", img, parent: "os", tenant: "acme");
        var argv = args.Select(a => a == "IMG" ? img : a == "OUT" ? t.Path_("out.img") : a).Append("--json").ToArray();
        var r = await Snapctl.RunAsync(t, argv);
        Assert.Equal(1, r.ExitCode);
        OneLine(r);
        Assert.Matches(@"\(option --(tenant|replace|distributed|force|layer)", r.Stderr);
        var error = r.Json.GetProperty("error");
        Assert.False(string.IsNullOrEmpty(error.GetProperty("kind").GetString()));
        Assert.Equal(r.Stderr.Trim()["snapctl: error: ".Length..], error.GetProperty("message").GetString());
        Assert.False(File.Exists(t.Path_("out.img")));
    }

    [Theory]
    [InlineData("build", "--memory", "x")]
    [InlineData("build", "--name", "x", "--memory", "x", "--no-such-option")]
    [InlineData("export", "--name", "x", "--out", "y", "--cache-size", "3Q")]
    [InlineData("restore", "--name", "x", "--uffd-socket", "s", "--prefetch", "--no-prefetch")]
    [InlineData("warm", "--name", "x", "--parallel", "many")]
    [InlineData("no-such-command")]
    [InlineData()]
    public async Task A_wrong_command_line_is_one_line_and_a_hint_with_exit_2(params string[] args)
    {
        using var t = new TestStore();
        var r = await Snapctl.RunAsync(t, args);
        Assert.Equal(2, r.ExitCode);
        OneLine(r);
        Assert.Empty(r.Stdout);
        if (r.Stderr.Contains("See '")) Assert.Contains("--help'", r.Stderr);
    }

    [Fact]
    public async Task Usage_errors_carry_a_hint_to_the_command_help()
    {
        using var t = new TestStore();
        var r = await Snapctl.RunAsync(t, "build", "--memory", "x");
        Assert.Contains("See 'snapctl build --help'.", r.Stderr);
        var json = await Snapctl.RunAsync(t, "export", "--name", "x", "--out", "y", "--cache-size", "3Q", "--json");
        Assert.Equal("usage", json.Json.GetProperty("error").GetProperty("kind").GetString());
    }

    // Found by a reviewer: `ln -s /proc/self/fd/1 sl; snapctl gen-image --out sl` exited 0 with `sl` replaced by a
    // regular file (and as root, `export --out /dev/stdout` replaced the system's link). Refused, naming --out.
    [Theory]
    [InlineData("gen-image", "--size", "16M", "--out", "LINK")]
    [InlineData("export", "--name", "os", "--out", "LINK")]
    [InlineData("log", "synth", "--image", "IMG", "--pages", "100", "--out", "LINK")]
    public async Task An_output_that_is_a_symlink_is_refused_naming_the_option(params string[] args)
    {
        using var t = new TestStore();
        var img = t.Image("os.img", size: 16L << 20);
        await t.BuildAsync("os", img);
        var link = t.Path_("sl");
        File.CreateSymbolicLink(link, "/proc/self/fd/1");
        var r = await Snapctl.RunAsync(t, [.. args.Select(a => a == "LINK" ? link : a == "IMG" ? img : a), "--json"]);
        Assert.Equal(1, r.ExitCode);
        OneLine(r);
        Assert.Contains("is a symlink", r.Stderr);
        Assert.Contains("(option --out)", r.Stderr);
        Assert.Equal("invalid-input", r.Json.GetProperty("error").GetProperty("kind").GetString());
        Assert.Equal("/proc/self/fd/1", new FileInfo(link).LinkTarget);
        Assert.DoesNotContain(Directory.GetFiles(t.Dir),
            f => Path.GetFileName(f).StartsWith("sl.", StringComparison.Ordinal)); // no temp file
    }
}
