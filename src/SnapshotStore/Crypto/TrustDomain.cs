using System.Text.RegularExpressions;

namespace Snapshots.Store.Crypto;

/// <summary>Who may share ciphertext with whom. OS and runtime layers live in the shared domain (public
/// content: confirming a chunk exists is acceptable); each tenant's function layers in its own domain,
/// so one tenant cannot learn whether another holds a chunk by uploading a guess.</summary>
public readonly partial record struct TrustDomain
{
    public const string SharedId = "shared";
    private const string TenantPrefix = "tenant-";

    public string Id { get; }

    private TrustDomain(string id) => Id = id;

    public static TrustDomain Shared => new(SharedId);

    public bool IsShared => Id == SharedId;

    public string? Tenant => Id.StartsWith(TenantPrefix, StringComparison.Ordinal) ? Id[TenantPrefix.Length..] : null;

    public static TrustDomain ForTenant(string tenant)
    {
        if (!TenantPattern().IsMatch(tenant))
            throw new InvalidInputException(
                $"tenant '{tenant}' is not a valid tenant id (1-64 of a-z, 0-9, '_', '-')", "tenant");
        return new TrustDomain(TenantPrefix + tenant);
    }

    /// <summary>Parses a domain id as written in a manifest.</summary>
    public static bool TryParse(string id, out TrustDomain domain)
    {
        domain = default;
        if (id == SharedId) { domain = Shared; return true; }
        if (id.StartsWith(TenantPrefix, StringComparison.Ordinal) && TenantPattern().IsMatch(id[TenantPrefix.Length..]))
        {
            domain = new TrustDomain(id);
            return true;
        }
        return false;
    }

    public override string ToString() => Id;

    [GeneratedRegex("^[a-z0-9_-]{1,64}$")]
    private static partial Regex TenantPattern();
}
