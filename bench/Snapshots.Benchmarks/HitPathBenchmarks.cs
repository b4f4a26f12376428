using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using Snapshots.ChunkFs.Memory;
using Snapshots.Store.Chunks;
using Snapshots.Store.Images;
using Snapshots.Store.Keys;
using Snapshots.Store.Layers;
using Snapshots.Store.Manifests;
using Snapshots.Store.Origin;

namespace Snapshots.Benchmarks;

/// <summary>
/// The fault path's hit (chunk resident): TryPin then Unpin, alone and attached to a <see cref="HostMemory"/>. The
/// host only changes loads and evictions, so both rows should be equal (two interlocked operations, no
/// allocation). A 16 MiB snapshot is built in a temporary store and preloaded; each operation pins and unpins one
/// of its data chunks, cycling through all of them.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(HitPathConfig))]
public class HitPathBenchmarks : IDisposable
{
    private const int Ops = 1024;
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "snapshots-bench", Guid.NewGuid().ToString("N"));
    private FileBlobStore? _blobs;
    private ChunkReader? _reader;
    private HostMemory? _host;
    private MemoryLease? _lease;
    private ResidentChunks _memory = null!;
    private int[] _data = [];

    /// <summary>Attached to a host memory (a daemon's restore) or alone (snapctl's).</summary>
    [Params(false, true)]
    public bool Attached { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        Directory.CreateDirectory(_dir);
        _blobs = new FileBlobStore(Path.Combine(_dir, "store"), create: true);
        var keys = new LocalKeyring(Path.Combine(_dir, "keyring"));
        var image = Path.Combine(_dir, "os.img");
        VmImageGenerator.Write(new VmImageSpec { Size = 16L << 20 }, image);
        new LayerBuilder(_blobs, keys).BuildAsync(new BuildRequest
        {
            Name = "os", MemoryPath = image, Layer = LayerKind.Os,
        }).GetAwaiter().GetResult();
        var chain = SnapshotChain.OpenAsync(new SnapshotCatalog(_blobs), keys, "os", null).GetAwaiter().GetResult();
        _reader = new ChunkReader(new OriginChunkStore(_blobs));
        if (Attached)
        {
            _host = new HostMemory(1L << 30, reserve: 0);
            _lease = _host.Lease(chain, null, _reader);
            _memory = _lease.Memory;
        }
        else
        {
            _memory = new ResidentChunks(chain, _reader, 1L << 30, reserve: 0);
        }
        _memory.PreloadAsync(2, CancellationToken.None).GetAwaiter().GetResult();
        _data = [.. Enumerable.Range(0, _memory.ChunkCount).Where(_memory.IsResident)];
        if (_data.Length == 0) throw new InvalidOperationException("nothing resident: the benchmark would miss");
    }

    /// <summary>One fault's pin and unpin of a resident chunk (per operation).</summary>
    [Benchmark(OperationsPerInvoke = Ops)]
    public nint TryPinUnpin()
    {
        nint sum = 0;
        for (int i = 0; i < Ops; i++)
        {
            int chunk = _data[i % _data.Length];
            if (!_memory.TryPin(chunk, out var address)) throw new InvalidOperationException("a miss");
            sum += address;
            _memory.Unpin(chunk);
        }
        return sum;
    }

    [GlobalCleanup]
    public void Dispose()
    {
        if (_lease is not null) _lease.Dispose();
        else _memory?.Dispose();
        _host?.Dispose();
        _reader?.Dispose();
        _blobs?.Dispose();
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
        GC.SuppressFinalize(this);
    }

    /// <summary>ShortRun without the chunk-throughput column (an operation here is a pin, not a chunk).</summary>
    private sealed class HitPathConfig : ManualConfig
    {
        public HitPathConfig() => AddJob(Job.ShortRun);
    }
}
