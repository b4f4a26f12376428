using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Snapshots.Store.Chunks;

/// <summary>A chunk's name: the 32-byte BLAKE3 hash of its ciphertext (tag included). A value type, so
/// tables of names cost no allocation per chunk.</summary>
[StructLayout(LayoutKind.Sequential, Size = Length)]
public readonly struct ChunkName : IEquatable<ChunkName>
{
    public const int Length = 32;
    private readonly Bytes32 _bytes;

    private ChunkName(Bytes32 bytes) => _bytes = bytes;

    public static ChunkName FromBytes(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length != Length) throw new ArgumentException($"a chunk name is {Length} bytes, got {bytes.Length}");
        Bytes32 b = default;
        bytes.CopyTo(b);
        return new ChunkName(b);
    }

    public static ChunkName OfCiphertext(ReadOnlySpan<byte> ciphertext)
    {
        Bytes32 b = default;
        ContentHash.Compute(ciphertext, b);
        return new ChunkName(b);
    }

    public static bool TryParse(ReadOnlySpan<char> hex, out ChunkName name)
    {
        name = default;
        if (hex.Length != Length * 2) return false;
        Bytes32 b = default;
        if (Convert.FromHexString(hex, b, out _, out int written) != System.Buffers.OperationStatus.Done
            || written != Length)
        {
            return false;
        }
        name = new ChunkName(b);
        return true;
    }

    public void CopyTo(Span<byte> destination) => ((ReadOnlySpan<byte>)_bytes).CopyTo(destination);

    /// <summary>True when <paramref name="ciphertext"/> hashes to this name.</summary>
    public bool Matches(ReadOnlySpan<byte> ciphertext)
    {
        Bytes32 b = default;
        ContentHash.Compute(ciphertext, b);
        return ((ReadOnlySpan<byte>)b).SequenceEqual(_bytes);
    }

    public override string ToString() => Convert.ToHexStringLower(_bytes);

    public bool Equals(ChunkName other) => ((ReadOnlySpan<byte>)_bytes).SequenceEqual(other._bytes);
    public override bool Equals(object? obj) => obj is ChunkName n && Equals(n);
    public override int GetHashCode() => MemoryMarshal.Read<int>(_bytes);
    public static bool operator ==(ChunkName a, ChunkName b) => a.Equals(b);
    public static bool operator !=(ChunkName a, ChunkName b) => !a.Equals(b);
}

[InlineArray(32)]
public struct Bytes32
{
    private byte _e0;
}
