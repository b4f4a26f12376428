using System.Text.Json;

namespace Snapshots.Tests;

/// <summary>The operator commands through the binary: stats, gc --dry-run, diff, cp and completion, each with
/// --json and a case that must fail.</summary>
[Trait("Category", Category.Process)]
public class OperatorCliTests
{
    private static int ChunkFiles(string store) =>
        Directory.Exists(Path.Combine(store, "chunks"))
            ? Directory.EnumerateFiles(Path.Combine(store, "chunks"), "*", SearchOption.AllDirectories).Count()
            : 0;

    private static async Task<JsonElement> Ok(TestStore t, params string[] args)
    {
        var r = await Snapctl.RunAsync(t, args);
        Assert.True(r.ExitCode == 0, $"{string.Join(' ', args)}: exit {r.ExitCode}: {r.Stderr}");
        return r.Json;
    }

    /// <summary>os (shared), fn1 on it (tenant acme): 32 MiB images.</summary>
    private static async Task BuildTwoAsync(TestStore t)
    {
        await Ok(t, "build", "--name", "os", "--layer", "os", "--memory", t.Image("os.img"), "--json");
        await Ok(t, "build", "--name", "fn1", "--parent", "os", "--tenant", "acme", "--memory",
            t.Image("fn1.img", runtime: 1, function: 1), "--holes-are-zero", "--json");
    }

    [Fact]
    public async Task Stats_on_an_empty_store_is_zeros_and_on_a_built_one_shows_dedup_and_unique_bytes()
    {
        using var t = new TestStore();
        var empty = await Ok(t, "stats", "--json");
        Assert.Equal(0, empty.GetProperty("chunks").GetInt32());
        Assert.Equal(0, empty.GetProperty("manifests").GetInt32());
        Assert.False(empty.TryGetProperty("dedupRatio", out _)); // nothing stored: no ratio, not infinity
        var text = await Snapctl.RunAsync(t, "stats");
        Assert.Equal(0, text.ExitCode);
        Assert.Contains("dedup ratio -", text.Stdout);

        await BuildTwoAsync(t);
        await Ok(t, "warm", "--name", "fn1", "--cache-dir", t.Path_("cache"), "--json");
        var s = await Ok(t, "stats", "--cache-dir", t.Path_("cache"), "--cache-size", "1G", "--json");
        int chunks = s.GetProperty("chunks").GetInt32();
        Assert.Equal(ChunkFiles(t.StoreDir), chunks);
        Assert.Equal(2, s.GetProperty("manifests").GetInt32());
        Assert.Equal(64L << 20, s.GetProperty("logicalBytes").GetInt64());
        Assert.True(s.GetProperty("dedupRatio").GetDouble() > 1);
        var layers = s.GetProperty("layers").EnumerateArray().ToDictionary(l => l.GetProperty("name").GetString()!);
        // fn1 is a tenant layer: no chunk of it is the shared os layer's, so every one is its own.
        Assert.Equal(layers["fn1"].GetProperty("dataChunks").GetInt32(),
            layers["fn1"].GetProperty("uniqueChunks").GetInt32());
        Assert.True(layers["fn1"].GetProperty("uniqueBytes").GetInt64() > 0);
        Assert.Equal(chunks, layers["os"].GetProperty("uniqueChunks").GetInt32()
            + layers["fn1"].GetProperty("uniqueChunks").GetInt32());
        var cache = s.GetProperty("cache");
        Assert.True(cache.GetProperty("chunks").GetInt32() > 0);
        Assert.Equal(1L << 30, cache.GetProperty("budgetBytes").GetInt64());
    }

    [Fact]
    public async Task Gc_dry_run_reports_what_gc_deletes_and_deletes_nothing()
    {
        using var t = new TestStore();
        await BuildTwoAsync(t);
        Assert.Equal(0, (await Snapctl.RunAsync(t, "rm", "--name", "fn1", "--tenant", "acme")).ExitCode);
        int before = ChunkFiles(t.StoreDir);

        var dry = await Ok(t, "gc", "--dry-run", "--json");
        Assert.True(dry.GetProperty("dryRun").GetBoolean());
        int wouldDelete = dry.GetProperty("chunksDeleted").GetInt32();
        Assert.True(wouldDelete > 0);
        Assert.Equal(wouldDelete, dry.GetProperty("wouldDelete").GetArrayLength());
        Assert.Equal(before, ChunkFiles(t.StoreDir)); // every file remains
        Assert.False(Directory.Exists(Path.Combine(t.StoreDir, "trash")) &&
            Directory.EnumerateFileSystemEntries(Path.Combine(t.StoreDir, "trash")).Any());

        var gc = await Ok(t, "gc", "--json");
        Assert.Equal(wouldDelete, gc.GetProperty("chunksDeleted").GetInt32());
        Assert.Equal(before - wouldDelete, ChunkFiles(t.StoreDir));
    }

    [Fact]
    public async Task Diff_counts_and_places_the_differing_chunks_and_names_an_unknown_snapshot()
    {
        using var t = new TestStore();
        await BuildTwoAsync(t);
        var self = await Ok(t, "diff", "os", "os", "--json");
        Assert.Equal(0, self.GetProperty("differingChunks").GetInt32());
        Assert.Equal(0, self.GetProperty("ranges").GetArrayLength());
        Assert.False(self.TryGetProperty("note", out _));

        var d = await Ok(t, "diff", "os", "fn1", "--json");
        int differ = d.GetProperty("differingChunks").GetInt32();
        Assert.True(differ > 0);
        Assert.Equal(64, d.GetProperty("chunks").GetInt32()); // 32 MiB in 512 KiB chunks
        Assert.Equal(64, differ + d.GetProperty("sameChunks").GetInt32());
        long covered = 0;
        foreach (var r in d.GetProperty("ranges").EnumerateArray())
        {
            int first = r.GetProperty("firstChunk").GetInt32(), last = r.GetProperty("lastChunk").GetInt32();
            Assert.Equal(first * 512L * 1024, r.GetProperty("offset").GetInt64());
            covered += last - first + 1;
        }
        Assert.Equal(differ, covered);
        Assert.Contains("trust domains", d.GetProperty("note").GetString()); // fn1 is tenant acme's

        var unknown = await Snapctl.RunAsync(t, "diff", "os", "nope", "--json");
        Assert.Equal(1, unknown.ExitCode);
        Assert.Contains("'nope' not found", unknown.Stderr);
        Assert.Equal("not-found", unknown.Json.GetProperty("error").GetProperty("kind").GetString());
    }

    [Fact]
    public async Task Cp_copies_a_chain_verified_is_idempotent_and_refuses_the_same_store()
    {
        using var t = new TestStore();
        await BuildTwoAsync(t);
        var dest = t.Path_("dest");
        Directory.CreateDirectory(dest);
        // A destination is a store made on purpose: an empty directory is refused, naming init.
        var unmarked = await Snapctl.RunAsync(t, "cp", "--to", dest, "--name", "fn1", "--json");
        Assert.Equal(1, unmarked.ExitCode);
        Assert.Equal("not-a-store", unmarked.Json.GetProperty("error").GetProperty("kind").GetString());
        Assert.Contains("snapctl init", unmarked.Stderr);
        await Ok(t, "init", "--store", dest, "--json");

        var c = await Ok(t, "cp", "--to", dest, "--name", "fn1", "--json");
        Assert.Equal(["os", "fn1"], c.GetProperty("manifestsCopied").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal(ChunkFiles(t.StoreDir), c.GetProperty("chunksCopied").GetInt32());
        Assert.Equal(ChunkFiles(t.StoreDir), ChunkFiles(dest));
        // The copy reads as the original (same keyring: the manifests are the same bytes).
        await Ok(t, "export", "--store", dest, "--name", "fn1", "--tenant", "acme", "--out", t.Path_("fn1.out"),
            "--json");
        Assert.True(TestStore.SameBytes(t.Path_("fn1.img"), t.Path_("fn1.out")));

        var again = await Ok(t, "cp", "--to", dest, "--name", "fn1", "--json");
        Assert.Equal(0, again.GetProperty("chunksCopied").GetInt32());
        Assert.Equal(0, again.GetProperty("manifestsCopied").GetArrayLength());
        Assert.Equal(2, again.GetProperty("manifestsPresent").GetArrayLength());

        var same = await Snapctl.RunAsync(t, "cp", "--to", t.StoreDir, "--name", "fn1");
        Assert.Equal(1, same.ExitCode);
        Assert.Contains("both the source and the destination", same.Stderr);
        var unknown = await Snapctl.RunAsync(t, "cp", "--to", dest, "--name", "nope");
        Assert.Equal(1, unknown.ExitCode);
        Assert.Contains("'nope' not found", unknown.Stderr);
    }

    [Fact]
    public async Task Cp_of_a_corrupt_chunk_fails_naming_it_and_publishes_no_manifest()
    {
        using var t = new TestStore();
        await Ok(t, "build", "--name", "os", "--layer", "os", "--memory", t.Image("os.img"), "--json");
        var victim = Directory.EnumerateFiles(Path.Combine(t.StoreDir, "chunks"), "*", SearchOption.AllDirectories)
            .First();
        var bytes = File.ReadAllBytes(victim);
        bytes[100] ^= 1;
        File.WriteAllBytes(victim, bytes);
        var dest = t.Path_("dest");
        await Ok(t, "init", "--store", dest, "--json");

        var r = await Snapctl.RunAsync(t, "cp", "--to", dest, "--name", "os", "--json");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains(Path.GetFileName(victim), r.Stderr);
        Assert.Equal("chunk-corrupt", r.Json.GetProperty("error").GetProperty("kind").GetString());
        Assert.False(Directory.Exists(Path.Combine(dest, "manifests"))
            && Directory.EnumerateFiles(Path.Combine(dest, "manifests")).Any());
    }

    /// <summary>Before: a chunk symlink planted in the destination (and a corrupt chunk already there) counted as
    /// "present": cp exited 0, published the manifest, and verify then failed; rerunning never healed it. Now
    /// every chunk found there is read back through the store's safe read path and checked against its name; a
    /// bad one is replaced (the link itself, never the file it points to), so the copy verifies.</summary>
    [Fact]
    public async Task Cp_replaces_a_planted_link_and_a_corrupt_chunk_in_the_destination()
    {
        using var t = new TestStore();
        await Ok(t, "build", "--name", "os", "--layer", "os", "--memory", t.Image("os.img"), "--json");
        var dest = t.Path_("dest");
        await Ok(t, "init", "--store", dest, "--json");
        var chunks = Directory.EnumerateFiles(Path.Combine(t.StoreDir, "chunks"), "*", SearchOption.AllDirectories)
            .Order(StringComparer.Ordinal).Take(2).ToList();
        var victim = t.Path_("victim");
        File.WriteAllText(victim, "not a chunk");
        string Planted(string chunk) => Path.Combine(dest, Path.GetRelativePath(t.StoreDir, chunk));
        Directory.CreateDirectory(Path.GetDirectoryName(Planted(chunks[0]))!);
        File.CreateSymbolicLink(Planted(chunks[0]), victim);
        Directory.CreateDirectory(Path.GetDirectoryName(Planted(chunks[1]))!);
        var corrupt = File.ReadAllBytes(chunks[1]);
        corrupt[100] ^= 1;
        File.WriteAllBytes(Planted(chunks[1]), corrupt);

        var c = await Ok(t, "cp", "--to", dest, "--name", "os", "--json");
        Assert.Equal(ChunkFiles(t.StoreDir), c.GetProperty("chunksCopied").GetInt32());
        Assert.Equal(0, c.GetProperty("chunksPresent").GetInt32());
        Assert.Equal("not a chunk", File.ReadAllText(victim)); // replaced the link, never wrote through it
        Assert.False(new FileInfo(Planted(chunks[0])).LinkTarget is not null);
        Assert.True(File.ReadAllBytes(chunks[1]).AsSpan().SequenceEqual(File.ReadAllBytes(Planted(chunks[1]))));
        var verify = await Snapctl.RunAsync(t, "verify", "--store", dest, "--name", "os", "--json");
        Assert.True(verify.ExitCode == 0, verify.Stdout + verify.Stderr);
    }

    [Fact]
    public async Task Completion_prints_a_script_and_the_suggest_directive_completes()
    {
        using var t = new TestStore();
        var bash = await Snapctl.RunAsync(t, "completion", "bash");
        Assert.Equal(0, bash.ExitCode);
        Assert.Contains("complete -o default -F _snapctl_complete snapctl", bash.Stdout);
        var zsh = await Snapctl.RunAsync(t, "completion", "zsh");
        Assert.Contains("compdef _snapctl snapctl", zsh.Stdout);
        var fish = await Snapctl.RunAsync(t, "completion", "fish");
        Assert.Equal(2, fish.ExitCode);

        var commands = await Snapctl.RunAsync(t, "[suggest:2]", "st");
        Assert.Equal(0, commands.ExitCode);
        Assert.Contains("stats", commands.Stdout.Split('\n', StringSplitOptions.TrimEntries));
        var options = await Snapctl.RunAsync(t, "[suggest:5]", "gc --");
        Assert.Contains("--dry-run", options.Stdout.Split('\n', StringSplitOptions.TrimEntries));
    }
}
