namespace Snapshots.Tests.Services;

/// <summary>
/// One s3rver (port 4600) and one 3-master Redis Cluster (ports 7101-7103) shared by the tests that do not
/// break them; tests that kill, stall or restart a service start their own on other ports. The ports are this
/// project's test range (s3rver 4600-4609, Redis 7101-7199; the password and TLS clusters of CloudAuthTests
/// 7201-7219; the container-credentials endpoint of CloudAuthTests 4605).
/// </summary>
public sealed class ServicesFixture : IDisposable
{
    public S3Server S3 { get; }
    public RedisCluster Redis { get; }

    public ServicesFixture()
    {
        // The SDK's credentials for everything in this process that does not pass its own.
        Environment.SetEnvironmentVariable("AWS_ACCESS_KEY_ID", S3Server.AccessKey);
        Environment.SetEnvironmentVariable("AWS_SECRET_ACCESS_KEY", S3Server.SecretKey);
        // No EC2 here: the SDK's chain must not spend seconds asking for instance metadata (docs/tiers.md).
        Environment.SetEnvironmentVariable("AWS_EC2_METADATA_DISABLED", "true");
        S3 = new S3Server(4600);
        try { Redis = new RedisCluster(7101, 3); }
        catch { S3.Dispose(); throw; }
    }

    public void Dispose()
    {
        Redis.Dispose();
        S3.Dispose();
    }
}

/// <summary>Tests against the real services run one at a time: they share ports and the machine's two cores.</summary>
[CollectionDefinition(Name)]
public sealed class ServicesCollection : ICollectionFixture<ServicesFixture>
{
    public const string Name = "real services";
}
