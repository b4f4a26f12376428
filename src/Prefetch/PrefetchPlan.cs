using Snapshots.Store.Chunks;

namespace Snapshots.Prefetch;

/// <summary>
/// What to load ahead of the VM, in order: pages seen in most restores, ordered by typical first touch, cut
/// into groups whose pages are sorted by offset so fetches and UFFDIO_COPY runs coalesce (FaaSnap's grouping).
/// Bound to one snapshot version by its manifest hash, and, once attached, to its working-set pack: the planned
/// pages stored contiguously in plan order as a layer of their own (see <see cref="WorkingSetPack"/>).
/// Format v1: "SNAPPLN\0", version u16, flags u16, page size u32, image size u64, manifest hash [32], pack manifest
/// hash [32], pack name (u8 length + UTF-8, empty: none), runs merged u32, group count u32, page count u32, group
/// sizes u32 each, pages u32 each, CRC-32 trailer.
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
    /// <summary>The working-set pack's snapshot name and manifest hash; null when the plan has no pack.</summary>
    public string? PackName { get; init; }
    public byte[] PackHash { get; init; } = new byte[32];
    public required int RunsMerged { get; init; }
    public required int[] GroupSizes { get; init; }
    public required uint[] Pages { get; init; }

    public PrefetchPlan BoundTo(byte[] manifestHash, string? packName = null, byte[]? packHash = null) => new()
    {
        ImageSize = ImageSize, PageSize = PageSize, ManifestHash = manifestHash, PackName = packName,
        PackHash = packHash ?? new byte[32],
        RunsMerged = RunsMerged, GroupSizes = GroupSizes, Pages = Pages,
    };

    public byte[] Serialize()
    {
        var w = new FormatWriter(Magic, Version);
        w.U32((uint)PageSize);
        w.U64((ulong)ImageSize);
        w.Bytes(ManifestHash);
        w.Bytes(PackHash);
        var pack = System.Text.Encoding.UTF8.GetBytes(PackName ?? "");
        w.Bytes([(byte)pack.Length]);
        w.Bytes(pack);
        w.U32((uint)RunsMerged);
        w.U32((uint)GroupSizes.Length);
        w.U32((uint)Pages.Length);
        foreach (var g in GroupSizes) w.U32((uint)g);
        foreach (var p in Pages) w.U32(p);
        return w.Finish();
    }

    /// <summary>True when <paramref name="bytes"/> start like a plan (rather than an access log or a sealed
    /// plan); they may still fail to parse.</summary>
    public static bool IsPlan(ReadOnlySpan<byte> bytes) => bytes.StartsWith(Magic);

    public static PrefetchPlan Parse(ReadOnlySpan<byte> bytes, string source)
    {
        var r = new FormatReader(bytes, $"prefetch plan {source}", Magic, Version, MaxBytes);
        var (pageSize, imageSize) = r.ImageGeometry();
        var hash = r.Bytes(32, "manifest hash").ToArray();
        var packHash = r.Bytes(32, "pack hash").ToArray();
        int packLength = r.Bytes(1, "pack name length")[0];
        var packName = System.Text.Encoding.UTF8.GetString(r.Bytes(packLength, "pack name"));
        if (packName.Length > 0 && !Store.Manifests.SnapshotName.IsValid(packName)) r.Fail("invalid pack name");
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
        return new PrefetchPlan
        {
            ImageSize = (long)imageSize, PageSize = (int)pageSize, ManifestHash = hash,
            PackName = packName.Length > 0 ? packName : null, PackHash = packHash, RunsMerged = (int)runs,
            GroupSizes = sizes, Pages = list
        };
    }

    /// <summary>Reads a plan file; a path that is not a regular file (a FIFO would block) is an
    /// <see cref="Store.InvalidInputException"/> naming the "plan" input.</summary>
    public static PrefetchPlan Load(string path) =>
        Parse(Store.Files.InputFile.ReadAll(path, "plan", MaxBytes), path);
}
