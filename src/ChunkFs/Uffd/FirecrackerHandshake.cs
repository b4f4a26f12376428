using System.Text.Json;
using Snapshots.Store;

namespace Snapshots.ChunkFs.Uffd;

/// <summary>
/// Firecracker's one message to a page-fault handler: a JSON array of regions
/// ({"base_host_virt_addr","size","offset","page_size"}), sent with the uffd as SCM_RIGHTS. Parsed strictly:
/// every region page-aligned, none overlapping in the VMM or in the file, none beyond the snapshot.
/// </summary>
public static class FirecrackerHandshake
{
    public const int MaxBytes = 64 * 1024;
    public const int MaxRegions = 64;
    public const ulong SupportedPageSize = 4096;

    public static GuestRegion[] Parse(ReadOnlySpan<byte> json, long snapshotSize)
    {
        if (json.Length == 0) throw Bad("empty message");
        if (json.Length > MaxBytes) throw Bad($"{json.Length} bytes is over the {MaxBytes}-byte limit");
        var regions = new List<GuestRegion>();
        try
        {
            var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = 4 });
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartArray)
                throw Bad("expected a JSON array of regions");
            while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
            {
                if (reader.TokenType != JsonTokenType.StartObject) throw Bad("expected a region object");
                if (regions.Count == MaxRegions) throw Bad($"more than {MaxRegions} regions");
                regions.Add(ReadRegion(ref reader, regions.Count));
            }
            if (reader.TokenType != JsonTokenType.EndArray) throw Bad("unterminated array");
            if (reader.Read()) throw Bad("trailing data after the array");
        }
        catch (JsonException ex)
        {
            throw Bad($"not valid JSON ({ex.Message})");
        }
        if (regions.Count == 0) throw Bad("no regions");
        Validate(regions, snapshotSize);
        return [.. regions];
    }

    private static GuestRegion ReadRegion(ref Utf8JsonReader reader, int index)
    {
        ulong? baseAddr = null, size = null, offset = null, pageSize = null;
        while (reader.Read() && reader.TokenType != JsonTokenType.EndObject)
        {
            if (reader.TokenType != JsonTokenType.PropertyName) throw Bad($"region {index}: expected a field name");
            var field = reader.GetString();
            if (!reader.Read()) break;
            if (reader.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray) { reader.Skip(); continue; }
            ulong number = 0;
            bool isNumber = reader.TokenType == JsonTokenType.Number && reader.TryGetUInt64(out number);
            ulong value = isNumber ? number : 0;
            switch (field)
            {
                case "base_host_virt_addr": baseAddr = Need(isNumber, value, index, field); break;
                case "size": size = Need(isNumber, value, index, field); break;
                case "offset": offset = Need(isNumber, value, index, field); break;
                case "page_size": pageSize = Need(isNumber, value, index, field); break;
                // Older Firecracker releases.
                case "page_size_kib": pageSize = Need(isNumber, value, index, field) * 1024; break;
                default: break; // newer fields are ignored, as Firecracker's own handler does
            }
        }
        if (baseAddr is null || size is null || offset is null || pageSize is null)
            throw Bad($"region {index}: needs base_host_virt_addr, size, offset and page_size");
        return new GuestRegion(baseAddr.Value, size.Value, offset.Value, pageSize.Value);
    }

    private static ulong Need(bool isNumber, ulong value, int index, string? field) =>
        isNumber ? value : throw Bad($"region {index}: {field} must be a non-negative integer");

    private static void Validate(List<GuestRegion> regions, long snapshotSize)
    {
        for (int i = 0; i < regions.Count; i++)
        {
            var r = regions[i];
            if (r.PageSize != SupportedPageSize)
                throw Bad($"region {i}: page size {r.PageSize} is not supported (only 4096)");
            if (r.Size == 0 || r.Size % r.PageSize != 0)
                throw Bad($"region {i}: size {r.Size} is not a positive multiple of the page size");
            if (r.BaseHostVirtAddr % r.PageSize != 0 || r.Offset % r.PageSize != 0)
                throw Bad($"region {i}: base or offset is not page-aligned");
            if (r.BaseHostVirtAddr + r.Size < r.BaseHostVirtAddr || r.Offset + r.Size < r.Offset)
                throw Bad($"region {i}: wraps around");
            if (r.Offset + r.Size > (ulong)snapshotSize)
            {
                throw Bad($"region {i} (offset {r.Offset}, size {r.Size}) is larger than the snapshot "
                    + $"({snapshotSize} bytes)");
            }
            for (int j = 0; j < i; j++)
            {
                var o = regions[j];
                if (r.BaseHostVirtAddr < o.End && o.BaseHostVirtAddr < r.End)
                    throw Bad($"regions {j} and {i} overlap in the VMM's address space");
                if (r.Offset < o.Offset + o.Size && o.Offset < r.Offset + r.Size)
                    throw Bad($"regions {j} and {i} overlap in the memory file");
            }
        }
    }

    private static InvalidInputException Bad(string what) => new InvalidInputException($"uffd handshake: {what}");
}
