namespace Snapshots.Store.Cache;

/// <summary>
/// How a <see cref="DiskChunkCache"/> uses its disk. <see cref="BudgetBytes"/> is the ceiling; eviction runs in
/// batches, from the high watermark down to the low one, so a write rarely pays for an eviction and several users
/// of one directory (each overshooting by up to a sixteenth of the budget between rebuilds) stay under the budget.
/// Independently of the budget, the cache never writes an entry that would leave the filesystem with less free
/// space than the floor (<see cref="MinFreeBytes"/>, <see cref="MinFreeRatio"/>, the larger of the two).
/// A ratio outside its range, or a negative floor, is an <see cref="ArgumentOutOfRangeException"/> naming the
/// property; a budget under one chunk is an <see cref="InvalidInputException"/> when the cache opens.
/// </summary>
/// <param name="BudgetBytes">The most bytes of chunk files the cache holds (file lengths), at least one chunk.
/// Exceeded only when every remaining entry is protected (<see cref="DiskChunkCache.Protect"/>).</param>
public sealed record DiskCacheOptions(long BudgetBytes)
{
    private readonly double _high = 0.9, _low = 0.8, _minFreeRatio = 0.02;
    private readonly long _minFreeBytes = 64L << 20;

    /// <summary>Occupancy, as a fraction of the budget (0 &lt; ratio &lt;= 1), past which a batch of evictions
    /// starts. Default 0.9.</summary>
    public double HighWatermarkRatio { get => _high; init => _high = Ratio(value, nameof(HighWatermarkRatio)); }

    /// <summary>Occupancy, as a fraction of the budget (0 &lt; ratio &lt;= <see cref="HighWatermarkRatio"/>), a
    /// batch of evictions goes down to. Default 0.8.</summary>
    public double LowWatermarkRatio { get => _low; init => _low = Ratio(value, nameof(LowWatermarkRatio)); }

    /// <summary>Free bytes (available to the process, as statvfs reports them) the cache leaves on its filesystem:
    /// a write that would go below is treated as a full disk. Default 64 MiB.</summary>
    public long MinFreeBytes
    {
        get => _minFreeBytes;
        init => _minFreeBytes = value >= 0
            ? value
            : throw new ArgumentOutOfRangeException(nameof(MinFreeBytes), value, "must be 0 or more");
    }

    /// <summary>Free space the cache leaves, as a fraction (0..1) of the filesystem's size; the floor is the larger
    /// of this and <see cref="MinFreeBytes"/>. Default 0.02.</summary>
    public double MinFreeRatio
    {
        get => _minFreeRatio;
        init => _minFreeRatio = value is >= 0 and <= 1
            ? value
            : throw new ArgumentOutOfRangeException(nameof(MinFreeRatio), value, "must be within 0..1");
    }

    /// <summary>Hash every entry against its name when the cache opens, deleting (and counting) the corrupt ones, so
    /// they hold no budget. It reads the whole cache once (about a second per GiB on a disk reading 1 GB/s); reads
    /// verify every entry anyway, so a short-lived process may skip it. Default true.</summary>
    public bool VerifyAtOpen { get; init; } = true;

    /// <summary>The occupancy, in bytes, past which a batch of evictions starts.</summary>
    public long HighWatermarkBytes => (long)(BudgetBytes * HighWatermarkRatio);

    /// <summary>The occupancy, in bytes, a batch of evictions goes down to.</summary>
    public long LowWatermarkBytes => (long)(BudgetBytes * LowWatermarkRatio);

    /// <summary>Throws when the options cannot work together: a budget under one chunk
    /// (<see cref="InvalidInputException"/>, parameter cache-size) or a low watermark above the high one.</summary>
    internal void Validate()
    {
        if (BudgetBytes < Crypto.ConvergentCipher.MaxCiphertextSize)
            throw new InvalidInputException($"cache size {BudgetBytes} is smaller than one chunk", "cache-size");
        if (LowWatermarkRatio > HighWatermarkRatio)
        {
            throw new ArgumentOutOfRangeException(nameof(LowWatermarkRatio), LowWatermarkRatio,
                $"must not be above {nameof(HighWatermarkRatio)} ({HighWatermarkRatio})");
        }
    }

    private static double Ratio(double value, string name) => value is > 0 and <= 1
        ? value
        : throw new ArgumentOutOfRangeException(name, value, "must be above 0 and at most 1");
}
