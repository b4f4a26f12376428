using System.Net;
using Amazon.Runtime;
using Amazon.S3;

namespace Snapshots.Store.Origin;

public sealed partial class S3BlobStore
{
    /// <summary>True for the failures an operator should read about (not the caller's own cancellation).</summary>
    private static bool Translatable(Exception ex, CancellationToken ct) => ex switch
    {
        SnapshotException => false,
        OperationCanceledException => !ct.IsCancellationRequested,
        AmazonServiceException or AmazonClientException or HttpRequestException or IOException => true,
        _ => false,
    };

    /// <summary>One message that names the operation, the object, the store and what went wrong. A body that fails
    /// the SDK's checksum validation is a damaged object (<see cref="CorruptObjectException"/>), not an outage.
    /// </summary>
    private SnapshotException Fail(string op, string key, Exception ex)
    {
        if (IsChecksumMismatch(ex))
        {
            return new CorruptObjectException($"{op} {key} in {Describe}: the object's bytes do not match its "
                + $"stored checksum (a damaged object: {Innermost(ex).Message})", ex);
        }
        if (ex is AmazonS3Exception { ErrorCode: "NoSuchBucket" })
        {
            var why = $"bucket '{_address.Bucket}' does not exist";
            return new NotAStoreException(Describe, why) { Parameter = "store" };
        }
        var what = ex switch
        {
            AmazonS3Exception { StatusCode: HttpStatusCode.Forbidden } s3 =>
                $"access denied ({s3.ErrorCode}): check the credentials "
                + "the SDK's default chain found (AWS_ACCESS_KEY_ID, AWS_PROFILE, ...; docs/tiers.md)",
            AmazonServiceException svc when (int)svc.StatusCode >= 500 =>
                $"the server answered {(int)svc.StatusCode} {svc.ErrorCode}",
            AmazonServiceException svc when svc.StatusCode != 0 =>
                $"the server answered {(int)svc.StatusCode} {svc.ErrorCode}: {svc.Message}",
            OperationCanceledException => $"no answer within {_address.RequestTimeout.TotalSeconds:0.#} s",
            _ => $"cannot reach the endpoint: {Innermost(ex).Message}",
        };
        return new SnapshotException($"{op} {key} in {Describe}: {what}", ex);
    }

    // The SDK says so only in words ("Expected hash not equal to calculated hash"); no error code carries it.
    private static bool IsChecksumMismatch(Exception ex) =>
        Innermost(ex) is AmazonClientException { Message: var m }
        && m.Contains("hash", StringComparison.OrdinalIgnoreCase)
        && m.Contains("not equal", StringComparison.OrdinalIgnoreCase);

    private static Exception Innermost(Exception ex)
    {
        while (ex.InnerException is { } inner) ex = inner;
        return ex;
    }
}
