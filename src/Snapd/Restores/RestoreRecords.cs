using System.Text.Json;
using System.Text.Json.Serialization;
using Snapshots.Store.Files;

namespace Snapshots.Snapd.Restores;

/// <summary>What the daemon must know to take a running VM back after it was killed: the restore and the VMM it
/// serves. Written (atomically) once the VMM has connected, removed when the restore ends.</summary>
public sealed record RestoreRecord
{
    public required string Id { get; init; }
    public required string Snapshot { get; init; }
    public string? Tenant { get; init; }
    public required string Mode { get; init; }
    public string? SocketPath { get; init; }
    public int VmmPid { get; init; }
    /// <summary>The VMM's start time (/proc/PID/stat field 22, clock ticks since boot): a pid reused by another
    /// process has another.</summary>
    public ulong VmmStartTime { get; init; }
    /// <summary>The uffd's descriptor number in the VMM (-1: unknown).</summary>
    public int VmmUffdFd { get; init; } = -1;
    public IReadOnlyList<RecordedRegion> Regions { get; init; } = [];
    /// <summary>The guest's freed pages (UFFD_EVENT_REMOVE), kept across a restart of the daemon.</summary>
    public string? RemovedPagesPath { get; init; }
    public DateTimeOffset CreatedAt { get; init; }
    public double? FaultDeadlineSeconds { get; init; }
    public uint? VmmUid { get; init; }
    public bool Record { get; init; }
    public bool Prefetch { get; init; } = true;
}

/// <summary>A guest region as the VMM's handshake gave it.</summary>
public sealed record RecordedRegion(ulong BaseHostVirtAddr, ulong Size, ulong Offset, ulong PageSize);

/// <summary>The restore records in the state directory (restores/ID.json), owner-only.</summary>
public sealed class RestoreRecords(string directory)
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public string Directory { get; } = directory;

    public string PathOf(string id) => System.IO.Path.Combine(Directory, id + ".json");

    /// <summary>Writes the record whole or not at all (temp file, fsync, rename).</summary>
    public void Write(RestoreRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        OutputFile.WriteAllBytes(PathOf(record.Id), JsonSerializer.SerializeToUtf8Bytes(record, Json), "record");
    }

    public void Remove(string id)
    {
        try
        {
            File.Delete(PathOf(id));
        }
        catch (IOException)
        {
            // Best effort: a record left behind names a VMM that has exited; the next start drops it.
        }
    }

    /// <summary>Every record, and the files that could not be read as one (named, for the log).</summary>
    public (List<RestoreRecord> Records, List<string> Unreadable) ReadAll()
    {
        var records = new List<RestoreRecord>();
        var bad = new List<string>();
        if (!System.IO.Directory.Exists(Directory)) return (records, bad);
        // Only a regular file, reached without a symlink and opened without blocking (a FIFO would hang the start
        // for good), of at most 1 MiB, checked on the open descriptor.
        using var dir = new SafeDirectory(Directory);
        foreach (var file in System.IO.Directory.EnumerateFiles(Directory, "*.json"))
        {
            try
            {
                var bytes = dir.ReadAll(System.IO.Path.GetFileName(file), 1 << 20);
                var r = bytes is null ? null : JsonSerializer.Deserialize<RestoreRecord>(bytes, Json);
                if (r is null || r.Id + ".json" != System.IO.Path.GetFileName(file) || r.Snapshot is null
                    || r.Regions is null || r.Regions.Any(g => g is null)) bad.Add(file);
                else records.Add(r);
            }
            catch (Exception ex) when (ex is JsonException or IOException or UnauthorizedAccessException
                or Store.HostileFileException)
            {
                bad.Add(file);
            }
        }
        return (records, bad);
    }
}
