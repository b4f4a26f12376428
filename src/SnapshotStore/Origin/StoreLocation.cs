namespace Snapshots.Store.Origin;

/// <summary>Opens an origin from its address: a directory path or file://DIR (the embedded default), or
/// s3://BUCKET/PREFIX?endpoint=URL (see <see cref="S3Address"/>).</summary>
public static class StoreLocation
{
    public static IBlobStore Open(string address, bool create)
    {
        if (string.IsNullOrWhiteSpace(address))
            throw new InvalidInputException(
                "no store given: a directory, file://DIR or s3://BUCKET/PREFIX?endpoint=URL", "store");
        if (address.StartsWith("file://", StringComparison.Ordinal))
            return new FileBlobStore(address["file://".Length..], create);
        if (address.StartsWith(S3Address.Scheme, StringComparison.Ordinal))
            return new S3BlobStore(S3Address.Parse(address), create);
        if (address.Contains("://", StringComparison.Ordinal))
            throw new InvalidInputException(
                $"store '{address}': unsupported scheme (use a directory, file://DIR or s3://BUCKET/PREFIX)", "store");
        return new FileBlobStore(address, create);
    }
}
