using System.Diagnostics;
using Snapshots.Host;
using Snapshots.Prefetch;
using Snapshots.Store;

namespace Snapshots.Tests;

/// <summary>The manifest and log fuzzing extended to what the object itself is: a symlink to /dev/zero, a FIFO, a
/// device node, a huge sparse file, an empty file. Each is a named error within seconds: never a hang, never an
/// unbounded read, never a crash.</summary>
[Trait("Category", Category.Unit)]
public class HostileObjectTests
{
    public static TheoryData<string> Kinds => ["symlink-to-dev-zero", "fifo", "device", "huge", "empty"];

    private static async Task PlantAsync(string path, string kind)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        if (File.Exists(path)) File.Delete(path);
        switch (kind)
        {
            case "symlink-to-dev-zero": File.CreateSymbolicLink(path, "/dev/zero"); break;
            case "fifo": await RunAsync("mkfifo", path); break;
            case "device": await RunAsync("mknod", path, "c", "1", "3"); break; // like /dev/null (root: CI is)
            case "huge":
                using (var f = File.OpenHandle(path, FileMode.CreateNew, FileAccess.Write))
                    RandomAccess.SetLength(f, 300L << 20); // sparse: over every format's 256 MiB limit
                break;
            default: File.WriteAllBytes(path, []); break;
        }
    }

    private static async Task RunAsync(string file, params string[] args)
    {
        using var p = Process.Start(file, args)!;
        await p.WaitForExitAsync();
        Assert.Equal(0, p.ExitCode);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task A_manifest_object_that_is_not_a_manifest_file_is_a_named_error(string kind)
    {
        using var t = new TestStore();
        await t.BuildAsync("os", t.Image("os.img", size: 16L << 20));
        await PlantAsync(Path.Combine(t.StoreDir, "manifests", "bad.manifest"), kind);
        using var host = new SnapshotHost(t.Blobs, t.Keys);
        var e = await Assert.ThrowsAnyAsync<SnapshotException>(
            () => host.InspectAsync("bad").WaitAsync(TimeSpan.FromSeconds(20)));
        Assert.Contains("bad", e.Message);
        var rows = await host.ListAsync().WaitAsync(TimeSpan.FromSeconds(20));
        Assert.NotNull(Assert.Single(rows, r => r.Name == "bad").Error); // listed, with its error
        Assert.Null(Assert.Single(rows, r => r.Name == "os").Error);     // and it hides nothing else
        // gc stops: chunks of a manifest it cannot read are not known to be garbage.
        await Assert.ThrowsAnyAsync<SnapshotException>(() => host.CollectGarbageAsync());
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task An_access_log_or_plan_file_that_is_not_one_is_a_named_error(string kind)
    {
        using var t = new TestStore();
        var path = t.Path_("input.log");
        await PlantAsync(path, kind);
        var log = await Assert.ThrowsAnyAsync<SnapshotException>(
            () => Task.Run(() => AccessLog.Load(path)).WaitAsync(TimeSpan.FromSeconds(20)));
        Assert.Contains(path, log.Message);
        var plan = await Assert.ThrowsAnyAsync<SnapshotException>(
            () => Task.Run(() => PrefetchPlan.Load(path)).WaitAsync(TimeSpan.FromSeconds(20)));
        Assert.Contains(path, plan.Message);
    }
}
