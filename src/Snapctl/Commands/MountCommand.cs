using System.CommandLine;
using System.Globalization;
using Snapshots.Host.Mount;

namespace Snapshots.Snapctl.Commands;

/// <summary>`snapctl mount`: snapshots as read-only files of a FUSE mount (ChunkFs), served lazily through the
/// tiers, until SIGTERM/SIGINT or an unmount. Prints what it served when it ends (as JSON with --json).</summary>
public static partial class MountCommand
{
    public static Command Create()
    {
        var store = CommonOptions.Store();
        var keyring = CommonOptions.Keyring();
        var allowRollback = CommonOptions.AllowRollback();
        var names = new Option<string[]>("--name", "-n")
        {
            Description = "Snapshot to expose as DIR/NAME (repeat for several)",
            Required = true,
            AllowMultipleArgumentsPerToken = false,
        };
        var tenant = CommonOptions.Tenant();
        var mountPoint = new Option<string>("--mountpoint")
        {
            Description = "Existing directory to mount on (a dead ChunkFs mount left there by a crash is cleared)",
            Required = true,
        };
        var tiers = new CommonOptions.Tiers();
        var record = new Option<string?>("--record")
        {
            Description = "Write the pages each file's reads covered, in first-read order, here on exit (with "
                + "several names: RECORD.NAME); sets --read-ahead 0 unless given",
        };
        var prefetch = new Option<bool>("--prefetch")
        {
            Description = "Push each snapshot's attached plan into the page cache from the mount on (the default "
                + "when it has one)",
        };
        var noPrefetch = new Option<bool>("--no-prefetch") { Description = "Serve every read on demand" };
        var plan = new Option<string?>("--plan") { Description = "Prefetch with this plan file (one name only)" };
        var readAhead = new Option<string?>("--read-ahead")
        {
            Description = "The kernel's read-ahead per file (e.g. 128K; 0: only what is read); default 128K, or 0 "
                + "when recording",
        };
        var budget = new Option<string>("--memory-budget")
        {
            Description = "Decrypted chunks kept in memory, per snapshot",
            DefaultValueFactory = _ => "2G",
        };
        var deadline = new Option<double>("--read-deadline")
        {
            Description = "Seconds a read may wait for its chunk before it fails with EIO",
            DefaultValueFactory = _ => 10,
        };
        var threads = new Option<int>("--threads")
        {
            Description = "Threads reading FUSE requests",
            DefaultValueFactory = _ => 4,
        };
        var owner = new Option<string?>("--owner")
        {
            Description = "UID[:GID] owning the files (the VMM's user); default: the mounting user",
        };
        var json = CommonOptions.Json();
        var cmd = new Command("mount", "Expose snapshots as files of a FUSE mount (ChunkFs), read lazily through "
            + "the tiers, until SIGTERM or an unmount")
        {
            store, keyring, names, tenant, mountPoint, record, prefetch, noPrefetch, plan, readAhead, budget,
            deadline, threads, owner, json, allowRollback,
        };
        CommonOptions.AddAll(cmd, tiers.All);
        cmd.SetAction(async (pr, ct) =>
        {
            var mode = CommonOptions.PrefetchModeOf(pr, prefetch, noPrefetch, plan);
            var (uid, gid) = ParseOwner(pr.GetValue(owner));
            var nameList = pr.GetValue(names)!;
            // Mistakes in the command line are said before any snapshot is opened, as usage errors.
            if (pr.GetValue(threads) is < 1 or > 64)
                throw new UsageException($"--threads {pr.GetValue(threads)}: use 1-64");
            if (nameList.GroupBy(n => n, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1) is { } twice)
                throw new UsageException($"--name {twice.Key} is given twice");
            if (pr.GetValue(plan) is not null && nameList.Length != 1)
                throw new UsageException("--plan is for one snapshot: give one --name with it");
            var request = new MountRequest
            {
                MountPoint = pr.GetValue(mountPoint)!,
                Names = nameList,
                Tenant = pr.GetValue(tenant),
                Tiers = tiers.From(pr),
                MemoryBudgetBytes = SizeParser.Parse(pr.GetValue(budget)!, "--memory-budget"),
                Prefetch = mode,
                PlanPath = pr.GetValue(plan),
                ReadAheadBytes = pr.GetValue(readAhead) is { } ra ? ReadAhead(ra) : null,
                ReadDeadline = CommonOptions.Seconds(pr, deadline),
                Threads = pr.GetValue(threads),
                OwnerUid = uid,
                OwnerGid = gid,
                RecordPath = pr.GetValue(record),
            };
            using var host = await CommonOptions.OpenHostAsync(pr, store, ct, keyring, allowRollback);
            var stats = await host.MountAsync(request, ct);
            return Output.Result(stats, pr.GetValue(json), Describe);
        });
        return cmd;
    }

    private static void Describe(MountStats s)
    {
        var c = CultureInfo.InvariantCulture;
        Console.WriteLine(string.Create(c, $"unmounted {s.MountPoint} after {s.Seconds:F2} s (read-ahead ")
            + $"{Output.Bytes(s.ReadAheadBytes)})");
        foreach (var f in s.Files)
        {
            Console.WriteLine(string.Create(c, $"  {f.Name}: {f.Opens} opens, {f.Reads} reads ")
                + string.Create(c, $"({Output.Bytes(f.ReadBytes)}, p50 {Output.Duration(f.ReadLatencySeconds.P50)}, ")
                + string.Create(c, $"p99 {Output.Duration(f.ReadLatencySeconds.P99)}), {f.ReadMisses} waited for a ")
                + string.Create(c, $"chunk, {f.ReadErrors} failed; {f.PrefetchedPages} pages prefetched of ")
                + string.Create(c, $"{f.PlannedPages} planned; {f.ChunksLoaded} chunks loaded"));
        }
        Output.PrintTiers(s.Tiers);
    }

    private static int ReadAhead(string text)
    {
        // Sizes are positive elsewhere; no read-ahead is a setting here (0, 0K, 0M...).
        if (ZeroSize().IsMatch(text)) return 0;
        long bytes = SizeParser.Parse(text, "--read-ahead");
        if (bytes is < 0 or > (1 << 20) || bytes % 4096 != 0)
            throw new UsageException($"--read-ahead {text}: use a multiple of 4K from 0 to 1M");
        return (int)bytes;
    }

    private static (uint? Uid, uint? Gid) ParseOwner(string? text)
    {
        if (text is null) return (null, null);
        var parts = text.Split(':');
        if (parts.Length > 2 || !uint.TryParse(parts[0], out uint uid)
            || (parts.Length == 2 && !uint.TryParse(parts[1], out _)))
        {
            throw new UsageException($"--owner {text}: use a numeric UID or UID:GID");
        }
        uint gid = parts.Length == 2 ? uint.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture) : uid;
        // (uid_t)-1 means "no change" to the kernel: no file can be owned by it.
        if (uid == uint.MaxValue || gid == uint.MaxValue) throw new UsageException($"--owner {text}: not a valid id");
        return (uid, gid);
    }

    [System.Text.RegularExpressions.GeneratedRegex(@"^\s*0+\s*[KkMmGg]?\s*$")]
    private static partial System.Text.RegularExpressions.Regex ZeroSize();
}
