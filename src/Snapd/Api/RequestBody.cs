using Microsoft.AspNetCore.Http;
using Snapshots.Store;

namespace Snapshots.Snapd.Api;

/// <summary>A request body over <see cref="SnapdOptions.MaxRequestBytes"/>: HTTP 413.</summary>
public sealed class RequestTooLargeException(int limit)
    : SnapshotException($"the request body is over the {limit}-byte limit (MaxRequestBytes)")
{
    public override string Kind => "too-large";
}

/// <summary>Reads a request body up to a limit. Over it, the rest is read and dropped (up to Kestrel's hard cap)
/// before the 413 is sent: a server that answers and closes while the client still writes makes the client see a
/// connection reset instead of the answer.</summary>
public static class RequestBody
{
    /// <summary>Kestrel's own cap: what a client may send before the connection is cut.</summary>
    public const int HardCapBytes = 16 << 20;

    public static async Task<byte[]> ReadAsync(HttpRequest request, int limit, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(request);
        var buffer = new byte[Math.Min(limit + 1, 64 * 1024)];
        using var kept = new MemoryStream();
        bool over = false;
        while (true)
        {
            int n = await request.Body.ReadAsync(buffer, ct);
            if (n == 0) break;
            if (over) continue;
            if (kept.Length + n > limit) over = true;
            else kept.Write(buffer, 0, n);
        }
        return over ? throw new RequestTooLargeException(limit) { Parameter = "body" } : kept.ToArray();
    }
}
