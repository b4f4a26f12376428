using System.Security.Cryptography;

namespace Snapshots.Store.Crypto;

/// <summary>AES-256-GCM with a random nonce, for small secrets (wrapped layer keys, manifest key tables):
/// output = nonce(12) || ciphertext || tag(16).</summary>
public static class SealedBox
{
    public const int NonceSize = 12;
    public const int TagSize = 16;
    public const int Overhead = NonceSize + TagSize;

    public static byte[] Seal(ReadOnlySpan<byte> key, ReadOnlySpan<byte> plaintext, ReadOnlySpan<byte> associatedData)
    {
        var box = new byte[plaintext.Length + Overhead];
        var nonce = box.AsSpan(0, NonceSize);
        RandomNumberGenerator.Fill(nonce);
        using var gcm = new AesGcm(key, TagSize);
        gcm.Encrypt(
            nonce, plaintext, box.AsSpan(NonceSize, plaintext.Length),
            box.AsSpan(NonceSize + plaintext.Length, TagSize), associatedData);
        return box;
    }

    public static bool TryOpen(
        ReadOnlySpan<byte> key, ReadOnlySpan<byte> box, ReadOnlySpan<byte> associatedData, out byte[] plaintext)
    {
        plaintext = [];
        if (box.Length < Overhead) return false;
        int len = box.Length - Overhead;
        var result = new byte[len];
        using var gcm = new AesGcm(key, TagSize);
        try
        {
            gcm.Decrypt(
                box[..NonceSize], box.Slice(NonceSize, len), box.Slice(NonceSize + len, TagSize), result,
                associatedData);
        }
        catch (AuthenticationTagMismatchException)
        {
            CryptographicOperations.ZeroMemory(result);
            return false;
        }
        plaintext = result;
        return true;
    }
}
