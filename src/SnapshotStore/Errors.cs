namespace Snapshots.Store;

/// <summary>An expected failure with a message for the operator: it names what is wrong (the file, the
/// snapshot, the chunk). The CLI prints it and exits non-zero; anything else is a bug.</summary>
public class SnapshotException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>Bad input from the user: a missing file, an invalid name, conflicting options.</summary>
public sealed class InvalidInputException(string message) : SnapshotException(message);

public sealed class SnapshotNotFoundException(string snapshot, string store)
    : SnapshotException($"snapshot '{snapshot}' not found in {store}")
{
    public string Snapshot { get; } = snapshot;
}

/// <summary>A key the operation needs is not available to this caller (missing, or another tenant's).</summary>
public sealed class KeyUnavailableException(string message) : SnapshotException(message);

/// <summary>A manifest's bytes are not a valid manifest: truncated, altered, garbage or unauthenticated.</summary>
public sealed class ManifestFormatException(string message) : SnapshotException(message);

/// <summary>A chunk could not be had intact from any tier.</summary>
public sealed class ChunkUnavailableException(string message) : SnapshotException(message);
