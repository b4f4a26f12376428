using Amazon.Runtime;
using Amazon.Runtime.CredentialManagement;

namespace Snapshots.Store.Origin;

/// <summary>
/// Credentials the usual way, minus the instance-metadata lookup: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY
/// (/ AWS_SESSION_TOKEN), else the profile AWS_PROFILE (or "default") from ~/.aws. The SDK's own chain would
/// fall back to the EC2 metadata address, which on a machine that is not in EC2 costs seconds per start.
/// </summary>
public static class S3Credentials
{
    public static AWSCredentials Resolve(string store)
    {
        var key = Environment.GetEnvironmentVariable("AWS_ACCESS_KEY_ID");
        var secret = Environment.GetEnvironmentVariable("AWS_SECRET_ACCESS_KEY");
        if (!string.IsNullOrEmpty(key) && !string.IsNullOrEmpty(secret))
        {
            var token = Environment.GetEnvironmentVariable("AWS_SESSION_TOKEN");
            return string.IsNullOrEmpty(token)
                ? new BasicAWSCredentials(key, secret)
                : new SessionAWSCredentials(key, secret, token);
        }
        var profile = Environment.GetEnvironmentVariable("AWS_PROFILE") ?? "default";
        if (new CredentialProfileStoreChain().TryGetAWSCredentials(profile, out var fromProfile)) return fromProfile;
        throw new InvalidInputException(
            $"{store}: no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
            + $"or a profile '{profile}' in ~/.aws/credentials (AWS_PROFILE)");
    }
}
