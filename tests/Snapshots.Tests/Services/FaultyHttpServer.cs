using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Snapshots.Tests.Services;

/// <summary>A loopback HTTP endpoint that misbehaves on purpose: it answers every request with an S3-style
/// 500 error, or accepts connections and never answers.</summary>
public sealed class FaultyHttpServer : IDisposable
{
    public enum Mode { Error500, Silent }

    private readonly TcpListener _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<TcpClient> _held = [];
    private int _requests;

    public FaultyHttpServer(int port, Mode mode)
    {
        _listener = new TcpListener(IPAddress.Loopback, port);
        _listener.Start();
        _ = AcceptAsync(mode);
    }

    public int Requests => Volatile.Read(ref _requests);

    private async Task AcceptAsync(Mode mode)
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try { client = await _listener.AcceptTcpClientAsync(_stop.Token); }
            catch (Exception) { return; }
            if (mode == Mode.Silent) { lock (_held) _held.Add(client); Interlocked.Increment(ref _requests); continue; }
            _ = AnswerAsync(client);
        }
    }

    private async Task AnswerAsync(TcpClient client)
    {
        using var _ = client;
        var stream = client.GetStream();
        var buffer = new byte[64 * 1024];
        try
        {
            while (true)
            {
                // Read one request's headers (and ignore any body), then answer 500.
                var seen = new StringBuilder();
                while (!seen.ToString().Contains("\r\n\r\n"))
                {
                    int n = await stream.ReadAsync(buffer, _stop.Token);
                    if (n == 0) return;
                    seen.Append(Encoding.ASCII.GetString(buffer, 0, n));
                }
                Interlocked.Increment(ref _requests);
                var body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
                    + "<Error><Code>InternalError</Code><Message>planted failure</Message></Error>";
                var head = "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/xml\r\n"
                    + $"Content-Length: {body.Length}\r\nConnection: close\r\n\r\n";
                await stream.WriteAsync(Encoding.ASCII.GetBytes(head + body), _stop.Token);
                return;
            }
        }
        catch (Exception) { }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
        lock (_held) foreach (var c in _held) c.Dispose();
    }
}
