using System.Text;
using Snapshots.Store.Chunks;
using Snapshots.Store.Origin;

namespace Snapshots.Store.Layers;

/// <summary>
/// A running build's claim on chunks, so a concurrent gc never deletes a chunk the build has decided to use
/// but not yet published. The builder appends a chunk's name here BEFORE it checks whether the chunk exists;
/// gc reads leases before manifests, moves candidates to trash, re-reads, and restores any newly claimed.
/// (docs/format.md, "Garbage collection".) First line: "lease v1 HOST BOOTID PID STARTTICKS NAME" (who, for people;
/// gc never judges by it: a pid means nothing in another PID namespace). Liveness is time: the builder renews the
/// lease every <see cref="Heartbeat"/> (a "#alive" line, so its modification time moves), gc treats a lease not
/// renewed for <see cref="GarbageCollector.DefaultLeaseExpiry"/> as its builder's, dead; and a builder whose last
/// renewal is older than half of that publishes nothing (<see cref="CheckHeldAsync"/>).
/// </summary>
public sealed class BuildLease : IAsyncDisposable
{
    public const string Prefix = "leases/";

    /// <summary>The largest lease gc reads: a header and one 32-byte claim per chunk of a 4 TiB build.</summary>
    public const int MaxBytes = 256 << 20;
    /// <summary>How often a running build renews its lease.</summary>
    public static readonly TimeSpan Heartbeat = TimeSpan.FromSeconds(10);

    private readonly IBlobStore _blobs;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly CancellationTokenSource _stop = new();
    private Task _heartbeats = Task.CompletedTask;
    private long _renewed = System.Diagnostics.Stopwatch.GetTimestamp();
    private bool _released;

    public string Key { get; }

    private BuildLease(IBlobStore blobs, string key) { _blobs = blobs; Key = key; }

    public static async Task<BuildLease> AcquireAsync(IBlobStore blobs, string snapshot, CancellationToken ct)
    {
        var key = $"{Prefix}{Guid.NewGuid():N}.lease";
        var lease = new BuildLease(blobs, key);
        int pid = Environment.ProcessId;
        long startTicks = ProcessIdentity.StartTicks(pid);
        var header = $"lease v1 {ProcessIdentity.Host} {ProcessIdentity.BootId} {pid} {startTicks} {snapshot}\n";
        await blobs.AppendAsync(key, Encoding.ASCII.GetBytes(header), ct);
        lease._renewed = System.Diagnostics.Stopwatch.GetTimestamp();
        lease._heartbeats = Task.Run(lease.RenewAsync, CancellationToken.None);
        return lease;
    }

    private async Task RenewAsync()
    {
        using var timer = new PeriodicTimer(Heartbeat);
        try
        {
            while (await timer.WaitForNextTickAsync(_stop.Token))
            {
                var line = Encoding.ASCII.GetBytes($"#alive {DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()}\n");
                await AppendAsync(line, _stop.Token);
            }
        }
        catch (OperationCanceledException) { }
        catch (Exception e) when (e is IOException or SnapshotException or UnauthorizedAccessException)
        {
            // A renewal that fails leaves the lease aging; CheckHeldAsync refuses to publish once it is too old.
        }
    }

    private async ValueTask AppendAsync(byte[] line, CancellationToken ct)
    {
        await _gate.WaitAsync(ct);
        try
        {
            await _blobs.AppendAsync(Key, line, ct);
            Interlocked.Exchange(ref _renewed, System.Diagnostics.Stopwatch.GetTimestamp());
        }
        finally { _gate.Release(); }
    }

    /// <summary>Before publishing: the lease must still be there and renewed within half of
    /// <paramref name="expiry"/>; otherwise a gc may have judged the build dead and reclaimed chunks it claimed,
    /// and a <see cref="SnapshotException"/> says nothing was published.</summary>
    public async ValueTask CheckHeldAsync(TimeSpan expiry, CancellationToken ct)
    {
        var age = System.Diagnostics.Stopwatch.GetElapsedTime(Interlocked.Read(ref _renewed));
        if (age > expiry / 2 || !await _blobs.ExistsAsync(Key, ct))
        {
            throw new SnapshotException($"the build's lease {Key} was not renewed for {age.TotalSeconds:0} s or was "
                + "removed: a gc may have reclaimed chunks it uses, so nothing was published; build again");
        }
    }

    /// <summary>Claims a chunk; returns once the claim is visible to gc.</summary>
    public async ValueTask ClaimAsync(ChunkName name, CancellationToken ct)
    {
        var line = new byte[ChunkName.Length * 2 + 1];
        Encoding.ASCII.GetBytes(name.ToString(), line);
        line[^1] = (byte)'\n';
        await AppendAsync(line, ct);
    }

    public async ValueTask DisposeAsync()
    {
        if (_released) return;
        _released = true;
        await _stop.CancelAsync();
        await _heartbeats;
        _stop.Dispose();
        await _blobs.DeleteAsync(Key);
    }

    /// <summary>Parses a lease: its owner and the chunks it claims (complete lines only).</summary>
    public static (LeaseOwner? Owner, List<ChunkName> Claims) Parse(ReadOnlySpan<byte> bytes)
    {
        var claims = new List<ChunkName>();
        LeaseOwner? owner = null;
        int lineNo = 0;
        while (true)
        {
            int nl = bytes.IndexOf((byte)'\n');
            if (nl < 0) break; // an incomplete last line is a claim still being written: its check comes after
            var line = Encoding.ASCII.GetString(bytes[..nl]);
            bytes = bytes[(nl + 1)..];
            if (lineNo++ == 0) { owner = LeaseOwner.Parse(line); continue; }
            if (ChunkName.TryParse(line, out var n)) claims.Add(n);
        }
        return (owner, claims);
    }
}

public sealed record LeaseOwner(string Host, string BootId, int Pid, long StartTicks, string Snapshot)
{
    public static LeaseOwner? Parse(string line)
    {
        var f = line.Split(' ');
        if (f.Length < 7 || f[0] != "lease" || f[1] != "v1") return null;
        if (!int.TryParse(f[4], out var pid) || !long.TryParse(f[5], out var start)) return null;
        return new LeaseOwner(f[2], f[3], pid, start, f[6]);
    }
}

/// <summary>Identifies a process across pid reuse: host, boot id, pid and its start time in clock ticks.</summary>
public static class ProcessIdentity
{
    public static string Host { get; } = Environment.MachineName;

    public static string BootId { get; } = ReadBootId();

    private static string ReadBootId()
    {
        try { return File.ReadAllText("/proc/sys/kernel/random/boot_id").Trim(); }
        catch (IOException) { return "unknown"; }
    }

    /// <summary>Field 22 of /proc/PID/stat; -1 when the process does not exist.</summary>
    public static long StartTicks(int pid)
    {
        string stat;
        try { stat = File.ReadAllText($"/proc/{pid}/stat"); }
        catch (IOException) { return -1; }
        catch (UnauthorizedAccessException) { return -1; }
        int close = stat.LastIndexOf(')'); // the command name may contain spaces
        var fields = stat[(close + 2)..].Split(' ');
        return fields.Length > 19 && long.TryParse(fields[19], out var t) ? t : -1;
    }
}
