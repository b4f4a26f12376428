using Amazon.Runtime;
using Snapshots.Store.Origin;

namespace Snapshots.Tests.Services;

/// <summary>An s3rver on one loopback port, started by scripts/services/s3rver.sh; data kept in its own
/// directory so a restart keeps the objects.</summary>
public sealed class S3Server : IDisposable
{
    public const string AccessKey = "S3RVER", SecretKey = "S3RVER";
    public int Port { get; }
    public string Endpoint => $"http://127.0.0.1:{Port}";
    private readonly Dictionary<string, string> _env;
    private readonly string _state;

    public S3Server(int port)
    {
        Port = port;
        _state = ServiceScripts.StateDir($"s3rver-{port}");
        if (Directory.Exists(_state)) Directory.Delete(_state, recursive: true);
        _env = new()
        {
            ["S3_PORT"] = port.ToString(), ["S3_STATE"] = _state, ["S3_DIR"] = Path.Combine(_state, "data"),
        };
        Start();
    }

    /// <summary>Where s3rver keeps the objects (for tests that damage one).</summary>
    public string DataDir => Path.Combine(_state, "data");

    public void Start() => ServiceScripts.Run("s3rver.sh", "start", _env);
    public void Stop() => ServiceScripts.Run("s3rver.sh", "stop", _env);

    public static BasicAWSCredentials Credentials => new(AccessKey, SecretKey);

    /// <summary>A store under a fresh prefix, so tests sharing the server never see each other's objects.</summary>
    public S3BlobStore NewStore(string? prefix = null, double timeoutSeconds = 5) =>
        new(S3Address.Parse(Address(prefix ?? Guid.NewGuid().ToString("N"), timeoutSeconds)), create: true,
            Credentials);

    public string Address(string prefix, double timeoutSeconds = 5) =>
        $"s3://snapshots-test/{prefix}?endpoint={Endpoint}"
        + $"&timeout={timeoutSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture)}";

    public void Dispose()
    {
        try { Stop(); } catch (InvalidOperationException) { }
        try { Directory.Delete(_state, recursive: true); } catch (IOException) { }
    }
}
