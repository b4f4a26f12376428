using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Hosting.Systemd;

namespace Snapshots.Snapd;

/// <summary>
/// Tells the service manager (sd_notify, through $NOTIFY_SOCKET) READY=1 once the store is open, earlier VMs
/// taken back and the API listening, and STOPPING=1 when the drain starts. AddSystemd does this itself only when it
/// recognises systemd as the parent; a supervisor that sets NOTIFY_SOCKET otherwise (a container's init, the
/// tests) is told too. The library's notifier writes the datagrams.
/// </summary>
public sealed class SystemdReadiness(IHostApplicationLifetime lifetime) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (SystemdHelpers.IsSystemdService()) return Task.CompletedTask; // SystemdLifetime notifies
        var notifier = new SystemdNotifier();
        if (!notifier.IsEnabled) return Task.CompletedTask;
        lifetime.ApplicationStarted.Register(() => notifier.Notify(ServiceState.Ready));
        lifetime.ApplicationStopping.Register(() => notifier.Notify(ServiceState.Stopping));
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
