using System.Net.Sockets;
using Snapshots.ChunkFs.Native;
using Snapshots.Store;
using static Snapshots.ChunkFs.Native.LibC;

namespace Snapshots.ChunkFs.Uffd;

/// <summary>What a VMM handed over: its uffd, its regions and its pid (SO_PEERCRED).</summary>
public sealed class UffdSession(GuestRegion[] regions, int vmmPid) : IDisposable
{
    internal UserfaultFd Uffd { get; init; } = null!;
    public GuestRegion[] Regions { get; } = regions;
    public int VmmPid { get; } = vmmPid;
    public void Dispose() => Uffd.Dispose();
}

/// <summary>Listens on the handler's Unix socket and accepts one VMM, exactly as Firecracker connects.</summary>
public sealed class HandshakeListener : IDisposable
{
    private readonly Socket _listener;
    public string Path { get; }

    public HandshakeListener(string path)
    {
        Path = System.IO.Path.GetFullPath(path);
        if (File.Exists(Path)) File.Delete(Path); // a stale socket from an earlier run
        _listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        _listener.Bind(new UnixDomainSocketEndPoint(Path));
        _listener.Listen(1);
    }

    /// <summary>Waits for the VMM, receives the handshake and the uffd, and validates both.</summary>
    public async Task<UffdSession> AcceptAsync(long snapshotSize, TimeSpan handshakeTimeout, CancellationToken ct)
    {
        using var conn = await _listener.AcceptAsync(ct);
        int pid = PeerPid(conn);
        var (json, fd) = await ReceiveAsync(conn, handshakeTimeout, ct);
        var uffd = fd >= 0 ? new UserfaultFd(fd) : null;
        try
        {
            if (uffd is null)
                throw new InvalidInputException("uffd handshake: no file descriptor attached (SCM_RIGHTS)");
            var regions = FirecrackerHandshake.Parse(json, snapshotSize);
            CheckIsUserfaultFd(uffd);
            return new UffdSession(regions, pid) { Uffd = uffd };
        }
        catch
        {
            uffd?.Dispose();
            throw;
        }
    }

    private static int PeerPid(Socket conn)
    {
        Span<byte> cred = stackalloc byte[12];
        conn.GetRawSocketOption(SOL_SOCKET, SO_PEERCRED, cred);
        return System.Runtime.InteropServices.MemoryMarshal.Read<UCred>(cred).Pid;
    }

    /// <summary>Reads the message (the fd arrives with its first byte) until the JSON is complete or the peer
    /// stops sending, within the timeout and the size limit.</summary>
    private static async Task<(byte[] Json, int Fd)> ReceiveAsync(Socket conn, TimeSpan timeout, CancellationToken ct)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(timeout);
        var buffer = new byte[FirecrackerHandshake.MaxBytes + 1];
        int total = 0, fd = -1;
        while (true)
        {
            try { await conn.ReceiveAsync(Memory<byte>.Empty, SocketFlags.Peek, cts.Token); } // wait until readable
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                if (total > 0) break;
                throw new InvalidInputException($"uffd handshake: nothing received within {timeout.TotalSeconds:F0} s");
            }
            int n = RecvWithFd(conn, buffer.AsSpan(total), ref fd);
            if (n <= 0) break; // the VMM closed its end (Firecracker does, right after sending)
            total += n;
            if (total > FirecrackerHandshake.MaxBytes)
            {
                if (fd >= 0) close(fd);
                throw new InvalidInputException($"uffd handshake: over the {FirecrackerHandshake.MaxBytes}-byte limit");
            }
            if (LooksComplete(buffer.AsSpan(0, total))) break;
        }
        return (buffer.AsSpan(0, total).ToArray(), fd);
    }

    private static bool LooksComplete(ReadOnlySpan<byte> json)
    {
        var trimmed = json.TrimEnd(" \r\n\t"u8);
        if (trimmed.Length == 0 || trimmed[^1] != (byte)']') return false;
        var reader = new System.Text.Json.Utf8JsonReader(trimmed);
        try { return reader.TrySkip(); }
        catch (System.Text.Json.JsonException) { return true; } // malformed: stop reading, the parser names it
    }

    private static unsafe int RecvWithFd(Socket conn, Span<byte> into, ref int fd)
    {
        byte* control = stackalloc byte[64];
        fixed (byte* data = into)
        {
            var iov = new IoVec { Base = data, Len = (nuint)into.Length };
            var msg = new MsgHdr { Iov = &iov, IovLen = 1, Control = control, ControlLen = 64 };
            // SAFETY: iov, msg and control live on this frame; data is pinned by fixed for the call.
            nint n = recvmsg((int)conn.Handle, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
            if (n < 0) return Errno == EAGAIN ? 0 : -1;
            if (msg.ControlLen >= (nuint)sizeof(CmsgHdr))
            {
                var h = (CmsgHdr*)control;
                if (h->Level == SOL_SOCKET && h->Type == SCM_RIGHTS && h->Len >= CMSG_LEN_FD)
                {
                    int received = *(int*)(control + sizeof(CmsgHdr));
                    if (fd < 0) fd = received; else close(received); // only the first fd counts
                    for (int extra = (int)((h->Len - (nuint)sizeof(CmsgHdr)) / 4), i = 1; i < extra; i++)
                        close(*(int*)(control + sizeof(CmsgHdr) + 4 * i));
                }
            }
            return (int)n;
        }
    }

    /// <summary>A uffd answers read() with EAGAIN when idle; anything else (a file, a pipe) is refused.</summary>
    private static void CheckIsUserfaultFd(UserfaultFd uffd)
    {
        if (!File.Exists($"/proc/self/fd/{uffd.Fd}"))
            throw new InvalidInputException("uffd handshake: the attached descriptor is not open");
        var target = new FileInfo($"/proc/self/fd/{uffd.Fd}").LinkTarget ?? "";
        if (!target.Contains("userfaultfd", StringComparison.Ordinal))
            throw new InvalidInputException($"uffd handshake: the attached descriptor is not a userfaultfd ({target})");
    }

    public void Dispose()
    {
        _listener.Dispose();
        try { File.Delete(Path); } catch (IOException) { }
    }
}
