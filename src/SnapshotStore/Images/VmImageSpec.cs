namespace Snapshots.Store.Images;

/// <summary>
/// A synthetic guest-RAM image that behaves like the real ones for storage: mostly zero, a kernel region
/// identical in every image of the same OS, a runtime region shared by every function of that runtime, a small
/// function region, a few percent of pages changed per function (in clusters, as a process dirties its heap),
/// and a few pages changed per clone. Seeds of 0 mean "absent". Page contents depend only on (seed, page), so
/// images generated separately share their common pages byte for byte.
/// </summary>
public sealed record VmImageSpec
{
    public long Size { get; init; } = 256L << 20;
    public int OsSeed { get; init; } = 1;
    public int RuntimeSeed { get; init; }
    public int FunctionSeed { get; init; }
    /// <summary>Percent of the OS and runtime pages a function rewrites (its heap, page tables).</summary>
    public double FunctionChangePercent { get; init; } = 3;
    public int CloneSeed { get; init; }
    public double CloneChangePercent { get; init; } = 0.2;
}
