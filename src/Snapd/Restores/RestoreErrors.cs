using Snapshots.Store;

namespace Snapshots.Snapd.Restores;

/// <summary>The daemon already runs its limit of restores (<see cref="SnapdOptions.MaxRestores"/>): HTTP 429.
/// </summary>
public sealed class TooManyRestoresException(int limit)
    : SnapshotException($"{limit} restores are running, the limit (MaxRestores): retry when one ends")
{
    public override string Kind => "too-many-restores";
}

/// <summary>The daemon is stopping (SIGTERM): no new restores; HTTP 503.</summary>
public sealed class DrainingException()
    : SnapshotException("snapd is draining (stopping): no new restores; running ones are served until they end")
{
    public override string Kind => "draining";
}

/// <summary>No restore has this id (never made, or ended and forgotten): HTTP 404.</summary>
public sealed class UnknownRestoreException(string id) : SnapshotException($"no restore '{id}'")
{
    public override string Kind => "not-found";
}
