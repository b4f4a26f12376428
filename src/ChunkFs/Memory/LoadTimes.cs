using Snapshots.Store.Chunks;

namespace Snapshots.ChunkFs.Memory;

/// <summary>Chunk load times in microseconds (<see cref="ResidentChunks.Times"/>).</summary>
public readonly record struct LoadTimes(double LoadP50Us, double LoadP99Us, double DecryptP50Us, double DecryptP99Us)
{
    /// <summary>The load times in seconds, as the JSON reports them (docs/cli.md).</summary>
    public Percentiles Load => new(Percentiles.FromMicroseconds(LoadP50Us), Percentiles.FromMicroseconds(LoadP99Us));

    public Percentiles Decrypt =>
        new(Percentiles.FromMicroseconds(DecryptP50Us), Percentiles.FromMicroseconds(DecryptP99Us));
}
