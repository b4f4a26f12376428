using System.CommandLine;
using Snapshots.ChunkFs.Memory;
using Snapshots.ChunkFs.Uffd;
using Snapshots.Prefetch;
using Snapshots.Store;
using Snapshots.Store.Keys;
using Snapshots.Store.Layers;

namespace Snapshots.Snapctl.Commands;

/// <summary>`snapctl restore`: one userfaultfd handler in the foreground, serving one VMM until it exits.</summary>
public static class RestoreCommand
{
    public static Command Create()
    {
        var store = CommonOptions.Store();
        var keyring = CommonOptions.Keyring();
        var name = CommonOptions.Name();
        var tenant = CommonOptions.Tenant();
        var socket = new Option<string>("--uffd-socket")
        {
            Description = "Unix socket the VMM connects to (Firecracker's mem_backend backend_path)", Required = true,
        };
        var cacheDir = CommonOptions.CacheDir();
        var cacheSize = CommonOptions.CacheSize();
        var distributed = CommonOptions.Distributed();
        var tierDeadline = CommonOptions.Deadline();
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
            Description = "Decrypted chunks kept in memory", DefaultValueFactory = _ => "2G",
        };
        var deadline = new Option<double>("--fault-deadline")
        {
            Description = "Seconds a fault may wait for its chunk before the VM is failed",
            DefaultValueFactory = _ => 10,
        };
        var concurrency = new Option<int>("--prefetch-concurrency")
        {
            Description = "Chunk fetches in flight for prefetch", DefaultValueFactory = _ => 2,
        };
        var bandwidth = new Option<string?>("--prefetch-bandwidth")
        {
            Description = "Prefetch bandwidth cap per second (e.g. 200M); none by default",
        };
        var faultAround = new Option<int>("--fault-around")
        {
            Description = "Pages a demand fault installs: the faulting page and those after it in its chunk",
            DefaultValueFactory = _ => 4,
        };
        var preload = new Option<bool>("--preload")
        {
            Description = "Load every chunk into memory before the VMM connects (measures the handler alone)",
        };
        var acceptTimeout = new Option<double>("--accept-timeout")
        {
            Description = "Seconds to wait for the VMM to connect (0: forever)",
        };
        var cmd = new Command(
            "restore",
            "Serve a VMM's guest memory from a snapshot over userfaultfd (Firecracker's protocol) until it exits")
        {
            store, keyring, name, tenant, socket, cacheDir, cacheSize, distributed, tierDeadline, record, prefetch,
            noPrefetch, plan, budget, deadline, concurrency, bandwidth, faultAround, preload, acceptTimeout,
        };
        cmd.SetAction(async (pr, ct) =>
        {
            if (pr.GetValue(prefetch) && pr.GetValue(noPrefetch))
                throw new InvalidInputException("--prefetch and --no-prefetch exclude each other");
            var blobs = CommonOptions.OpenStore(pr.GetValue(store)!);
            var keys = new LocalKeyring(pr.GetValue(keyring)!);
            var chain = await SnapshotChain.OpenAsync(
                new SnapshotCatalog(blobs), keys, pr.GetValue(name)!, pr.GetValue(tenant), ct);
            using var reader = CommonOptions.Reader(
                blobs, pr.GetValue(cacheDir), pr.GetValue(cacheSize)!, pr.GetValue(distributed),
                pr.GetValue(tierDeadline));
            using var memory = new ResidentChunks(
                chain, reader, SizeParser.Parse(pr.GetValue(budget)!, "--memory-budget"));

            PrefetchPlan? chosen = null;
            if (!pr.GetValue(noPrefetch))
            {
                if (pr.GetValue(plan) is { } planPath) chosen = PrefetchPlan.Load(planPath);
                else
                {
                    var (attached, why) = await new PlanStore(blobs).TryLoadAsync(chain.Name, chain.Top.Hash, ct);
                    chosen = attached;
                    if (attached is null && pr.GetValue(prefetch))
                        Console.Error.WriteLine($"snapctl: warning: {why}; serving on demand");
                }
                if (chosen is not null && chosen.ImageSize != chain.ImageSize)
                    throw new InvalidInputException($"the prefetch plan is for a {chosen.ImageSize}-byte image; "
                        + $"'{chain.Name}' is {chain.ImageSize} bytes");
            }

            // A demand fetch runs on the thread pool beside the prefetch workers: with only as many pool threads as
            // cores it can wait in the queue behind them (the pool adds threads only slowly), stalling a vCPU.
            ThreadPool.GetMinThreads(out int workers, out int io);
            ThreadPool.SetMinThreads(Math.Max(workers, 4 * Environment.ProcessorCount + pr.GetValue(concurrency)), io);
            if (pr.GetValue(preload)) await memory.PreloadAsync(Environment.ProcessorCount, ct);
            // Before the VMM may connect, fetch one chunk: the whole read path (tiers, verification, decryption) is
            // then compiled and warm, and a VM's first fault does not pay tens of milliseconds for it.
            // Best effort and bounded: a tier that fails here fails the VM later, at a fault, with its reason.
            int firstData = Array.FindIndex(chain.Chunks, c => !c.IsZero);
            if (firstData >= 0) await WarmUpAsync(memory.LoadAsync(firstData, ct));
            // The working-set pack: the plan's pages back to back, so prefetch reads ~pages/128 chunks.
            ResidentChunks? pack = null;
            if (chosen?.PackName is { } packName)
            {
                var packChain = await SnapshotChain.OpenAsync(
                    new SnapshotCatalog(blobs), keys, packName, pr.GetValue(tenant), ct);
                if (packChain.Top.Hash.AsSpan().SequenceEqual(chosen.PackHash))
                    pack = new ResidentChunks(
                        packChain, reader, SizeParser.Parse(pr.GetValue(budget)!, "--memory-budget"));
                else
                    Console.Error.WriteLine($"snapctl: warning: working-set pack '{packName}' is not the one the "
                        + "plan was made with; prefetching snapshot chunks");
            }
            using var packMemory = pack;
            // The plan's first pages.
            if (pack is not null && !pack.IsZeroChunk(0)) await WarmUpAsync(pack.LoadAsync(0, ct));
            using var listener = new HandshakeListener(pr.GetValue(socket)!);
            string withPlan = chosen is null ? ""
                : $" with a {chosen.Pages.Length}-page prefetch plan"
                    + (pack is null ? "" : " and its working-set pack");
            Console.Error.WriteLine($"snapctl: serving '{chain.Name}' on {listener.Path}{withPlan}");
            using var acceptCts = CancellationTokenSource.CreateLinkedTokenSource(ct);
            if (pr.GetValue(acceptTimeout) > 0) acceptCts.CancelAfter(TimeSpan.FromSeconds(pr.GetValue(acceptTimeout)));
            UffdSession session;
            try { session = await listener.AcceptAsync(chain.ImageSize, TimeSpan.FromSeconds(5), acceptCts.Token); }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                throw new SnapshotException(
                    $"no VMM connected to {listener.Path} within {pr.GetValue(acceptTimeout)} s");
            }
            using (session)
            {
                var options = new UffdHandlerOptions
                {
                    FaultDeadline = TimeSpan.FromSeconds(pr.GetValue(deadline)),
                    Record = pr.GetValue(record) is not null,
                    Plan = chosen,
                    Pack = pack,
                    FaultAroundPages = Math.Clamp(pr.GetValue(faultAround), 1, 128),
                    Prefetch = new PrefetchOptions
                    {
                        Concurrency = pr.GetValue(concurrency),
                        BandwidthBytesPerSecond =
                            pr.GetValue(bandwidth) is { } bw ? SizeParser.Parse(bw, "--prefetch-bandwidth") : 0,
                    },
                    Log = line => Console.Error.WriteLine($"snapctl: {line}"),
                };
                var handler = new UffdHandler(session, memory, options);
                // A dedicated thread: the fault loop must not share a pool thread whose earlier work (hashing,
                // decrypting) left wide vector state for every context switch to save and restore.
                RestoreStats stats = null!;
                var thread = new Thread(() => stats = handler.Run(ct)) { Name = "uffd-handler", IsBackground = true };
                thread.Start();
                thread.Join();
                if (pr.GetValue(record) is { } logPath && handler.RecordedLog is { } log)
                    await File.WriteAllBytesAsync(logPath, log.Serialize(), ct);
                Output.WriteJson(stats with { Tiers = [.. TierReport.Of(reader)] });
                return stats.Failed ? 1 : 0;
            }
        });
        return cmd;
    }

    private static async Task WarmUpAsync(Task load)
    {
        try { await load.WaitAsync(TimeSpan.FromSeconds(2)); }
        catch (Exception ex) when (ex is SnapshotException or TimeoutException) { }
    }
}
