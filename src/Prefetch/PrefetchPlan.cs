using Snapshots.Store.Chunks;

namespace Snapshots.Prefetch;

/// <summary>
/// What to load ahead of the VM, in order: pages seen in most restores, ordered by typical first touch, cut
/// into groups whose pages are sorted by offset so fetches and UFFDIO_COPY runs coalesce (FaaSnap's grouping).
/// Bound to one snapshot version by its manifest hash. Format v1: "SNAPPLN\0", version u16, flags u16, page size
/// u32, image size u64, manifest hash [32], runs merged u32, group count u32, page count u32, group sizes u32 each,
/// pages u32 each, CRC-32 trailer.
/// </summary>
public sealed class PrefetchPlan
{
    public const ushort Version = 1;
    public const int MaxBytes = 256 << 20;
    private static ReadOnlySpan<byte> Magic => "SNAPPLN\0"u8;

    public required long ImageSize { get; init; }
    public int PageSize { get; init; } = ChunkGeometry.PageSize;
    /// <summary>The manifest the plan was made for; all zeros until attached.</summary>
    public byte[] ManifestHash { get; init; } = new byte[32];
    public required int RunsMerged { get; init; }
    public required int[] GroupSizes { get; init; }
    public required uint[] Pages { get; init; }

    public PrefetchPlan BoundTo(byte[] manifestHash) => new()
    {
        ImageSize = ImageSize, PageSize = PageSize, ManifestHash = manifestHash, RunsMerged = RunsMerged, GroupSizes = GroupSizes, Pages = Pages,
    };

    public byte[] Serialize()
    {
        var w = new FormatWriter(Magic, Version);
        w.U32((uint)PageSize);
        w.U64((ulong)ImageSize);
        w.Bytes(ManifestHash);
        w.U32((uint)RunsMerged);
        w.U32((uint)GroupSizes.Length);
        w.U32((uint)Pages.Length);
        foreach (var g in GroupSizes) w.U32((uint)g);
        foreach (var p in Pages) w.U32(p);
        return w.Finish();
    }

    public static PrefetchPlan Parse(ReadOnlySpan<byte> bytes, string source)
    {
        var r = new FormatReader(bytes, $"prefetch plan {source}", Magic, Version, MaxBytes);
        uint pageSize = r.U32("page size");
        if (pageSize != ChunkGeometry.PageSize) r.Fail($"page size {pageSize} is not supported");
        ulong imageSize = r.U64("image size");
        if (imageSize == 0 || imageSize > ChunkGeometry.MaxImageSize || imageSize % pageSize != 0) r.Fail($"image size {imageSize} is invalid");
        var hash = r.Bytes(32, "manifest hash").ToArray();
        uint runs = r.U32("runs");
        uint groups = r.U32("group count");
        uint count = r.U32("page count");
        ulong pages = imageSize / pageSize;
        if (count > pages || groups > count + 1 || ((long)groups + count) * 4 != r.Remaining)
            r.Fail($"{groups} groups and {count} pages do not match the file's length or the image");
        var sizes = new int[groups];
        long sum = 0;
        for (int i = 0; i < sizes.Length; i++)
        {
            uint s = r.U32("group size");
            if (s == 0 || s > count) r.Fail($"group {i} has size {s}");
            sizes[i] = (int)s;
            sum += s;
        }
        if (sum != count) r.Fail($"group sizes add up to {sum}, not {count} pages");
        var list = new uint[count];
        var seen = new HashSet<uint>();
        for (int i = 0; i < list.Length; i++)
        {
            uint p = r.U32("page");
            if (p >= pages) r.Fail($"page {p} is beyond the image's {pages} pages");
            if (!seen.Add(p)) r.Fail($"page {p} is listed twice");
            list[i] = p;
        }
        r.End();
        return new PrefetchPlan { ImageSize = (long)imageSize, PageSize = (int)pageSize, ManifestHash = hash, RunsMerged = (int)runs, GroupSizes = sizes, Pages = list };
    }

    public static PrefetchPlan Load(string path) => Parse(File.ReadAllBytes(path), path);
}
