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

    private static async Task<Exception?> HandshakeAsync(byte[] message, int fd)
    {
        var path = Path.Combine(Path.GetTempPath(), $"hs-{Guid.NewGuid():N}.sock");
        using var listener = new HandshakeListener(path);
        var accept = listener.AcceptAsync(Snapshot, TimeSpan.FromSeconds(2), CancellationToken.None);
        using (var client = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            await client.ConnectAsync(new UnixDomainSocketEndPoint(path));
            Send(client, message, fd);
            try { using var session = await accept; return null; }
            catch (Exception ex) { return ex; }
        }
    }

    private static unsafe void Send(Socket s, byte[] data, int fd)
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
            Assert.Equal(data.Length, (int)LibC.sendmsg((int)s.Handle, &msg, 0));
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
        try { Assert.Null(await HandshakeAsync(Good, fd)); }
        finally { LibC.close(fd); }
    }

    [Fact]
    [Trait("Category", Category.Unit)]
    public async Task Refuses_a_message_without_a_descriptor()
    {
        var ex = await HandshakeAsync(Good, -1);
        Assert.Contains("no file descriptor attached", Assert.IsType<InvalidInputException>(ex).Message);
    }

    [Fact]
    [Trait("Category", Category.Unit)]
    public async Task Refuses_a_descriptor_that_is_not_a_uffd()
    {
        using var file = File.OpenHandle("/dev/null");
        var ex = await HandshakeAsync(Good, (int)file.DangerousGetHandle());
        Assert.Contains("not a userfaultfd", Assert.IsType<InvalidInputException>(ex).Message);
    }

    [Fact]
    [Trait("Category", Category.Unit)]
    public async Task Refuses_overlapping_regions_sent_with_a_real_uffd()
    {
        int fd = NewUffd();
        try
        {
            var bad = Encoding.UTF8.GetBytes(
                """[{"base_host_virt_addr":4096,"size":8192,"offset":0,"page_size":4096},"""
                + """{"base_host_virt_addr":8192,"size":4096,"offset":8192,"page_size":4096}]""");
            var ex = await HandshakeAsync(bad, fd);
            Assert.Contains("overlap", Assert.IsType<InvalidInputException>(ex).Message);
        }
        finally { LibC.close(fd); }
    }

    [Fact]
    [Trait("Category", Category.Process)]
    public async Task The_cli_names_a_bad_handshake_and_exits_non_zero()
    {
        using var t = new TestStore();
        await t.BuildAsync("os", t.Image("os.img", size: 16L << 20));
        var socket = t.Path_("cli.sock");
        using var handler = Snapctl.Start(
            t, "restore", "--name", "os", "--uffd-socket", socket, "--accept-timeout", "30");
        var herr = handler.StandardError.ReadToEndAsync();
        while (!File.Exists(socket)) await Task.Delay(20);
        using (var client = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            await client.ConnectAsync(new UnixDomainSocketEndPoint(socket));
            Send(client, Encoding.UTF8.GetBytes("not json at all"), -1);
            await handler.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromSeconds(30)).Token);
        }
        Assert.Equal(1, handler.ExitCode);
        Assert.Contains("uffd handshake", await herr);
    }
}
