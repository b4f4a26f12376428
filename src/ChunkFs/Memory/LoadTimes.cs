namespace Snapshots.ChunkFs.Memory;

/// <summary>Chunk load times in microseconds (<see cref="ResidentChunks.Times"/>).</summary>
public readonly record struct LoadTimes(double LoadP50Us, double LoadP99Us, double DecryptP50Us, double DecryptP99Us);
