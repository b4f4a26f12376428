using Snapshots.Store.Keys;

namespace Snapshots.Host;

/// <summary>Where a host's store and keys live.</summary>
public sealed record StoreOptions
{
    /// <summary>The origin: a directory, file://DIR, or s3://BUCKET/PREFIX?endpoint=URL (credentials from the AWS
    /// SDK's chain). <see cref="Store.Origin.StoreLocation"/> parses it; an empty address is an error naming
    /// the "store" input.</summary>
    public required string Address { get; init; }

    /// <summary>The local keyring: a directory of 0600 key files, created on first use.</summary>
    public string KeyringDirectory { get; init; } = LocalKeyring.DefaultDirectory();

    /// <summary>Accept a snapshot older than one this reader has already accepted (an explicit rollback);
    /// refused by default (<see cref="Store.RollbackException"/>).</summary>
    public bool AllowRollback { get; init; }

    /// <summary>Where operational notes go (warnings, "serving on ..."): one line each, no trailing newline.</summary>
    public Action<string> Log { get; init; } = _ => { };

    /// <summary>The store named by $SNAPSHOTS_STORE (empty when unset).</summary>
    public static string AddressFromEnvironment => Environment.GetEnvironmentVariable("SNAPSHOTS_STORE") ?? "";

    /// <summary>The distributed cache named by $SNAPSHOTS_DISTRIBUTED (null when unset).</summary>
    public static string? DistributedFromEnvironment => Environment.GetEnvironmentVariable("SNAPSHOTS_DISTRIBUTED");
}
