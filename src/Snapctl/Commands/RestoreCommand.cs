using System.CommandLine;
using System.Globalization;
using Snapshots.ChunkFs.Uffd;
using Snapshots.Host.Restore;

namespace Snapshots.Snapctl.Commands;

/// <summary>`snapctl restore`: one userfaultfd handler in the foreground, serving one VMM until it exits.
/// Prints the restore's figures when it ends (as JSON with --json); exits 1 when the VM was failed.</summary>
public static class RestoreCommand
{
    public static Command Create()
    {
        var store = CommonOptions.Store();
        var keyring = CommonOptions.Keyring();
        var allowRollback = CommonOptions.AllowRollback();
        var name = CommonOptions.Name();
        var tenant = CommonOptions.Tenant();
        var socket = new Option<string>("--uffd-socket")
        {
            Description = "Unix socket the VMM connects to (Firecracker's mem_backend backend_path)",
            Required = true,
        };
        var tiers = new CommonOptions.Tiers();
        var record = new Option<string?>("--record")
        {
            Description = "Write the first-touch page-access log of this restore here",
        };
        var prefetch = new Option<bool>("--prefetch")
        {
            Description = "Prefetch with the snapshot's attached plan (the default when it has one)",
        };
        var noPrefetch = new Option<bool>("--no-prefetch") { Description = "Serve every page on demand" };
        var plan = new Option<string?>("--plan")
        {
            Description = "Prefetch with this plan file instead of the attached one",
        };
        var budget = new Option<string>("--memory-budget")
        {
            Description = "Decrypted chunks kept in memory",
            DefaultValueFactory = _ => "2G",
        };
        var reserve = new Option<int>("--buffer-reserve")
        {
            Description = "Chunk buffers (512 KiB each) populated ahead of loads, so a load takes no page fault "
                + "(0: none)",
            DefaultValueFactory = _ => RestoreRequest.DefaultBufferReserve,
        };
        var deadline = new Option<double>("--fault-deadline")
        {
            Description = "Seconds a fault may wait for its chunk before the VM is failed",
            DefaultValueFactory = _ => 10,
        };
        var concurrency = new Option<int>("--prefetch-concurrency")
        {
            Description = "Chunk fetches in flight for prefetch",
            DefaultValueFactory = _ => 2,
        };
        var bandwidth = new Option<string?>("--prefetch-bandwidth")
        {
            Description = "Prefetch bandwidth cap per second (e.g. 200M); none by default",
        };
        var faultAround = new Option<int>("--fault-around")
        {
            Description = "Pages a demand fault installs: the faulting page and those after it in its chunk (1-128)",
            DefaultValueFactory = _ => 4,
        };
        var preload = new Option<bool>("--preload")
        {
            Description = "Load every chunk into memory before the VMM connects (measures the handler alone)",
        };
        var acceptTimeout = new Option<double>("--accept-timeout")
        {
            Description = "Seconds to wait for the VMM to connect (0: forever)",
            DefaultValueFactory = _ => 60,
        };
        var json = CommonOptions.Json();
        var cmd = new Command("restore", "Serve a VMM's guest memory from a snapshot over userfaultfd (Firecracker's "
            + "protocol) until it exits")
        {
            store, keyring, name, tenant, socket, record, prefetch, noPrefetch, plan, budget, reserve, deadline,
            concurrency,
            bandwidth, faultAround, preload, acceptTimeout, json, allowRollback,
        };
        CommonOptions.AddAll(cmd, tiers.All);
        cmd.SetAction(async (pr, ct) =>
        {
            var faultDeadline = CommonOptions.Seconds(pr, deadline);
            if (pr.GetValue(acceptTimeout) is < 0 or double.NaN)
                throw new UsageException(
                    $"--accept-timeout {pr.GetValue(acceptTimeout)}: use 0 (forever) or a positive number of seconds");
            var mode = CommonOptions.PrefetchModeOf(pr, prefetch, noPrefetch, plan);
            var request = new RestoreRequest
            {
                Name = pr.GetValue(name)!,
                Tenant = pr.GetValue(tenant),
                SocketPath = pr.GetValue(socket)!,
                Tiers = tiers.From(pr),
                MemoryBudgetBytes = SizeParser.Parse(pr.GetValue(budget)!, "--memory-budget"),
                BufferReserve = pr.GetValue(reserve),
                Prefetch = mode,
                PlanPath = pr.GetValue(plan),
                FaultDeadline = faultDeadline,
                PrefetchConcurrency = pr.GetValue(concurrency),
                PrefetchBandwidth = pr.GetValue(bandwidth) is { } bw ? SizeParser.Parse(bw, "--prefetch-bandwidth") : 0,
                FaultAroundPages = pr.GetValue(faultAround),
                Preload = pr.GetValue(preload),
                AcceptTimeout = pr.GetValue(acceptTimeout) > 0
                    ? TimeSpan.FromSeconds(pr.GetValue(acceptTimeout))
                    : null,
                RecordPath = pr.GetValue(record),
            };
            using var host = await CommonOptions.OpenHostAsync(pr, store, ct, keyring, allowRollback);
            var stats = await host.RestoreAsync(request, ct);
            return Output.Result(stats, pr.GetValue(json), Describe, stats.Failed ? 1 : 0);
        });
        return cmd;
    }

    private static void Describe(RestoreStats s)
    {
        var f = s.FaultLatencySeconds;
        var c = CultureInfo.InvariantCulture;
        Console.WriteLine(string.Create(c, $"restore of '{s.Snapshot}' for VMM {s.VmmPid} {s.Outcome} after ")
            + string.Create(c, $"{s.Seconds:F2} s{(s.Reason is null ? "" : ": " + s.Reason)}"));
        Console.WriteLine(string.Create(c, $"  {s.Faults} faults: p50 {Output.Duration(f.P50)}, p99 ")
            + string.Create(c, $"{Output.Duration(f.P99)}, max {Output.Duration(f.Max ?? 0)}, ")
            + string.Create(c, $"{Output.Duration(s.FaultServiceSeconds)} in all, {s.ParkedFaults} parked"));
        Console.WriteLine(string.Create(c, $"  {s.PagesCopied} pages copied, {s.ZeroPages} zero, ")
            + string.Create(c, $"{s.PrefetchedPages} prefetched of {s.PlannedPages} planned; {s.ChunksLoaded} ")
            + string.Create(c, $"chunks loaded (p50 {Output.Duration(s.ChunkLoadLatencySeconds.P50)}), ")
            + string.Create(c, $"{s.ChunkEvictions} evicted"));
        if (s.Prefetch is not null) Console.WriteLine($"  prefetch: {s.Prefetch}");
        Output.PrintTiers(s.Tiers);
    }
}
