namespace Snapshots.Tests;

/// <summary>Secrets never reach snapctl's output. Before: --distributed's default was $SNAPSHOTS_DISTRIBUTED,
/// evaluated for help, so `export -h` printed `[default: rediss://u:topsecret@...]`; a password given as
/// ?password= was quoted in the error on stderr and in the JSON.</summary>
[Trait("Category", Category.Process)]
public class SecretOutputTests
{
    private const string Secret = "topsecret";

    [Theory]
    [InlineData("export")]
    [InlineData("warm")]
    [InlineData("restore")]
    [InlineData("mount")]
    [InlineData("verify")]
    [InlineData("log", "attach")]
    public async Task Help_shows_the_variables_never_their_values(params string[] command)
    {
        using var t = new TestStore();
        var env = new Dictionary<string, string?>
        {
            ["SNAPSHOTS_DISTRIBUTED"] = $"rediss://u:{Secret}@127.0.0.1:7390",
            ["SNAPSHOTS_STORE"] = $"s3://bk1/prod?endpoint=http://{Secret}.example:4600",
        };
        var help = await Snapctl.RunAsync(t, env, [.. command, "-h"]);
        Assert.Equal(0, help.ExitCode);
        Assert.DoesNotContain(Secret, help.Stdout + help.Stderr);
        Assert.Contains("$SNAPSHOTS_DISTRIBUTED", help.Stdout);
        Assert.Contains("$SNAPSHOTS_STORE", help.Stdout);
        var json = await Snapctl.RunAsync(t, env, ["help", .. command, "--json"]);
        Assert.Equal(0, json.ExitCode);
        Assert.DoesNotContain(Secret, json.Stdout + json.Stderr);
    }

    /// <summary>The help says what the options take: the SDK's default credential chain for S3 (not only AWS_*
    /// and a profile), and every Redis form.</summary>
    [Fact]
    public async Task Help_names_the_credential_chain_and_the_redis_forms()
    {
        using var t = new TestStore();
        var help = await Snapctl.RunAsync(t, "export", "-h");
        var words = help.Stdout.Split((char[])[' ', '\n', '\r'], StringSplitOptions.RemoveEmptyEntries);
        var text = string.Join(' ', words);
        Assert.DoesNotContain("AWS_* or the AWS profile", text);
        Assert.Contains("AWS SDK's default chain", text);
        foreach (var form in new[] { "rediss://", "USER:PASSWORD@", "ca=", "StackExchange.Redis configuration" })
            Assert.Contains(form, text);
    }

    [Theory]
    [InlineData("redis://u:pw@127.0.0.1:7390?password=topsecret")]
    [InlineData("127.0.0.1:7390,password=topsecret,bogus=1")]
    [InlineData("redis://u:pw@127.0.0.1:7390,password=topsecret")]
    public async Task A_bad_address_never_prints_its_password(string address)
    {
        using var t = new TestStore();
        await t.BuildAsync("os", t.Image("os.img", size: 16L << 20));
        var r = await Snapctl.RunAsync(t, "export", "--name", "os", "--out", t.Path_("o"), "--distributed", address,
            "--json");
        Assert.Equal(1, r.ExitCode);
        Assert.Equal("invalid-input", r.Json.GetProperty("error").GetProperty("kind").GetString());
        Assert.DoesNotContain(Secret, r.Stdout + r.Stderr);
        var env = new Dictionary<string, string?> { ["SNAPSHOTS_DISTRIBUTED"] = address };
        var fromEnv = await Snapctl.RunAsync(t, env, "export", "--name", "os", "--out", t.Path_("o"), "--json");
        Assert.Equal(1, fromEnv.ExitCode);
        Assert.DoesNotContain(Secret, fromEnv.Stdout + fromEnv.Stderr);
    }
}
