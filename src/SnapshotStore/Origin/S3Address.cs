namespace Snapshots.Store.Origin;

/// <summary>
/// An S3 origin's address: s3://BUCKET[/PREFIX][?endpoint=http://HOST:PORT&amp;region=R&amp;timeout=SECONDS].
/// Endpoint and Region are null when the address does not set them: the SDK then finds them (AWS_ENDPOINT_URL_S3,
/// AWS_ENDPOINT_URL, AWS_REGION, the profile; see <see cref="S3BlobStore"/>), and the store's
/// <see cref="S3BlobStore.Address"/> holds what was found. Without an endpoint it is AWS itself (virtual-host
/// style); with one (MinIO, s3rver) path style is used.
/// </summary>
public sealed record S3Address(string Bucket, string Prefix, string? Endpoint, string? Region, TimeSpan RequestTimeout)
{
    public const string Scheme = "s3://";

    public string Describe => $"s3://{Bucket}/{Prefix}" + (Endpoint is null ? "" : $" at {Endpoint}");

    public static S3Address Parse(string address)
    {
        if (!address.StartsWith(Scheme, StringComparison.Ordinal))
            throw new InvalidInputException($"store '{address}' is not an s3:// address", "store");
        var rest = address[Scheme.Length..];
        string query = "";
        int q = rest.IndexOf('?');
        if (q >= 0) { query = rest[(q + 1)..]; rest = rest[..q]; }
        int slash = rest.IndexOf('/');
        var bucket = slash < 0 ? rest : rest[..slash];
        var prefix = slash < 0 ? "" : rest[(slash + 1)..].Trim('/');
        if (bucket.Length is < 3 or > 63 || !IsBucketName(bucket))
            throw new InvalidInputException(
                $"store '{address}': '{bucket}' is not a valid bucket name (3-63 of a-z 0-9 . -)", "store");
        if (prefix.Length > 0) prefix += "/";

        string? endpoint = null;
        string? region = null;
        var timeout = TimeSpan.FromSeconds(10);
        foreach (var pair in query.Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            int eq = pair.IndexOf('=');
            var key = eq < 0 ? pair : pair[..eq];
            var value = eq < 0 ? "" : Uri.UnescapeDataString(pair[(eq + 1)..]);
            switch (key)
            {
                case "endpoint":
                    if (!Uri.TryCreate(value, UriKind.Absolute, out var uri)
                        || (uri.Scheme != "http" && uri.Scheme != "https"))
                        throw new InvalidInputException(
                            $"store '{address}': endpoint '{value}' is not an http(s) URL", "store");
                    endpoint = value.TrimEnd('/');
                    break;
                case "region":
                    if (value.Length == 0)
                        throw new InvalidInputException($"store '{address}': region is empty", "store");
                    region = value;
                    break;
                case "timeout":
                    if (!double.TryParse(value, System.Globalization.CultureInfo.InvariantCulture, out var s) || s <= 0)
                        throw new InvalidInputException(
                            $"store '{address}': timeout '{value}' is not a positive number of seconds", "store");
                    timeout = TimeSpan.FromSeconds(s);
                    break;
                default:
                    throw new InvalidInputException(
                        $"store '{address}': unknown option '{key}' (endpoint, region, timeout)", "store");
            }
        }
        return new S3Address(bucket, prefix, endpoint, region, timeout);
    }

    private static bool IsBucketName(string b)
    {
        foreach (var c in b)
            if (!(c is >= 'a' and <= 'z' or >= '0' and <= '9' or '.' or '-')) return false;
        return true;
    }
}
