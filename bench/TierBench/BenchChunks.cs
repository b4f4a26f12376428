using Snapshots.Store.Chunks;
using Snapshots.Store.Crypto;

namespace Snapshots.TierBench;

/// <summary>Chunk-sized objects (512 KiB + tag, random, so incompressible like ciphertext) named by their
/// hash as the store names them; regenerated from their index, never all held in memory.</summary>
public static class BenchChunks
{
    public const int Size = ConvergentCipher.MaxCiphertextSize;

    public static byte[] Bytes(int seed, int index)
    {
        var b = new byte[Size];
        new Random(HashCode.Combine(seed, index)).NextBytes(b);
        return b;
    }

    public static ChunkName NameOf(byte[] bytes) => ChunkName.OfCiphertext(bytes);
}
