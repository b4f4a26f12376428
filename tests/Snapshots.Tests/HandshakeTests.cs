using System.Net.Sockets;
using System.Text;
using Snapshots.ChunkFs.Native;
using Snapshots.ChunkFs.Uffd;
using Snapshots.Store;

namespace Snapshots.Tests;

/// <summary>Firecracker's handshake, and everything a broken or hostile VMM could send instead. Mixed costs, so the
/// category is on each test: the last one runs snapctl.</summary>
public class HandshakeTests
{
    private const long Snapshot = 64L << 20;

    [Fact]
    [Trait("Category", Category.Unit)]
    public void Parses_firecrackers_message()
    {
        var json = """[{"base_host_virt_addr":139637976727552,"size":33554432,"offset":0,"page_size":4096},"""
            + """{"base_host_virt_addr":139638043836416,"size":16777216,"offset":33554432,"page_size":"""
            + """4096,"new_field":1}]""";
        var regions = FirecrackerHandshake.Parse(Encoding.UTF8.GetBytes(json), Snapshot);
        Assert.Equal(2, regions.Length);
        Assert.Equal(33554432UL, regions[1].Offset);
        Assert.True(regions[0].Contains(139637976727552UL + 4096));
    }

    [Theory]
    [Trait("Category", Category.Unit)]
    [InlineData("", "empty message")]
    [InlineData("{}", "expected a JSON array")]
    [InlineData("[", "not valid JSON")]
    [InlineData("[]", "no regions")]
    [InlineData("""[{"size":4096,"offset":0,"page_size":4096}]""", "needs base_host_virt_addr")]
    [InlineData("""[{"base_host_virt_addr":"x","size":4096,"offset":0,"page_size":4096}]""",
        "must be a non-negative integer")]
    [InlineData("""[{"base_host_virt_addr":4097,"size":4096,"offset":0,"page_size":4096}]""", "not page-aligned")]
    [InlineData("""[{"base_host_virt_addr":4096,"size":100,"offset":0,"page_size":4096}]""", "not a positive multiple")]
    [InlineData("""[{"base_host_virt_addr":4096,"size":4096,"offset":0,"page_size":2097152}]""",
        "page size 2097152 is not supported")]
    [InlineData("""[{"base_host_virt_addr":4096,"size":134217728,"offset":0,"page_size":4096}]""",
        "larger than the snapshot")]
    [InlineData("""[{"base_host_virt_addr":4096,"size":8192,"offset":0,"page_size":4096},"""
        + """{"base_host_virt_addr":8192,"size":4096,"offset":8192,"page_size":4096}]""", "overlap in the VMM")]
    [InlineData("""[{"base_host_virt_addr":4096,"size":8192,"offset":0,"page_size":4096},"""
        + """{"base_host_virt_addr":65536,"size":4096,"offset":4096,"page_size":4096}]""",
        "overlap in the memory file")]
    [InlineData("""[{"base_host_virt_addr":4096,"size":4096,"offset":0,"page_size":4096}] junk""", "not valid JSON")]
    public void Rejects_malformed_handshakes_by_name(string json, string expected)
    {
        var ex = Assert.Throws<InvalidInputException>(
            () => FirecrackerHandshake.Parse(Encoding.UTF8.GetBytes(json), Snapshot));
        Assert.Contains("uffd handshake", ex.Message);
        Assert.Contains(expected, ex.Message);
    }

    [Fact]
    [Trait("Category", Category.Unit)]
    public void Rejects_an_oversized_handshake()
    {
        var region = """{"base_host_virt_addr":4096,"size":4096,"offset":0,"page_size":4096}""";
        var big = "[" + string.Join(",", Enumerable.Repeat(region, 2000)) + "]";
        var ex = Assert.Throws<InvalidInputException>(
            () => FirecrackerHandshake.Parse(Encoding.UTF8.GetBytes(big), Snapshot));
        Assert.Contains("limit", ex.Message);
    }

    /// <summary>One client sends <paramref name="message"/> with <paramref name="fd"/>; when
    /// <paramref name="thenGood"/>, a second client then hands over a real uffd with a valid message. Returns what
    /// the listener's accept threw (null: a session) and what it logged.</summary>
    private static async Task<(Exception? Error, List<string> Log)> HandshakeAsync(
        byte[] message, int fd, bool thenGood = false)
    {
        var path = Path.Combine(Path.GetTempPath(), $"hs-{Guid.NewGuid():N}.sock");
        var log = new List<string>();
        using var listener = new HandshakeListener(path, line => { lock (log) log.Add(line); });
        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var accept = listener.AcceptAsync(Snapshot, TimeSpan.FromSeconds(2), limit.Token);
        using (var client = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            await client.ConnectAsync(new UnixDomainSocketEndPoint(path));
            Send(client, message, fd);
        }
        int good = thenGood ? NewUffd() : -1;
        try
        {
            if (thenGood)
            {
                using var second = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                await second.ConnectAsync(new UnixDomainSocketEndPoint(path));
                Send(second, Good, good);
            }
            try
            {
                using var session = await accept;
                return (null, log);
            }
            catch (Exception ex)
            {
                return (ex, log);
            }
        }
        finally
        {
            if (good >= 0) LibC.close(good);
        }
    }

    private static void Send(Socket s, byte[] data, int fd) =>
        Assert.Equal(data.Length, (int)SendMessage(s, data, fd));

    /// <summary>sendmsg of DATA with FD as SCM_RIGHTS (none when negative); its result (-1: failed).</summary>
    private static unsafe nint SendMessage(Socket s, byte[] data, int fd)
    {
        byte* control = stackalloc byte[LibC.CMSG_SPACE_FD];
        fixed (byte* p = data)
        {
            var iov = new IoVec { Base = p, Len = (nuint)data.Length };
            var msg = new MsgHdr { Iov = &iov, IovLen = 1 };
            if (fd >= 0)
            {
                var header = new CmsgHdr { Len = LibC.CMSG_LEN_FD, Level = LibC.SOL_SOCKET, Type = LibC.SCM_RIGHTS };
                *(CmsgHdr*)control = header;
                *(int*)(control + sizeof(CmsgHdr)) = fd;
                msg.Control = control;
                msg.ControlLen = LibC.CMSG_SPACE_FD;
            }
            return LibC.sendmsg((int)s.Handle, &msg, 0);
        }
    }

    private static unsafe int NewUffd()
    {
        int fd = LibC.UserfaultFd(LibC.O_CLOEXEC | LibC.O_NONBLOCK);
        Assert.True(fd >= 0, $"userfaultfd: errno {LibC.Errno}");
        var api = new UffdioApi { Api = UffdAbi.UFFD_API, Features = UffdAbi.UFFD_FEATURE_EVENT_REMOVE };
        Assert.Equal(0, LibC.ioctl(fd, UffdAbi.UFFDIO_API, &api));
        return fd;
    }

    private static readonly byte[] Good = Encoding.UTF8.GetBytes(
        """[{"base_host_virt_addr":139637976727552,"size":33554432,"offset":0,"page_size":4096}]""");

    [Fact]
    [Trait("Category", Category.Unit)]
    public async Task Accepts_a_real_uffd_with_a_valid_message()
    {
        int fd = NewUffd();
        try { Assert.Null((await HandshakeAsync(Good, fd)).Error); }
        finally { LibC.close(fd); }
    }

    [Fact]
    [Trait("Category", Category.Unit)]
    public async Task A_message_without_a_descriptor_is_refused_and_the_wait_goes_on()
    {
        var (error, log) = await HandshakeAsync(Good, -1, thenGood: true);
        Assert.Null(error);
        Assert.Contains(log, l => l.Contains("no file descriptor attached", StringComparison.Ordinal));
    }

    [Fact]
    [Trait("Category", Category.Unit)]
    public async Task A_descriptor_that_is_not_a_uffd_is_refused_and_the_wait_goes_on()
    {
        using var file = File.OpenHandle("/dev/null");
        var (error, log) = await HandshakeAsync(Good, (int)file.DangerousGetHandle(), thenGood: true);
        Assert.Null(error);
        Assert.Contains(log, l => l.Contains("not a userfaultfd", StringComparison.Ordinal));
    }

    [Fact]
    [Trait("Category", Category.Unit)]
    public async Task Garbage_is_refused_and_the_wait_goes_on()
    {
        var (error, log) = await HandshakeAsync(Encoding.UTF8.GetBytes("not json at all"), -1, thenGood: true);
        Assert.Null(error);
        Assert.Single(log);
    }

    [Fact]
    [Trait("Category", Category.Unit)]
    public async Task A_vmm_whose_regions_are_refused_is_named_and_never_left_waiting()
    {
        int fd = NewUffd();
        try
        {
            var bad = Encoding.UTF8.GetBytes(
                """[{"base_host_virt_addr":4096,"size":8192,"offset":0,"page_size":4096},"""
                + """{"base_host_virt_addr":8192,"size":4096,"offset":8192,"page_size":4096}]""");
            var (error, _) = await HandshakeAsync(bad, fd);
            var refused = Assert.IsType<VmmRefusedException>(error);
            Assert.Contains("overlap", refused.Message);
            Assert.Equal(Environment.ProcessId, refused.VmmPid); // the peer was this test: not killed
        }
        finally { LibC.close(fd); }
    }

    [Fact]
    [Trait("Category", Category.Unit)]
    public void The_socket_path_is_checked_before_binding()
    {
        var dir = Path.Combine(Path.GetTempPath(), $"hs-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        try
        {
            var missing = Assert.Throws<InvalidInputException>(
                () => new HandshakeListener(Path.Combine(dir, "nope", "s.sock")));
            Assert.Contains("does not exist", missing.Message);
            Assert.Equal("uffd-socket", missing.Parameter);

            var file = Path.Combine(dir, "file");
            File.WriteAllText(file, "keep me");
            var notSocket = Assert.Throws<InvalidInputException>(() => new HandshakeListener(file));
            Assert.Contains("not a socket", notSocket.Message);
            Assert.Equal("keep me", File.ReadAllText(file));
            var link = Path.Combine(dir, "link");
            File.CreateSymbolicLink(link, file);
            Assert.Throws<InvalidInputException>(() => new HandshakeListener(link));
            Assert.Equal("keep me", File.ReadAllText(file));

            var sock = Path.Combine(dir, "s.sock");
            using (var live = new HandshakeListener(sock))
            {
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(sock));
                var busy = Assert.Throws<InvalidInputException>(() => new HandshakeListener(sock));
                Assert.Contains("already listening", busy.Message);
            }
            // A stale socket (nobody listening) is replaced. .NET unlinks the path it bound when the socket is
            // disposed: bind elsewhere and move the socket file into place, as a crashed handler leaves it.
            using (var stale = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
            {
                stale.Bind(new UnixDomainSocketEndPoint(sock + ".tmp"));
                File.Move(sock + ".tmp", sock);
            }
            Assert.True(File.Exists(sock), "the stale socket is left behind");
            using var again = new HandshakeListener(sock);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    [Trait("Category", Category.Unit)]
    public async Task A_peer_of_another_uid_is_refused()
    {
        var path = Path.Combine(Path.GetTempPath(), $"hs-{Guid.NewGuid():N}.sock");
        var log = new List<string>();
        using var listener = new HandshakeListener(path, log.Add, allowedUid: 4242);
        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        var accept = listener.AcceptAsync(Snapshot, TimeSpan.FromSeconds(1), limit.Token);
        int fd = NewUffd();
        try
        {
            using (var client = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
            {
                await client.ConnectAsync(new UnixDomainSocketEndPoint(path));
                // The listener may refuse the peer (close the connection) before it writes: the send can fail.
                _ = SendMessage(client, Good, fd);
            }
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => accept);
            Assert.Contains(log, l => l.Contains("may not hand over a VMM", StringComparison.Ordinal));
        }
        finally { LibC.close(fd); }
    }

    [Fact]
    [Trait("Category", Category.Process)]
    public async Task The_cli_refuses_a_bad_connection_then_serves_the_real_vmm()
    {
        using var t = new TestStore();
        var img = t.Image("os.img", size: 16L << 20);
        await t.BuildAsync("os", img);
        var socket = t.Path_("cli.sock");
        using var handler = Snapctl.Start(
            t, "restore", "--json", "--name", "os", "--uffd-socket", socket, "--accept-timeout", "30");
        var herr = handler.StandardError.ReadToEndAsync();
        var hout = handler.StandardOutput.ReadToEndAsync();
        while (!File.Exists(socket)) await Task.Delay(20);
        using (var client = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            await client.ConnectAsync(new UnixDomainSocketEndPoint(socket));
            Send(client, Encoding.UTF8.GetBytes("not json at all"), -1);
        }
        var (vmmExit, _) = await Loader.VmmAsync(
            "--image", img, "--socket", socket, "--touch", "random:200:1", "--timeout", "60");
        await handler.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromSeconds(30)).Token);
        Assert.Equal(0, vmmExit);
        Assert.Equal(0, handler.ExitCode);
        Assert.Contains("refused a connection", await herr);
        Assert.Contains("\"outcome\": \"exited\"", await hout);
    }

    [Fact]
    [Trait("Category", Category.Process)]
    public async Task A_vmm_larger_than_the_snapshot_is_killed_not_left_hanging()
    {
        using var t = new TestStore();
        var img = t.Image("os.img", size: 16L << 20);
        await t.BuildAsync("os", img);
        var run = await Loader.RestoreAsync(t, ["--name", "os"], ["--image", img, "--regions", "32M"]);
        Assert.Equal(1, run.Handler.ExitCode);
        Assert.Equal("failed", run.Stats.GetProperty("outcome").GetString());
        Assert.Contains("refused the VMM", run.Stats.GetProperty("reason").GetString());
        Assert.Equal(128 + 9, run.VmmExit); // SIGKILL: it had handed over its memory and nobody would serve it
    }
}
