using System.Net.Sockets;
using Snapshots.ChunkFs.Native;
using Snapshots.Store;
using Snapshots.Store.Files;
using static Snapshots.ChunkFs.Native.LibC;

namespace Snapshots.ChunkFs.Uffd;

/// <summary>A VMM connected and handed over its uffd, but its handshake was refused (regions that do not fit the
/// snapshot, unsupported page size). It was killed: nobody would have served its memory.</summary>
public sealed class VmmRefusedException(string message, int vmmPid) : SnapshotException(message)
{
    public override string Kind => "vmm-refused";
    public int VmmPid { get; } = vmmPid;
}

/// <summary>
/// Listens on the handler's Unix socket and accepts one VMM, exactly as Firecracker connects. The socket is
/// owner-only whatever the umask, and only peers of the allowed uid (by default this process's) may hand over a
/// VMM; a connection that is not a VMM (another uid, no descriptor, not a uffd, nothing sent) is refused with a
/// warning and the wait goes on.
/// </summary>
public sealed class HandshakeListener : IDisposable
{
    private readonly Socket _listener;
    private readonly Action<string> _log;
    private readonly uint _allowedUid;
    public string Path { get; }

    /// <summary>Binds <paramref name="path"/>. Refuses, naming the "uffd-socket" input, when its directory is
    /// missing, when something other than a socket is there (never removed), or when a live handler answers on
    /// it; replaces a stale socket nobody listens on.</summary>
    public HandshakeListener(string path, Action<string>? log = null, uint? allowedUid = null)
    {
        Path = System.IO.Path.GetFullPath(path);
        _log = log ?? (_ => { });
        _allowedUid = allowedUid ?? geteuid();
        // sockaddr_un holds 108 bytes with the terminating NUL.
        if (System.Text.Encoding.UTF8.GetByteCount(Path) > 107)
            throw new InvalidInputException(
                $"socket path {Path} is over the 107-byte limit of Unix sockets", "uffd-socket");
        var dir = System.IO.Path.GetDirectoryName(Path)!;
        if (!Directory.Exists(dir))
            throw new InvalidInputException($"socket directory {dir} does not exist", "uffd-socket");
        RemoveStaleSocket(Path);
        _listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            _listener.Bind(new UnixDomainSocketEndPoint(Path));
            // Owner-only at once; the peer uid check below also covers the moment before this chmod.
            File.SetUnixFileMode(Path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            // A VMM of another uid (a jailed Firecracker) must be able to connect: the socket becomes its own.
            if (_allowedUid != geteuid() && chown(Path, _allowedUid, uint.MaxValue) != 0)
            {
                throw new InvalidInputException(
                    $"socket {Path} could not be given to uid {_allowedUid} (errno {Errno})", "uffd-socket");
            }
            _listener.Listen(8);
        }
        catch
        {
            _listener.Dispose();
            throw;
        }
    }

    /// <summary>Makes way for a listener at <paramref name="path"/>: removes a socket nobody listens on (left by a
    /// process that died); refuses, naming <paramref name="parameter"/>, anything else there (never removed) and a
    /// socket someone answers on.</summary>
    public static void RemoveStaleSocket(string path, string parameter = "uffd-socket")
    {
        var kind = FileKinds.Of(path, followLinks: false);
        if (kind == FileKind.Missing) return;
        if (kind != FileKind.Socket)
        {
            throw new InvalidInputException(
                $"{path} exists and is {FileKinds.Describe(kind)}, not a socket; it is left alone",
                parameter);
        }
        using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            probe.Connect(new UnixDomainSocketEndPoint(path));
        }
        catch (SocketException ex) when (ex.SocketErrorCode == SocketError.ConnectionRefused)
        {
            File.Delete(path); // a stale socket from an earlier run: nobody listens on it
            return;
        }
        throw new InvalidInputException($"something is already listening on {path}", parameter);
    }

    /// <summary>Waits for the VMM, receives the handshake and the uffd, and validates both. Connections that are
    /// not a VMM are refused (logged) and the wait goes on; a VMM whose handshake is refused is killed and
    /// <see cref="VmmRefusedException"/> thrown.</summary>
    public async Task<UffdSession> AcceptAsync(long snapshotSize, TimeSpan handshakeTimeout, CancellationToken ct)
    {
        while (true)
        {
            using var conn = await _listener.AcceptAsync(ct);
            var peer = PeerCred(conn);
            if ((uint)peer.Uid != _allowedUid)
            {
                Refused(peer, $"uid {peer.Uid} may not hand over a VMM (only uid {_allowedUid})");
                continue;
            }
            byte[] json;
            int fd;
            try
            {
                (json, fd) = await ReceiveAsync(conn, handshakeTimeout, ct);
            }
            catch (InvalidInputException ex)
            {
                Refused(peer, ex.Message);
                continue;
            }
            if (fd < 0)
            {
                Refused(peer, "uffd handshake: no file descriptor attached (SCM_RIGHTS)");
                continue;
            }
            var uffd = new UserfaultFd(fd);
            if (WhyNotUserfaultFd(uffd) is { } why)
            {
                uffd.Dispose();
                Refused(peer, why);
                continue;
            }
            try
            {
                var regions = FirecrackerHandshake.Parse(json, snapshotSize);
                // Where the VMM keeps its own copy, and when it started: what a handler restarted after this one
                // dies needs to take the uffd back from the VMM (UffdSession.TakeBack).
                return new UffdSession(regions, peer.Pid)
                {
                    Uffd = uffd,
                    VmmUffdFd = VmmProcess.FindSameFile(peer.Pid, uffd.Fd, UffdLinkTarget),
                    VmmStartTime = VmmProcess.StartTime(peer.Pid) ?? 0,
                };
            }
            catch (InvalidInputException ex)
            {
                uffd.Dispose();
                // The VMM handed over its memory and waits for pages nobody will serve: fail it loudly.
                bool killed = UffdSession.Kill(peer.Pid);
                throw new VmmRefusedException(
                    $"refused the VMM (pid {peer.Pid}): {ex.Message}"
                        + (killed ? "; it was killed, since nobody would serve its memory" : ""), peer.Pid);
            }
        }
    }

    private void Refused(UCred peer, string why) =>
        _log($"warning: refused a connection from pid {peer.Pid}: {why}; still waiting for the VMM");

    private static UCred PeerCred(Socket conn)
    {
        Span<byte> cred = stackalloc byte[12];
        conn.GetRawSocketOption(SOL_SOCKET, SO_PEERCRED, cred);
        return System.Runtime.InteropServices.MemoryMarshal.Read<UCred>(cred);
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

    /// <summary>What /proc/PID/fd/N links to for a userfaultfd.</summary>
    internal const string UffdLinkTarget = "anon_inode:[userfaultfd]";

    /// <summary>Why the descriptor is not a userfaultfd (a file, a pipe), or null when it is one.</summary>
    private static string? WhyNotUserfaultFd(UserfaultFd uffd)
    {
        var target = VmmProcess.FdTarget(Environment.ProcessId, uffd.Fd);
        if (target is null) return "uffd handshake: the attached descriptor is not open";
        return target == UffdLinkTarget
            ? null
            : $"uffd handshake: the attached descriptor is not a userfaultfd ({target})";
    }

    public void Dispose()
    {
        _listener.Dispose();
        try
        {
            File.Delete(Path);
        }
        catch (IOException)
        {
            // Best effort: the next listener replaces a stale socket.
        }
    }
}
