using Snapshots.Store.Chunks;

namespace Snapshots.Prefetch;

/// <summary>One page's first touch in a restore: the page index in the memory file and the microseconds since
/// the previous first touch.</summary>
public readonly record struct PageTouch(uint Page, uint DeltaUs);

/// <summary>
/// A page-access log: the first-touch order of the pages one restore faulted on, with relative time.
/// Format v1: "SNAPPAL\0", version u16, flags u16, page size u32, image size u64, count u32, count x
/// (page u32, delta us u32), CRC-32 trailer. 8 bytes per touched page: a 24 MiB working set logs in 48 KiB.
/// </summary>
public sealed class AccessLog
{
    public const ushort Version = 1;
    public const int MaxBytes = 256 << 20;
    private static ReadOnlySpan<byte> Magic => "SNAPPAL\0"u8;

    public required long ImageSize { get; init; }
    public int PageSize { get; init; } = ChunkGeometry.PageSize;
    public required PageTouch[] Touches { get; init; }

    public long PageCount => ImageSize / PageSize;

    public byte[] Serialize()
    {
        var w = new FormatWriter(Magic, Version);
        w.U32((uint)PageSize);
        w.U64((ulong)ImageSize);
        w.U32((uint)Touches.Length);
        foreach (var t in Touches) { w.U32(t.Page); w.U32(t.DeltaUs); }
        return w.Finish();
    }

    public static AccessLog Parse(ReadOnlySpan<byte> bytes, string source)
    {
        var r = new FormatReader(bytes, $"access log {source}", Magic, Version, MaxBytes);
        var (pageSize, imageSize) = r.ImageGeometry();
        uint count = r.U32("count");
        ulong pages = imageSize / pageSize;
        if (count > pages || (long)count * 8 != r.Remaining)
            r.Fail($"{count} touches do not match the file's length or the image's {pages} pages");
        var touches = new PageTouch[count];
        var seen = new HashSet<uint>();
        for (int i = 0; i < touches.Length; i++)
        {
            uint page = r.U32("page");
            uint delta = r.U32("delta");
            if (page >= pages) r.Fail($"touch {i} is page {page}, beyond the image's {pages} pages");
            if (!seen.Add(page)) r.Fail($"page {page} is touched twice (a first-touch log lists each page once)");
            touches[i] = new PageTouch(page, delta);
        }
        r.End();
        return new AccessLog { ImageSize = (long)imageSize, PageSize = (int)pageSize, Touches = touches };
    }

    /// <summary>Reads an access log; a path that is not a regular file (a FIFO would block) is an
    /// <see cref="Store.InvalidInputException"/> naming the "log" input.</summary>
    public static AccessLog Load(string path) =>
        Parse(Store.Files.InputFile.ReadAll(path, "log", MaxBytes), path);
}
