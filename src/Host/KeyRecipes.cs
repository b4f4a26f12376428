using Snapshots.Store.Crypto;
using Snapshots.Store.Keys;

namespace Snapshots.Host;

/// <summary>A domain key, named by its fingerprint (never the key); or, for a key file the keyring refuses, why
/// (<see cref="Problem"/>, and no fingerprint).</summary>
public sealed record KeyInfo(string Domain, string? Fingerprint, string? Problem = null);

/// <summary>What `snapctl key` does with a key provider: needs no store.</summary>
public static class KeyRecipes
{
    /// <summary>The domains <paramref name="keys"/> holds keys for, with their fingerprints.</summary>
    public static IReadOnlyList<KeyInfo> List(IKeyProvider keys)
    {
        ArgumentNullException.ThrowIfNull(keys);
        var found = new List<KeyInfo>();
        foreach (var domain in keys.Domains())
        {
            try
            {
                if (keys.Fingerprint(domain) is { } fp) found.Add(new KeyInfo(domain.Id, fp));
            }
            catch (Store.SnapshotException e) { found.Add(new KeyInfo(domain.Id, null, e.Message)); }
        }
        return found;
    }

    /// <summary>Creates the key of <paramref name="tenant"/>'s domain (null: the shared domain) and returns its
    /// fingerprint; an <see cref="Store.InvalidInputException"/> when the domain already has one.</summary>
    public static KeyInfo Create(IKeyProvider keys, string? tenant)
    {
        ArgumentNullException.ThrowIfNull(keys);
        var domain = tenant is null ? TrustDomain.Shared : TrustDomain.ForTenant(tenant);
        keys.CreateKey(domain);
        return new KeyInfo(domain.Id, keys.Fingerprint(domain)!);
    }
}
