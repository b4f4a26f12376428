using System.Buffers.Binary;
using Snapshots.Store.Chunks;
using Snapshots.Store.Files;

namespace Snapshots.Store.Images;

/// <summary>Writes a <see cref="VmImageSpec"/> to a file (sparse where zero). About 44 % of a runtime image is
/// data: kernel 1/8, OS heap 1/8, runtime 1/8, function 1/16 of the size.</summary>
public static class VmImageGenerator
{
    private const int Page = ChunkGeometry.PageSize;
    private const int ClusterPages = 16;

    /// <summary>Writes the image to <paramref name="path"/> whole or not at all (<see cref="OutputFile"/>): a
    /// cancelled or failed write leaves nothing behind. <paramref name="progress"/> gets the bytes of the image
    /// done so far (of <see cref="VmImageSpec.Size"/>). An <see cref="InvalidInputException"/> ("size") when the
    /// size is out of range, or when its data (<see cref="DataBytes"/>) would not fit in the free space of the
    /// target's file system: refused before a byte is written, rather than failing with ENOSPC after minutes and
    /// filling the disk other work needs.</summary>
    public static void Write(VmImageSpec spec, string path, IProgress<long>? progress = null,
        CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (spec.Size < 16 << 20 || spec.Size % ChunkGeometry.PageSize != 0 || spec.Size > ChunkGeometry.MaxImageSize)
        {
            throw new InvalidInputException(
                "image size must be at least 16 MiB, at most 1 TiB, and a whole number of 4 KiB pages", "size");
        }
        if (spec.FunctionChangePercent is < 0 or > 100 or double.NaN)
            throw new InvalidInputException(
                $"change percent {spec.FunctionChangePercent} is not 0-100", "change-percent");
        CheckFreeSpace(spec, path);
        using var file = OutputFile.Create(path, "out");
        RandomAccess.SetLength(file.Handle, spec.Size);
        var block = new byte[1 << 20];
        for (long offset = 0; offset < spec.Size; offset += block.Length)
        {
            ct.ThrowIfCancellationRequested();
            int n = (int)Math.Min(block.Length, spec.Size - offset);
            bool any = false;
            for (int p = 0; p < n / Page; p++)
                any |= FillPage(spec, (offset / Page) + p, block.AsSpan(p * Page, Page));
            if (any) RandomAccess.Write(file.Handle, block.AsSpan(0, n), offset);
            progress?.Report(offset + n);
        }
        file.Commit();
    }

    /// <summary>At most how many bytes the image's file allocates: its data regions (the layout in
    /// <see cref="SeedFor"/>), each rounded up to the 1 MiB blocks <see cref="Write"/> writes whole.</summary>
    public static long DataBytes(VmImageSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        const long Block = 1 << 20;
        long eighth = spec.Size / Page / 8 * Page;
        static long Up(long bytes) => (bytes + Block - 1) / Block * Block + Block;
        long data = Block + Up(eighth) + Up(eighth); // low 1 MiB, kernel, OS heap
        if (spec.RuntimeSeed != 0) data += Up(eighth);
        if (spec.FunctionSeed != 0) data += Up(eighth / 2);
        return Math.Min(data, spec.Size);
    }

    private static void CheckFreeSpace(VmImageSpec spec, string path)
    {
        string dir = Path.GetDirectoryName(Path.GetFullPath(path)) ?? "/";
        if (!Directory.Exists(dir)) return; // OutputFile says so, naming the option
        long free;
        try
        {
            free = new DriveInfo(dir).AvailableFreeSpace;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException)
        {
            return; // unknown: the write itself will say when the disk is full
        }
        long need = DataBytes(spec);
        if (need > free)
        {
            throw new InvalidInputException(
                $"a {spec.Size >> 20} MiB image needs up to {need >> 20} MiB of disk, but the file system of {dir} "
                    + $"has {free >> 20} MiB free", "size");
        }
    }

    /// <summary>Fills one page; false when it is all zero.</summary>
    public static bool FillPage(VmImageSpec spec, long page, Span<byte> dest)
    {
        long pages = spec.Size / Page;
        int seed = SeedFor(spec, page, pages);
        if (seed == 0) { dest.Clear(); return false; }
        FillRandom(dest, seed, page);
        return true;
    }

    private static int SeedFor(VmImageSpec spec, long page, long pages)
    {
        long eighth = pages / 8;
        int baseSeed = 0;
        // Layout: [low 1 MiB sparse][kernel: 1/8][gap][OS heap: 1/8 at 2/8][runtime: 1/8 at 4/8][function: 1/16 at 6/8]
        if (page < 256) baseSeed = page % 8 == 0 ? Mix(spec.OsSeed, 1) : 0;
        else if (page < 256 + eighth) baseSeed = Mix(spec.OsSeed, 2);
        else if (page >= 2 * eighth && page < 3 * eighth) baseSeed = Mix(spec.OsSeed, 3);
        else if (page >= 4 * eighth && page < 5 * eighth && spec.RuntimeSeed != 0)
            baseSeed = Mix(spec.RuntimeSeed, 4);
        else if (page >= 6 * eighth && page < 6 * eighth + eighth / 2 && spec.FunctionSeed != 0)
            baseSeed = Mix(spec.FunctionSeed, 5);
        if (baseSeed == 0) return 0;

        if (spec.FunctionSeed != 0 && Changed(page, Mix(spec.FunctionSeed, 6), spec.FunctionChangePercent))
            return Mix(spec.FunctionSeed, 7);
        if (spec.CloneSeed != 0 && Changed(page, Mix(spec.CloneSeed, 8), spec.CloneChangePercent))
            return Mix(spec.CloneSeed, 9);
        return baseSeed;
    }

    /// <summary>Chooses clusters of 16 pages with probability <paramref name="percent"/>.</summary>
    private static bool Changed(long page, int seed, double percent)
    {
        ulong h = SplitMix((ulong)seed * 0x9E3779B97F4A7C15UL ^ (ulong)(page / ClusterPages));
        return (h % 1_000_000) < (ulong)(percent * 10_000);
    }

    private static int Mix(int seed, int salt) =>
        seed == 0 ? 0 : (int)(SplitMix(((ulong)(uint)seed << 8) | (uint)salt) | 1);

    private static void FillRandom(Span<byte> dest, int seed, long page)
    {
        ulong state = ((ulong)(uint)seed << 32) ^ (ulong)page * 0xD1B54A32D192ED03UL;
        for (int i = 0; i < dest.Length; i += 8)
        {
            state += 0x9E3779B97F4A7C15UL;
            BinaryPrimitives.WriteUInt64LittleEndian(dest[i..], SplitMix(state));
        }
        // Real pages are often partly zero (struct padding, fresh heap): zero the upper half of some.
        if ((SplitMix(state) & 3) == 0) dest[(dest.Length / 2)..].Clear();
    }

    private static ulong SplitMix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
