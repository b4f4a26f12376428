namespace Snapshots.ChunkFs.Uffd;

/// <summary>One guest memory region as Firecracker describes it: where it is mapped in the VMM, how big it is,
/// and where it starts in the memory file.</summary>
public readonly record struct GuestRegion(ulong BaseHostVirtAddr, ulong Size, ulong Offset, ulong PageSize)
{
    public ulong End => BaseHostVirtAddr + Size;
    public bool Contains(ulong address) => address >= BaseHostVirtAddr && address < End;
}
