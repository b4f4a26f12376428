using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Snapshots.Snapbench.Services;

/// <summary>
/// An HTTP fault proxy on 127.0.0.1 in front of the origin (s3rver): every request is forwarded on a connection of
/// its own to the upstream port, unless a fault says otherwise. Faults change at run time: <see cref="Delay"/> (each
/// request waits before it is forwarded: a far or congested origin), <see cref="FailRate"/> (that share of requests
/// answered 503 SlowDown by the proxy itself, as S3 does under load), and <see cref="Refuse"/> (the port closed and
/// every open connection reset: connection refused until <see cref="Listen"/>). Delays cost no CPU.
/// </summary>
public sealed class FaultProxy : IAsyncDisposable
{
    private const string SlowDownBody = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
        + "<Error><Code>SlowDown</Code><Message>fault proxy</Message></Error>";

    private static readonly byte[] SlowDown = Encoding.ASCII.GetBytes(
        "HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\n"
        + $"Content-Length: {SlowDownBody.Length}\r\n\r\n{SlowDownBody}");

    private readonly int _upstream;
    private readonly Lock _lock = new();
    private readonly HashSet<TcpClient> _open = [];
    private readonly Random _random;
    private TcpListener? _listener;
    private CancellationTokenSource _stop = new();
    private long _requests, _failed;

    public FaultProxy(int port, int upstream, int seed)
    {
        Port = port;
        _upstream = upstream;
        _random = new Random(seed);
        Listen();
    }

    public int Port { get; }

    /// <summary>Added before each request is forwarded (zero: none).</summary>
    public TimeSpan Delay { get; set; }

    /// <summary>Share of requests (0..1) the proxy answers 503 SlowDown without forwarding.</summary>
    public double FailRate { get; set; }

    public long Requests => Interlocked.Read(ref _requests);
    public long Failed => Interlocked.Read(ref _failed);

    /// <summary>Opens the port (again): connections are accepted and forwarded.</summary>
    public void Listen()
    {
        lock (_lock)
        {
            if (_listener is not null) return;
            var l = new TcpListener(IPAddress.Loopback, Port);
            l.Server.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            try
            {
                l.Start();
            }
            catch (SocketException ex)
            {
                l.Dispose();
                throw new InvalidOperationException(
                    $"fault proxy: port {Port} is taken ({ex.SocketErrorCode}): SNAPBENCH_PORT_OFFSET moves it", ex);
            }
            _listener = l;
            _stop = new CancellationTokenSource();
            _ = AcceptAsync(l, _stop.Token);
        }
    }

    /// <summary>Closes the port and resets every open connection: the origin refuses connections.</summary>
    public void Refuse()
    {
        lock (_lock)
        {
            _stop.Cancel();
            _listener?.Stop();
            _listener = null;
            foreach (var c in _open)
            {
                c.Client.LingerState = new LingerOption(true, 0); // RST, as a dead host's kernel would
                c.Dispose();
            }
            _open.Clear();
        }
    }

    private async Task AcceptAsync(TcpListener listener, CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await listener.AcceptTcpClientAsync(ct);
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }
            lock (_lock) _open.Add(client);
            _ = ServeAsync(client, ct);
        }
    }

    /// <summary>One client connection: request by request, each forwarded (or failed), its response relayed.</summary>
    private async Task ServeAsync(TcpClient client, CancellationToken ct)
    {
        TcpClient? up = null;
        try
        {
            client.NoDelay = true;
            var from = new HttpFraming(client.GetStream());
            HttpFraming? back = null;
            while (await from.ReadHeadAsync(ct) is { } head)
            {
                string text = Encoding.ASCII.GetString(head);
                long length = long.TryParse(HttpFraming.Header(text, "Content-Length"), out var n) ? n : 0;
                Interlocked.Increment(ref _requests);
                if (Delay > TimeSpan.Zero) await Task.Delay(Delay, ct);
                bool fail;
                lock (_random) fail = _random.NextDouble() < FailRate;
                if (fail)
                {
                    await from.CopyAsync(length, Stream.Null, ct);
                    Interlocked.Increment(ref _failed);
                    await client.GetStream().WriteAsync(SlowDown, ct);
                    continue;
                }
                var body = new MemoryStream();
                await from.CopyAsync(length, body, ct);
                // An upstream connection idle too long is closed by the server (Node's keep-alive timeout): a
                // request that got no answer byte on it is sent again once on a new connection, as a client would.
                for (int attempt = 0; ; attempt++)
                {
                    if (up is null)
                    {
                        up = new TcpClient { NoDelay = true };
                        await up.ConnectAsync(IPAddress.Loopback, _upstream, ct);
                        lock (_lock) _open.Add(up);
                        back = new HttpFraming(up.GetStream());
                    }
                    byte[]? answer = null;
                    try
                    {
                        await up.GetStream().WriteAsync(head, ct);
                        await up.GetStream().WriteAsync(body.GetBuffer().AsMemory(0, (int)body.Length), ct);
                        answer = await back!.ReadHeadAsync(ct);
                    }
                    catch (IOException) when (attempt == 0)
                    {
                        // Reset by the server while idle: as a clean close.
                    }
                    if (answer is null)
                    {
                        lock (_lock) _open.Remove(up);
                        up.Dispose();
                        up = null;
                        if (attempt == 0) continue;
                        throw new IOException("upstream closed before answering");
                    }
                    bool isHead = text.StartsWith("HEAD ", StringComparison.Ordinal);
                    if (!await RelayResponseAsync(answer, back!, client.GetStream(), isHead, ct)) return;
                    break;
                }
            }
        }
        catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException
            or ObjectDisposedException or FormatException)
        {
            // The client or the upstream went away, or Refuse reset the connection.
        }
        finally
        {
            lock (_lock)
            {
                _open.Remove(client);
                if (up is not null) _open.Remove(up);
            }
            client.Dispose();
            up?.Dispose();
        }
    }

    /// <summary>Relays one response; false when the connection ends with it.</summary>
    private static async Task<bool> RelayResponseAsync(byte[] h, HttpFraming back, Stream to, bool head,
        CancellationToken ct)
    {
        await to.WriteAsync(h, ct);
        string text = Encoding.ASCII.GetString(h);
        int status = int.Parse(text.AsSpan(9, 3), provider: System.Globalization.CultureInfo.InvariantCulture);
        bool close = HttpFraming.Header(text, "Connection")?.Equals("close", StringComparison.OrdinalIgnoreCase)
            ?? false;
        if (head || status is 204 or 304 || status < 200) return !close;
        if (HttpFraming.Header(text, "Transfer-Encoding")?.Contains("chunked", StringComparison.OrdinalIgnoreCase)
            ?? false)
            await back.CopyChunkedAsync(to, ct);
        else if (long.TryParse(HttpFraming.Header(text, "Content-Length"), out var n))
            await back.CopyAsync(n, to, ct);
        else
        {
            await back.CopyToEndAsync(to, ct);
            return false;
        }
        return !close;
    }

    public ValueTask DisposeAsync()
    {
        Refuse();
        return ValueTask.CompletedTask;
    }
}
