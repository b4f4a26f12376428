using System.Collections.Concurrent;
using Snapshots.ChunkFs.Fuse;
using Snapshots.ChunkFs.Memory;
using Snapshots.ChunkFs.Native;
using Snapshots.Prefetch;
using Snapshots.Store;
using Snapshots.Store.Chunks;
using Snapshots.Store.Faults;

namespace Snapshots.Tests;

/// <summary>
/// ChunkFs mounted in this process (root and /dev/fuse, as in CI) and read through the kernel with plain file I/O
/// (never a mapping of our own mount: a page fault in managed code would wait on our own reader threads across a
/// GC). The image on disk is the model every read is checked against.
/// </summary>
[Trait("Category", Category.Process)]
public sealed class ChunkFsTests
{
    /// <summary>A mount of some snapshots over a scratch directory, unmounted and removed on dispose.</summary>
    internal sealed class Mounted : IDisposable
    {
        public required ChunkFsServer Server { get; init; }
        public required List<ResidentChunks> Tiers { get; init; }
        public required ConcurrentQueue<string> Log { get; init; }
        public string Dir => Server.MountPoint;
        public string PathOf(string name) => Path.Combine(Dir, name);

        public void Dispose()
        {
            Server.Dispose();
            foreach (var t in Tiers) t.Dispose();
            Directory.Delete(Dir);
        }
    }

    internal static async Task<Mounted> MountAsync(TestStore t, ChunkReader reader, string[] names,
        ChunkFsOptions? options = null, long budget = 1L << 30, Func<string, IReadOnlyList<PrefetchUnit>?>? plan = null)
    {
        var log = new ConcurrentQueue<string>();
        var tiers = new List<ResidentChunks>();
        var files = new List<ChunkFsFile>();
        foreach (var name in names)
        {
            var memory = new ResidentChunks(await t.OpenAsync(name), reader, budget, reserve: 0);
            tiers.Add(memory);
            files.Add(new ChunkFsFile(name, memory, plan?.Invoke(name)));
        }
        var dir = Directory.CreateDirectory(t.Path_($"mnt-{Guid.NewGuid():N}")).FullName;
        var server = new ChunkFsServer(dir, files, (options ?? new ChunkFsOptions()) with { Log = log.Enqueue });
        await server.StartAsync();
        return new Mounted { Server = server, Tiers = tiers, Log = log };
    }

    /// <summary>A reader that blocks in read(2) gets a thread of its own: on the shared pool it would starve the
    /// other tests of this process (the loader tests serve faults from pool threads).</summary>
    private static Task Blocking(Action read) =>
        Task.Factory.StartNew(read, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);

    internal static async Task BuildChainAsync(TestStore t, long size = 16L << 20)
    {
        await t.BuildAsync("os", t.Image("os.img", size: size));
        await t.BuildAsync("rt", t.Image("rt.img", runtime: 2, size: size), parent: "os");
    }

    [Fact]
    public async Task Reads_of_any_offset_and_size_return_the_image_and_writes_are_refused()
    {
        using var t = new TestStore();
        await BuildChainAsync(t);
        using var reader = t.Reader();
        // A budget of four chunks: reads evict and fetch again.
        using var m = await MountAsync(t, reader, ["os", "rt"], budget: 4L * ChunkGeometry.ChunkSize);
        Assert.Equal(["os", "rt"], Directory.GetFiles(m.Dir).Select(f => Path.GetFileName(f)!).Order().ToArray());
        var rng = new Random(11);
        foreach (var name in new[] { "os", "rt" })
        {
            var image = File.ReadAllBytes(t.Path_($"{name}.img"));
            Assert.Equal(image.LongLength, new FileInfo(m.PathOf(name)).Length);
            Assert.True(image.AsSpan().SequenceEqual(File.ReadAllBytes(m.PathOf(name))), $"{name}: whole file");
            // QEMU opens its memory file read-write even to map it privately: accepted; writes are not.
            using var file = File.OpenHandle(m.PathOf(name), FileMode.Open, FileAccess.ReadWrite);
            for (int i = 0; i < 300; i++)
            {
                long offset = rng.NextInt64(image.LongLength + 8192);
                var buffer = new byte[rng.Next(1, 3 * ChunkGeometry.ChunkSize)];
                int n = RandomAccess.Read(file, buffer, offset);
                int expected = (int)Math.Clamp(image.LongLength - offset, 0, buffer.Length);
                Assert.Equal(expected, n);
                Assert.True(image.AsSpan((int)Math.Min(offset, image.Length), n).SequenceEqual(buffer.AsSpan(0, n)),
                    $"{name}: {buffer.Length} bytes at {offset}");
            }
            var write = Assert.ThrowsAny<IOException>(() => RandomAccess.Write(file, new byte[4096], 0));
            Assert.Contains("Read-only", write.Message, StringComparison.OrdinalIgnoreCase);
            Assert.Throws<UnauthorizedAccessException>(() => RandomAccess.SetLength(file, 4096)); // EPERM
        }
        Assert.ThrowsAny<IOException>(() => File.WriteAllText(Path.Combine(m.Dir, "new"), "x"));
        Assert.True(File.ReadAllBytes(t.Path_("os.img")).AsSpan().SequenceEqual(File.ReadAllBytes(m.PathOf("os"))),
            "unchanged after writes");
        var stats = m.Server.Stats();
        Assert.All(stats, s => Assert.Equal(0, s.ReadErrors));
        Assert.All(stats, s => Assert.True(s.ChunkEvictions > 0, $"{s.Name}: the small budget evicted nothing"));
    }

    [Fact]
    public async Task Concurrent_readers_of_one_file_each_get_the_image()
    {
        using var t = new TestStore();
        await BuildChainAsync(t, 32L << 20);
        // Every origin read waits 0-20 ms: reads wait on fetches while others are served.
        var slow = new FaultInjectingChunkStore(new OriginChunkStore(t.Blobs),
            FaultProfile.Slow(TimeSpan.Zero, TimeSpan.FromMilliseconds(20)), seed: 2);
        using var reader = new ChunkReader(slow);
        using var m = await MountAsync(t, reader, ["rt"], budget: 8L * ChunkGeometry.ChunkSize);
        var image = File.ReadAllBytes(t.Path_("rt.img"));
        var readers = Enumerable.Range(0, 8).Select(r => Blocking(() =>
        {
            var rng = new Random(r);
            using var file = File.OpenHandle(m.PathOf("rt"));
            for (int i = 0; i < 100; i++)
            {
                long offset = rng.NextInt64(image.LongLength);
                var buffer = new byte[rng.Next(1, 1 << 20)];
                int n = RandomAccess.Read(file, buffer, offset);
                Assert.True(image.AsSpan((int)offset, n).SequenceEqual(buffer.AsSpan(0, n)), $"reader {r} at {offset}");
            }
        })).ToArray();
        await Task.WhenAll(readers).WaitAsync(TimeSpan.FromMinutes(2));
        Assert.True(m.Server.Stats()[0].ReadMisses > 0, "no read ever waited for a fetch: the test tests nothing");
    }

    [Fact]
    public async Task A_failing_tier_fails_the_read_with_EIO_at_the_deadline_naming_chunk_and_snapshot()
    {
        using var t = new TestStore();
        await BuildChainAsync(t);
        var broken = new FaultInjectingChunkStore(new OriginChunkStore(t.Blobs),
            new FaultProfile { StallRate = 1 }, seed: 1);
        using var reader = new ChunkReader(broken);
        var options = new ChunkFsOptions { ReadDeadline = TimeSpan.FromSeconds(1) };
        using var m = await MountAsync(t, reader, ["rt"], options);
        var chain = await t.OpenAsync("rt");
        int data = Array.FindIndex(chain.Chunks, c => !c.IsZero);
        using var file = File.OpenHandle(m.PathOf("rt"));
        var started = DateTime.UtcNow;
        var error = Assert.ThrowsAny<IOException>(
            () => RandomAccess.Read(file, new byte[4096], (long)data * ChunkGeometry.ChunkSize));
        var waited = DateTime.UtcNow - started;
        Assert.Contains("Input/output error", error.Message, StringComparison.Ordinal);
        Assert.True(waited < TimeSpan.FromSeconds(8), $"the read took {waited.TotalSeconds:0.0} s with a 1 s deadline");
        Assert.Contains(m.Log, l => l.Contains($"chunk {data}", StringComparison.Ordinal)
            && l.Contains("'rt'", StringComparison.Ordinal) && l.Contains("EIO", StringComparison.Ordinal));
        // A zero chunk needs no tier: still served.
        int zero = Array.FindIndex(chain.Chunks, c => c.IsZero);
        if (zero >= 0)
        {
            var page = new byte[4096];
            Assert.Equal(4096, RandomAccess.Read(file, page, (long)zero * ChunkGeometry.ChunkSize));
            Assert.True(page.AsSpan().IndexOfAnyExcept((byte)0) < 0);
        }
    }

    [Fact]
    public async Task A_tier_error_fails_the_read_at_once_and_a_healed_tier_serves_the_next()
    {
        using var t = new TestStore();
        await BuildChainAsync(t);
        var broken = new FaultInjectingChunkStore(new OriginChunkStore(t.Blobs),
            new FaultProfile { ErrorRate = 1 }, seed: 1);
        using var reader = new ChunkReader(broken);
        var options = new ChunkFsOptions { ReadDeadline = TimeSpan.FromSeconds(30) };
        using var m = await MountAsync(t, reader, ["rt"], options);
        var chain = await t.OpenAsync("rt");
        int data = Array.FindIndex(chain.Chunks, c => !c.IsZero);
        using var file = File.OpenHandle(m.PathOf("rt"));
        var started = DateTime.UtcNow;
        Assert.ThrowsAny<IOException>(
            () => RandomAccess.Read(file, new byte[4096], (long)data * ChunkGeometry.ChunkSize));
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(15), "an error waited for the deadline");
        Assert.Contains(m.Log, l => l.Contains($"chunk {data}", StringComparison.Ordinal));
        broken.Profile = FaultProfile.None;
        var bytes = new byte[4096];
        Assert.Equal(4096, RandomAccess.Read(file, bytes, (long)data * ChunkGeometry.ChunkSize));
        Assert.True(File.ReadAllBytes(t.Path_("rt.img")).AsSpan(data * ChunkGeometry.ChunkSize, 4096)
            .SequenceEqual(bytes));
    }

    [Fact]
    public async Task Recording_with_no_read_ahead_logs_exactly_the_pages_read_in_order()
    {
        using var t = new TestStore();
        await BuildChainAsync(t);
        using var reader = t.Reader();
        using var m = await MountAsync(t, reader, ["rt"], new ChunkFsOptions { Record = true, ReadAheadBytes = 0 });
        uint[] pages = [700, 3, 4, 2048, 1, 4095];
        using (var file = File.OpenHandle(m.PathOf("rt"), options: FileOptions.None))
        {
            foreach (var p in pages) RandomAccess.Read(file, new byte[100], (long)p * ChunkGeometry.PageSize + 10);
        }
        var log = m.Server.RecordedLogs()["rt"];
        Assert.Equal(pages, log.Touches.Select(x => x.Page).ToArray());
    }

    [Fact]
    public async Task Prefetch_pushes_planned_pages_into_the_page_cache_so_reading_them_sends_no_request()
    {
        using var t = new TestStore();
        await BuildChainAsync(t);
        using var reader = t.Reader();
        var chain = await t.OpenAsync("rt");
        // Planned: pages of the first few data chunks, some in runs, some scattered.
        var planned = new List<uint>();
        foreach (var c in Enumerable.Range(0, chain.ChunkCount).Where(c => !chain.Chunks[c].IsZero).Take(4))
            planned.AddRange(new uint[] { 0, 1, 2, 3, 9, 64, 127 }.Select(i => (uint)(c * 128) + i));
        var plan = new PrefetchPlan
        {
            ImageSize = chain.ImageSize, Pages = [.. planned], RunsMerged = 1, GroupSizes = [planned.Count],
        };
        using var m = await MountAsync(t, reader, ["rt"], new ChunkFsOptions { ReadAheadBytes = 0 },
            plan: _ => PrefetchUnit.FromImageChunks(plan));
        using var file = File.OpenHandle(m.PathOf("rt")); // prefetch started with the mount
        var until = DateTime.UtcNow.AddSeconds(30);
        while (m.Server.Stats()[0].PrefetchedPages < planned.Count && DateTime.UtcNow < until) await Task.Delay(10);
        var before = m.Server.Stats()[0];
        Assert.Equal(planned.Count, before.PrefetchedPages);
        var image = File.ReadAllBytes(t.Path_("rt.img"));
        var page = new byte[ChunkGeometry.PageSize];
        foreach (var p in planned)
        {
            RandomAccess.Read(file, page, (long)p * ChunkGeometry.PageSize);
            Assert.True(image.AsSpan((int)(p * ChunkGeometry.PageSize), page.Length).SequenceEqual(page), $"page {p}");
        }
        Assert.Equal(before.Reads, m.Server.Stats()[0].Reads);
        // A page not planned goes to the mount.
        RandomAccess.Read(file, page, (long)(planned[0] + 50) * ChunkGeometry.PageSize);
        // Counted just after the reply is written: the reader may be back first.
        until = DateTime.UtcNow.AddSeconds(5);
        while (m.Server.Stats()[0].Reads == before.Reads && DateTime.UtcNow < until) await Task.Delay(1);
        Assert.Equal(before.Reads + 1, m.Server.Stats()[0].Reads);
    }

    [Fact]
    public async Task A_busy_or_missing_mountpoint_is_refused_by_name()
    {
        using var t = new TestStore();
        await BuildChainAsync(t);
        using var reader = t.Reader();
        using var m = await MountAsync(t, reader, ["os"]);
        using var memory = new ResidentChunks(await t.OpenAsync("os"), reader, 1L << 30, reserve: 0);
        var busy = new ChunkFsServer(m.Dir, [new ChunkFsFile("os", memory)], new ChunkFsOptions());
        var e = await Assert.ThrowsAsync<InvalidInputException>(() => busy.StartAsync());
        Assert.Contains("is busy", e.Message, StringComparison.Ordinal);
        Assert.Equal("mountpoint", e.Parameter);
        busy.Dispose();
        Assert.Equal(File.ReadAllBytes(t.Path_("os.img")), File.ReadAllBytes(m.PathOf("os"))); // first one intact
        var missing = new ChunkFsServer(t.Path_("nowhere"), [new ChunkFsFile("os", memory)], new ChunkFsOptions());
        e = await Assert.ThrowsAsync<InvalidInputException>(() => missing.StartAsync());
        Assert.Contains("does not exist", e.Message, StringComparison.Ordinal);
        missing.Dispose();
    }

    [Fact]
    public async Task An_image_is_read_only_and_a_refused_write_leaves_no_trace_for_any_reader()
    {
        using var t = new TestStore();
        await BuildChainAsync(t);
        using var reader = t.Reader();
        using var m = await MountAsync(t, reader, ["os"]);
        var path = m.PathOf("os");
        Assert.Equal(UnixFileMode.UserRead, File.GetUnixFileMode(path));
        Assert.ThrowsAny<Exception>(() => File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite));
        Assert.Equal(UnixFileMode.UserRead, File.GetUnixFileMode(path));
        var image = File.ReadAllBytes(t.Path_("os.img"));
        // Root may still open it read-write (QEMU 7.2 does): a write through a shared mapping and through pwrite
        // is refused, and no reader afterwards, mapped or not, sees the written bytes.
        var psi = new System.Diagnostics.ProcessStartInfo("/usr/bin/python3")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        foreach (var a in (string[])["-c", """
            import mmap, os, sys, time
            fd = os.open(sys.argv[1], os.O_RDWR)
            m = mmap.mmap(fd, 8192, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=4096)
            m[0:4] = b"PWND"
            try:
                m.flush(); print("flush ok")
            except OSError as e:
                print("flush refused", e.errno)
            try:
                os.pwrite(fd, b"PWND", 12288); print("pwrite ok")
            except OSError as e:
                print("pwrite refused", e.errno)
            m.close(); os.close(fd)
            """, path])
            psi.ArgumentList.Add(a);
        using (var p = System.Diagnostics.Process.Start(psi)!)
        {
            var stdout = await p.StandardOutput.ReadToEndAsync();
            await p.WaitForExitAsync();
            Assert.Contains("flush refused 30", stdout, StringComparison.Ordinal); // EROFS
            Assert.Contains("pwrite refused 30", stdout, StringComparison.Ordinal);
        }
        Assert.Contains(m.Log, l => l.Contains("refused a write", StringComparison.Ordinal));
        var until = DateTime.UtcNow.AddSeconds(5);
        byte[] now;
        do now = File.ReadAllBytes(path); while (!now.AsSpan().SequenceEqual(image) && DateTime.UtcNow < until);
        Assert.True(now.AsSpan(4096, 4).SequenceEqual(image.AsSpan(4096, 4)), "the shared-mapping write is visible");
        Assert.True(now.AsSpan(12288, 4).SequenceEqual(image.AsSpan(12288, 4)), "the refused pwrite is visible");
        Assert.True(now.AsSpan().SequenceEqual(image));
    }

    [Fact]
    public async Task A_mountpoint_through_a_link_not_empty_or_in_a_system_directory_is_refused()
    {
        using var t = new TestStore();
        await BuildChainAsync(t);
        using var reader = t.Reader();
        using var memory = new ResidentChunks(await t.OpenAsync("os"), reader, 1L << 30, reserve: 0);
        var real = Directory.CreateDirectory(t.Path_("real")).FullName;
        File.CreateSymbolicLink(t.Path_("link"), real);
        Directory.CreateDirectory(t.Path_("parent"));
        Directory.CreateSymbolicLink(t.Path_("via"), t.Path_("parent"));
        Directory.CreateDirectory(t.Path_("parent/mnt"));
        var full = Directory.CreateDirectory(t.Path_("full")).FullName;
        File.WriteAllText(Path.Combine(full, "precious"), "x");
        foreach (var (dir, expected) in new[]
        {
            (t.Path_("link"), "symbolic link"), (t.Path_("via/mnt"), "symbolic link"), (full, "not empty"),
            ("/proc/sys/kernel", "system directory"), ("/sys/kernel", "system directory"),
        })
        {
            var server = new ChunkFsServer(dir, [new ChunkFsFile("os", memory)], new ChunkFsOptions());
            var e = await Assert.ThrowsAsync<InvalidInputException>(() => server.StartAsync());
            server.Dispose();
            Assert.Contains(expected, e.Message, StringComparison.Ordinal);
            Assert.Null(MountTable.Find(Path.GetFullPath(dir)));
        }
        Assert.Equal("x", File.ReadAllText(Path.Combine(full, "precious")));
        // A trailing slash is the same directory: mounted, and found again to be unmounted.
        var server2 = new ChunkFsServer(real + "/", [new ChunkFsFile("os", memory)], new ChunkFsOptions());
        await server2.StartAsync();
        Assert.Equal("fuse.chunkfs", MountTable.Find(real)?.FsType);
        server2.Dispose();
        Assert.Null(MountTable.Find(real));
    }

    [Fact]
    public async Task Two_mounts_starting_at_once_on_one_directory_make_one_mount_and_one_refusal()
    {
        using var t = new TestStore();
        await BuildChainAsync(t);
        using var reader = t.Reader();
        using var memory = new ResidentChunks(await t.OpenAsync("os"), reader, 1L << 30, reserve: 0);
        var dir = Directory.CreateDirectory(t.Path_("mnt")).FullName;
        for (int round = 0; round < 10; round++)
        {
            var servers = Enumerable.Range(0, 2)
                .Select(_ => new ChunkFsServer(dir, [new ChunkFsFile("os", memory)], new ChunkFsOptions())).ToArray();
            var starts = servers.Select(s => Task.Run(() => s.StartAsync())).ToArray();
            await Task.WhenAll(starts.Select(s => s.ContinueWith(_ => { }, TaskScheduler.Default)));
            Assert.Equal(1, starts.Count(s => s.IsCompletedSuccessfully));
            var refused = Assert.Single(starts, s => s.IsFaulted);
            Assert.Contains("busy", refused.Exception!.InnerException!.Message, StringComparison.Ordinal);
            Assert.Single(File.ReadLines("/proc/self/mountinfo"),
                l => l.Contains($" {dir} ", StringComparison.Ordinal));
            foreach (var s in servers) s.Dispose();
            Assert.Null(MountTable.Find(dir));
        }
    }

    [Fact]
    public async Task A_server_detached_from_its_directory_keeps_it_and_never_unmounts_what_is_mounted_there_now()
    {
        using var t = new TestStore();
        await BuildChainAsync(t);
        using var reader = t.Reader();
        using var a = await MountAsync(t, reader, ["os"]);
        var dir = a.Dir;
        using var memory = new ResidentChunks(await t.OpenAsync("rt"), reader, 1L << 30, reserve: 0);
        // An operator detaches A while it runs: A still holds the directory, so another ChunkFs is refused...
        Assert.Equal(0, LibC.umount2(dir, LibC.MNT_DETACH));
        using (var b = new ChunkFsServer(dir, [new ChunkFsFile("rt", memory)], new ChunkFsOptions()))
        {
            var e = await Assert.ThrowsAsync<InvalidInputException>(() => b.StartAsync());
            Assert.Contains("busy", e.Message, StringComparison.Ordinal);
        }
        // ...and what the operator mounts there instead is not A's to unmount when A stops.
        Assert.Equal(0, LibC.mount("tmpfs", dir, "tmpfs", 0, "size=1m"));
        try
        {
            a.Server.Dispose();
            Assert.Equal("tmpfs", MountTable.Find(dir)?.FsType);
        }
        finally
        {
            LibC.umount2(dir, LibC.MNT_DETACH);
        }
    }

    [Fact]
    public async Task Many_readers_under_the_smallest_memory_budget_get_the_image_and_no_error()
    {
        using var t = new TestStore();
        await BuildChainAsync(t);
        var slow = new FaultInjectingChunkStore(new OriginChunkStore(t.Blobs),
            FaultProfile.Slow(TimeSpan.Zero, TimeSpan.FromMilliseconds(5)), seed: 4);
        using var reader = new ChunkReader(slow);
        // Two chunks of memory for sixteen readers of spans of up to three chunks: evictions all the time.
        var options = new ChunkFsOptions { ReadDeadline = TimeSpan.FromSeconds(60) };
        using var m = await MountAsync(t, reader, ["rt"], options,
            budget: 1);
        var image = File.ReadAllBytes(t.Path_("rt.img"));
        var readers = Enumerable.Range(0, 16).Select(r => Blocking(() =>
        {
            var rng = new Random(100 + r);
            using var file = File.OpenHandle(m.PathOf("rt"));
            for (int i = 0; i < 40; i++)
            {
                long offset = rng.NextInt64(image.LongLength);
                var buffer = new byte[rng.Next(1, 1 << 20)];
                int n = RandomAccess.Read(file, buffer, offset);
                Assert.True(image.AsSpan((int)offset, n).SequenceEqual(buffer.AsSpan(0, n)), $"reader {r} at {offset}");
            }
        })).ToArray();
        await Task.WhenAll(readers).WaitAsync(TimeSpan.FromMinutes(3));
        Assert.Equal(0, m.Server.Stats()[0].ReadErrors);
        Assert.True(m.Server.Stats()[0].ChunkEvictions > 0);
    }

    [Fact]
    public void Mountinfo_lines_are_parsed_with_escapes()
    {
        var e = MountTable.Parse("52 27 0:48 / /tmp/a\\040b rw,nosuid,nodev - fuse.chunkfs chunkfs rw,user_id=0");
        Assert.NotNull(e);
        Assert.Equal("/tmp/a b", e.MountPoint);
        Assert.Equal("fuse.chunkfs", e.FsType);
        Assert.Equal(48, e.Minor);
        Assert.Null(MountTable.Parse("garbage"));
    }
}
