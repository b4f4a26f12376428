using System.Security.Cryptography;
using System.Text;
using Snapshots.Store;
using Snapshots.Store.Keys;
using Snapshots.Store.Manifests;

namespace Snapshots.Prefetch;

/// <summary>
/// A stored plan decides which page of the working-set pack is installed at which guest address, so it is
/// authenticated, not just checksummed. Envelope: "SNAPPLS\0", HMAC-SHA256 tag [32], then the plan's own bytes
/// (<see cref="PrefetchPlan"/>, with its CRC). The tag's key is HMAC-SHA256(domain convergence key,
/// "snapshots/plan-mac/v1\0" ‖ manifest hash): only a holder of the snapshot's domain key can make one, and a tag
/// made for another snapshot or version does not verify. The plan's own manifest hash must match too.
/// </summary>
public static class PlanSeal
{
    private static ReadOnlySpan<byte> Magic => "SNAPPLS\0"u8;
    private const int TagSize = 32;
    private static readonly byte[] Label = Encoding.ASCII.GetBytes("snapshots/plan-mac/v1\0");

    /// <summary>True when <paramref name="bytes"/> start like a sealed plan (they may still fail to open).</summary>
    public static bool IsSealed(ReadOnlySpan<byte> bytes) => bytes.StartsWith(Magic);

    /// <summary>The plan's bytes sealed for <paramref name="manifest"/> under its domain's key.</summary>
    public static byte[] Seal(ReadOnlySpan<byte> plan, Manifest manifest, IKeyProvider keys)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        ArgumentNullException.ThrowIfNull(keys);
        var key = KeyFor(manifest, keys);
        try
        {
            var sealedPlan = new byte[Magic.Length + TagSize + plan.Length];
            Magic.CopyTo(sealedPlan);
            HMACSHA256.HashData(key, plan, sealedPlan.AsSpan(Magic.Length, TagSize));
            plan.CopyTo(sealedPlan.AsSpan(Magic.Length + TagSize));
            return sealedPlan;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(key);
        }
    }

    /// <summary>The plan inside a sealed envelope, or a <see cref="ManifestFormatException"/> naming
    /// <paramref name="source"/> when the envelope is not one or its tag does not verify for
    /// <paramref name="manifest"/>.</summary>
    public static PrefetchPlan Open(ReadOnlySpan<byte> envelope, Manifest manifest, IKeyProvider keys, string source)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        if (envelope.Length < Magic.Length + TagSize || !envelope.StartsWith(Magic))
            throw new ManifestFormatException($"prefetch plan {source}: not a sealed plan");
        var key = KeyFor(manifest, keys);
        Span<byte> expected = stackalloc byte[TagSize];
        try
        {
            var plan = envelope[(Magic.Length + TagSize)..];
            HMACSHA256.HashData(key, plan, expected);
            if (!CryptographicOperations.FixedTimeEquals(expected, envelope.Slice(Magic.Length, TagSize)))
            {
                throw new ManifestFormatException(
                    $"prefetch plan {source}: its seal does not verify for this snapshot (altered, or made for "
                        + "another snapshot or version)");
            }
            var parsed = PrefetchPlan.Parse(plan, source);
            if (!parsed.ManifestHash.AsSpan().SequenceEqual(manifest.Hash))
                throw new ManifestFormatException($"prefetch plan {source}: bound to another version of the snapshot");
            return parsed;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(key);
        }
    }

    private static byte[] KeyFor(Manifest manifest, IKeyProvider keys)
    {
        var domainKey = keys.GetConvergenceKey(manifest.Domain, create: false);
        try
        {
            var input = new byte[Label.Length + manifest.Hash.Length];
            Label.CopyTo(input, 0);
            manifest.Hash.CopyTo(input, Label.Length);
            return HMACSHA256.HashData(domainKey, input);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(domainKey);
        }
    }
}
