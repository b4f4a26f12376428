using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using Json.Schema;
using Snapshots.ChunkFs.Native;
using Snapshots.Store.Images;

namespace Snapshots.Tests;

/// <summary>docs/cli.md as machines and people see it: with --json exactly one JSON document on stdout that its
/// command's schema (docs/cli/schemas) accepts, success or error; text without it; usage errors exit 2 with one
/// line; progress on stderr only (--progress forces it, --quiet drops it); version and help.</summary>
[Trait("Category", Category.Process)]
public class CliContractTests
{
    private static readonly Dictionary<string, JsonSchema> Loaded = [];

    /// <summary>docs/cli/schemas, found upwards from the test's output directory.</summary>
    public static string SchemaDir
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, "docs", "cli", "schemas");
                if (Directory.Exists(candidate)) return candidate;
            }
            throw new DirectoryNotFoundException("docs/cli/schemas not found above " + AppContext.BaseDirectory);
        }
    }

    private static JsonSchema Schema(string name)
    {
        lock (Loaded)
        {
            if (Loaded.Count == 0)
            {
                // Every file at once, registered: a schema may $ref another by its file name (restore-view).
                foreach (var f in Directory.GetFiles(SchemaDir, "*.schema.json"))
                {
                    var loaded = JsonSchema.FromFile(f);
                    SchemaRegistry.Global.Register(loaded);
                    Loaded[Path.GetFileName(f)[..^".schema.json".Length]] = loaded;
                }
            }
            return Loaded.TryGetValue(name, out var s) ? s
                : throw new FileNotFoundException($"no schema {name}.schema.json in {SchemaDir}");
        }
    }

    /// <summary>Stdout is one JSON document (a second one or trailing text fails the parse) that the schema
    /// <paramref name="name"/> accepts; returns it.</summary>
    public static JsonElement Valid(string name, Snapctl.Result r)
    {
        ArgumentNullException.ThrowIfNull(r);
        JsonElement doc;
        try
        {
            doc = JsonDocument.Parse(r.Stdout).RootElement;
        }
        catch (JsonException ex)
        {
            throw new Xunit.Sdk.XunitException($"{name}: stdout is not one JSON document ({ex.Message}):\n{r.Stdout}"
                + $"\nstderr: {r.Stderr}");
        }
        var result = Schema(name).Evaluate(doc, new EvaluationOptions { OutputFormat = OutputFormat.List });
        if (!result.IsValid)
        {
            var why = string.Join("\n", (result.Details ?? []).Where(d => d.Errors is { Count: > 0 })
                .Select(d => $"{d.InstanceLocation}: {string.Join("; ", d.Errors!.Values)}"));
            throw new Xunit.Sdk.XunitException($"{name}: output fails its schema:\n{why}\n{r.Stdout}");
        }
        return doc;
    }

    /// <summary>Every command a user can run (the leaves of the tree Program registers), as "log merge".
    /// </summary>
    private static List<(string Path, Command Command)> Leaves()
    {
        var found = new List<(string, Command)>();
        void Walk(Command c, string path)
        {
            if (c.Subcommands.Count == 0) found.Add((path, c));
            foreach (var s in c.Subcommands) Walk(s, path.Length == 0 ? s.Name : $"{path} {s.Name}");
        }
        Walk(Snapshots.Snapctl.Program.CreateRoot(), "");
        return found;
    }

    [Fact]
    public void Every_command_takes_json_and_has_a_schema_file()
    {
        var leaves = Leaves();
        Assert.True(leaves.Count >= 20, $"only {leaves.Count} commands found");
        var missing = new List<string>();
        foreach (var (path, command) in leaves)
        {
            if (!command.Options.Any(o => o.Name == "--json")) missing.Add($"{path}: no --json option");
            string file = Path.Combine(SchemaDir, path.Replace(' ', '-') + ".schema.json");
            if (!File.Exists(file)) missing.Add($"{path}: no {Path.GetFileName(file)} (docs/cli.md says how)");
            else Schema(path.Replace(' ', '-')); // parses as a schema
        }
        Assert.True(missing.Count == 0, string.Join("\n", missing));
        // And no schema for a command that is gone (error.schema.json is every command's error document).
        var names = leaves.Select(l => l.Path.Replace(' ', '-')).Append("error").Append("restore-view")
            .ToHashSet();
        foreach (var f in Directory.GetFiles(SchemaDir, "*.schema.json"))
            Assert.Contains(Path.GetFileName(f)[..^".schema.json".Length], names);
    }

    /// <summary>A store with an os and a function layer, a plan attached, built in-process; the images.</summary>
    private static async Task<(string Os, string Fn)> StoreAsync(TestStore t)
    {
        var os = t.Image("os.img", size: 16L << 20);
        var fn = t.Image("fn.img", function: 3, size: 16L << 20);
        await t.BuildAsync("os", os);
        await t.BuildAsync("fn", fn, parent: "os", tenant: "acme");
        return (os, fn);
    }

    [Fact]
    public async Task Every_command_prints_one_document_its_schema_accepts()
    {
        using var t = new TestStore();
        var (os, fn) = await StoreAsync(t);
        async Task<JsonElement> Ok(string schema, params string[] args)
        {
            var r = await Snapctl.RunAsync(t, [.. args, "--json"]);
            Assert.True(r.ExitCode == 0, $"{string.Join(' ', args)}: exit {r.ExitCode}: {r.Stderr}");
            return Valid(schema, r);
        }

        await Ok("gen-image", "gen-image", "--out", t.Path_("gen.img"), "--size", "16M");
        var built = await Ok("build", "build", "--name", "os2", "--layer", "os", "--memory", os);
        Assert.Equal(16L << 20, built.GetProperty("imageBytes").GetInt64());
        await Ok("export", "export", "--name", "fn", "--tenant", "acme", "--out", t.Path_("fn.out"),
            "--cache-dir", t.Path_("cache"));
        var verified = await Ok("verify", "verify", "--name", "fn", "--tenant", "acme");
        // Every data chunk of both layers is read and checked: its bytes are counted.
        long data = 0;
        foreach (var l in (await t.OpenAsync("fn", "acme")).Layers)
        {
            foreach (var e in l.Entries)
            {
                if (e.Kind == Store.Manifests.EntryKind.Data)
                    data += Store.Chunks.ChunkGeometry.ChunkLength(l.ImageSize, e.Index);
            }
        }
        Assert.True(data > 0);
        Assert.Equal(data, verified.GetProperty("checkedBytes").GetInt64());
        await Ok("verify", "verify", "--name", "fn", "--tenant", "acme", "--repair", "--cache-dir", t.Path_("cache"));
        await Ok("inspect", "inspect", "--name", "fn");
        await Ok("ls", "ls");
        await Ok("warm", "warm", "--name", "fn", "--cache-dir", t.Path_("cache2"));
        await Ok("key-ls", "key", "ls");
        await Ok("key-create", "key", "create", "--tenant", "zed");
        await Ok("version", "version");
        await Ok("help", "help");
        await Ok("help", "help", "log", "merge");
        await Ok("completion", "completion", "bash");
        await Ok("init", "init", "--store", t.Path_("another-store"));
        await Ok("init", "init", "--store", t.Path_("another-store"));

        string log1 = t.Path_("s1.log"), log2 = t.Path_("s2.log"), plan = t.Path_("plan.bin");
        await Ok("log-synth", "log", "synth", "--image", fn, "--pages", "300", "--out", log1);
        await Ok("log-synth", "log", "synth", "--image", fn, "--pages", "300", "--variant", "2", "--out", log2);
        await Ok("log-merge", "log", "merge", "--out", plan, log1, log2);
        await Ok("log-show", "log", "show", plan);
        await Ok("log-show", "log", "show", log1);
        await Ok("log-to-trace", "log", "to-trace", log1, "--out", t.Path_("t.txt"));
        await Ok("log-attach", "log", "attach", "--name", "fn", "--tenant", "acme", plan);

        await Ok("stats", "stats", "--cache-dir", t.Path_("cache"));
        await Ok("diff", "diff", "os", "fn");
        using (var other = new TestStore())
            await Ok("cp", "cp", "--from", t.StoreDir, "--to", other.StoreDir, "--name", "fn");
        await Ok("rm", "rm", "--name", "os2");
        await Ok("gc", "gc", "--dry-run");
        await Ok("gc", "gc");

        // restore: served to replay-vmm (Firecracker's side), its figures when the VMM is done.
        var run = await Loader.RestoreAsync(
            t, ["--name", "fn", "--tenant", "acme"], ["--image", fn, "--touch", "random:200:1"]);
        Assert.Equal(0, run.Handler.ExitCode);
        var restored = Valid("restore", run.Handler);
        Assert.True(restored.GetProperty("faultLatencySeconds").GetProperty("p50").GetDouble() < 1,
            "latencies are in seconds");

        // mount: what it served, when SIGTERM ends it.
        var dir = Directory.CreateDirectory(t.Path_("mnt")).FullName;
        using (var m = ChunkFsCliTests.MountProcess.Start(t, "--name", "os", "--mountpoint", dir))
        {
            await m.WaitReadyAsync();
            Assert.True(TestStore.SameBytes(os, Path.Combine(dir, "os")));
            Assert.Equal(0, await m.ExitAsync(15));
            Valid("mount", new Snapctl.Result(0, await m.Stdout, m.Stderr));
        }

        // restores: snapd's client, against a snapd of this store.
        using var d = await SnapdProcess.StartAsync(t);
        string[] api = ["--api", d.ApiSocket];
        Assert.Equal("ok", (await Ok("restores-health", ["restores", "health", .. api])).GetProperty("status")
            .GetString());
        var made = await Ok("restores-create", ["restores", "create", "--snapshot", "os", .. api]);
        string id = made.GetProperty("id").GetString()!;
        var served = await SnapdTests.VmmAsync(made.GetProperty("socketPath").GetString()!, os, "--touch",
            "random:100:1");
        Assert.Equal(0, served.Exit);
        await d.WaitEndedAsync(id);
        Assert.Equal("exited", (await Ok("restores-get", ["restores", "get", id, .. api])).GetProperty("state")
            .GetString());
        Assert.Equal(1, (await Ok("restores-ls", ["restores", "ls", .. api])).GetProperty("restores")
            .GetArrayLength());
        await Ok("restores-rm", ["restores", "rm", id, .. api]);
        var missing = await Snapctl.RunAsync(t, ["restores", "get", id, "--json", .. api]);
        Assert.Equal(1, missing.ExitCode);
        Assert.Equal("not-found", Valid("error", missing).GetProperty("error").GetProperty("kind").GetString());
    }

    [Theory]
    [InlineData(1, "restore", "--name", "nope", "--uffd-socket", "SOCK")]
    [InlineData(1, "mount", "--name", "nope", "--mountpoint", "DIR")]
    [InlineData(1, "log", "show", "MISSING")]
    [InlineData(1, "log", "merge", "--out", "OUT", "MISSING")]
    [InlineData(1, "log", "attach", "--name", "nope", "MISSING")]
    [InlineData(1, "log", "synth", "--image", "MISSING", "--out", "OUT")]
    [InlineData(1, "log", "to-trace", "MISSING", "--out", "OUT")]
    [InlineData(1, "gen-image", "--out", "OUT", "--size", "2T")]
    [InlineData(1, "verify", "--name", "nope")]
    [InlineData(2, "version", "--bogus")]
    [InlineData(2, "help", "no-such-command")]
    public async Task A_failure_with_json_is_one_error_document(int exitCode, params string[] args)
    {
        using var t = new TestStore();
        Directory.CreateDirectory(t.Path_("mnt"));
        var argv = args.Select(a => a switch
        {
            "SOCK" => t.Path_("r.sock"),
            "DIR" => t.Path_("mnt"),
            "MISSING" => t.Path_("missing"),
            "OUT" => t.Path_("out"),
            _ => a,
        }).Append("--json").ToArray();
        var r = await Snapctl.RunAsync(t, argv);
        Assert.True(r.ExitCode == exitCode, $"exit {r.ExitCode}: {r.Stderr}");
        var error = Valid("error", r).GetProperty("error");
        var lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.Equal($"snapctl: error: {error.GetProperty("message").GetString()}", lines[0]);
        Assert.Equal(r.ExitCode == 2, error.GetProperty("kind").GetString() == "usage");
    }

    [Theory]
    [InlineData("log", "show", "PLAN", "--bogus")]
    [InlineData("gen-image", "--out", "OUT", "--size", "3Q")]
    [InlineData("--progress", "--quiet", "ls")]
    [InlineData("restore", "--name", "x")]
    [InlineData("help", "nope")]
    public async Task A_usage_error_exits_2_with_one_line_and_a_hint_json_or_not(params string[] args)
    {
        using var t = new TestStore();
        var argv = args.Select(a => a == "PLAN" ? t.Path_("p") : a == "OUT" ? t.Path_("o") : a).ToArray();
        var text = await Snapctl.RunAsync(t, argv);
        Assert.Equal(2, text.ExitCode);
        Assert.Empty(text.Stdout);
        var line = Assert.Single(text.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("snapctl: error: ", line);
        Assert.Contains("--help'.", line);

        var json = await Snapctl.RunAsync(t, [.. argv, "--json"]);
        Assert.Equal(2, json.ExitCode);
        Assert.Equal("usage", Valid("error", json).GetProperty("error").GetProperty("kind").GetString());
        Assert.Single(json.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public async Task Without_json_restore_and_the_log_commands_print_text()
    {
        using var t = new TestStore();
        var (_, fn) = await StoreAsync(t);
        string log = t.Path_("s.log"), plan = t.Path_("p.bin");
        foreach (var args in new[]
        {
            new[] { "log", "synth", "--image", fn, "--pages", "100", "--out", log },
            ["log", "merge", "--out", plan, log],
            ["log", "show", plan],
            ["log", "show", log],
            ["log", "to-trace", log, "--out", t.Path_("t.txt")],
            ["log", "attach", "--name", "fn", "--tenant", "acme", plan],
            ["gen-image", "--out", t.Path_("g.img"), "--size", "16M"],
            ["version"],
        })
        {
            var r = await Snapctl.RunAsync(t, args);
            Assert.True(r.ExitCode == 0, $"{string.Join(' ', args)}: {r.Stderr}");
            Assert.False(string.IsNullOrWhiteSpace(r.Stdout), string.Join(' ', args));
            Assert.False(r.Stdout.TrimStart().StartsWith('{'), $"{string.Join(' ', args)} printed JSON:\n{r.Stdout}");
        }

        // A restore that fails before serving prints nothing on stdout, one line on stderr.
        var early = await Snapctl.RunAsync(t, "restore", "--name", "nope", "--uffd-socket", t.Path_("x.sock"));
        Assert.Equal(1, early.ExitCode);
        Assert.Empty(early.Stdout);

        // A restore that served says what it did, for people.
        var socket = t.Path_("h.sock");
        using var handler = Snapctl.Start(t, "restore", "--name", "fn", "--tenant", "acme", "--uffd-socket", socket,
            "--accept-timeout", "60");
        var hout = handler.StandardOutput.ReadToEndAsync();
        var herr = handler.StandardError.ReadToEndAsync();
        var clock = Stopwatch.StartNew();
        while (!File.Exists(socket) && !handler.HasExited && clock.Elapsed < TimeSpan.FromSeconds(30))
            await Task.Delay(20);
        var (vmmExit, _) = await Loader.VmmAsync("--image", fn, "--socket", socket, "--touch", "random:100:1",
            "--timeout", "60");
        Assert.Equal(0, vmmExit);
        await handler.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromSeconds(60)).Token);
        Assert.True(handler.ExitCode == 0, await herr);
        var text = await hout;
        Assert.StartsWith("restore of 'fn'", text);
        Assert.Contains("faults", text);
    }

    [Fact]
    public async Task Progress_goes_to_stderr_with_progress_and_never_to_stdout()
    {
        using var t = new TestStore();
        var (os, fn) = await StoreAsync(t);
        string log = t.Path_("s.log"), plan = t.Path_("p.bin");
        Assert.Equal(0, (await Snapctl.RunAsync(t, "log", "synth", "--image", fn, "--pages", "200", "--out", log))
            .ExitCode);
        Assert.Equal(0, (await Snapctl.RunAsync(t, "log", "merge", "--out", plan, log)).ExitCode);
        // stderr is a pipe here: no progress unless asked for.
        var quiet = await Snapctl.RunAsync(t, "gen-image", "--out", t.Path_("a.img"), "--size", "64M", "--json");
        Assert.Empty(quiet.Stderr);
        Valid("gen-image", quiet);

        var cases = new (string Label, string Schema, string[] Args)[]
        {
            ("gen-image b.img", "gen-image", ["gen-image", "--out", t.Path_("b.img"), "--size", "64M"]),
            ("build os3", "build", ["build", "--name", "os3", "--layer", "os", "--memory", os]),
            ("export os", "export", ["export", "--name", "os", "--out", t.Path_("os.out")]),
            ("verify os", "verify", ["verify", "--name", "os"]),
            ("warm os", "warm", ["warm", "--name", "os", "--cache-dir", t.Path_("cache")]),
            ("gc", "gc", ["gc"]),
            ("attach plan to fn", "log-attach", ["log", "attach", "--name", "fn", "--tenant", "acme", plan]),
        };
        foreach (var (label, schema, args) in cases)
        {
            var r = await Snapctl.RunAsync(t, [.. args, "--progress", "--json"]);
            Assert.True(r.ExitCode == 0, r.Stderr);
            Valid(schema, r); // stdout holds the document alone
            var lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries)
                .Where(l => l.StartsWith($"snapctl: {label}: ", StringComparison.Ordinal)).ToList();
            Assert.True(lines.Count > 0, $"{label}: no progress line on stderr:\n{r.Stderr}");
            Assert.EndsWith(", done", lines[^1]);
            Assert.DoesNotContain('\u001b', r.Stderr); // plain lines when stderr is not a terminal
        }

        // Text output too: progress never lands on stdout.
        var text = await Snapctl.RunAsync(t, "gen-image", "--out", t.Path_("c.img"), "--size", "32M", "--progress");
        Assert.Equal($"wrote {t.Path_("c.img")} (32.0 MiB)\n", text.Stdout);
        Assert.Contains("snapctl: gen-image c.img: 100%", text.Stderr);
    }

    /// <summary>Runs snapctl under script(1): stderr (and stdin) a terminal, stdout the file
    /// <paramref name="stdoutFile"/>; returns what the terminal showed, or null when script(1) is missing.</summary>
    private static async Task<string?> OnTerminalAsync(TestStore t, string stdoutFile, params string[] args)
    {
        if (!File.Exists("/usr/bin/script")) return null;
        string command = $"dotnet '{Snapctl.Dll}' {string.Join(' ', args.Select(a => $"'{a}'"))} > '{stdoutFile}'";
        var psi = new ProcessStartInfo("/usr/bin/script", ["-qec", command, "/dev/null"])
        {
            RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true,
            UseShellExecute = false,
        };
        psi.Environment["SNAPSHOTS_STORE"] = t.StoreDir;
        psi.Environment["SNAPSHOTS_KEYRING"] = t.KeyringDir;
        psi.Environment["TERM"] = "xterm";
        using var p = Process.Start(psi)!;
        var output = p.StandardOutput.ReadToEndAsync();
        await p.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromMinutes(2)).Token);
        Assert.True(p.ExitCode == 0, await output);
        return await output;
    }

    [Fact]
    public async Task On_a_terminal_stderr_shows_a_bar_while_stdout_is_redirected_and_quiet_hides_it()
    {
        using var t = new TestStore();
        string json = t.Path_("out.json");
        var shown = await OnTerminalAsync(t, json, "gen-image", "--out", t.Path_("a.img"), "--size", "512M", "--json");
        if (shown is null) return; // no script(1) on this machine
        Assert.Contains("gen-image a.img", shown);
        Assert.Contains("100%", shown);
        Valid("gen-image", new Snapctl.Result(0, File.ReadAllText(json), shown));

        var hidden = await OnTerminalAsync(t, json, "gen-image", "--out", t.Path_("b.img"), "--size", "512M",
            "--json", "--quiet");
        Assert.DoesNotContain("gen-image", hidden);
        Valid("gen-image", new Snapctl.Result(0, File.ReadAllText(json), hidden!));
    }

    [Fact]
    public async Task Quiet_drops_notes_but_not_errors_or_warnings()
    {
        using var t = new TestStore();
        var os = t.Image("os.img", size: 16L << 20);
        // A first build announces the key it creates (kept: it must be backed up); a repair notes each chunk.
        await Snapctl.RunAsync(t, "build", "--name", "os", "--layer", "os", "--memory", os, "--quiet");
        Assert.Equal(0, (await Snapctl.RunAsync(
            t, "export", "--name", "os", "--out", t.Path_("o"), "--cache-dir", t.Path_("cache"))).ExitCode);
        var chunk = Directory.GetFiles(Path.Combine(t.StoreDir, "chunks"), "*", SearchOption.AllDirectories)[0];
        var bytes = File.ReadAllBytes(chunk);
        bytes[^1] ^= 1;
        File.WriteAllBytes(chunk, bytes);
        var loud = await Snapctl.RunAsync(t, "verify", "--name", "os", "--repair", "--cache-dir", t.Path_("cache"));
        Assert.Contains("snapctl: repaired chunk", loud.Stderr);
        File.WriteAllBytes(chunk, bytes);
        var quiet = await Snapctl.RunAsync(
            t, "verify", "--name", "os", "--repair", "--cache-dir", t.Path_("cache"), "--quiet");
        Assert.Equal(0, quiet.ExitCode);
        Assert.Empty(quiet.Stderr);
        var failed = await Snapctl.RunAsync(t, "verify", "--name", "nope", "--quiet");
        Assert.StartsWith("snapctl: error: ", failed.Stderr);
    }

    [Fact]
    public async Task Version_and_help()
    {
        using var t = new TestStore();
        var v = Valid("version", await Snapctl.RunAsync(t, "version", "--json"));
        Assert.StartsWith(".NET ", v.GetProperty("runtime").GetString());
        Assert.False(string.IsNullOrEmpty(v.GetProperty("version").GetString()));
        var text = await Snapctl.RunAsync(t, "version");
        Assert.StartsWith($"snapctl {v.GetProperty("version").GetString()}", text.Stdout);

        var help = await Snapctl.RunAsync(t, "help", "log", "merge");
        Assert.Equal(0, help.ExitCode);
        Assert.Contains("Usage:", help.Stdout);
        Assert.Contains("snapctl log merge <LOG>...", help.Stdout);
        var all = await Snapctl.RunAsync(t, "help");
        Assert.Contains("version", all.Stdout);
        var doc = Valid("help", await Snapctl.RunAsync(t, "help", "build", "--json"));
        Assert.Equal("snapctl build", doc.GetProperty("command").GetString());
        Assert.Contains(
            doc.GetProperty("options").EnumerateArray(), o => o.GetProperty("name").GetString() == "--json");
    }

    [Fact]
    public async Task Gen_image_refuses_a_size_that_does_not_fit()
    {
        using var t = new TestStore();
        var tooBig = await Snapctl.RunAsync(t, "gen-image", "--out", t.Path_("x.img"), "--size", "2T");
        Assert.Equal(1, tooBig.ExitCode);
        Assert.Contains("at most 1 TiB", tooBig.Stderr);
        Assert.Contains("(option --size)", tooBig.Stderr);

        var spec = new VmImageSpec { Size = 1L << 40, OsSeed = 1, RuntimeSeed = 2, FunctionSeed = 3 };
        if (VmImageGenerator.DataBytes(spec) <= new DriveInfo(t.Dir).AvailableFreeSpace) return; // it would fit
        var noRoom = await Snapctl.RunAsync(t, "gen-image", "--out", t.Path_("x.img"), "--size", "1T",
            "--runtime-seed", "2", "--function-seed", "3", "--json");
        Assert.Equal(1, noRoom.ExitCode);
        var message = Valid("error", noRoom).GetProperty("error").GetProperty("message").GetString();
        Assert.Contains("MiB free", message);
        Assert.Contains("(option --size)", message);
        Assert.Empty(Directory.GetFiles(t.Dir, "x.img*"));
    }

    [Theory]
    [InlineData(2)]
    [InlineData(15)]
    public async Task Gen_image_stopped_by_a_signal_leaves_no_temp_file(int signal)
    {
        using var t = new TestStore();
        var psi = new ProcessStartInfo("env") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in (string[])["--default-signal=INT,TERM", "dotnet", Snapctl.Dll, "gen-image", "--out",
            t.Path_("big.img"), "--size", "4G", "--runtime-seed", "2", "--function-seed", "3"])
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        var clock = Stopwatch.StartNew();
        while (!p.HasExited && Directory.GetFiles(t.Dir, "big.img*").Length == 0 && clock.Elapsed.TotalSeconds < 60)
            await Task.Delay(5);
        await Task.Delay(200); // well into the writing
        LibC.kill(p.Id, signal);
        await p.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromSeconds(60)).Token);
        Assert.Equal(128 + signal, p.ExitCode);
        Assert.Equal("snapctl: error: interrupted\n", await stderr);
        Assert.Empty(Directory.GetFiles(t.Dir, "big.img*"));
    }
}
