namespace Snapshots.ChunkFs.Uffd;

/// <summary>One bit per page of the memory file. Only the handler thread writes it.</summary>
internal sealed class PageBitmap(long pages)
{
    private readonly ulong[] _bits = new ulong[(pages + 63) / 64];

    public bool Get(long page) => (_bits[page >> 6] & (1UL << (int)(page & 63))) != 0;
    public void Set(long page) => _bits[page >> 6] |= 1UL << (int)(page & 63);
    public void Clear(long page) => _bits[page >> 6] &= ~(1UL << (int)(page & 63));
}
