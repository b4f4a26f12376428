using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Snapshots.Store;

namespace Snapshots.Snapctl.Commands.Restores;

/// <summary>An error snapd answered: its kind and message as the API gave them (docs/api.md).</summary>
public sealed class SnapdErrorException(string kind, string message, int status) : SnapshotException(message)
{
    public override string Kind => kind;
    public int Status { get; } = status;
}

/// <summary>HTTP over snapd's Unix socket (docs/api.md). Each call returns the answer's JSON document; an error
/// answer is a <see cref="SnapdErrorException"/>, a daemon that is not there a <see cref="SnapshotException"/>
/// naming the socket.</summary>
public sealed class SnapdClient : IDisposable
{
    /// <summary>snapd's default API socket; $SNAPD_API overrides it.</summary>
    public const string DefaultSocket = "/run/snapd/api.sock";

    private readonly HttpClient _http;

    public SnapdClient(string socket)
    {
        Socket = socket;
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, ct) =>
            {
                var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await s.ConnectAsync(new UnixDomainSocketEndPoint(socket), ct);
                    return new NetworkStream(s, ownsSocket: true);
                }
                catch
                {
                    s.Dispose();
                    throw;
                }
            },
        };
        _http = new HttpClient(handler) { BaseAddress = new Uri("http://snapd/"), Timeout = TimeSpan.FromMinutes(10) };
    }

    public string Socket { get; }

    public Task<JsonElement> GetAsync(string path, CancellationToken ct) =>
        SendAsync(new HttpRequestMessage(HttpMethod.Get, path), ct);

    public Task<JsonElement> DeleteAsync(string path, CancellationToken ct) =>
        SendAsync(new HttpRequestMessage(HttpMethod.Delete, path), ct);

    public Task<JsonElement> PostAsync(string path, object? body, CancellationToken ct)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path);
        if (body is not null)
        {
            request.Content = new StringContent(JsonSerializer.Serialize(body, Output.Json), Encoding.UTF8);
            request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        }
        return SendAsync(request, ct);
    }

    private async Task<JsonElement> SendAsync(HttpRequestMessage request, CancellationToken ct)
    {
        using var _ = request;
        HttpResponseMessage response;
        try
        {
            response = await _http.SendAsync(request, ct);
        }
        catch (HttpRequestException ex)
        {
            string why = ex.InnerException?.Message ?? ex.Message;
            throw new SnapshotException($"snapd does not answer on {Socket}: {why}")
            {
                Parameter = "api",
            };
        }
        using (response)
        {
            var text = await response.Content.ReadAsStringAsync(ct);
            JsonElement doc;
            try
            {
                doc = JsonDocument.Parse(text).RootElement.Clone();
            }
            catch (JsonException)
            {
                throw new SnapshotException($"snapd answered {(int)response.StatusCode} with no JSON: {text}");
            }
            if (response.IsSuccessStatusCode) return doc;
            if (doc.TryGetProperty("error", out var e) && e.TryGetProperty("kind", out var kind)
                && e.TryGetProperty("message", out var message))
            {
                throw new SnapdErrorException(kind.GetString()!, message.GetString()!, (int)response.StatusCode);
            }
            throw new SnapshotException($"snapd answered {(int)response.StatusCode}: {text}");
        }
    }

    public void Dispose() => _http.Dispose();
}
