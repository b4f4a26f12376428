using Microsoft.Extensions.Logging;
using Snapshots.ChunkFs.Fuse;
using Snapshots.ChunkFs.Uffd;
using Snapshots.Host.Restore;
using Snapshots.Store;

namespace Snapshots.Snapd.Restores;

public sealed partial class RestoreManager
{
    /// <summary>At start: the VMs an earlier daemon was serving when it died (its records) are taken back or failed
    /// loudly; what it left behind (sockets nobody listens on, dead ChunkFs mounts, unreadable records, freed-page
    /// files of no record) is cleaned.</summary>
    private async Task RecoverAsync(CancellationToken ct)
    {
        var (records, unreadable) = _records.ReadAll();
        foreach (var bad in unreadable)
        {
            LogUnreadableRecord(_log, bad);
            TryDelete(bad);
        }
        // One handler per uffd: a second record naming the same VMM and descriptor (only a planted or copied file
        // can) is dropped, never served beside the first.
        var seen = new HashSet<(int, int)>();
        var unique = new List<RestoreRecord>(records.Count);
        foreach (var record in records)
        {
            if (seen.Add((record.VmmPid, record.VmmUffdFd))) unique.Add(record);
            else
            {
                LogUnreadableRecord(_log, _records.PathOf(record.Id));
                _records.Remove(record.Id);
            }
        }
        records = unique;
        // All at once: each VM has been waiting on its faults since the earlier daemon died.
        var takes = new Task<bool>[records.Count];
        for (int i = 0; i < takes.Length; i++) takes[i] = TakeBackAsync(records[i], ct);
        var taken = await Task.WhenAll(takes);
        var kept = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < taken.Length; i++) if (taken[i]) kept.Add(records[i].Id);
        foreach (var file in Directory.EnumerateFiles(_settings.RestoresDirectory))
        {
            string id = Path.GetFileNameWithoutExtension(file);
            if (file.EndsWith(".json", StringComparison.Ordinal)) continue;
            if (kept.Contains(id) && file.EndsWith(".removed", StringComparison.Ordinal)) continue;
            // Sockets (nobody listens: a VM taken back keeps its uffd, not its socket), freed-page files of VMs
            // gone, partial access logs.
            TryDelete(file);
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
    }

    /// <summary>Takes a VM back from its record and serves it on; false when it cannot be, and then the VM was
    /// failed (killed by pid and start time, never left frozen) or had exited, and its record is removed.</summary>
    private async Task<bool> TakeBackAsync(RestoreRecord record, CancellationToken ct)
    {
        if (record.VmmPid <= 1 || record.VmmPid == Environment.ProcessId)
        {
            // Never a VMM snapd served (init, or this daemon itself): nothing is taken from it, nothing killed.
            LogNotAVmm(_log, record.Id, record.VmmPid);
            Forget(record, "failed");
            return false;
        }
        if (VmmProcess.StartTime(record.VmmPid) is not { } started || started != record.VmmStartTime)
        {
            LogGoneWhileDown(_log, record.Id, record.Snapshot, record.VmmPid);
            Forget(record, "exited");
            return false;
        }
        UffdSession taken;
        try
        {
            var regions = new GuestRegion[record.Regions.Count];
            for (int i = 0; i < regions.Length; i++)
            {
                var r = record.Regions[i];
                regions[i] = new GuestRegion(r.BaseHostVirtAddr, r.Size, r.Offset, r.PageSize);
            }
            taken = UffdSession.TakeBack(record.VmmPid, record.VmmStartTime, record.VmmUffdFd, regions);
        }
        catch (SnapshotException ex)
        {
            return Fail(record, ex.Message);
        }
        var restore = new ManagedRestore(record.Id, new RestoreSpec
        {
            Snapshot = record.Snapshot,
            Tenant = record.Tenant,
            Mode = RestoreMode.Uffd,
            Prefetch = record.Prefetch,
            VmmUid = record.VmmUid,
            FaultDeadline = record.FaultDeadlineSeconds is { } s ? TimeSpan.FromSeconds(s) : null,
        }, record.CreatedAt);
        RestoreSession session;
        try
        {
            // Not recorded again: a log missing the pages served before the restart would mislead the plan.
            session = await RestoreSession.PrepareAsync(Host, UffdRequest(restore, record: false), ct);
        }
        catch (SnapshotException ex)
        {
            taken.Dispose();
            return Fail(record, ex.Message);
        }
        Interlocked.Increment(ref _active);
        _restores[restore.Id] = restore;
        restore.Protection = Protect(session);
        restore.StartTakenBack(session, taken, record.SocketPath, OnEnded);
        _metrics.RestoresActive.WithLabels("uffd").Inc();
        _metrics.RestoresTakenBack.WithLabels("served").Inc();
        LogTakenBack(_log, record.Id, record.Snapshot, record.VmmPid);
        return true;
    }

    private bool Fail(RestoreRecord record, string why)
    {
        bool killed = VmmProcess.KillIfSame(record.VmmPid, record.VmmStartTime);
        LogTakeBackFailed(_log, record.Id, record.Snapshot, record.VmmPid, why, killed);
        Forget(record, "failed");
        return false;
    }

    private void Forget(RestoreRecord record, string outcome)
    {
        _metrics.RestoresTakenBack.WithLabels(outcome).Inc();
        _records.Remove(record.Id);
        TryDelete(RemovedPagesPath(record.Id));
    }

    /// <summary>After the drain time: VMs still served are handed over (detached, their records kept: the next
    /// daemon takes them back), never killed; file restores are unmounted.</summary>
    private void StopRemaining()
    {
        foreach (var r in _restores.Values)
        {
            if (r.Ended) continue;
            if (!(r.Spec.Mode == RestoreMode.Uffd && r.Detach())) r.Stop();
        }
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

    [LoggerMessage(Level = LogLevel.Error,
        Message = "restore record {Id} names pid {Pid}, which is no VMM: dropped, the process left alone")]
    private static partial void LogNotAVmm(ILogger log, string id, int pid);

    [LoggerMessage(Level = LogLevel.Warning, Message = "could not clear the stale mount {Path}: {Why}")]
    private static partial void LogStaleMount(ILogger log, string path, string why);

    [LoggerMessage(Level = LogLevel.Information,
        Message = "restore {Id} of '{Snapshot}': VMM pid {Pid} exited while snapd was down")]
    private static partial void LogGoneWhileDown(ILogger log, string id, string snapshot, int pid);

    [LoggerMessage(Level = LogLevel.Warning,
        Message = "restore {Id} of '{Snapshot}': took VMM pid {Pid} back; serving it again")]
    private static partial void LogTakenBack(ILogger log, string id, string snapshot, int pid);

    [LoggerMessage(Level = LogLevel.Error,
        Message = "restore {Id} of '{Snapshot}': could not take VMM pid {Pid} back ({Why}); killed: {Killed}")]
    private static partial void LogTakeBackFailed(ILogger log, string id, string snapshot, int pid, string why,
        bool killed);
}
