using System.Security.Cryptography;
using Snapshots.Store.Chunks;

namespace Snapshots.Store.Crypto;

/// <summary>
/// Convergent encryption of one chunk (docs/format.md, "Chunk encryption"):
///   h   = BLAKE3(plaintext)
///   key = HMAC-SHA256(convergenceKey(domain), "snapshots/chunk-key/v1" || salt || h)
///   ct  = AES-256-GCM(key, nonce = 0^96, plaintext) || tag
///   name = BLAKE3(ct)
/// The same plaintext in the same domain and salt always gives the same ciphertext and name (dedup needs no
/// index); a key is a function of its plaintext, so each key encrypts exactly one plaintext and the fixed nonce
/// is safe. Without the domain's secret nobody can compute a key from a guessed plaintext.
/// </summary>
public static class ConvergentCipher
{
    public const int KeySize = 32;
    public const int TagSize = 16;
    public const int MaxCiphertextSize = ChunkGeometry.ChunkSize + TagSize;

    private static ReadOnlySpan<byte> KeyLabel => "snapshots/chunk-key/v1"u8;
    private static ReadOnlySpan<byte> ZeroNonce => [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

    /// <summary>
    /// Derives the chunk key (32 bytes) from the plaintext hash, the domain's convergence key and the salt.
    /// </summary>
    public static void DeriveKey(
        ReadOnlySpan<byte> convergenceKey, ReadOnlySpan<byte> salt, ReadOnlySpan<byte> plaintextHash, Span<byte> key)
    {
        Span<byte> input = stackalloc byte[KeyLabel.Length + 1 + 255 + ContentHash.Size];
        int n = 0;
        KeyLabel.CopyTo(input); n += KeyLabel.Length;
        input[n++] = checked((byte)salt.Length);
        salt.CopyTo(input[n..]); n += salt.Length;
        plaintextHash.CopyTo(input[n..]); n += plaintextHash.Length;
        HMACSHA256.HashData(convergenceKey, input[..n], key);
    }

    /// <summary>
    /// Encrypts <paramref name="plaintext"/> into <paramref name="ciphertext"/> (plaintext length + 16).
    /// </summary>
    public static int Encrypt(ReadOnlySpan<byte> key, ReadOnlySpan<byte> plaintext, Span<byte> ciphertext)
    {
        int total = plaintext.Length + TagSize;
        using var gcm = new AesGcm(key, TagSize);
        gcm.Encrypt(ZeroNonce, plaintext, ciphertext[..plaintext.Length], ciphertext.Slice(plaintext.Length, TagSize));
        return total;
    }

    /// <summary>Decrypts and authenticates; false when the tag does not match (wrong key or altered bytes).</summary>
    public static bool TryDecrypt(ReadOnlySpan<byte> key, ReadOnlySpan<byte> ciphertext, Span<byte> plaintext)
    {
        if (ciphertext.Length < TagSize) return false;
        int len = ciphertext.Length - TagSize;
        using var gcm = new AesGcm(key, TagSize);
        try
        {
            gcm.Decrypt(ZeroNonce, ciphertext[..len], ciphertext[len..], plaintext[..len]);
            return true;
        }
        catch (AuthenticationTagMismatchException)
        {
            // AesGcm reports a bad tag only by throwing; this is the one rare path (a corrupt or foreign chunk).
            return false;
        }
    }
}
