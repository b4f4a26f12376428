using System.Net;
using System.Net.Sockets;

namespace Snapshots.Tests;

/// <summary>snapd end to end: its API over the Unix socket, restores served to replay-vmm (which checks every page
/// it touches against the image), bad requests, misbehaving VMMs, limits, metrics, drain.</summary>
[Trait("Category", "process")]
public sealed class SnapdTests
{
    /// <summary>An os layer and a tenant's function on it (16 MiB images).</summary>
    internal static async Task<(string Os, string Fn)> StoreAsync(TestStore t)
    {
        var os = t.Image("os.img", size: 16L << 20);
        var fn = t.Image("fn.img", runtime: 1, function: 3, size: 16L << 20);
        await t.BuildAsync("os", os);
        await t.BuildAsync("fn", fn, parent: "os", tenant: "acme");
        return (os, fn);
    }

    internal static async Task<(int Exit, string Stdout, string Stderr)> VmmAsync(string socket, string image,
        params string[] args)
    {
        using var vmm = Loader.StartVmm(["--image", image, "--socket", socket, "--mode", "handler", "--timeout", "90",
            .. args]);
        var o = vmm.StandardOutput.ReadToEndAsync();
        var e = vmm.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        await vmm.WaitForExitAsync(cts.Token);
        return (vmm.ExitCode, await o, await e);
    }

    /// <summary>A replay-vmm trace touching every page of a 16 MiB image in a random order, with a gap between
    /// accesses (slept through with --sleep-gaps): a VM still faulting a while after it connected.</summary>
    internal static string SlowTrace(TestStore t, int gapUs, int seed)
    {
        var pages = Enumerable.Range(0, 4096).ToArray();
        new Random(seed).Shuffle(pages);
        string path = t.Path_($"slow-{gapUs}-{seed}.trace");
        File.WriteAllLines(path, pages.Select(p => $"{(long)p * 4096} {gapUs}"));
        return path;
    }

    [Fact]
    public async Task A_restore_made_through_the_api_serves_every_page_and_is_counted()
    {
        using var t = new TestStore();
        var (_, fn) = await StoreAsync(t);
        using var d = await SnapdProcess.StartAsync(t);
        var r = await d.CreateAsync(new { snapshot = "fn", tenant = "acme" });
        Assert.Equal("ready", r.GetProperty("state").GetString());
        string socket = r.GetProperty("socketPath").GetString()!;
        Assert.True(File.Exists(socket), "the socket listens before the call returns");
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(socket));

        var vmm = await VmmAsync(socket, fn, "--touch", "all", "--vcpus", "2");
        Assert.True(vmm.Exit == 0, $"replay-vmm: {vmm.Stdout} {vmm.Stderr}\n{d.Output}");
        string id = r.GetProperty("id").GetString()!;
        var ended = await d.WaitEndedAsync(id);
        Assert.Equal("exited", ended.GetProperty("state").GetString());
        Assert.True(ended.GetProperty("faults").GetInt64() > 0);
        Assert.Equal(4096, ended.GetProperty("pagesCopied").GetInt64() + ended.GetProperty("zeroPages").GetInt64());
        Assert.Contains(ended.GetProperty("tiers").EnumerateArray(), x => x.GetProperty("hits").GetInt64() > 0);
        Assert.False(File.Exists(socket), "the socket is removed once served");

        var (status, list) = await d.SendAsync(HttpMethod.Get, "v1/restores");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Contains(list.GetProperty("restores").EnumerateArray(), x => x.GetProperty("id").GetString() == id);
        var metrics = await d.MetricsAsync();
        Assert.Matches(@"snapd_faults_total [1-9]", metrics);
        Assert.Matches(@"snapd_fault_latency_seconds_count [1-9]", metrics);
        Assert.Contains("snapd_restores_ended_total{mode=\"uffd\",outcome=\"exited\"} 1", metrics);
        Assert.Contains("process_working_set_bytes", metrics); // the daemon's own CPU and memory

        var (deleted, _) = await d.SendAsync(HttpMethod.Delete, "v1/restores/" + id);
        Assert.Equal(HttpStatusCode.OK, deleted);
        var (gone, error) = await d.SendAsync(HttpMethod.Get, "v1/restores/" + id);
        Assert.Equal(HttpStatusCode.NotFound, gone);
        Assert.Equal("not-found", error.GetProperty("error").GetProperty("kind").GetString());
        Assert.Equal(0, await d.StopAsync());
    }

    [Fact]
    public async Task Sixteen_restores_at_once_of_the_same_and_of_different_snapshots_verify_every_page()
    {
        using var t = new TestStore();
        var (os, fn) = await StoreAsync(t);
        using var d = await SnapdProcess.StartAsync(t);
        var runs = new List<Task<(int, string, string)>>();
        var ids = new List<string>();
        for (int i = 0; i < 16; i++)
        {
            bool function = i % 2 == 0;
            var r = await d.CreateAsync(function ? new { snapshot = "fn", tenant = "acme" } : (object)new
            {
                snapshot = "os",
            });
            ids.Add(r.GetProperty("id").GetString()!);
            runs.Add(VmmAsync(r.GetProperty("socketPath").GetString()!, function ? fn : os, "--vcpus", "2",
                "--touch", "all"));
        }
        foreach (var run in runs)
        {
            var (exit, stdout, stderr) = await run;
            Assert.True(exit == 0, $"replay-vmm: {stdout} {stderr}\n{d.Output}");
        }
        foreach (var id in ids)
            Assert.Equal("exited", (await d.WaitEndedAsync(id)).GetProperty("state").GetString());
        Assert.Contains("snapd_restores_ended_total{mode=\"uffd\",outcome=\"exited\"} 16", await d.MetricsAsync());
    }

    [Fact]
    public async Task Bad_requests_get_errors_naming_what_is_wrong_and_do_not_disturb_the_daemon()
    {
        using var t = new TestStore();
        var (os, _) = await StoreAsync(t);
        using var d = await SnapdProcess.StartAsync(t, "--max-request-bytes", "4096");
        async Task Bad(HttpStatusCode expected, string kind, string contains, string body)
        {
            var (status, doc) = await d.SendAsync(HttpMethod.Post, "v1/restores", body);
            Assert.True(status == expected, $"{body}: {(int)status} {doc}");
            var error = doc.GetProperty("error");
            Assert.Equal(kind, error.GetProperty("kind").GetString());
            Assert.Contains(contains, error.GetProperty("message").GetString(), StringComparison.Ordinal);
        }
        await Bad(HttpStatusCode.BadRequest, "invalid-input", "request body", "{\"snapshot\": ");
        await Bad(HttpStatusCode.BadRequest, "invalid-input", "request body", "[1,2]");
        await Bad(HttpStatusCode.BadRequest, "invalid-input", "colour", "{\"snapshot\":\"os\",\"colour\":1}");
        await Bad(HttpStatusCode.BadRequest, "invalid-input", "snapshot is required", "{}");
        await Bad(HttpStatusCode.BadRequest, "invalid-input", "mode 'ram'", "{\"snapshot\":\"os\",\"mode\":\"ram\"}");
        await Bad(HttpStatusCode.BadRequest, "invalid-input", "faultDeadlineSeconds",
            "{\"snapshot\":\"os\",\"faultDeadlineSeconds\":-1}");
        await Bad(HttpStatusCode.NotFound, "not-found", "nope", "{\"snapshot\":\"nope\"}");
        await Bad(HttpStatusCode.BadRequest, "invalid-input", "name", "{\"snapshot\":\"../../etc\"}");
        await Bad(HttpStatusCode.RequestEntityTooLarge, "too-large", "",
            "{\"snapshot\":\"" + new string('a', 8000) + "\"}");
        // Another tenant's function layer: refused, whatever its name.
        var (status, doc) = await d.SendAsync(HttpMethod.Post, "v1/restores",
            "{\"snapshot\":\"fn\",\"tenant\":\"evil\"}");
        Assert.True(status is HttpStatusCode.Forbidden or HttpStatusCode.NotFound, $"{(int)status} {doc}");
        (status, doc) = await d.SendAsync(HttpMethod.Post, "v1/restores", "{\"snapshot\":\"fn\"}");
        Assert.True(status is HttpStatusCode.Forbidden or HttpStatusCode.NotFound, $"{(int)status} {doc}");
        (status, _) = await d.SendAsync(HttpMethod.Get, "v1/restores/r-0000000000000000");
        Assert.Equal(HttpStatusCode.NotFound, status);
        (status, _) = await d.SendAsync(HttpMethod.Get, "v1/nothing");
        Assert.Equal(HttpStatusCode.NotFound, status);

        // Still serving: a good restore after all of that.
        var r = await d.CreateAsync(new { snapshot = "os" });
        var vmm = await VmmAsync(r.GetProperty("socketPath").GetString()!, os, "--touch", "random:500:7");
        Assert.True(vmm.Exit == 0, vmm.Stdout + vmm.Stderr);
        Assert.Matches("snapd_errors_total{kind=\"invalid-input\"} [6-9]", await d.MetricsAsync());
    }

    [Fact]
    public async Task A_silent_connection_does_not_hold_up_the_vmm_and_a_vmm_that_never_comes_fails_the_restore()
    {
        using var t = new TestStore();
        var (os, _) = await StoreAsync(t);
        using var d = await SnapdProcess.StartAsync(t, "--accept-timeout", "3");
        var r = await d.CreateAsync(new { snapshot = "os" });
        string socket = r.GetProperty("socketPath").GetString()!;
        using (var silent = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            await silent.ConnectAsync(new UnixDomainSocketEndPoint(socket));
            var vmm = await VmmAsync(socket, os, "--touch", "random:300:3");
            Assert.True(vmm.Exit == 0, vmm.Stdout + vmm.Stderr + d.Output);
        }
        Assert.Equal("exited", (await d.WaitEndedAsync(r.GetProperty("id").GetString()!)).GetProperty("state")
            .GetString());

        var lonely = await d.CreateAsync(new { snapshot = "os" });
        var ended = await d.WaitEndedAsync(lonely.GetProperty("id").GetString()!, TimeSpan.FromSeconds(30));
        Assert.Equal("failed", ended.GetProperty("state").GetString());
        Assert.Contains("no VMM connected", ended.GetProperty("reason").GetString(), StringComparison.Ordinal);
        Assert.False(File.Exists(lonely.GetProperty("socketPath").GetString()));
    }

    [Fact]
    public async Task A_vmm_killed_mid_restore_ends_its_restore_and_the_others_go_on()
    {
        using var t = new TestStore();
        var (os, fn) = await StoreAsync(t);
        using var d = await SnapdProcess.StartAsync(t);
        var doomed = await d.CreateAsync(new { snapshot = "os" });
        var other = await d.CreateAsync(new { snapshot = "fn", tenant = "acme" });
        // A slow guest (sleeping through its recorded gaps) killed part way.
        using var vmm = Loader.StartVmm(["--image", os, "--socket", doomed.GetProperty("socketPath").GetString()!,
            "--mode", "handler", "--touch", "all", "--vcpus", "2", "--timeout", "90"]);
        var id = doomed.GetProperty("id").GetString()!;
        while ((await d.SendAsync(HttpMethod.Get, "v1/restores/" + id)).Doc.GetProperty("faults").GetInt64() == 0)
            await Task.Delay(5);
        vmm.Kill();
        await vmm.WaitForExitAsync();
        var ended = await d.WaitEndedAsync(id);
        Assert.NotEqual("serving", ended.GetProperty("state").GetString());
        var ok = await VmmAsync(other.GetProperty("socketPath").GetString()!, fn, "--touch", "all");
        Assert.True(ok.Exit == 0, ok.Stdout + ok.Stderr);
        Assert.Equal("exited", (await d.WaitEndedAsync(other.GetProperty("id").GetString()!)).GetProperty("state")
            .GetString());
    }

    [Fact]
    public async Task Past_the_limit_restores_are_refused_with_429_until_one_ends()
    {
        using var t = new TestStore();
        var (os, _) = await StoreAsync(t);
        using var d = await SnapdProcess.StartAsync(t, "--max-restores", "2");
        var a = await d.CreateAsync(new { snapshot = "os" });
        await d.CreateAsync(new { snapshot = "os" });
        var (status, doc) = await d.SendAsync(HttpMethod.Post, "v1/restores", "{\"snapshot\":\"os\"}");
        Assert.Equal(HttpStatusCode.TooManyRequests, status);
        Assert.Equal("too-many-restores", doc.GetProperty("error").GetProperty("kind").GetString());
        var vmm = await VmmAsync(a.GetProperty("socketPath").GetString()!, os, "--touch", "random:100:1");
        Assert.Equal(0, vmm.Exit);
        await d.WaitEndedAsync(a.GetProperty("id").GetString()!);
        await d.CreateAsync(new { snapshot = "os" });
    }

    [Fact]
    public async Task Sigterm_drains_a_serving_restore_refuses_new_ones_and_exits_cleanly()
    {
        using var t = new TestStore();
        var (os, _) = await StoreAsync(t);
        using var d = await SnapdProcess.StartAsync(t);
        var r = await d.CreateAsync(new { snapshot = "os" });
        var run = VmmAsync(r.GetProperty("socketPath").GetString()!, os, "--touch", "all", "--vcpus", "2");
        var id = r.GetProperty("id").GetString()!;
        while ((await d.SendAsync(HttpMethod.Get, "v1/restores/" + id)).Doc.GetProperty("state").GetString()
               == "ready")
            await Task.Delay(5);
        d.Signal(15);
        var vmm = await run;
        Assert.True(vmm.Exit == 0, $"the VM was served to its end: {vmm.Stdout} {vmm.Stderr}\n{d.Output}");
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await d.Process.WaitForExitAsync(cts.Token);
        Assert.Equal(0, d.Process.ExitCode);
        Assert.False(File.Exists(d.ApiSocket), "the API socket is removed");
    }

    [Fact]
    public async Task A_file_restore_is_a_memory_file_on_a_chunkfs_mount_with_the_snapshots_bytes()
    {
        using var t = new TestStore();
        var (_, fn) = await StoreAsync(t);
        using var d = await SnapdProcess.StartAsync(t);
        var r = await d.CreateAsync(new { snapshot = "fn", tenant = "acme", mode = "file" });
        string path = r.GetProperty("path").GetString()!;
        Assert.Equal("serving", r.GetProperty("state").GetString());
        Assert.True(TestStore.SameBytes(fn, path), "the mounted file holds the image's bytes");
        var id = r.GetProperty("id").GetString()!;
        var (status, ended) = await d.SendAsync(HttpMethod.Delete, "v1/restores/" + id);
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("exited", ended.GetProperty("state").GetString());
        Assert.False(Directory.Exists(Path.GetDirectoryName(path)), "unmounted and removed");
    }

    [Fact]
    public async Task Bad_settings_exit_2_naming_the_setting_and_a_second_daemon_on_the_same_state_is_refused()
    {
        using var t = new TestStore();
        await StoreAsync(t);
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            SnapdProcess.StartAsync(t, "--memory-budget", "12Q"));
        Assert.Contains("exited 2", e.Message, StringComparison.Ordinal);
        Assert.Contains("MemoryBudget '12Q'", e.Message, StringComparison.Ordinal);
        e = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            SnapdProcess.StartAsync(t, "--store", t.Path_("not-a-store")));
        Assert.Contains("exited 1", e.Message, StringComparison.Ordinal);
        Assert.Contains("snapctl init", e.Message, StringComparison.Ordinal);

        using var first = await SnapdProcess.StartAsync(t);
        e = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            SnapdProcess.StartAsync(t, t.Path_("snapd-state"), ["--api-socket", t.Path_("other.sock")]));
        Assert.Contains("another snapd", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Killed_mid_restore_the_daemon_takes_every_vm_back_on_restart_and_every_page_verifies()
    {
        using var t = new TestStore();
        var (os, fn) = await StoreAsync(t);
        string state = t.Path_("snapd-state");
        var d = await SnapdProcess.StartAsync(t);
        var ids = new List<string>();
        var sockets = new List<string>();
        var runs = new List<Task<(int Exit, string Stdout, string Stderr)>>();
        // Every restore first, then the VMMs together: a VMM started before the other restores were made could, on
        // a loaded host, be served to its end before the kill (2 s of gaps), and the test then proved nothing.
        for (int i = 0; i < 4; i++)
        {
            var r = await d.CreateAsync(i % 2 == 0 ? new { snapshot = "fn", tenant = "acme" } : (object)new
            {
                snapshot = "os",
            });
            ids.Add(r.GetProperty("id").GetString()!);
            sockets.Add(r.GetProperty("socketPath").GetString()!);
        }
        for (int i = 0; i < 4; i++)
        {
            runs.Add(VmmAsync(sockets[i], i % 2 == 0 ? fn : os, "--trace", SlowTrace(t, 2000, i), "--sleep-gaps",
                "--vcpus", "2"));
        }
        // Every VM connected and faulting, then the daemon dies without a word.
        foreach (var id in ids)
        {
            while ((await d.SendAsync(HttpMethod.Get, "v1/restores/" + id)).Doc.GetProperty("faults").GetInt64()
                   == 0)
                await Task.Delay(2);
        }
        var doneBeforeKill = runs.Select(r => r.IsCompleted).ToList();
        d.Signal(9);
        await d.Process.WaitForExitAsync();
        string before = d.Output;
        d.Dispose();
        await Task.Delay(300); // the VMs wait on faults nobody serves
        Assert.All(runs, (r, i) => Assert.False(r.IsCompleted, $"VM {i} finished while nobody served it (done before "
            + $"the kill: {doneBeforeKill[i]}): {(r.IsCompleted ? r.Result : default)}"));

        using var again = await SnapdProcess.StartAsync(t, state, []);
        foreach (var run in runs)
        {
            var (exit, stdout, stderr) = await run;
            Assert.True(exit == 0, $"replay-vmm: {stdout} {stderr}\n{before}\n{again.Output}");
        }
        foreach (var id in ids)
        {
            var ended = await again.WaitEndedAsync(id);
            Assert.Equal("exited", ended.GetProperty("state").GetString());
            Assert.True(ended.GetProperty("takenBack").GetBoolean());
        }
        Assert.Contains("snapd_restores_taken_back_total{outcome=\"served\"} 4", await again.MetricsAsync());
        var left = Directory.GetFiles(Path.Combine(state, "restores"));
        Assert.True(left.Length == 0, "left behind: " + string.Join(", ", left));
    }

    [Fact]
    public async Task A_vm_that_exits_while_the_daemon_is_down_is_forgotten_and_stale_files_are_cleaned()
    {
        using var t = new TestStore();
        var (os, _) = await StoreAsync(t);
        string state = t.Path_("snapd-state");
        var d = await SnapdProcess.StartAsync(t);
        var r = await d.CreateAsync(new { snapshot = "os" });
        var lonely = await d.CreateAsync(new { snapshot = "os" }); // no VMM ever comes: a stale socket
        var file = await d.CreateAsync(new { snapshot = "os", mode = "file" }); // a mount that dies with snapd
        string mountPoint = Path.GetDirectoryName(file.GetProperty("path").GetString())!;
        var id = r.GetProperty("id").GetString()!;
        // A slow guest: one touching every page at full speed could end (and drop its record) before the SIGKILL.
        using var vmm = Loader.StartVmm(["--image", os, "--socket", r.GetProperty("socketPath").GetString()!,
            "--mode", "handler", "--trace", SlowTrace(t, 1000, 5), "--sleep-gaps", "--timeout", "90"]);
        while ((await d.SendAsync(HttpMethod.Get, "v1/restores/" + id)).Doc.GetProperty("faults").GetInt64() == 0)
            await Task.Delay(2);
        d.Signal(9);
        await d.Process.WaitForExitAsync();
        d.Dispose();
        vmm.Kill();
        await vmm.WaitForExitAsync();
        Assert.True(File.Exists(Path.Combine(state, "restores", id + ".json")), "the record outlived the daemon");

        using var again = await SnapdProcess.StartAsync(t, state, []);
        Assert.Empty(Directory.GetFiles(Path.Combine(state, "restores")));
        Assert.False(File.Exists(lonely.GetProperty("socketPath").GetString()));
        Assert.False(Directory.Exists(mountPoint), "the dead ChunkFs mount was cleared and removed");
        Assert.DoesNotContain(mountPoint, File.ReadAllText("/proc/self/mountinfo"), StringComparison.Ordinal);
        Assert.False(Directory.Exists(mountPoint), "the dead ChunkFs mount was cleared and removed");
        Assert.DoesNotContain(mountPoint, File.ReadAllText("/proc/self/mountinfo"), StringComparison.Ordinal);
        Assert.Contains("snapd_restores_taken_back_total{outcome=\"exited\"} 1", await again.MetricsAsync());
        var (status, _) = await again.SendAsync(HttpMethod.Get, "v1/restores/" + id);
        Assert.Equal(HttpStatusCode.NotFound, status);
    }

    [Fact]
    public async Task With_the_cache_disk_full_restores_go_on_and_the_cache_keeps_its_floor()
    {
        using var t = new TestStore();
        var (os, fn) = await StoreAsync(t);
        using var disk = new Tmpfs(t.Path_("cache"), "6m");
        using var d = await SnapdProcess.StartAsync(t, "--cache-dir", disk.Dir, "--cache-size", "64M",
            "--cache-min-free", "1M");
        for (int round = 0; round < 2; round++)
        {
            var a = await d.CreateAsync(new { snapshot = "fn", tenant = "acme" });
            var b = await d.CreateAsync(new { snapshot = "os" });
            var runA = VmmAsync(a.GetProperty("socketPath").GetString()!, fn, "--touch", "all", "--vcpus", "2");
            var runB = VmmAsync(b.GetProperty("socketPath").GetString()!, os, "--touch", "all", "--vcpus", "2");
            foreach (var (exit, stdout, stderr) in new[] { await runA, await runB })
                Assert.True(exit == 0, $"replay-vmm: {stdout} {stderr}\n{d.Output}");
            await d.WaitEndedAsync(a.GetProperty("id").GetString()!);
            await d.WaitEndedAsync(b.GetProperty("id").GetString()!);
        }
        var metrics = await d.MetricsAsync();
        Assert.Matches("snapd_cache_events_total{event=\"(full_disk|fill_skipped)\"} [1-9]", metrics);
        Assert.True(disk.FreeBytes >= 1L << 20, $"the floor was crossed: {disk.FreeBytes} bytes free");
        // Nothing partial: every file the cache left is a whole entry (no temp files).
        Assert.DoesNotContain(Directory.EnumerateFiles(disk.Dir, "*", SearchOption.AllDirectories),
            f => f.EndsWith(Snapshots.Store.Origin.FileBlobStore.TempSuffix, StringComparison.Ordinal));
    }

    /// <summary>curl as another uid (setpriv): its exit code and output.</summary>
    private static Task<(int Exit, string Output)> CurlAsAsync(uint uid, string socket, string path) =>
        SnapdProcess.AsUidAsync(uid, "curl", "-s", "-S", "--unix-socket", socket, "http://snapd/" + path);

    [Fact]
    public async Task Only_root_and_the_api_uid_may_use_the_api_and_the_peer_is_checked_on_every_request()
    {
        using var t = new TestStore();
        await StoreAsync(t);
        using var d = await SnapdProcess.StartAsync(t, "--api-uid", "65534");
        // Set once listening: the health answer may come a moment before.
        var rw = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        for (int i = 0; i < 100 && File.GetUnixFileMode(d.ApiSocket) != rw; i++) await Task.Delay(20);
        Assert.Equal(rw, File.GetUnixFileMode(d.ApiSocket));
        // The state directory (records, sockets) is root's alone; the API socket is reachable through it only
        // because its directory lets others pass: give them that, as an operator placing the socket would.
        File.SetUnixFileMode(d.StateDir, File.GetUnixFileMode(d.StateDir) | UnixFileMode.OtherExecute);
        var (exit, output) = await CurlAsAsync(65534, d.ApiSocket, "v1/health");
        Assert.True(exit == 0 && output.Contains("\"status\":\"ok\"", StringComparison.Ordinal), output);
        (exit, output) = await CurlAsAsync(65533, d.ApiSocket, "v1/health");
        Assert.True(exit != 0, "another uid cannot even connect: " + output);
        // With the socket opened to everyone by mistake, the peer check still refuses.
        File.SetUnixFileMode(d.ApiSocket, (UnixFileMode)0x1B6);
        (exit, output) = await CurlAsAsync(65533, d.ApiSocket, "v1/health");
        Assert.Contains("\"kind\":\"forbidden\"", output, StringComparison.Ordinal);
        Assert.Contains("uid 65533", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Warm_fills_the_hosts_cache_and_needs_one()
    {
        using var t = new TestStore();
        await StoreAsync(t);
        using (var bare = await SnapdProcess.StartAsync(t, t.Path_("bare-state"), []))
        {
            var (status, doc) = await bare.SendAsync(HttpMethod.Post, "v1/snapshots/os/warm");
            Assert.Equal(HttpStatusCode.BadRequest, status);
            Assert.Contains("cache", doc.GetProperty("error").GetProperty("message").GetString(),
                StringComparison.Ordinal);
        }
        using var d = await SnapdProcess.StartAsync(t, "--cache-dir", t.Path_("cache"));
        var (ok, warm) = await d.SendAsync(HttpMethod.Post, "v1/snapshots/fn/warm");
        Assert.Equal(HttpStatusCode.OK, ok);
        Assert.True(warm.GetProperty("chunks").GetInt32() > 0);
        // The bytes were counted only for a caller with a progress bar: through the API always 0.
        Assert.True(warm.GetProperty("bytes").GetInt64() > 0, $"warm moved no bytes? {warm}");
        Assert.NotEmpty(Directory.GetFiles(t.Path_("cache"), "*", SearchOption.AllDirectories));
    }

    [Fact]
    public async Task The_service_manager_is_told_ready_once_the_api_answers_and_stopping_at_sigterm()
    {
        using var t = new TestStore();
        await StoreAsync(t);
        string path = t.Path_("notify.sock");
        using var notify = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        notify.Bind(new UnixDomainSocketEndPoint(path));
        using var d = await SnapdProcess.StartAsync(t, t.Path_("snapd-state"), [],
            new Dictionary<string, string> { ["NOTIFY_SOCKET"] = path });
        var buffer = new byte[256];
        using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10)))
        {
            int n = await notify.ReceiveAsync(buffer, SocketFlags.None, cts.Token);
            Assert.Equal("READY=1", System.Text.Encoding.ASCII.GetString(buffer, 0, n));
        }
        d.Signal(15);
        using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10)))
        {
            int n = await notify.ReceiveAsync(buffer, SocketFlags.None, cts.Token);
            Assert.Equal("STOPPING=1", System.Text.Encoding.ASCII.GetString(buffer, 0, n));
        }
        Assert.Equal(0, await d.StopAsync());
    }

    [Fact]
    public async Task Recorded_restores_publish_a_prefetch_plan_that_later_restores_follow()
    {
        using var t = new TestStore();
        var (os, _) = await StoreAsync(t);
        using var d = await SnapdProcess.StartAsync(t, "--record-share", "1", "--plan-merge-logs", "2");
        for (int i = 0; i < 2; i++)
        {
            var r = await d.CreateAsync(new { snapshot = "os" });
            var vmm = await VmmAsync(r.GetProperty("socketPath").GetString()!, os, "--touch", "random:400:5");
            Assert.Equal(0, vmm.Exit);
            await d.WaitEndedAsync(r.GetProperty("id").GetString()!);
        }
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while ((await d.SendAsync(HttpMethod.Get, "v1/health")).Doc.GetProperty("plansPublished").GetInt64() == 0)
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60), "no plan published:\n" + d.Output);
            await Task.Delay(100);
        }
        var next = await d.CreateAsync(new { snapshot = "os", record = false });
        var run = await VmmAsync(next.GetProperty("socketPath").GetString()!, os, "--touch", "random:400:5");
        Assert.Equal(0, run.Exit);
        var ended = await d.WaitEndedAsync(next.GetProperty("id").GetString()!);
        Assert.True(ended.GetProperty("prefetch").GetProperty("plannedPages").GetInt64() > 0, ended.ToString());
    }
}
