using Snapshots.Store.Origin;

namespace Snapshots.Snapbench.Services;

/// <summary>An s3rver of the run's own (scripts/services/s3rver.sh, its data under the work directory) holding a
/// copy of the run's store, object for object, under s3://bench/snap: the origin of the tier scenarios. snapd
/// reaches it directly (<see cref="Address"/>) or through a <see cref="FaultProxy"/>
/// (<see cref="AddressAt"/>).</summary>
public sealed class S3Origin : IAsyncDisposable
{
    private readonly Bench _bench;
    private readonly Dictionary<string, string> _env;

    private S3Origin(Bench bench, int port)
    {
        _bench = bench;
        Port = port;
        _env = new()
        {
            ["S3_PORT"] = $"{port}", ["S3_STATE"] = bench.WorkPath("s3rver"),
            ["S3RVER_HOME"] = Path.Combine(bench.Tools.Root, ".work", "s3rver-home"),
        };
    }

    public int Port { get; }

    /// <summary>The store's address on this s3rver.</summary>
    public string Address => AddressAt(Port);

    /// <summary>The store's address through a proxy listening on PORT.</summary>
    public static string AddressAt(int port) => $"s3://bench/snap?endpoint=http://127.0.0.1:{port}";

    /// <summary>Starts s3rver on PORT and copies every object of the run's file store into it. The S3 client's
    /// credentials (s3rver takes any) go into this process's environment, which the daemons inherit.</summary>
    public static async Task<S3Origin> StartAsync(Bench bench, int port, CancellationToken ct)
    {
        Environment.SetEnvironmentVariable("AWS_ACCESS_KEY_ID", "S3RVER");
        Environment.SetEnvironmentVariable("AWS_SECRET_ACCESS_KEY", "anything");
        Environment.SetEnvironmentVariable("AWS_EC2_METADATA_DISABLED", "true");
        var s3 = new S3Origin(bench, port);
        await ServiceScript.RunAsync(bench, "s3rver.sh", "start", s3._env, TimeSpan.FromMinutes(6));
        try
        {
            await s3.CopyStoreAsync(ct);
        }
        catch
        {
            await s3.DisposeAsync();
            throw;
        }
        return s3;
    }

    private async Task CopyStoreAsync(CancellationToken ct)
    {
        var from = new FileBlobStore(_bench.StoreDir, create: false);
        var to = StoreLocation.Open(Address, create: true);
        long objects = 0, bytes = 0;
        try
        {
            await foreach (var blob in from.ListAsync("", ct))
            {
                var data = await from.ReadAllAsync(blob.Key, (int)Math.Min(int.MaxValue, blob.Size), ct)
                    ?? throw new InvalidOperationException($"store object {blob.Key} vanished while copied");
                await to.PutAsync(blob.Key, data, ct);
                objects++;
                bytes += data.Length;
            }
        }
        finally
        {
            from.Dispose();
            (to as IDisposable)?.Dispose();
        }
        Bench.Log($"s3rver :{Port}: the store copied ({objects} objects, {bytes >> 20} MiB)");
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await ServiceScript.RunAsync(_bench, "s3rver.sh", "stop", _env, TimeSpan.FromSeconds(30));
        }
        catch (Exception ex) when (ex is InvalidOperationException or TimeoutException)
        {
            Bench.Log($"s3rver stop: {ex.Message}");
        }
    }
}
