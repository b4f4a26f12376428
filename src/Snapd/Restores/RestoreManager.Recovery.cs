using Microsoft.Extensions.Logging;
using Snapshots.ChunkFs.Fuse;
using Snapshots.Store;

namespace Snapshots.Snapd.Restores;

public sealed partial class RestoreManager
{
    /// <summary>At start: the VMs an earlier daemon was serving when it died (its records) are taken back or failed
    /// loudly; what it left behind (sockets nobody listens on, dead ChunkFs mounts, unreadable records) is
    /// cleaned.</summary>
    private Task RecoverAsync(CancellationToken ct)
    {
        var (records, unreadable) = _records.ReadAll();
        foreach (var bad in unreadable)
        {
            LogUnreadableRecord(_log, bad);
            TryDelete(bad);
        }
        var kept = new HashSet<string>(StringComparer.Ordinal);
        foreach (var record in records)
        {
            ct.ThrowIfCancellationRequested();
            if (TakeBack(record)) kept.Add(record.Id);
        }
        foreach (var socket in Directory.EnumerateFiles(_settings.RestoresDirectory, "*.sock"))
        {
            if (!kept.Contains(Path.GetFileNameWithoutExtension(socket))) TryDelete(socket);
        }
        foreach (var mount in Directory.EnumerateDirectories(_settings.MountsDirectory))
        {
            try
            {
                StaleMounts.ClearDead(mount, line => LogHost(_log, line));
                Directory.Delete(mount);
            }
            catch (Exception ex) when (ex is SnapshotException or IOException)
            {
                LogStaleMount(_log, mount, ex.Message);
            }
        }
        return Task.CompletedTask;
    }

    /// <summary>Takes a VM back from its record; false when it cannot be (then it was failed, never left frozen,
    /// and its record removed).</summary>
    private bool TakeBack(RestoreRecord record)
    {
        string why = "this daemon cannot take VMs back yet";
        bool killed = record.VmmPid > 1 && VmmProcess.KillIfSame(record.VmmPid, record.VmmStartTime);
        LogTakeBackFailed(_log, record.Id, record.Snapshot, record.VmmPid, why, killed);
        _metrics.RestoresTakenBack.WithLabels("failed").Inc();
        _records.Remove(record.Id);
        return false;
    }

    /// <summary>After the drain time: the restores still serving are stopped.</summary>
    private void StopRemaining()
    {
        foreach (var r in _restores.Values) if (!r.Ended) r.Stop();
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
            // Left for the next start.
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "dropped the unreadable restore record {Path}")]
    private static partial void LogUnreadableRecord(ILogger log, string path);

    [LoggerMessage(Level = LogLevel.Warning, Message = "could not clear the stale mount {Path}: {Why}")]
    private static partial void LogStaleMount(ILogger log, string path, string why);

    [LoggerMessage(Level = LogLevel.Error,
        Message = "restore {Id} of '{Snapshot}': could not take VMM pid {Pid} back ({Why}); killed: {Killed}")]
    private static partial void LogTakeBackFailed(ILogger log, string id, string snapshot, int pid, string why,
        bool killed);
}
