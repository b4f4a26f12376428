namespace Snapshots.Tests;

/// <summary>The CLI as users and machines see it: exit codes, --json fields, messages.</summary>
[Trait("Category", Category.Process)]
public class CliTests
{
    [Fact]
    public async Task Build_export_verify_inspect_ls_rm_gc_through_the_binary()
    {
        using var t = new TestStore();
        var os = t.Image("os.img");
        var fn = t.Image("fn.img", function: 3);

        var b = await Snapctl.RunAsync(t, "build", "--name", "os", "--layer", "os", "--memory", os, "--json");
        Assert.Equal(0, b.ExitCode);
        string[] fields =
        [
            "chunks", "zeroChunks", "inheritedChunks", "dedupedChunks", "newChunks", "uploadedBytes", "manifestBytes",
            "seconds",
        ];
        foreach (var field in fields)
            Assert.True(b.Json.TryGetProperty(field, out _), $"build --json lacks {field}: {b.Stdout}");
        Assert.Equal(64, b.Json.GetProperty("chunks").GetInt32());

        var f = await Snapctl.RunAsync(
            t, "build", "--name", "fn", "--memory", fn, "--parent", "os", "--tenant", "acme", "--holes-are-zero",
            "--json");
        Assert.Equal(0, f.ExitCode);
        Assert.True(f.Json.GetProperty("inheritedChunks").GetInt32() > 0);

        var e = await Snapctl.RunAsync(
            t, "export", "--name", "fn", "--tenant", "acme", "--out", t.Path_("fn.out"),
            "--cache-dir", t.Path_("cache"), "--json");
        Assert.Equal(0, e.ExitCode);
        Assert.True(TestStore.SameBytes(fn, t.Path_("fn.out")));

        var v = await Snapctl.RunAsync(t, "verify", "--name", "fn", "--tenant", "acme", "--json");
        Assert.Equal(0, v.ExitCode);
        Assert.True(v.Json.GetProperty("ok").GetBoolean());

        var i = await Snapctl.RunAsync(t, "inspect", "--name", "fn", "--json");
        Assert.Equal(0, i.ExitCode);
        Assert.Equal(2, i.Json.GetProperty("chain").GetArrayLength());

        var ls = await Snapctl.RunAsync(t, "ls", "--json");
        Assert.Equal(2, ls.Json.GetProperty("snapshots").GetArrayLength());

        var rmParent = await Snapctl.RunAsync(t, "rm", "--name", "os");
        Assert.Equal(1, rmParent.ExitCode);
        Assert.Contains("is the parent of fn", rmParent.Stderr);

        var foreign = await Snapctl.RunAsync(t, "rm", "--name", "fn", "--tenant", "evil");
        Assert.Equal(1, foreign.ExitCode);
        Assert.Contains("belongs to another tenant", foreign.Stderr);
        Assert.Equal(0, (await Snapctl.RunAsync(t, "rm", "--name", "fn", "--tenant", "acme")).ExitCode);
        var gc = await Snapctl.RunAsync(t, "gc", "--json");
        Assert.Equal(0, gc.ExitCode);
        Assert.Equal(f.Json.GetProperty("newChunks").GetInt32(), gc.Json.GetProperty("chunksDeleted").GetInt32());
    }

    [Fact]
    public async Task Errors_exit_non_zero_with_a_message_naming_the_problem()
    {
        using var t = new TestStore();
        var missing = await Snapctl.RunAsync(t, "build", "--name", "x", "--memory", t.Path_("absent.img"), "--json");
        Assert.Equal(1, missing.ExitCode);
        Assert.Contains("absent.img does not exist", missing.Stderr);
        var error = missing.Json.GetProperty("error");
        Assert.Contains("absent.img does not exist", error.GetProperty("message").GetString());
        Assert.Equal("invalid-input", error.GetProperty("kind").GetString());

        var badName = await Snapctl.RunAsync(t, "build", "--name", "../evil", "--memory", t.Image("os.img"));
        Assert.Equal(1, badName.ExitCode);
        Assert.Contains("snapshot name '../evil' is invalid", badName.Stderr);

        var notFound = await Snapctl.RunAsync(t, "export", "--name", "nope", "--out", t.Path_("x"));
        Assert.Equal(1, notFound.ExitCode);
        Assert.Contains("snapshot 'nope' not found", notFound.Stderr);

        var usage = await Snapctl.RunAsync(t, "build", "--memory", "x");
        Assert.Equal(2, usage.ExitCode);

        var corrupt = await Snapctl.RunAsync(
            t, "build", "--name", "os", "--layer", "os", "--memory", t.Path_("os.img"));
        Assert.Equal(0, corrupt.ExitCode);
        var chunk = t.ChunkFiles().First();
        var bytes = File.ReadAllBytes(chunk); bytes[0] ^= 1; File.WriteAllBytes(chunk, bytes);
        var verify = await Snapctl.RunAsync(t, "verify", "--name", "os", "--json");
        Assert.Equal(1, verify.ExitCode);
        Assert.Equal(Path.GetFileName(chunk), verify.Json.GetProperty("bad")[0].GetProperty("chunk").GetString());
    }

    [Fact]
    public async Task Keys_are_created_explicitly_or_announced_and_named_by_fingerprint_only()
    {
        using var t = new TestStore();
        var created = await Snapctl.RunAsync(t, "key", "create", "--tenant", "acme", "--json");
        Assert.Equal(0, created.ExitCode);
        var acme = created.Json.GetProperty("fingerprint").GetString()!;
        Assert.Matches("^[0-9a-f]{16}$", acme);
        var again = await Snapctl.RunAsync(t, "key", "create", "--tenant", "acme");
        Assert.Equal(1, again.ExitCode);
        Assert.Contains("already has a key", again.Stderr);
        Assert.Equal(2, (await Snapctl.RunAsync(t, "key", "create")).ExitCode);

        var os = await Snapctl.RunAsync(t, "build", "--name", "os", "--layer", "os", "--memory", t.Image("os.img"));
        Assert.Contains("created a new key for domain 'shared'", os.Stderr); // a build that makes one says so
        var fn = await Snapctl.RunAsync(t, "build", "--name", "fn", "--parent", "os", "--tenant", "acme",
            "--holes-are-zero", "--memory", t.Image("fn.img", function: 3));
        Assert.Equal(0, fn.ExitCode);
        Assert.DoesNotContain("created a new key", fn.Stderr);

        var ls = await Snapctl.RunAsync(t, "key", "ls", "--json");
        var keys = ls.Json.GetProperty("keys").EnumerateArray().ToDictionary(
            k => k.GetProperty("domain").GetString()!, k => k.GetProperty("fingerprint").GetString()!);
        Assert.Equal(acme, keys["tenant-acme"]);
        Assert.True(keys.ContainsKey("shared"));

        var inspect = await Snapctl.RunAsync(t, "inspect", "--name", "fn", "--json");
        var chain = inspect.Json.GetProperty("chain");
        Assert.Equal(acme, chain[0].GetProperty("keyFingerprint").GetString());
        Assert.Equal(keys["shared"], chain[1].GetProperty("keyFingerprint").GetString());
        Assert.True(chain[0].GetProperty("sequence").GetInt64() > 0);

        // Another keyring holds no key that opens these layers: nothing to name.
        var other = await Snapctl.RunAsync(t, "inspect", "--name", "fn", "--json", "--keyring", t.Path_("other"));
        bool named = other.Json.GetProperty("chain")[0].TryGetProperty("keyFingerprint", out var fp)
            && fp.ValueKind != System.Text.Json.JsonValueKind.Null;
        Assert.False(named, other.Stdout);
        var master = Convert.ToHexStringLower(File.ReadAllBytes(Path.Combine(t.KeyringDir, "tenant-acme.key")));
        Assert.DoesNotContain(master, ls.Stdout + inspect.Stdout + created.Stdout);

        // A key the keyring refuses (open to others) is shown refused, with why: not hidden, not "absent".
        File.SetUnixFileMode(Path.Combine(t.KeyringDir, "tenant-acme.key"),
            UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.OtherRead);
        var refused = (await Snapctl.RunAsync(t, "key", "ls", "--json")).Json.GetProperty("keys").EnumerateArray()
            .Single(k => k.GetProperty("domain").GetString() == "tenant-acme");
        Assert.Contains("mode 600", refused.GetProperty("problem").GetString());
        var why = await Snapctl.RunAsync(t, "inspect", "--name", "fn", "--json");
        Assert.Contains("mode 600", why.Json.GetProperty("chain")[0].GetProperty("keyProblem").GetString());
    }
}
