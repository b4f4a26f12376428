using System.Diagnostics;
using Snapshots.Tests.Services;

namespace Snapshots.Tests;

/// <summary>Managed services the way operators configure them: S3 through the AWS SDK's own credential chain and
/// endpoint variables, Redis with a password and TLS in StackExchange.Redis's own forms. Before: credentials only
/// from AWS_ACCESS_KEY_ID or a static profile, no AWS_ENDPOINT_URL_S3, no Redis password or TLS; a missing
/// bucket listed as empty; an unreachable Redis showed only as "0 hits".</summary>
[Collection(ServicesCollection.Name)]
[Trait("Category", Category.Services)]
public class CloudAuthTests(ServicesFixture services)
{
    private const string Password = "pw-Zq7+x@y";

    // Reads are counted as Redis hits only within the per-node deadline; a loaded CI machine needs more than
    // the default 100 ms for a fresh process's first reads.
    private const string Patient = "deadline=2000";

    /// <summary>No static keys: a profile whose credential_process prints them, found through
    /// AWS_SHARED_CREDENTIALS_FILE; the endpoint from AWS_ENDPOINT_URL_S3; no instance-metadata lookup.</summary>
    private static Dictionary<string, string?> DefaultChain(TestStore t, string endpoint)
    {
        var script = t.Path_("creds.sh");
        File.WriteAllText(script, "#!/bin/sh\ntouch \"$(dirname \"$0\")/creds-used\"\n"
            + $"echo '{{\"Version\":1,\"AccessKeyId\":\"{S3Server.AccessKey}\",\"SecretAccessKey\":\"x\"}}'\n");
        File.SetUnixFileMode(script, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        File.WriteAllText(t.Path_("credentials"), $"[snap]\ncredential_process = {script}\n");
        File.WriteAllText(t.Path_("config"), "");
        return new()
        {
            ["AWS_ACCESS_KEY_ID"] = null, ["AWS_SECRET_ACCESS_KEY"] = null,
            ["AWS_SHARED_CREDENTIALS_FILE"] = t.Path_("credentials"), ["AWS_CONFIG_FILE"] = t.Path_("config"),
            ["AWS_PROFILE"] = "snap", ["AWS_EC2_METADATA_DISABLED"] = "true", ["AWS_ENDPOINT_URL_S3"] = endpoint,
        };
    }

    [Fact]
    public async Task S3_through_the_default_chain_and_AWS_ENDPOINT_URL_S3()
    {
        using var t = new TestStore();
        var env = DefaultChain(t, services.S3.Endpoint);
        var store = $"s3://snapshots-test/{Guid.NewGuid():N}";
        var os = t.Image("os.img", size: 16L << 20);

        var init = await Snapctl.RunAsync(t, env, "init", "--store", store, "--json");
        Assert.True(init.ExitCode == 0, init.Stderr);
        Assert.Equal("created", init.Json.GetProperty("outcome").GetString());
        Assert.Contains("127.0.0.1:" + services.S3.Port, init.Json.GetProperty("store").GetString());
        Assert.True(File.Exists(t.Path_("creds-used")), "the profile's credential_process was not run");
        var b = await Snapctl.RunAsync(t, env, "build", "--store", store, "--name", "os", "--layer", "os",
            "--memory", os);
        Assert.True(b.ExitCode == 0, b.Stderr);
        var e = await Snapctl.RunAsync(t, env, "export", "--store", store, "--name", "os", "--out", t.Path_("os.out"));
        Assert.True(e.ExitCode == 0, e.Stderr);
        Assert.True(TestStore.SameBytes(os, t.Path_("os.out")));

        // ?endpoint= overrides the environment's endpoint (here a dead one).
        env["AWS_ENDPOINT_URL_S3"] = "http://127.0.0.1:4609";
        var ls = await Snapctl.RunAsync(t, env, "ls", "--store", $"{store}?endpoint={services.S3.Endpoint}", "--json");
        Assert.True(ls.ExitCode == 0, ls.Stderr);
        Assert.Equal(1, ls.Json.GetProperty("snapshots").GetArrayLength());
        // AWS_ENDPOINT_URL (all services) works too.
        env["AWS_ENDPOINT_URL_S3"] = null;
        env["AWS_ENDPOINT_URL"] = services.S3.Endpoint;
        var ls2 = await Snapctl.RunAsync(t, env, "ls", "--store", store, "--json");
        Assert.True(ls2.ExitCode == 0, ls2.Stderr);
        Assert.Equal(1, ls2.Json.GetProperty("snapshots").GetArrayLength());

        // stats lists the whole store (before: "invalid object key ''", kind internal, on any S3 store).
        var stats = await Snapctl.RunAsync(t, env, "stats", "--store", store, "--json");
        Assert.True(stats.ExitCode == 0, stats.Stderr);
        Assert.Equal(1, stats.Json.GetProperty("manifests").GetInt32());
        Assert.True(stats.Json.GetProperty("chunks").GetInt32() > 0);
        Assert.True(stats.Json.GetProperty("storeBytes").GetInt64() > stats.Json.GetProperty("chunkBytes").GetInt64());
        var statsText = await Snapctl.RunAsync(t, env, "stats", "--store", store);
        Assert.True(statsText.ExitCode == 0, statsText.Stderr);
    }

    /// <summary>ECS task roles and EKS pod identity: the SDK asks a local endpoint for temporary credentials
    /// (AWS_CONTAINER_CREDENTIALS_FULL_URI); here the test serves them. Before: never consulted.</summary>
    [Fact]
    public async Task S3_with_container_credentials_from_the_default_chain()
    {
        using var t = new TestStore();
        var env = DefaultChain(t, services.S3.Endpoint);
        env["AWS_SHARED_CREDENTIALS_FILE"] = t.Path_("absent");
        env["AWS_PROFILE"] = null;
        using var listener = new System.Net.HttpListener();
        int port = 4605;
        listener.Prefixes.Add($"http://127.0.0.1:{port}/");
        listener.Start();
        int asked = 0;
        var serving = Task.Run(async () =>
        {
            while (listener.IsListening)
            {
                System.Net.HttpListenerContext context;
                try { context = await listener.GetContextAsync(); }
                catch (Exception ex) when (ex is System.Net.HttpListenerException or ObjectDisposedException)
                {
                    return;
                }
                Interlocked.Increment(ref asked);
                var body = System.Text.Encoding.UTF8.GetBytes(
                    $"{{\"AccessKeyId\":\"{S3Server.AccessKey}\",\"SecretAccessKey\":\"x\",\"Token\":\"t\","
                    + $"\"Expiration\":\"{DateTime.UtcNow.AddHours(1):yyyy-MM-ddTHH:mm:ssZ}\"}}");
                context.Response.ContentType = "application/json";
                await context.Response.OutputStream.WriteAsync(body);
                context.Response.Close();
            }
        });
        env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = $"http://127.0.0.1:{port}/creds";
        var store = $"s3://snapshots-test/{Guid.NewGuid():N}";
        var init = await Snapctl.RunAsync(t, env, "init", "--store", store);
        Assert.True(init.ExitCode == 0, init.Stderr);
        var ls = await Snapctl.RunAsync(t, env, "ls", "--store", store, "--json");
        Assert.True(ls.ExitCode == 0, ls.Stderr);
        Assert.True(Volatile.Read(ref asked) > 0, "the container credentials endpoint was never asked");
        listener.Stop();
        await serving;
    }

    [Fact]
    public async Task No_credentials_is_an_error_naming_where_they_are_looked_for_and_it_is_quick()
    {
        using var t = new TestStore();
        var env = DefaultChain(t, services.S3.Endpoint);
        env["AWS_SHARED_CREDENTIALS_FILE"] = t.Path_("absent");
        env["AWS_PROFILE"] = null;
        var clock = Stopwatch.StartNew();
        var r = await Snapctl.RunAsync(t, env, "ls", "--store", "s3://snapshots-test/x", "--json");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("no AWS credentials", r.Stderr);
        Assert.Contains("AWS_ACCESS_KEY_ID", r.Stderr);
        Assert.Contains("AWS_PROFILE", r.Stderr);
        Assert.Contains("AWS_EC2_METADATA_DISABLED", r.Stderr);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(15), $"took {clock.Elapsed}");
    }

    [Fact]
    public async Task A_missing_bucket_is_an_error_and_init_creates_it()
    {
        using var t = new TestStore();
        var store = services.S3.Address("p").Replace("snapshots-test", $"missing-{Guid.NewGuid():N}"[..20]);
        foreach (var command in new[] { "ls", "gc" })
        {
            var r = await Snapctl.RunAsync(t, command, "--store", store, "--json");
            Assert.Equal(1, r.ExitCode);
            Assert.Contains("does not exist", r.Stderr);
            Assert.Contains("snapctl init", r.Stderr);
            Assert.Equal("not-a-store", r.Json.GetProperty("error").GetProperty("kind").GetString());
        }
        var init = await Snapctl.RunAsync(t, "init", "--store", store);
        Assert.True(init.ExitCode == 0, init.Stderr);
        var ls = await Snapctl.RunAsync(t, "ls", "--store", store, "--json");
        Assert.True(ls.ExitCode == 0, ls.Stderr);
        Assert.Equal(0, ls.Json.GetProperty("snapshots").GetArrayLength());
    }

    [Fact]
    public async Task Redis_with_a_password_and_TLS_serves_reads_and_refusals_are_named()
    {
        using var cluster = new RedisCluster(7201, 3, password: Password, tls: true);
        using var t = new TestStore();
        var os = t.Image("os.img", size: 16L << 20);
        var b = await t.BuildAsync("os", os);
        var outputs = new List<Snapctl.Result>();

        async Task<Snapctl.Result> Run(params string[] args)
        {
            var r = await Snapctl.RunAsync(t, args);
            outputs.Add(r);
            return r;
        }

        var warm = await Run("warm", "--name", "os", "--cache-dir", t.Path_("c1"), "--distributed",
            cluster.Address(Patient), "--json");
        Assert.True(warm.ExitCode == 0, warm.Stderr);
        Assert.DoesNotContain("warning", warm.Stderr);
        // Reads hit Redis, through the URL form and through StackExchange.Redis's configuration string.
        var native = string.Join(',', cluster.Ports.Select(p => $"127.0.0.1:{p}"))
            + $",password={Password},ssl=true,connectTimeout=3000?ca={cluster.CaFile}&{Patient}";
        int n = 0;
        foreach (var address in new[] { cluster.Address(Patient), native })
        {
            var e = await Run("export", "--name", "os", "--out", t.Path_($"o{n}"), "--cache-dir", t.Path_($"cold{n}"),
                "--distributed", address, "--json");
            Assert.True(e.ExitCode == 0, e.Stderr);
            Assert.True(TestStore.SameBytes(os, t.Path_($"o{n}")));
            Assert.True(b.NewChunks == e.Json.GetProperty("tiers")[1].GetProperty("hits").GetInt32(), e.Stdout);
            n++;
        }

        // The CA from $SNAPSHOTS_REDIS_CA, and a client certificate (the cluster accepts one, optionally).
        var tls = cluster.Address(Patient).Replace($"ca={cluster.CaFile}&", "");
        var caEnv = new Dictionary<string, string?> { ["SNAPSHOTS_REDIS_CA"] = cluster.CaFile };
        var fromEnv = await Snapctl.RunAsync(
            t, caEnv, "export", "--name", "os", "--out", t.Path_("o-env"), "--distributed", tls, "--json");
        outputs.Add(fromEnv);
        Assert.True(fromEnv.ExitCode == 0, fromEnv.Stderr);
        Assert.True(b.NewChunks == fromEnv.Json.GetProperty("tiers")[0].GetProperty("hits").GetInt32(),
            fromEnv.Stdout);
        var dir = Path.GetDirectoryName(cluster.CaFile)!;
        var withCert = await Run("export", "--name", "os", "--out", t.Path_("o-cert"), "--distributed",
            cluster.Address($"cert={Path.Combine(dir, "client.crt")}&key={Path.Combine(dir, "client.key")}&{Patient}"),
            "--json");
        Assert.True(withCert.ExitCode == 0, withCert.Stderr);
        Assert.True(b.NewChunks == withCert.Json.GetProperty("tiers")[0].GetProperty("hits").GetInt32(),
            withCert.Stdout);

        // A wrong password, no TLS, no CA: each an error naming the tier, never a silent miss.
        var wrong = await Run("export", "--name", "os", "--out", t.Path_("w"), "--distributed",
            cluster.Address().Replace(Uri.EscapeDataString(Password), "nope"), "--json");
        Assert.Equal(1, wrong.ExitCode);
        Assert.Contains("authentication failed: wrong user or password", wrong.Stderr);
        Assert.Contains("(option --distributed", wrong.Stderr);
        var plain = await Run("export", "--name", "os", "--out", t.Path_("p"), "--distributed",
            $"redis://:{Uri.EscapeDataString(Password)}@127.0.0.1:7201");
        Assert.Equal(1, plain.ExitCode);
        Assert.Contains("needs TLS", plain.Stderr);
        var noCa = await Run("export", "--name", "os", "--out", t.Path_("n"), "--distributed",
            $"rediss://:{Uri.EscapeDataString(Password)}@127.0.0.1:7201");
        Assert.Equal(1, noCa.ExitCode);
        Assert.Contains("TLS handshake failed", noCa.Stderr);
        var noPassword = await Run("export", "--name", "os", "--out", t.Path_("np"), "--distributed",
            $"rediss://127.0.0.1:7201?ca={cluster.CaFile}");
        Assert.Equal(1, noPassword.ExitCode);
        Assert.Contains("requires a password", noPassword.Stderr);

        // The password never appears in any output, and errors show where it was as ***.
        Assert.Contains("***", wrong.Stderr + plain.Stderr);
        foreach (var r in outputs)
        {
            Assert.DoesNotContain(Password, r.Stdout + r.Stderr);
            Assert.DoesNotContain(Uri.EscapeDataString(Password), r.Stdout + r.Stderr);
        }
    }

    [Fact]
    public async Task Redis_with_a_password_only()
    {
        using var cluster = new RedisCluster(7211, 3, password: Password);
        using var t = new TestStore();
        var os = t.Image("os.img", size: 16L << 20);
        var b = await t.BuildAsync("os", os);
        var warm = await Snapctl.RunAsync(t, "warm", "--name", "os", "--cache-dir", t.Path_("c"), "--distributed",
            cluster.Address(Patient));
        Assert.True(warm.ExitCode == 0, warm.Stderr);
        var e = await Snapctl.RunAsync(t, "export", "--name", "os", "--out", t.Path_("o"), "--distributed",
            cluster.Address(Patient), "--json");
        Assert.True(e.ExitCode == 0, e.Stderr);
        Assert.True(b.NewChunks == e.Json.GetProperty("tiers")[0].GetProperty("hits").GetInt32(),
            warm.Stdout + e.Stdout + e.Stderr);
        var wrong = await Snapctl.RunAsync(t, "ls", "--json"); // a store command without Redis is unaffected
        Assert.Equal(0, wrong.ExitCode);
        var bad = await Snapctl.RunAsync(t, "export", "--name", "os", "--out", t.Path_("w"), "--distributed",
            "redis://:nope@127.0.0.1:7211", "--json");
        Assert.Equal(1, bad.ExitCode);
        Assert.Contains("authentication failed", bad.Json.GetProperty("error").GetProperty("message").GetString());
        Assert.DoesNotContain(Password, warm.Stdout + warm.Stderr + e.Stdout + e.Stderr + bad.Stdout + bad.Stderr);
    }
}
