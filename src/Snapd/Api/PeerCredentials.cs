using System.Net.Sockets;
using System.Runtime.InteropServices;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http;
using Snapshots.Store.Files;

namespace Snapshots.Snapd.Api;

/// <summary>Only this process's uid (root for the system daemon) and <see cref="SnapdOptions.ApiUid"/> may call the
/// API, checked on every request by the peer's SO_PEERCRED: the socket's 0600 mode is the first guard, this the
/// second (a socket file's mode is not honoured everywhere, and it is briefly wider while it is bound).</summary>
public sealed class PeerCredentials(RequestDelegate next, SnapdSettings settings)
{
    private const int SolSocket = 1, SoPeerCred = 17;

    public async Task InvokeAsync(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var socket = context.Features.Get<IConnectionSocketFeature>()?.Socket;
        uint? uid = socket is null ? null : PeerUid(socket);
        if (uid is not { } u || (u != FileKinds.EffectiveUid && u != settings.Options.ApiUid))
        {
            context.Response.StatusCode = StatusCodes.Status403Forbidden;
            await Results.Json(new ErrorView(new ErrorBody("forbidden",
                $"uid {uid?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "unknown"} may not use "
                + "snapd's API (ApiUid allows one more)", null)), ApiEndpoints.Json, statusCode: 403)
                .ExecuteAsync(context);
            return;
        }
        await next(context);
    }

    private static uint? PeerUid(Socket socket)
    {
        if (socket.AddressFamily != AddressFamily.Unix) return null;
        Span<byte> cred = stackalloc byte[12]; // struct ucred { pid_t pid; uid_t uid; gid_t gid; }
        try
        {
            socket.GetRawSocketOption(SolSocket, SoPeerCred, cred);
        }
        catch (SocketException)
        {
            return null;
        }
        return MemoryMarshal.Read<uint>(cred[4..]);
    }
}
