using System.Diagnostics;
using Snapshots.Store.Origin;

namespace Snapshots.Tests;

/// <summary>Stores are created on purpose: `snapctl init` makes one (idempotent, adopting existing data), and
/// every other command refuses a location without a marker, naming init. Before: ls and gc on a directory that
/// is not a store exited 0 with empty results, and build made a fresh store at a mistyped path.</summary>
[Trait("Category", Category.Process)]
public class StoreInitCliTests
{
    [Theory]
    [InlineData("ls")]
    [InlineData("gc")]
    [InlineData("build")]
    public async Task A_command_on_an_unmarked_directory_fails_naming_init(string command)
    {
        using var t = new TestStore();
        var img = t.Image("os.img", size: 16L << 20);
        var unmarked = t.Path_("not-a-store");
        Directory.CreateDirectory(unmarked);
        string[] args = command == "build"
            ? ["build", "--store", unmarked, "--name", "os", "--layer", "os", "--memory", img, "--json"]
            : [command, "--store", unmarked, "--json"];
        var r = await Snapctl.RunAsync(t, args);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("is not a snapshot store", r.Stderr);
        Assert.Contains("snapctl init", r.Stderr);
        Assert.Equal("not-a-store", r.Json.GetProperty("error").GetProperty("kind").GetString());
        Assert.Empty(Directory.EnumerateFileSystemEntries(unmarked)); // nothing was written there
    }

    [Fact]
    public async Task Build_at_a_mistyped_path_creates_nothing()
    {
        using var t = new TestStore();
        var img = t.Image("os.img", size: 16L << 20);
        var typo = t.Path_("stroe");
        var r = await Snapctl.RunAsync(t, "build", "--store", typo, "--name", "os", "--layer", "os", "--memory", img);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("does not exist", r.Stderr);
        Assert.Contains("snapctl init", r.Stderr);
        Assert.False(Directory.Exists(typo));
    }

    [Fact]
    public async Task Init_creates_is_idempotent_and_adopts_existing_data()
    {
        using var t = new TestStore();
        var fresh = t.Path_("fresh");
        var first = await Snapctl.RunAsync(t, "init", "--store", fresh, "--json");
        Assert.True(first.ExitCode == 0, first.Stderr);
        Assert.Equal("created", first.Json.GetProperty("outcome").GetString());
        Assert.Equal("""{"format":"snapshots-store","version":1}""",
            File.ReadAllText(Path.Combine(fresh, StoreMarker.Key)));
        var again = await Snapctl.RunAsync(t, "init", "--store", fresh);
        Assert.True(again.ExitCode == 0, again.Stderr);
        Assert.Contains("already a store", again.Stdout);
        var ls = await Snapctl.RunAsync(t, "ls", "--store", fresh, "--json");
        Assert.True(ls.ExitCode == 0, ls.Stderr);

        // A store made before markers existed: its snapshots are adopted, not hidden.
        await t.BuildAsync("os", t.Image("os.img", size: 16L << 20));
        File.Delete(Path.Combine(t.StoreDir, StoreMarker.Key));
        Assert.Equal(1, (await Snapctl.RunAsync(t, "ls")).ExitCode);
        var adopt = await Snapctl.RunAsync(t, "init", "--json");
        Assert.True(adopt.ExitCode == 0, adopt.Stderr);
        Assert.Equal("adopted", adopt.Json.GetProperty("outcome").GetString());
        var listed = await Snapctl.RunAsync(t, "ls", "--json");
        Assert.Equal(1, listed.Json.GetProperty("snapshots").GetArrayLength());
    }

    [Fact]
    public async Task A_later_marker_version_is_refused_naming_it()
    {
        using var t = new TestStore();
        File.WriteAllText(Path.Combine(t.StoreDir, StoreMarker.Key), """{"format":"snapshots-store","version":7}""");
        foreach (var args in new[] { new[] { "ls" }, ["init"] })
        {
            var r = await Snapctl.RunAsync(t, args);
            Assert.Equal(1, r.ExitCode);
            Assert.Contains("version 7", r.Stderr);
        }
        File.WriteAllText(Path.Combine(t.StoreDir, StoreMarker.Key), "not json");
        var bad = await Snapctl.RunAsync(t, "ls", "--json");
        Assert.Equal("not-a-store", bad.Json.GetProperty("error").GetProperty("kind").GetString());
    }

    [Fact]
    public async Task An_unreachable_redis_is_a_warning_at_once_and_the_read_goes_on()
    {
        using var t = new TestStore();
        var img = t.Image("os.img", size: 16L << 20);
        await t.BuildAsync("os", img);
        // A port nothing listens on (refused at once): the warning comes before the export's result.
        var clock = Stopwatch.StartNew();
        var r = await Snapctl.RunAsync(t, "export", "--name", "os", "--out", t.Path_("os.out"),
            "--distributed", "redis://127.0.0.1:7198?connect=500", "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.True(TestStore.SameBytes(img, t.Path_("os.out")));
        Assert.Matches(@"snapctl: warning: distributed cache redis://127\.0\.0\.1:7198\?connect=500 unreachable: "
            + ".*refused.*; reading without it", r.Stderr);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"took {clock.Elapsed}");
    }

    /// <summary>Before: warm against an unreachable Redis printed the warning, then reported Redis misses, 0
    /// errors, fills complete, exit 0, and Redis held nothing. Warm fills the tiers it is given: exit 1 naming
    /// the distributed cache; the local cache is still filled. The warning says what it waited.</summary>
    [Fact]
    public async Task Warm_with_an_unreachable_redis_fails_and_says_how_long_it_waited()
    {
        using var t = new TestStore();
        var img = t.Image("os.img", size: 16L << 20);
        var b = await t.BuildAsync("os", img);
        var r = await Snapctl.RunAsync(t, "warm", "--name", "os", "--cache-dir", t.Path_("c"),
            "--distributed", "redis://127.0.0.1:7198?connect=500", "--json");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("was unreachable", r.Stderr);
        Assert.Contains("not filled", r.Stderr);
        Assert.Contains("(option --distributed", r.Stderr);
        Assert.Matches(@"connect timeout 500 ms; gave up after \d+\.\d s", r.Stderr);
        Assert.Equal(b.NewChunks, Snapshots.Store.Cache.DiskChunkCache.Occupancy(t.Path_("c")).Chunks);
    }
}
