namespace Snapshots.Store.Origin;

/// <summary>Opens an origin from its address: a directory path or file://DIR (the embedded default), or
/// s3://BUCKET/PREFIX?endpoint=URL (see <see cref="S3Address"/>). Only init passes create = true; every
/// other caller then checks the store's marker (<see cref="StoreMarker.RequireAsync"/>).</summary>
public static class StoreLocation
{
    /// <summary>The blob store at <paramref name="address"/>; <paramref name="create"/> makes the directory (or,
    /// on its first write, the bucket). Without it a missing directory is a <see cref="NotAStoreException"/>.
    /// A bad address is an <see cref="InvalidInputException"/> naming the "store" input.</summary>
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
