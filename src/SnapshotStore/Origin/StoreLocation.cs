namespace Snapshots.Store.Origin;

/// <summary>Opens an origin from its address: a directory path or file://DIR (the embedded default).</summary>
public static class StoreLocation
{
    public static IBlobStore Open(string address, bool create)
    {
        if (string.IsNullOrWhiteSpace(address)) throw new InvalidInputException("--store is required (a directory or file://DIR)");
        if (address.StartsWith("file://", StringComparison.Ordinal)) return new FileBlobStore(address["file://".Length..], create);
        if (address.Contains("://", StringComparison.Ordinal))
            throw new InvalidInputException($"store '{address}': unsupported scheme (this build supports a directory or file://DIR)");
        return new FileBlobStore(address, create);
    }
}
