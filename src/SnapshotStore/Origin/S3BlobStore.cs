using System.Net;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Amazon.Runtime;
using Amazon.Runtime.Credentials;
using Amazon.S3;
using Amazon.S3.Model;

namespace Snapshots.Store.Origin;

/// <summary>
/// The origin on S3 (AWS, MinIO, s3rver): the same object layout as the file origin under a bucket prefix.
/// S3 differences, handled here so builder, exporter, verifier and gc work unchanged:
/// - put-if-absent is HEAD then PUT: conditional PUT is not honoured everywhere (s3rver ignores it), and two
///   writers of one chunk name write identical bytes, so the race is harmless;
/// - a PUT is durable and atomic when it returns, so <see cref="FlushAsync"/> has nothing to do and the
///   manifest, written last by the builder, is never visible before its chunks;
/// - move is copy + delete (gc's trash); append (a build's lease, one writer) is read-modify-write.
/// Every upload is sent unchunked (UseChunkEncoding = false): with aws-chunked framing some S3 servers store
/// the framing inside the object. Checksums only when required, for the same reason.
/// </summary>
public sealed partial class S3BlobStore : IBlobStore, IDisposable
{
    private readonly AmazonS3Client _s3;
    private readonly S3Address _address;
    private readonly bool _create;
    private Task? _bucketReady;
    private readonly Dictionary<string, byte[]> _appended = []; // what this process last wrote to each appended object

    /// <summary>A client for <paramref name="address"/>. Endpoint: the address's ?endpoint= if given, else the
    /// SDK's own AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL (or a profile's endpoint_url), else AWS itself; any
    /// configured endpoint is addressed path-style (MinIO, s3rver). Region: ?region=, else the SDK's (AWS_REGION,
    /// the profile), else us-east-1. Credentials: <paramref name="credentials"/>, else the SDK's default chain,
    /// resolved here so that none is an <see cref="InvalidInputException"/> naming where they are looked for.
    /// <paramref name="create"/>: a missing bucket is made on the first write (init) instead of being an error.
    /// </summary>
    public S3BlobStore(S3Address address, bool create, AWSCredentials? credentials = null, int maxErrorRetry = 2)
    {
        ArgumentNullException.ThrowIfNull(address);
        _create = create;
        var config = new AmazonS3Config
        {
            RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED,
            ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED,
            // A few retries with backoff, under the SDK's retry quota (a token bucket): a blip is absorbed,
            // a dead origin is not hammered.
            RetryMode = RequestRetryMode.Standard,
            MaxErrorRetry = maxErrorRetry,
            Timeout = address.RequestTimeout,
            ConnectTimeout = TimeSpan.FromSeconds(Math.Min(3, address.RequestTimeout.TotalSeconds)),
            MaxConnectionsPerServer = 64,
        };
        // The SDK reads AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL and the profile's endpoint_url itself: its
        // ServiceURL getter answers with them until RegionEndpoint is set, which would discard them.
        var endpoint = address.Endpoint ?? config.ServiceURL?.TrimEnd('/');
        var region = address.Region ?? FallbackRegionFactory.GetRegionEndpoint()?.SystemName ?? "us-east-1";
        if (endpoint is not null)
        {
            config.ServiceURL = endpoint; // ?endpoint= overrides the environment's
            config.ForcePathStyle = true;
            config.AuthenticationRegion = region;
        }
        else
        {
            config.RegionEndpoint = Amazon.RegionEndpoint.GetBySystemName(region);
        }
        _address = address with { Endpoint = endpoint, Region = region };
        _s3 = new AmazonS3Client(credentials ?? ResolveCredentials(config, _address.Describe), config);
    }

    /// <summary>The SDK's default chain: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY(/AWS_SESSION_TOKEN); the profile
    /// AWS_PROFILE (or "default") in AWS_SHARED_CREDENTIALS_FILE / AWS_CONFIG_FILE (~/.aws), with SSO,
    /// credential_process and role assumption; web identity (AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN, IRSA);
    /// ECS/EKS container credentials; EC2 instance metadata, unless AWS_EC2_METADATA_DISABLED=true (off EC2 that
    /// lookup costs seconds). Providers that need another SDK package (SSO, SSOOIDC, SecurityToken) find it
    /// because this assembly references them.</summary>
    private static AWSCredentials ResolveCredentials(AmazonS3Config config, string store)
    {
        try
        {
            return DefaultAWSCredentialsIdentityResolver.GetCredentials(config);
        }
        catch (AmazonClientException ex)
        {
            throw new InvalidInputException($"{store}: no AWS credentials found by the SDK's default chain "
                + "(AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; the profile AWS_PROFILE or 'default' in "
                + "~/.aws or AWS_SHARED_CREDENTIALS_FILE / AWS_CONFIG_FILE; AWS_WEB_IDENTITY_TOKEN_FILE with "
                + "AWS_ROLE_ARN; ECS/EKS container credentials; EC2 instance metadata unless "
                + $"AWS_EC2_METADATA_DISABLED=true): {ex.Message}", "store");
        }
    }

    public S3Address Address => _address;

    /// <summary>Keys per LIST page (tests make it small to cross page boundaries).</summary>
    internal int ListPageSize { get; set; } = 1000;
    public string Describe => _address.Describe;

    private string KeyOf(string key)
    {
        if (key.Length == 0 || key.Contains("..", StringComparison.Ordinal) || key.StartsWith('/'))
            throw new ArgumentException($"invalid object key '{key}'");
        return _address.Prefix + key;
    }

    public async ValueTask<int?> ReadAsync(string key, Memory<byte> destination, CancellationToken ct = default)
    {
        var request = new GetObjectRequest { BucketName = _address.Bucket, Key = KeyOf(key) };
        try
        {
            using var response = await _s3.GetObjectAsync(request, ct);
            long length = response.ContentLength;
            if (length < 0) throw new SnapshotException($"GET {key} from {Describe}: the answer announced no length");
            if (length > destination.Length)
            {
                throw new SnapshotException(
                    $"object {key} in {Describe} is {length} bytes, larger than the {destination.Length} expected");
            }
            // The announced length is read exactly; a body that ends early is an error, not a short chunk.
            int total = (int)length;
            try { await response.ResponseStream.ReadExactlyAsync(destination[..total], ct); }
            catch (EndOfStreamException)
            {
                throw new SnapshotException(
                    $"GET {key} from {Describe}: the answer ended before the {length} bytes it announced");
            }
            return total;
        }
        catch (AmazonS3Exception ex) when (IsNotFound(ex)) { return null; }
        catch (Exception ex) when (Translatable(ex, ct)) { throw Fail("GET", key, ex); }
    }

    /// <summary>Whole small objects (manifests, plans, the store marker): a transient failure (5xx, SlowDown, a refused
    /// or reset connection, a timeout) is retried with full-jitter backoff for <see cref="MetadataRetry"/>'s window,
    /// on top of the SDK's own retries: one manifest read must not fail a restore that a chunk read, retried by the
    /// tiered reader, would survive (snapbench origin-errors). Chunks go through <see cref="ReadAsync"/>, whose
    /// caller retries.</summary>
    public async ValueTask<byte[]?> ReadAllAsync(string key, int maxBytes, CancellationToken ct = default)
    {
        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                return await ReadAllOnceAsync(key, maxBytes, ct);
            }
            catch (SnapshotException ex) when (IsTransient(ex.InnerException) && !ct.IsCancellationRequested)
            {
                var delay = MetadataRetry.Backoff(attempt, Random.Shared);
                if (System.Diagnostics.Stopwatch.GetElapsedTime(start) + delay >= MetadataRetry.Window) throw;
                await Task.Delay(delay, ct);
            }
        }
    }

    /// <summary>How long a whole-object read is retried after a transient failure.</summary>
    public static Tiers.RetryPolicy MetadataRetry { get; } = new() { Window = TimeSpan.FromSeconds(3) };

    private static bool IsTransient(Exception? ex) => ex switch
    {
        AmazonServiceException svc => (int)svc.StatusCode >= 500 || svc.StatusCode == 0,
        AmazonClientException or HttpRequestException or IOException or OperationCanceledException => true,
        _ => false,
    };

    private async ValueTask<byte[]?> ReadAllOnceAsync(string key, int maxBytes, CancellationToken ct)
    {
        var request = new GetObjectRequest { BucketName = _address.Bucket, Key = KeyOf(key) };
        try
        {
            using var response = await _s3.GetObjectAsync(request, ct);
            long length = response.ContentLength;
            if (length > maxBytes)
            {
                throw new SnapshotException(
                    $"object {key} in {Describe} is {length} bytes, over the {maxBytes}-byte limit");
            }
            var bytes = new byte[length];
            await response.ResponseStream.ReadExactlyAsync(bytes, ct);
            return bytes;
        }
        catch (AmazonS3Exception ex) when (IsNotFound(ex)) { return null; }
        catch (EndOfStreamException ex) { throw Fail("GET", key, ex); }
        catch (Exception ex) when (Translatable(ex, ct)) { throw Fail("GET", key, ex); }
    }

    public async ValueTask<bool> ExistsAsync(string key, CancellationToken ct = default)
    {
        try
        {
            await _s3.GetObjectMetadataAsync(
                new GetObjectMetadataRequest { BucketName = _address.Bucket, Key = KeyOf(key) }, ct);
            return true;
        }
        catch (AmazonS3Exception ex) when (IsNotFound(ex)) { return false; }
        catch (Exception ex) when (Translatable(ex, ct)) { throw Fail("HEAD", key, ex); }
    }

    public async ValueTask<bool> PutIfAbsentAsync(string key, ReadOnlyMemory<byte> data, CancellationToken ct = default)
    {
        if (await ExistsAsync(key, ct)) return false;
        await PutAsync(key, data, ct);
        return true;
    }

    public async ValueTask PutAsync(string key, ReadOnlyMemory<byte> data, CancellationToken ct = default)
    {
        await EnsureBucketAsync(ct);
        var stream = MemoryMarshal.TryGetArray(data, out var segment)
            ? new MemoryStream(segment.Array!, segment.Offset, segment.Count, writable: false)
            : new MemoryStream(data.ToArray(), writable: false);
        var request = new PutObjectRequest
        {
            BucketName = _address.Bucket, Key = KeyOf(key), InputStream = stream, AutoCloseStream = true,
            UseChunkEncoding = false, // see the class comment: never aws-chunked
        };
        try { await _s3.PutObjectAsync(request, ct); }
        catch (Exception ex) when (Translatable(ex, ct)) { throw Fail("PUT", key, ex); }
    }

    public async ValueTask<bool> PutNewAsync(string key, ReadOnlyMemory<byte> data, CancellationToken ct = default)
    {
        await EnsureBucketAsync(ct);
        var request = new PutObjectRequest
        {
            BucketName = _address.Bucket, Key = KeyOf(key), InputStream = new MemoryStream(data.ToArray(), false),
            AutoCloseStream = true, UseChunkEncoding = false, IfNoneMatch = "*",
        };
        try
        {
            await _s3.PutObjectAsync(request, ct);
            return true;
        }
        catch (AmazonS3Exception ex) when (ex.StatusCode is System.Net.HttpStatusCode.PreconditionFailed
            or System.Net.HttpStatusCode.Conflict)
        {
            return false; // another writer published the name first (409: a concurrent conditional PUT)
        }
        catch (Exception ex) when (Translatable(ex, ct)) { throw Fail("PUT", key, ex); }
    }

    public async ValueTask AppendAsync(string key, ReadOnlyMemory<byte> data, CancellationToken ct = default)
    {
        // Only the lease's one writer appends, so read-modify-write cannot lose a concurrent append. What this
        // process wrote last is kept, so an append is one PUT (re-reading an object just overwritten can meet
        // a server that serves the new headers with the old body).
        await EnsureBucketAsync(ct);
        byte[]? existing;
        lock (_appended) _appended.TryGetValue(key, out existing);
        existing ??= await ReadAllAsync(key, 64 << 20, ct) ?? [];
        var combined = new byte[existing.Length + data.Length];
        existing.CopyTo(combined, 0);
        data.Span.CopyTo(combined.AsSpan(existing.Length));
        await PutAsync(key, combined, ct);
        lock (_appended) _appended[key] = combined;
    }

    public async IAsyncEnumerable<BlobInfo> ListAsync(
        string prefix, [EnumeratorCancellation] CancellationToken ct = default)
    {
        var request = new ListObjectsV2Request
        {
            // "" is the whole store: everything under the address's prefix (the bucket, without one).
            BucketName = _address.Bucket, Prefix = prefix.Length == 0 ? _address.Prefix : KeyOf(prefix),
            MaxKeys = ListPageSize,
        };
        while (true)
        {
            ListObjectsV2Response response;
            try { response = await _s3.ListObjectsV2Async(request, ct); }
            catch (AmazonS3Exception ex) when (ex.ErrorCode == "NoSuchBucket" && _create) { yield break; }
            catch (Exception ex) when (Translatable(ex, ct)) { throw Fail("LIST", prefix, ex); }
            foreach (var o in response.S3Objects ?? [])
            {
                if (!o.Key.StartsWith(_address.Prefix, StringComparison.Ordinal)) continue;
                var modified = o.LastModified is { } t
                    ? new DateTimeOffset(t.ToUniversalTime())
                    : DateTimeOffset.UtcNow;
                yield return new BlobInfo(o.Key[_address.Prefix.Length..], o.Size ?? 0, modified);
            }
            if (response.IsTruncated != true || string.IsNullOrEmpty(response.NextContinuationToken)) yield break;
            request.ContinuationToken = response.NextContinuationToken;
        }
    }

    public async ValueTask DeleteAsync(string key, CancellationToken ct = default)
    {
        lock (_appended) _appended.Remove(key);
        try
        {
            await _s3.DeleteObjectAsync(new DeleteObjectRequest { BucketName = _address.Bucket, Key = KeyOf(key) }, ct);
        }
        catch (AmazonS3Exception ex) when (IsNotFound(ex)) { }
        catch (Exception ex) when (Translatable(ex, ct)) { throw Fail("DELETE", key, ex); }
    }

    public async ValueTask<bool> MoveAsync(string fromKey, string toKey, CancellationToken ct = default)
    {
        var copy = new CopyObjectRequest
        {
            SourceBucket = _address.Bucket, SourceKey = KeyOf(fromKey),
            DestinationBucket = _address.Bucket, DestinationKey = KeyOf(toKey),
        };
        try { await _s3.CopyObjectAsync(copy, ct); }
        catch (AmazonS3Exception ex) when (IsNotFound(ex)) { return false; }
        catch (Exception ex) when (Translatable(ex, ct)) { throw Fail("COPY", fromKey, ex); }
        await DeleteAsync(fromKey, ct);
        return true;
    }

    /// <summary>Nothing to do: an S3 PUT is durable when it returns.</summary>
    public ValueTask FlushAsync(CancellationToken ct = default) => ValueTask.CompletedTask;

    private Task EnsureBucketAsync(CancellationToken ct)
    {
        if (!_create) return Task.CompletedTask;
        return _bucketReady ??= CreateBucketAsync(ct);
    }

    private async Task CreateBucketAsync(CancellationToken ct)
    {
        try { await _s3.PutBucketAsync(new PutBucketRequest { BucketName = _address.Bucket }, ct); }
        catch (AmazonS3Exception ex) when (ex.ErrorCode is "BucketAlreadyOwnedByYou" or "BucketAlreadyExists") { }
        catch (Exception ex) when (Translatable(ex, ct))
        {
            _bucketReady = null;
            throw Fail("CREATE BUCKET", "", ex);
        }
    }

    /// <summary>The object is absent. A missing bucket is absent too while creating (init, before its first
    /// write makes the bucket); otherwise it is an error (<see cref="Fail"/>), so a mistyped bucket is never
    /// taken for an empty store.</summary>
    private bool IsNotFound(AmazonS3Exception ex) =>
        ex.StatusCode == HttpStatusCode.NotFound && (ex.ErrorCode is not "NoSuchBucket" || _create);

    public void Dispose() => _s3.Dispose();
}
