using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Snapshots.Prefetch;
using Snapshots.Store;

namespace Snapshots.Snapd.Restores;

public sealed partial class RestoreManager
{
    private readonly Channel<(string Snapshot, string? Tenant)> _merges =
        Channel.CreateUnbounded<(string, string?)>(new UnboundedChannelOptions { SingleReader = true });
    private Task _publisher = Task.CompletedTask;
    private readonly CancellationTokenSource _stopping = new();
    private long _plansPublished;

    /// <summary>Plans published from recorded restores since start.</summary>
    public long PlansPublished => Interlocked.Read(ref _plansPublished);

    private string LogsDirectory => Path.Combine(_settings.StateDirectory, "access-logs");

    private string LogsOf(string snapshot, string? tenant) =>
        Path.Combine(LogsDirectory, (tenant is null ? "_shared" : "t-" + tenant) + "--" + snapshot);

    private void StartPublisher()
    {
        SafeDirectories.CreateOwnerOnly(LogsDirectory);
        _publisher = Task.Run(() => PublishLoopAsync(_stopping.Token));
    }

    /// <summary>A recorded restore whose VM exited by itself gave a whole access log: it joins its snapshot's
    /// logs, and enough of them are merged into a new plan in the background. A failed VM's log is partial and
    /// is dropped.</summary>
    private void OnAccessLog(ManagedRestore restore)
    {
        string log = AccessLogPath(restore.Id);
        if (!File.Exists(log)) return;
        if (restore.State != RestoreState.Exited)
        {
            TryDelete(log);
            return;
        }
        string dir = LogsOf(restore.Spec.Snapshot, restore.Spec.Tenant);
        try
        {
            SafeDirectories.CreateOwnerOnly(dir);
            File.Move(log, Path.Combine(dir, restore.Id + ".log"));
        }
        catch (Exception ex) when (ex is IOException or SnapshotException)
        {
            LogPublishFailed(_log, restore.Spec.Snapshot, ex.Message);
            TryDelete(log);
            return;
        }
        _merges.Writer.TryWrite((restore.Spec.Snapshot, restore.Spec.Tenant));
    }

    private async Task PublishLoopAsync(CancellationToken ct)
    {
        try
        {
            await foreach (var (snapshot, tenant) in _merges.Reader.ReadAllAsync(ct))
            {
                try
                {
                    await PublishAsync(snapshot, tenant, ct);
                }
                catch (Exception ex) when (ex is SnapshotException or IOException)
                {
                    LogPublishFailed(_log, snapshot, ex.Message);
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // Stopping; logs not merged yet stay for the next start.
        }
    }

    /// <summary>Merges a snapshot's logs once there are <see cref="SnapdSettings.PlanMergeLogs"/>, attaches the
    /// plan (with its working-set pack) atomically, and removes the logs it merged.</summary>
    private async Task PublishAsync(string snapshot, string? tenant, CancellationToken ct)
    {
        string dir = LogsOf(snapshot, tenant);
        if (!Directory.Exists(dir)) return;
        var files = Directory.GetFiles(dir, "*.log");
        if (files.Length < _settings.PlanMergeLogs) return;
        Array.Sort(files, StringComparer.Ordinal);
        var logs = new List<AccessLog>(files.Length);
        foreach (var f in files)
        {
            try
            {
                logs.Add(AccessLog.Load(f));
            }
            catch (SnapshotException)
            {
                TryDelete(f);
            }
        }
        if (logs.Count < _settings.PlanMergeLogs) return;
        var plan = PlanMerger.Merge(logs);
        var attached = await Host.AttachPlanAsync(snapshot, tenant, plan, withPack: true, _settings.Tiers, null, ct);
        foreach (var f in files) TryDelete(f);
        Interlocked.Increment(ref _plansPublished);
        LogPublished(_log, snapshot, attached.Pages, logs.Count);
    }

    [LoggerMessage(Level = LogLevel.Information,
        Message = "published a {Pages}-page prefetch plan for '{Snapshot}' from {Logs} recorded restores")]
    private static partial void LogPublished(ILogger log, string snapshot, int pages, int logs);

    [LoggerMessage(Level = LogLevel.Warning, Message = "no plan published for '{Snapshot}': {Why}")]
    private static partial void LogPublishFailed(ILogger log, string snapshot, string why);
}
