namespace Snapshots.Host;

/// <summary>Progress of a long operation in bytes. The host calls <see cref="Begin"/> once it knows the total
/// (after opening the snapshot), then reports bytes done through <see cref="IProgress{T}.Report"/>.</summary>
public interface IByteProgress : IProgress<long>
{
    void Begin(long totalBytes);
}
