using Snapshots.Snapd;
using Snapshots.Store;

namespace Snapshots.Tests;

/// <summary>snapd's settings: file, environment and flags in that order of precedence, and every bad value named.
/// </summary>
[Trait("Category", "unit")]
public sealed class SnapdConfigurationTests
{
    private static SnapdSettings Resolve(string[] args, Dictionary<string, string?>? env = null) =>
        SnapdConfiguration.Resolve(SnapdConfiguration.Build(args, env ?? new Dictionary<string, string?>()));

    [Fact]
    public void Flags_win_over_the_environment_which_wins_over_the_file()
    {
        var dir = Directory.CreateTempSubdirectory("snapd-config").FullName;
        try
        {
            var file = Path.Combine(dir, "snapd.json");
            File.WriteAllText(file,
                """{"Store": "/from/file", "MemoryBudget": "1G", "MaxRestores": 8, "CacheSize": "5G"}""");
            var s = Resolve(["--config", file, "--max-restores", "9"],
                new Dictionary<string, string?> { ["MemoryBudget"] = "3G", ["MaxRestores"] = "7" });
            Assert.Equal("/from/file", s.Store);
            Assert.Equal(3L << 30, s.MemoryBudgetBytes);
            Assert.Equal(9, s.MaxRestores);
            Assert.Equal(5L << 30, s.CacheBytes);
            Assert.Equal(5L << 30, s.CacheOptions.BudgetBytes);
            Assert.Equal(TimeSpan.FromSeconds(10), s.FaultDeadline);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Theory]
    [InlineData("MemoryBudget", "--memory-budget", "12Q")]
    [InlineData("CacheSize", "--cache-size", "-1G")]
    [InlineData("MaxRestores", "--max-restores", "0")]
    [InlineData("FaultDeadlineSeconds", "--fault-deadline", "0")]
    [InlineData("RecordShare", "--record-share", "1.5")]
    [InlineData("CacheHighWatermark", "--cache-low-watermark", "0.95")]
    [InlineData("MaxRestores", "--max-restores", "many")]
    [InlineData("LogFormat", "--log-format", "xml")]
    public void A_bad_value_is_refused_naming_its_setting(string setting, string flag, string value)
    {
        var e = Assert.Throws<InvalidInputException>(() => Resolve(["--store", "/s", flag, value]));
        Assert.Contains(setting, e.Message + e.Parameter, StringComparison.Ordinal);
    }

    [Fact]
    public void No_store_and_a_missing_config_file_are_named()
    {
        var e = Assert.Throws<InvalidInputException>(() =>
            Resolve([], new Dictionary<string, string?>()));
        Assert.Equal("store", e.Parameter);
        e = Assert.Throws<InvalidInputException>(() => Resolve(["--config", "/nonexistent/snapd.json"]));
        Assert.Equal("config", e.Parameter);
    }
}
