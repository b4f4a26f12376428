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
}
