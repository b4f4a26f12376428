using System.Security.Cryptography;
using Snapshots.Store;
using Snapshots.Store.Chunks;
using Snapshots.Store.Crypto;

namespace Snapshots.Tests;

[Trait("Category", Category.Unit)]
public class CryptoTests
{
    private static (byte[] Cipher, ChunkName Name) Seal(byte[] convergenceKey, string salt, byte[] plain)
    {
        Span<byte> hash = stackalloc byte[32];
        ContentHash.Compute(plain, hash);
        Span<byte> key = stackalloc byte[32];
        ConvergentCipher.DeriveKey(convergenceKey, System.Text.Encoding.UTF8.GetBytes(salt), hash, key);
        var cipher = new byte[plain.Length + ConvergentCipher.TagSize];
        ConvergentCipher.Encrypt(key, plain, cipher);
        return (cipher, ChunkName.OfCiphertext(cipher));
    }

    [Fact]
    public void Same_plaintext_same_domain_and_salt_gives_the_same_ciphertext_and_name()
    {
        var k = RandomNumberGenerator.GetBytes(32);
        var plain = RandomNumberGenerator.GetBytes(ChunkGeometry.ChunkSize);
        var a = Seal(k, "v1", plain);
        var b = Seal(k, "v1", plain);
        Assert.Equal(a.Cipher, b.Cipher);
        Assert.Equal(a.Name, b.Name);
        Assert.True(a.Name.Matches(a.Cipher));
    }

    [Fact]
    public void Another_domain_or_salt_gives_unrelated_ciphertext()
    {
        var plain = RandomNumberGenerator.GetBytes(4096);
        var a = Seal(RandomNumberGenerator.GetBytes(32), "v1", plain);
        var b = Seal(RandomNumberGenerator.GetBytes(32), "v1", plain);
        var c = Seal(RandomNumberGenerator.GetBytes(32), "v2", plain);
        Assert.NotEqual(a.Name, b.Name);
        Assert.NotEqual(a.Cipher, b.Cipher);
        Assert.NotEqual(b.Name, c.Name);
        Assert.False(a.Cipher.AsSpan(0, 4096).SequenceEqual(plain)); // no plaintext passes through
    }

    [Fact]
    public void Any_flipped_bit_fails_authentication_and_the_name_check()
    {
        var k = RandomNumberGenerator.GetBytes(32);
        var plain = RandomNumberGenerator.GetBytes(8192);
        Span<byte> hash = stackalloc byte[32];
        ContentHash.Compute(plain, hash);
        var key = new byte[32];
        ConvergentCipher.DeriveKey(k, "v1"u8, hash, key);
        var cipher = new byte[plain.Length + 16];
        ConvergentCipher.Encrypt(key, plain, cipher);
        var name = ChunkName.OfCiphertext(cipher);
        var output = new byte[plain.Length];
        Assert.True(ConvergentCipher.TryDecrypt(key, cipher, output));
        Assert.Equal(plain, output);
        foreach (int bit in new[] { 0, 7, 4096 * 8 + 3, (cipher.Length - 1) * 8 })
        {
            var bad = (byte[])cipher.Clone();
            bad[bit / 8] ^= (byte)(1 << (bit % 8));
            Assert.False(name.Matches(bad));
            Assert.False(ConvergentCipher.TryDecrypt(key, bad, output));
        }
    }

    [Fact]
    public void Tenant_ids_are_validated_and_domains_are_distinct()
    {
        Assert.Equal("tenant", Assert.Throws<InvalidInputException>(() => TrustDomain.ForTenant("../etc")).Parameter);
        Assert.Throws<InvalidInputException>(() => TrustDomain.ForTenant(""));
        Assert.Equal("tenant-acme", TrustDomain.ForTenant("acme").Id);
        Assert.Equal("acme", TrustDomain.ForTenant("acme").Tenant);
        Assert.True(TrustDomain.Shared.IsShared);
        Assert.False(TrustDomain.TryParse("tenant-", out _));
    }
}
