using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.InteropServices;

namespace Snapshots.Store.Distributed;

/// <summary>
/// A k-of-(k+1) erasure code: a chunk cut into k data stripes plus one XOR parity stripe, so any k of the k+1
/// rebuild it (the same protection as Lambda's 4-of-5 against one slow or lost node, at n/k storage).
/// Each stripe starts with a 12-byte header: 'S', version 1, k, n, index, 3 zero bytes, chunk length (u32 LE).
/// A stripe is never trusted: headers must agree, and the rebuilt chunk is checked against its name by the caller.
/// </summary>
public static class StripeCodec
{
    public const int HeaderSize = 12;
    private const byte Magic = (byte)'S', Version = 1;

    public static int StripeLength(int chunkLength, int k) => (chunkLength + k - 1) / k;

    /// <summary>The n = k + 1 stripes of a chunk: data stripes 0..k-1, then parity.</summary>
    public static byte[][] Encode(ReadOnlySpan<byte> chunk, int k)
    {
        int n = k + 1, len = StripeLength(chunk.Length, k);
        var stripes = new byte[n][];
        for (int i = 0; i < n; i++)
        {
            var s = stripes[i] = new byte[HeaderSize + len];
            s[0] = Magic; s[1] = Version; s[2] = (byte)k; s[3] = (byte)n; s[4] = (byte)i;
            BinaryPrimitives.WriteUInt32LittleEndian(s.AsSpan(8), (uint)chunk.Length);
        }
        var parity = stripes[k].AsSpan(HeaderSize);
        for (int i = 0; i < k; i++)
        {
            int from = i * len;
            int count = Math.Clamp(chunk.Length - from, 0, len);
            chunk.Slice(from, count).CopyTo(stripes[i].AsSpan(HeaderSize));
            Xor(parity, stripes[i].AsSpan(HeaderSize));
        }
        return stripes;
    }

    /// <summary>The chunk length a stripe claims, or -1 when its header is not a valid stripe
    /// <paramref name="index"/> of a k-of-n code that fits <paramref name="maxChunk"/>.</summary>
    public static int CheckHeader(ReadOnlySpan<byte> stripe, int k, int index, int maxChunk)
    {
        if (stripe.Length < HeaderSize || stripe[0] != Magic || stripe[1] != Version
            || stripe[2] != k || stripe[3] != k + 1 || stripe[4] != index)
        {
            return -1;
        }
        uint length = BinaryPrimitives.ReadUInt32LittleEndian(stripe[8..]);
        if (length == 0 || length > maxChunk || stripe.Length != HeaderSize + StripeLength((int)length, k)) return -1;
        return (int)length;
    }

    /// <summary>Writes the chunk into <paramref name="chunk"/> from the stripes, rebuilding data stripe
    /// <paramref name="rebuild"/> (or none: -1) from parity and the others. Stripes must have passed
    /// <see cref="CheckHeader"/> with the same length.</summary>
    public static void Assemble(
        ReadOnlySpan<ReadOnlyMemory<byte>> stripes, int k, int chunkLength, int rebuild, Span<byte> chunk)
    {
        int len = StripeLength(chunkLength, k);
        byte[]? pooled = rebuild >= 0 ? System.Buffers.ArrayPool<byte>.Shared.Rent(len) : null;
        Span<byte> scratch = pooled is null ? default : pooled.AsSpan(0, len);
        if (rebuild >= 0) stripes[k].Span[HeaderSize..].CopyTo(scratch);
        for (int i = 0; i < k; i++)
        {
            if (i == rebuild) continue;
            var data = stripes[i].Span[HeaderSize..];
            if (rebuild >= 0) Xor(scratch, data);
            int from = i * len, count = Math.Clamp(chunkLength - from, 0, len);
            data[..count].CopyTo(chunk.Slice(from, count));
        }
        if (rebuild >= 0)
        {
            int from = rebuild * len, count = Math.Clamp(chunkLength - from, 0, len);
            scratch[..count].CopyTo(chunk.Slice(from, count));
            System.Buffers.ArrayPool<byte>.Shared.Return(pooled!);
        }
    }

    /// <summary>target ^= source, a vector at a time.</summary>
    public static void Xor(Span<byte> target, ReadOnlySpan<byte> source)
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var t = MemoryMarshal.Cast<byte, Vector<byte>>(target);
            var s = MemoryMarshal.Cast<byte, Vector<byte>>(source[..target.Length]);
            for (int v = 0; v < t.Length; v++) t[v] ^= s[v];
            i = t.Length * Vector<byte>.Count;
        }
        for (; i < target.Length; i++) target[i] ^= source[i];
    }
}
