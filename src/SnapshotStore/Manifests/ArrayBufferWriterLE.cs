using System.Buffers;
using System.Buffers.Binary;
using System.Text;

namespace Snapshots.Store.Manifests;

/// <summary>Little-endian field writer for the binary formats.</summary>
internal sealed class ArrayBufferWriterLE
{
    private readonly ArrayBufferWriter<byte> _w = new(4096);

    public int Length => _w.WrittenCount;
    public ReadOnlySpan<byte> WrittenSpan => _w.WrittenSpan;
    public byte[] ToArray() => _w.WrittenSpan.ToArray();

    public void Bytes(ReadOnlySpan<byte> b) => _w.Write(b);
    public void U8(byte v) => _w.Write([v]);
    public void U16(ushort v) { BinaryPrimitives.WriteUInt16LittleEndian(_w.GetSpan(2), v); _w.Advance(2); }
    public void U32(uint v) { BinaryPrimitives.WriteUInt32LittleEndian(_w.GetSpan(4), v); _w.Advance(4); }
    public void U64(ulong v) { BinaryPrimitives.WriteUInt64LittleEndian(_w.GetSpan(8), v); _w.Advance(8); }
    public void I64(long v) { BinaryPrimitives.WriteInt64LittleEndian(_w.GetSpan(8), v); _w.Advance(8); }

    public void Bytes8(ReadOnlySpan<byte> b)
    {
        if (b.Length > byte.MaxValue) throw new ArgumentException("field over 255 bytes");
        U8((byte)b.Length);
        Bytes(b);
    }

    public void Str8(string s) => Bytes8(Encoding.UTF8.GetBytes(s));

    /// <summary>Patches a field already written (the total length, known only at the end).</summary>
    public void PatchU32(int offset, uint v)
    {
        // ArrayBufferWriter exposes its written span read-only; the patch goes through the underlying memory.
        var span = System.Runtime.InteropServices.MemoryMarshal.AsMemory(_w.WrittenMemory).Span;
        BinaryPrimitives.WriteUInt32LittleEndian(span[offset..], v);
    }
}
