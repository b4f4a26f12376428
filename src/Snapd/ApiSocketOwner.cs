using Microsoft.Extensions.Hosting;

namespace Snapshots.Snapd;

/// <summary>Once listening, the API socket (bound owner-only under umask 077) is made exactly 0600, and with
/// <see cref="SnapdOptions.ApiUid"/> set it is given to that uid, so its processes can connect; this process's uid
/// (root) connects whatever the owner. Every request's peer is still checked (<see cref="Api.PeerCredentials"/>).
/// </summary>
public sealed class ApiSocketOwner(IHostApplicationLifetime lifetime, SnapdSettings settings) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        string path = Path.GetFullPath(settings.Options.ApiSocket);
        lifetime.ApplicationStarted.Register(() =>
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            if (settings.Options.ApiUid is not { } uid) return;
            int errno = Posix.GiveTo(path, uid);
            if (errno != 0)
                throw new IOException($"the API socket {path} could not be given to uid {uid} (errno {errno})");
        });
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
