using System.Runtime.CompilerServices;

namespace Snapshots.ChunkFs.Uffd;

/// <summary>One bit per page of the memory file. Only the handler thread writes it. The bits live in native
/// memory: a pinned array, or a file mapped MAP_SHARED (<see cref="MapFile"/>) so that they outlive the process
/// (the page cache keeps them across a SIGKILL) for a handler that takes the VM back.</summary>
internal sealed unsafe class PageBitmap : IDisposable
{
    private readonly ulong[]? _array;
    private readonly SharedBitmapFile? _file;
    private readonly ulong* _bits;
    private readonly long _pages;

    public PageBitmap(long pages)
    {
        _pages = pages;
        _array = GC.AllocateArray<ulong>((int)Math.Max(1, Words(pages)), pinned: true);
        // SAFETY: the array is on the pinned object heap and referenced by _array for this object's lifetime.
        _bits = (ulong*)Unsafe.AsPointer(ref _array[0]);
    }

    private PageBitmap(SharedBitmapFile file, long pages)
    {
        _pages = pages;
        _file = file;
        _bits = (ulong*)file.Address;
    }

    /// <summary>The bitmap of <paramref name="pages"/> pages kept in the file at <paramref name="path"/>
    /// (<see cref="SharedBitmapFile.Open"/>): its bits are those a previous handler left there.</summary>
    public static PageBitmap MapFile(string path, long pages) =>
        new(SharedBitmapFile.Open(path, Words(pages) * sizeof(ulong)), pages);

    /// <summary>The 64-bit words <paramref name="pages"/> bits take.</summary>
    public static long Words(long pages) => (pages + 63) / 64;

    public bool Get(long page) => (_bits[Index(page)] & (1UL << (int)(page & 63))) != 0;
    public void Set(long page) => _bits[Index(page)] |= 1UL << (int)(page & 63);
    public void Clear(long page) => _bits[Index(page)] &= ~(1UL << (int)(page & 63));

    /// <summary>The pages set, counted (not for the fault path).</summary>
    public long Count()
    {
        long n = 0;
        for (long w = 0; w < Words(_pages); w++) n += (long)ulong.PopCount(_bits[w]);
        return n;
    }

    /// <summary>The word of <paramref name="page"/>; a page outside the bitmap is a bug, never a write past it
    /// (the bits are native memory: nothing else would catch it).</summary>
    private long Index(long page) =>
        (ulong)page < (ulong)_pages ? page >> 6 : throw new ArgumentOutOfRangeException(nameof(page));

    /// <summary>Unmaps a file's bits (they stay in the file); nothing for an in-memory bitmap. No Get or Set
    /// after this.</summary>
    public void Dispose() => _file?.Dispose();
}
