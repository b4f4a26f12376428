using System.Buffers;
using System.Buffers.Binary;
using System.IO.Hashing;
using Snapshots.Store;

namespace Snapshots.Prefetch;

/// <summary>Bounds-checked little-endian reader for the prefetch formats; every failure names the file.</summary>
internal ref struct FormatReader
{
    private readonly ReadOnlySpan<byte> _bytes;
    private readonly string _source;
    private int _pos;

    public FormatReader(ReadOnlySpan<byte> bytes, string source, ReadOnlySpan<byte> magic, ushort version, int maxBytes)
    {
        _bytes = bytes;
        _source = source;
        if (bytes.Length > maxBytes) Fail($"{bytes.Length} bytes is over the {maxBytes}-byte limit");
        if (bytes.Length < magic.Length + 4 + 4 || !bytes[..magic.Length].SequenceEqual(magic))
            Fail("bad magic (not this kind of file)");
        if (Crc32.HashToUInt32(bytes[..^4]) != BinaryPrimitives.ReadUInt32LittleEndian(bytes[^4..]))
            Fail("checksum mismatch (damaged or altered)");
        _pos = magic.Length;
        ushort v = U16("version");
        if (v != version) Fail($"version {v} is not supported (this build reads {version})");
        U16("flags");
    }

    public readonly int Remaining => _bytes.Length - 4 - _pos;

    public ReadOnlySpan<byte> Bytes(int n, string field)
    {
        if (n < 0 || n > Remaining) Fail($"truncated reading {field}");
        var s = _bytes.Slice(_pos, n);
        _pos += n;
        return s;
    }

    public ushort U16(string f) => BinaryPrimitives.ReadUInt16LittleEndian(Bytes(2, f));
    public uint U32(string f) => BinaryPrimitives.ReadUInt32LittleEndian(Bytes(4, f));
    public ulong U64(string f) => BinaryPrimitives.ReadUInt64LittleEndian(Bytes(8, f));

    /// <summary>The page size and image size every prefetch file starts with, checked.</summary>
    public (uint PageSize, ulong ImageSize) ImageGeometry()
    {
        uint pageSize = U32("page size");
        if (pageSize != Snapshots.Store.Chunks.ChunkGeometry.PageSize) Fail($"page size {pageSize} is not supported");
        ulong imageSize = U64("image size");
        if (imageSize == 0 || imageSize > Snapshots.Store.Chunks.ChunkGeometry.MaxImageSize
            || imageSize % pageSize != 0)
            Fail($"image size {imageSize} is invalid");
        return (pageSize, imageSize);
    }

    public readonly void End()
    {
        if (Remaining != 0) Fail($"{Remaining} unexpected bytes at the end");
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    public readonly void Fail(string what) => throw new InvalidInputException($"{_source}: {what}");
}

/// <summary>Writer counterpart: fields, then a CRC-32 trailer over everything.</summary>
internal sealed class FormatWriter
{
    private readonly ArrayBufferWriter<byte> _out = new();

    public FormatWriter(ReadOnlySpan<byte> magic, ushort version)
    {
        _out.Write(magic);
        U16(version);
        U16(0);
    }

    public void U16(ushort v)
    {
        Span<byte> b = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(b, v);
        _out.Write(b);
    }

    public void U32(uint v)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, v);
        _out.Write(b);
    }

    public void U64(ulong v)
    {
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(b, v);
        _out.Write(b);
    }

    public void Bytes(ReadOnlySpan<byte> b) => _out.Write(b);

    public byte[] Finish()
    {
        U32(Crc32.HashToUInt32(_out.WrittenSpan));
        return _out.WrittenSpan.ToArray();
    }
}
