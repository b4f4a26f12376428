using System.Globalization;
using System.Net;
using Snapshots.ChunkFs.Uffd;

namespace Snapshots.Tests;

/// <summary>snapd against what an operator, a crash or a caller can leave in its way: records that are not records
/// (a FIFO, one naming pid 1), a tenant that is a path, settings that are empty or too long for a socket.</summary>
[Trait("Category", "process")]
public sealed class SnapdHostileStateTests
{
    private static string Records(string state) => Path.Combine(state, "restores");

    private static async Task MkfifoAsync(string path)
    {
        using var mk = System.Diagnostics.Process.Start("mkfifo", path)!;
        await mk.WaitForExitAsync();
        Assert.Equal(0, mk.ExitCode);
    }

    [Fact]
    public async Task A_fifo_planted_as_a_restore_record_does_not_hang_the_start_and_is_removed()
    {
        using var t = new TestStore();
        await SnapdTests.StoreAsync(t);
        string state = t.Path_("snapd-state");
        Directory.CreateDirectory(Records(state));
        string fifo = Path.Combine(Records(state), "r-00000000000000ff.json");
        await MkfifoAsync(fifo);
        using var d = await SnapdProcess.StartAsync(t, state, []);
        Assert.False(File.Exists(fifo), "the FIFO was dropped as an unreadable record");
    }

    [Fact]
    public async Task A_record_naming_pid_1_with_its_start_time_is_dropped_and_the_daemon_starts()
    {
        using var t = new TestStore();
        await SnapdTests.StoreAsync(t);
        string state = t.Path_("snapd-state");
        Directory.CreateDirectory(Records(state));
        ulong init = VmmProcess.StartTime(1) ?? throw new InvalidOperationException("no /proc/1/stat");
        string started = init.ToString(CultureInfo.InvariantCulture);
        File.WriteAllText(Path.Combine(Records(state), "r-0000000000000001.json"),
            """{"id":"r-0000000000000001","snapshot":"os","mode":"uffd","vmmPid":1,"vmmStartTime":""" + started
            + ""","vmmUffdFd":0,"regions":[{"baseHostVirtAddr":4096,"size":4096,"offset":0,"pageSize":4096}]}""");
        // Regions missing altogether (null): dropped too, never a crash.
        File.WriteAllText(Path.Combine(Records(state), "r-0000000000000002.json"),
            """{"id":"r-0000000000000002","snapshot":"os","mode":"uffd","vmmPid":1,"vmmStartTime":""" + started
            + ""","vmmUffdFd":0,"regions":null}""");
        using var d = await SnapdProcess.StartAsync(t, state, []);
        Assert.Empty(Directory.GetFiles(Records(state), "*.json"));
        Assert.Equal(init, VmmProcess.StartTime(1));
    }

    [Fact]
    public async Task A_tenant_that_is_a_path_is_refused_and_nothing_is_made_outside_the_state_directory()
    {
        using var t = new TestStore();
        await SnapdTests.StoreAsync(t);
        using var d = await SnapdProcess.StartAsync(t);
        string escape = t.Path_("escaped");
        var (status, doc) = await d.SendAsync(HttpMethod.Post, "v1/restores",
            $$"""{"snapshot":"os","tenant":"x/../../../../../../../..{{escape}}","record":true}""");
        Assert.True(status == HttpStatusCode.BadRequest, $"{(int)status} {doc}");
        Assert.Equal("tenant", doc.GetProperty("error").GetProperty("parameter").GetString());
        Assert.False(Directory.Exists(escape + "--os"));
    }

    [Theory]
    [InlineData("StateDirectory", "--state-dir", "")]
    [InlineData("ApiSocket", "--api-socket", "")]
    [InlineData("CacheDirectory", "--cache-dir", "")]
    [InlineData("ApiSocket", "--api-socket", "LONG")]
    [InlineData("StateDirectory", "--state-dir", "LONG")]
    [InlineData("cache-dirr", "--cache-dirr", "/tmp/typo")]
    public async Task An_empty_or_unusable_path_or_an_unknown_flag_exits_2_naming_it(string setting, string flag,
        string value)
    {
        using var t = new TestStore();
        await SnapdTests.StoreAsync(t);
        // A socket path over sockaddr_un's 107 bytes; a state directory whose restore sockets would be.
        if (value == "LONG") value = t.Path_(new string('a', flag == "--api-socket" ? 100 : 60));
        string[] args = flag == "--api-socket" ? [flag, value] : [flag, value, "--api-socket", t.Path_("api.sock")];
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            SnapdProcess.StartAsync(t, t.Path_("snapd-state"), args));
        Assert.Contains("exited 2", e.Message, StringComparison.Ordinal);
        Assert.Contains(setting, e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("Unhandled exception", e.Message, StringComparison.Ordinal);
    }

    /// <summary>DELETE racing POST: a restore listed while it was still being made was deleted (its token disposed)
    /// and then started anyway: the create failed 500 or answered a restore already gone, its slot counted for
    /// good, its socket or ChunkFs mount left behind.</summary>
    [Theory]
    [InlineData("file")]
    [InlineData("uffd")]
    public async Task Deletes_racing_creates_never_fail_them_with_500_nor_leak_a_slot_socket_or_mount(string mode)
    {
        using var t = new TestStore();
        await SnapdTests.StoreAsync(t);
        using var d = await SnapdProcess.StartAsync(t);
        for (int i = 0; i < 25; i++)
        {
            var create = d.SendAsync(HttpMethod.Post, "v1/restores", $$"""{"snapshot":"os","mode":"{{mode}}"}""");
            while (!create.IsCompleted) await DeleteLiveAsync(d);
            var (status, doc) = await create;
            Assert.True(status == HttpStatusCode.Created, $"create: {(int)status} {doc}\n{d.Output}");
        }
        await DeleteLiveAsync(d);
        var (_, health) = await d.SendAsync(HttpMethod.Get, "v1/health");
        Assert.Equal(0, health.GetProperty("activeRestores").GetInt32());
        Assert.Empty(Directory.GetFiles(Records(d.StateDir), "*.sock"));
        Assert.DoesNotContain(Path.Combine(d.StateDir, "mounts"), File.ReadAllText("/proc/self/mountinfo"),
            StringComparison.Ordinal);
    }

    private static async Task DeleteLiveAsync(SnapdProcess d)
    {
        var (_, list) = await d.SendAsync(HttpMethod.Get, "v1/restores");
        foreach (var r in list.GetProperty("restores").EnumerateArray())
        {
            if (r.GetProperty("state").GetString() is not ("ready" or "serving")) continue;
            var (status, doc) = await d.SendAsync(HttpMethod.Delete, "v1/restores/" + r.GetProperty("id").GetString());
            Assert.True(status is HttpStatusCode.OK or HttpStatusCode.NotFound, $"delete: {(int)status} {doc}");
        }
    }

    /// <summary>docs/api.md: "SIGTERM drains: new restores get 503". The web server stopped first, so during the
    /// drain the API did not answer at all (connection refused): no 503, no health saying "draining".</summary>
    [Fact]
    public async Task While_draining_the_api_still_answers_health_draining_and_a_create_503()
    {
        using var t = new TestStore();
        var (os, _) = await SnapdTests.StoreAsync(t);
        using var d = await SnapdProcess.StartAsync(t);
        var r = await d.CreateAsync(new { snapshot = "os" });
        var run = SnapdTests.VmmAsync(r.GetProperty("socketPath").GetString()!, os, "--trace",
            SnapdTests.SlowTrace(t, 1000, 7), "--sleep-gaps");
        var id = r.GetProperty("id").GetString()!;
        while ((await d.SendAsync(HttpMethod.Get, "v1/restores/" + id)).Doc.GetProperty("faults").GetInt64() == 0)
            await Task.Delay(5);
        d.Signal(15);
        await Task.Delay(300);
        Assert.False(run.IsCompleted, "the VM is still being served");
        var (hs, health) = await d.SendAsync(HttpMethod.Get, "v1/health");
        Assert.Equal(HttpStatusCode.OK, hs);
        Assert.Equal("draining", health.GetProperty("status").GetString());
        var (status, doc) = await d.SendAsync(HttpMethod.Post, "v1/restores", """{"snapshot":"os"}""");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, status);
        Assert.Equal("draining", doc.GetProperty("error").GetProperty("kind").GetString());
        var vmm = await run;
        Assert.True(vmm.Exit == 0, $"{vmm.Stdout} {vmm.Stderr}\n{d.Output}");
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await d.Process.WaitForExitAsync(cts.Token);
        Assert.Equal(0, d.Process.ExitCode);
    }

    /// <summary>STATE/mounts as a symlink: the start's stale-mount cleanup went into its target and deleted every
    /// empty directory there.</summary>
    [Fact]
    public async Task A_mounts_directory_that_is_a_symlink_is_refused_and_its_target_left_alone()
    {
        using var t = new TestStore();
        await SnapdTests.StoreAsync(t);
        string state = t.Path_("snapd-state");
        string victim = t.Path_("victim");
        Directory.CreateDirectory(Path.Combine(victim, "empty-but-wanted"));
        Directory.CreateDirectory(state);
        Directory.CreateSymbolicLink(Path.Combine(state, "mounts"), victim);
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => SnapdProcess.StartAsync(t, state, []));
        Assert.Contains("symlink", e.Message, StringComparison.Ordinal);
        Assert.True(Directory.Exists(Path.Combine(victim, "empty-but-wanted")));
    }

    /// <summary>docs/api.md: "vmmUid lets a VMM of another uid (a jailed Firecracker) connect (the socket becomes
    /// its own) or read the file". The socket and the file were given to that uid, but inside owner-only
    /// directories (STATE, STATE/restores, STATE/mounts: 0700, reset at every start), so it could reach neither.
    /// </summary>
    [Fact]
    public async Task A_vmm_of_the_vmm_uid_reaches_its_socket_and_its_memory_file_but_cannot_list_the_state()
    {
        using var t = new TestStore();
        var (os, _) = await SnapdTests.StoreAsync(t);
        using var d = await SnapdProcess.StartAsync(t);
        var u = await d.CreateAsync(new { snapshot = "os", vmmUid = 65534 });
        var (exit, output) = await SnapdProcess.AsUidAsync(65534, "curl", "-s", "-S", "-m", "2", "--unix-socket",
            u.GetProperty("socketPath").GetString()!, "http://vmm/");
        Assert.True(exit != 7 && !output.Contains("Permission denied", StringComparison.Ordinal),
            $"connect: {exit} {output}");
        var f = await d.CreateAsync(new { snapshot = "os", mode = "file", vmmUid = 65534 });
        (exit, output) = await SnapdProcess.AsUidAsync(65534, "sha256sum", f.GetProperty("path").GetString()!);
        Assert.True(exit == 0, output);
        Assert.Contains(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(os))),
            output, StringComparison.Ordinal);
        (exit, _) = await SnapdProcess.AsUidAsync(65534, "ls", Records(d.StateDir));
        Assert.NotEqual(0, exit);
    }

    [Fact]
    public async Task A_record_copied_under_another_id_is_dropped_and_the_vm_is_taken_back_once()
    {
        using var t = new TestStore();
        var (os, _) = await SnapdTests.StoreAsync(t);
        string state = t.Path_("snapd-state");
        var d = await SnapdProcess.StartAsync(t, state, []);
        var r = await d.CreateAsync(new { snapshot = "os" });
        string id = r.GetProperty("id").GetString()!;
        var run = SnapdTests.VmmAsync(r.GetProperty("socketPath").GetString()!, os, "--trace",
            SnapdTests.SlowTrace(t, 1000, 1), "--sleep-gaps", "--vcpus", "2");
        while ((await d.SendAsync(HttpMethod.Get, "v1/restores/" + id)).Doc.GetProperty("faults").GetInt64() == 0)
            await Task.Delay(2);
        d.Signal(9);
        await d.Process.WaitForExitAsync();
        d.Dispose();
        string copy = "r-00000000000000aa";
        File.WriteAllText(Path.Combine(Records(state), copy + ".json"),
            File.ReadAllText(Path.Combine(Records(state), id + ".json")).Replace(id, copy, StringComparison.Ordinal));

        using var again = await SnapdProcess.StartAsync(t, state, []);
        var vmm = await run;
        Assert.True(vmm.Exit == 0, vmm.Stdout + vmm.Stderr + again.Output);
        Assert.Contains("snapd_restores_taken_back_total{outcome=\"served\"} 1", await again.MetricsAsync());
        var ids = new[] { id, copy };
        int found = 0;
        foreach (var x in ids)
            if ((await again.SendAsync(HttpMethod.Get, "v1/restores/" + x)).Status == HttpStatusCode.OK) found++;
        Assert.Equal(1, found);
    }

    [Fact]
    public async Task A_lock_file_planted_as_a_symlink_is_refused_and_its_target_left_alone()
    {
        using var t = new TestStore();
        await SnapdTests.StoreAsync(t);
        string state = t.Path_("snapd-state");
        Directory.CreateDirectory(state);
        string target = t.Path_("precious");
        File.WriteAllText(target, "keep");
        File.CreateSymbolicLink(Path.Combine(state, "snapd.lock"), target);
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => SnapdProcess.StartAsync(t, state, []));
        Assert.Contains("snapd.lock", e.Message, StringComparison.Ordinal);
        Assert.Contains("symlink", e.Message, StringComparison.Ordinal);
        Assert.Equal("keep", File.ReadAllText(target));
    }
}
