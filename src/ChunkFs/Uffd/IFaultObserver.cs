namespace Snapshots.ChunkFs.Uffd;

/// <summary>Told each demand fault a handler served, with its service time (message read to page installed), in
/// <see cref="System.Diagnostics.Stopwatch"/> ticks. Called on the fault thread: implementations must be quick,
/// thread-safe (many handlers share one) and allocation-free, such as a lock-free histogram.</summary>
public interface IFaultObserver
{
    void FaultServed(long ticks);
}
