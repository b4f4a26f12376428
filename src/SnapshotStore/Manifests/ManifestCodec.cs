using System.Buffers.Binary;
using System.Text;
using Snapshots.Store.Chunks;
using Snapshots.Store.Crypto;
using Snapshots.Store.Keys;

namespace Snapshots.Store.Manifests;

/// <summary>
/// Manifest format v1 (docs/format.md): little-endian, length-prefixed fields, a key table sealed with the
/// layer key (AES-256-GCM, everything before it as associated data), and a BLAKE3 trailer over the whole.
/// The parser checks every length against the bytes present and the limits below before it allocates.
/// </summary>
public static class ManifestCodec
{
    /// <summary>2 adds the publication sequence after "created"; version 1 manifests still read (sequence 0).
    /// </summary>
    public const ushort Version = 2;
    public const byte CipherSuite = 1; // BLAKE3-256 names and hashes, HMAC-SHA256 key derivation, AES-256-GCM
    public const int MaxManifestBytes = 256 << 20;
    public static ReadOnlySpan<byte> Magic => "SNAPMAN\0"u8;
    private const int EntrySize = 4 + 1 + ChunkName.Length;
    private const int TrailerSize = ContentHash.Size;

    public static byte[] Serialize(Manifest m, ReadOnlySpan<ChunkSecret> secrets, ReadOnlySpan<byte> layerKey)
    {
        if (secrets.Length != m.Entries.Length) throw new ArgumentException("one secret per entry");
        var w = new ArrayBufferWriterLE();
        w.Bytes(Magic);
        w.U16(Version);
        w.U16(0); // flags
        w.U32(0); // total length, patched below
        w.Bytes(m.Id);
        w.U8((byte)m.Layer);
        w.U8(CipherSuite);
        w.U32((uint)m.ChunkSize);
        w.U64((ulong)m.ImageSize);
        w.I64(m.Created.ToUnixTimeMilliseconds());
        w.U64((ulong)m.Sequence);
        w.Str8(m.Name);
        w.Str8(m.Domain.Id);
        w.Bytes8(m.Salt);
        w.Str8(m.ParentName ?? "");
        if (m.ParentName is not null) w.Bytes(m.ParentHash!);
        w.Bytes8(m.WrappedLayerKey);
        w.U32((uint)m.Entries.Length);
        Span<byte> nameBytes = stackalloc byte[ChunkName.Length];
        foreach (var e in m.Entries)
        {
            w.U32((uint)e.Index);
            w.U8((byte)e.Kind);
            e.Name.CopyTo(nameBytes);
            w.Bytes(nameBytes);
        }
        int sealedLength = secrets.Length * ChunkSecret.Size + SealedBox.Overhead;
        w.U32((uint)sealedLength);
        int total = w.Length + sealedLength + TrailerSize;
        w.PatchU32(12, (uint)total);

        var table = new byte[secrets.Length * ChunkSecret.Size];
        for (int i = 0; i < secrets.Length; i++)
        {
            ((ReadOnlySpan<byte>)secrets[i].Key).CopyTo(table.AsSpan(i * ChunkSecret.Size));
            ((ReadOnlySpan<byte>)secrets[i].PlaintextHash).CopyTo(table.AsSpan(i * ChunkSecret.Size + 32));
        }
        var sealedTable = SealedBox.Seal(layerKey, table, w.WrittenSpan);
        System.Security.Cryptography.CryptographicOperations.ZeroMemory(table);
        w.Bytes(sealedTable);
        Span<byte> trailer = stackalloc byte[TrailerSize];
        ContentHash.Compute(w.WrittenSpan, trailer);
        w.Bytes(trailer);
        return w.ToArray();
    }

    /// <summary>Context a layer key is wrapped with: binds it to its manifest id and domain.</summary>
    public static byte[] LayerKeyContext(byte[] manifestId, TrustDomain domain) =>
        [.. "snapshots/layer-key/v1"u8, .. manifestId, .. Encoding.UTF8.GetBytes(domain.Id)];

    /// <summary>Parses and checks structure and checksum; needs no key.</summary>
    public static Manifest Parse(ReadOnlySpan<byte> bytes, string source)
    {
        if (bytes.Length > MaxManifestBytes)
            Fail(source, $"{bytes.Length} bytes is over the {MaxManifestBytes}-byte limit");
        var r = new Reader(bytes, source);
        if (bytes.Length < Magic.Length || !bytes[..Magic.Length].SequenceEqual(Magic))
            Fail(source, "not a manifest (bad magic)");
        r.Skip(Magic.Length);
        ushort version = r.U16("version");
        if (version is not (1 or Version))
            Fail(source, $"format version {version} is not supported (this build reads 1 and {Version})");
        r.U16("flags");
        uint total = r.U32("length");
        if (total != bytes.Length)
        {
            Fail(source, total > bytes.Length
                ? $"truncated: {bytes.Length} of {total} bytes"
                : $"{bytes.Length} bytes where the header says {total}");
        }
        Span<byte> sum = stackalloc byte[TrailerSize];
        ContentHash.Compute(bytes[..^TrailerSize], sum);
        if (!sum.SequenceEqual(bytes[^TrailerSize..]))
            Fail(source, "checksum mismatch (the manifest was altered or damaged)");

        var id = r.Bytes(16, "id").ToArray();
        byte layer = r.U8("layer");
        if (layer > (byte)LayerKind.Function) Fail(source, $"unknown layer kind {layer}");
        byte suite = r.U8("cipher suite");
        if (suite != CipherSuite) Fail(source, $"unknown cipher suite {suite}");
        uint chunkSize = r.U32("chunk size");
        if (chunkSize != ChunkGeometry.ChunkSize) Fail(source, $"chunk size {chunkSize} is not supported");
        ulong imageSize = r.U64("image size");
        if (imageSize == 0 || imageSize > ChunkGeometry.MaxImageSize)
            Fail(source, $"image size {imageSize} is out of range");
        long created = r.I64("created");
        ulong sequence = version >= 2 ? r.U64("sequence") : 0;
        if (sequence > long.MaxValue) Fail(source, $"sequence {sequence} is out of range");
        string name = r.Str8("name");
        if (!SnapshotName.IsValid(name)) Fail(source, "invalid snapshot name");
        string domainId = r.Str8("domain");
        if (!TrustDomain.TryParse(domainId, out var domain)) Fail(source, $"invalid trust domain '{domainId}'");
        if (domain.IsShared == (layer == (byte)LayerKind.Function))
            Fail(source, $"a {((LayerKind)layer).ToText()} layer cannot be in domain '{domainId}'");
        var salt = r.Bytes8("salt").ToArray();
        string parent = r.Str8("parent name");
        byte[]? parentHash = null;
        if (parent.Length > 0)
        {
            if (!SnapshotName.IsValid(parent)) Fail(source, "invalid parent name");
            parentHash = r.Bytes(ContentHash.Size, "parent hash").ToArray();
        }
        var wrapped = r.Bytes8("wrapped layer key").ToArray();
        uint count = r.U32("entry count");
        int chunkCount = ChunkGeometry.ChunkCount((long)imageSize);
        if (count > (uint)chunkCount) Fail(source, $"{count} entries for an image of {chunkCount} chunks");
        if ((long)count * EntrySize > r.Remaining) Fail(source, $"truncated: {count} entries do not fit");
        var entries = new ManifestEntry[count];
        int previous = -1;
        for (int i = 0; i < entries.Length; i++)
        {
            int index = (int)r.U32("entry index");
            if (index <= previous || index >= chunkCount)
                Fail(source, $"entry {i} has index {index} (out of order or out of range)");
            byte kind = r.U8("entry kind");
            if (kind > (byte)EntryKind.Data) Fail(source, $"entry {i} has unknown kind {kind}");
            var chunkName = ChunkName.FromBytes(r.Bytes(ChunkName.Length, "chunk name"));
            entries[i] = new ManifestEntry(index, (EntryKind)kind, chunkName);
            previous = index;
        }
        uint sealedLength = r.U32("key table length");
        int authenticated = r.Position;
        if (sealedLength != count * (long)ChunkSecret.Size + SealedBox.Overhead)
            Fail(source, "key table length does not match the entries");
        var sealedTable = r.Bytes((int)sealedLength, "key table").ToArray();
        if (r.Remaining != TrailerSize) Fail(source, "unexpected bytes after the key table");

        return new Manifest
        {
            Id = id, Name = name, Layer = (LayerKind)layer, Domain = domain, Salt = salt,
            ImageSize = (long)imageSize, ChunkSize = (int)chunkSize,
            Created = DateTimeOffset.FromUnixTimeMilliseconds(created), Sequence = (long)sequence,
            ParentName = parent.Length > 0 ? parent : null, ParentHash = parentHash,
            WrappedLayerKey = wrapped, Entries = entries,
            SealedKeyTable = sealedTable, AuthenticatedLength = authenticated,
            Raw = bytes.ToArray(), Hash = bytes[^TrailerSize..].ToArray(),
        };
    }

    /// <summary>Unwraps the layer key and opens the key table; throws when the caller lacks the key or the
    /// manifest was not made with it.</summary>
    public static ChunkSecret[] OpenKeyTable(Manifest m, IKeyProvider keys)
    {
        var layerKey = keys.UnwrapLayerKey(m.Domain, m.WrappedLayerKey, LayerKeyContext(m.Id, m.Domain));
        try
        {
            if (!SealedBox.TryOpen(layerKey, m.SealedKeyTable, m.Raw.AsSpan(0, m.AuthenticatedLength), out var table))
            {
                throw new ManifestFormatException(
                    $"manifest '{m.Name}': the key table does not authenticate (altered manifest)");
            }
            var secrets = new ChunkSecret[m.Entries.Length];
            for (int i = 0; i < secrets.Length; i++)
            {
                var slot = table.AsSpan(i * ChunkSecret.Size, ChunkSecret.Size);
                secrets[i] = new ChunkSecret(slot[..32], slot[32..]);
            }
            System.Security.Cryptography.CryptographicOperations.ZeroMemory(table);
            return secrets;
        }
        finally
        {
            System.Security.Cryptography.CryptographicOperations.ZeroMemory(layerKey);
        }
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private static void Fail(string source, string what) =>
        throw new ManifestFormatException($"manifest {source}: {what}");

    private ref struct Reader(ReadOnlySpan<byte> bytes, string source)
    {
        private readonly ReadOnlySpan<byte> _bytes = bytes;
        public int Position { get; private set; }
        public readonly int Remaining => _bytes.Length - Position;

        public ReadOnlySpan<byte> Bytes(int n, string field)
        {
            if (n < 0 || n > Remaining) Fail(source, $"truncated at byte {Position} reading {field}");
            var s = _bytes.Slice(Position, n);
            Position += n;
            return s;
        }

        public void Skip(int n) => Bytes(n, "header");
        public byte U8(string f) => Bytes(1, f)[0];
        public ushort U16(string f) => BinaryPrimitives.ReadUInt16LittleEndian(Bytes(2, f));
        public uint U32(string f) => BinaryPrimitives.ReadUInt32LittleEndian(Bytes(4, f));
        public ulong U64(string f) => BinaryPrimitives.ReadUInt64LittleEndian(Bytes(8, f));
        public long I64(string f) => BinaryPrimitives.ReadInt64LittleEndian(Bytes(8, f));
        public ReadOnlySpan<byte> Bytes8(string f) => Bytes(U8(f), f);

        public string Str8(string f)
        {
            var b = Bytes8(f);
            try { return new UTF8Encoding(false, true).GetString(b); }
            catch (DecoderFallbackException) { Fail(source, $"{f} is not valid UTF-8"); return ""; }
        }
    }
}
