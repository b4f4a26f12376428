namespace Snapshots.Store;

/// <summary>
/// An expected failure that ends an operation, with a message for the operator that names what is wrong (the
/// snapshot, chunk, file or input). Every expected failure of the library is one of this family (docs/errors.md);
/// anything else that escapes is a bug. Messages never name a front end's flags: <see cref="Parameter"/> names
/// the input at fault in the library's own terms, and a front end (snapctl) maps it to its flag.
/// </summary>
public class SnapshotException(string message, Exception? inner = null) : Exception(message, inner)
{
    /// <summary>Stable machine-readable kind: "failed" here; each subclass has its own (docs/errors.md).</summary>
    public virtual string Kind => "failed";

    /// <summary>The request field at fault ("tenant", "store", "replace"...), or null when no single input
    /// is.</summary>
    public string? Parameter { get; init; }
}

/// <summary>Bad input: a missing file, an invalid name or address, conflicting settings. Nothing was changed.</summary>
public sealed class InvalidInputException(string message) : SnapshotException(message)
{
    /// <summary>Bad input in the request field <paramref name="parameter"/>.</summary>
    public InvalidInputException(string message, string parameter) : this(message) => Parameter = parameter;

    public override string Kind => "invalid-input";
}

/// <summary>The snapshot named is not in the store.</summary>
public sealed class SnapshotNotFoundException(string snapshot, string store)
    : SnapshotException($"snapshot '{snapshot}' not found in {store}")
{
    public override string Kind => "not-found";
    public string Snapshot { get; } = snapshot;
}

/// <summary>A key the operation needs is not available to this caller (missing, or another tenant's).</summary>
public sealed class KeyUnavailableException(string message) : SnapshotException(message)
{
    public override string Kind => "key-unavailable";
}

/// <summary>Stored bytes are not a valid object of their format (manifest, plan, access log): truncated,
/// altered, garbage or unauthenticated.</summary>
public sealed class ManifestFormatException(string message) : SnapshotException(message)
{
    public override string Kind => "format";
}

/// <summary>A file the store, a cache or the keyring reads is not what it must be: reached through a symlink,
/// outside its directory, a FIFO, device, socket or directory, or larger than its format allows. Someone planted
/// or swapped it; nothing was read from it. The message names the path and what it is.</summary>
public sealed class HostileFileException(string path, string what)
    : SnapshotException($"{path} is {what}: refused (not a regular file of its kind where it belongs)")
{
    public override string Kind => "hostile-file";

    /// <summary>The full path refused.</summary>
    public string Path { get; } = path;
}

/// <summary>An object the store holds fails the store's own integrity check (S3's checksum of the body): its
/// bytes are damaged, which asking again will not change. Readers treat it as a corrupt chunk.</summary>
public sealed class CorruptObjectException(string message, Exception? inner = null)
    : SnapshotException(message, inner)
{
    public override string Kind => "corrupt-object";
}

/// <summary>The store holds an older publication of a snapshot than this reader has already accepted: someone
/// put an old manifest back (a rollback). Refused unless the caller allows it explicitly.</summary>
public sealed class RollbackException(string message) : SnapshotException(message)
{
    public override string Kind => "rollback";
}

/// <summary>Why a chunk could not be had: the tiered reader's verdict after asking every tier.</summary>
public enum ChunkFault : byte
{
    /// <summary>The origin does not have it.</summary>
    Missing,
    /// <summary>The origin's bytes do not hash to the chunk's name (bit rot, tampering, a swapped object).</summary>
    Corrupt,
    /// <summary>No tier answered in time or without error (outage, deadline, breaker open).</summary>
    Unavailable,
}

/// <summary>A chunk could not be had intact from any tier. The message names the chunk and its context.</summary>
public sealed class ChunkUnavailableException(string message, ChunkFault fault = ChunkFault.Unavailable)
    : SnapshotException(message)
{
    public override string Kind => Fault switch
    {
        ChunkFault.Missing => "chunk-missing",
        ChunkFault.Corrupt => "chunk-corrupt",
        _ => "chunk-unavailable",
    };

    public ChunkFault Fault { get; } = fault;
}

/// <summary>The location given as a store is not one: it holds no store marker (<see cref="Origin.StoreMarker"/>),
/// or it does not exist (a directory, an S3 bucket). Stores are created on purpose, by init, so a mistyped
/// address is never taken for an empty store. <see cref="Store"/> is the location as described to the user.
/// </summary>
public sealed class NotAStoreException(string store, string why)
    : SnapshotException($"{store} is not a snapshot store: {why}")
{
    public override string Kind => "not-a-store";

    /// <summary>The location, as the store describes itself (file://DIR, s3://BUCKET/PREFIX).</summary>
    public string Store { get; } = store;
}
