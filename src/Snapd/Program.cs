using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Prometheus;
using Snapshots.ChunkFs.Uffd;
using Snapshots.Snapd;
using Snapshots.Snapd.Api;
using Snapshots.Snapd.Metrics;
using Snapshots.Snapd.Restores;
using Snapshots.Store;

// snapd: exit 0 after a clean stop, 1 when it could not start or failed, 2 for bad settings.
SnapdSettings settings;
try
{
    if (args is ["--help"] or ["-h"])
    {
        Console.WriteLine("usage: snapd [--config FILE] [--store S] [--cache-dir D] ... (docs/api.md lists them)\n"
            + "       snapd --check-config [...]   print the settings as resolved (JSON) and exit");
        return 0;
    }
    bool check = Array.IndexOf(args, "--check-config") >= 0;
    settings = SnapdConfiguration.Resolve(SnapdConfiguration.Build(Array.FindAll(args, a => a != "--check-config")));
    if (check)
    {
        Console.WriteLine(SnapdConfiguration.Describe(settings));
        return 0;
    }
}
catch (InvalidInputException ex)
{
    Console.Error.WriteLine($"snapd: {ex.Message}");
    return 2;
}

// Everything snapd creates (records, sockets, the API socket) is owner-only from its first moment.
_ = Posix.OwnerOnlyMask();
try
{
    SafeDirectories.CreatePassable(settings.StateDirectory);
    using var instance = InstanceLock.Acquire(settings.StateDirectory);
    string api = Path.GetFullPath(settings.Options.ApiSocket);
    Directory.CreateDirectory(Path.GetDirectoryName(api)!);
    HandshakeListener.RemoveStaleSocket(api, "api-socket");

    var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
    {
        ContentRootPath = AppContext.BaseDirectory,
    });
    builder.Configuration.Sources.Clear();
    builder.Logging.ClearProviders();
    if (settings.LogFormat == "json") builder.Logging.AddJsonConsole();
    else builder.Logging.AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss.fff "; });
    builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
    // A failed start is said once, below, as one line naming what is wrong: not also as the host's stack trace.
    builder.Logging.AddFilter("Microsoft.Extensions.Hosting.Internal.Host", LogLevel.Critical);
    builder.Services.AddSystemd();
    builder.Services.AddHostedService<SystemdReadiness>();
    builder.Services.AddHostedService<ApiSocketOwner>();
    builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = settings.Drain + TimeSpan.FromSeconds(10));
    builder.Services.AddSingleton(settings);
    builder.Services.AddSingleton<SnapdMetrics>();
    builder.Services.AddSingleton<RestoreManager>();
    builder.Services.AddHostedService(sp => sp.GetRequiredService<RestoreManager>());
    builder.WebHost.ConfigureKestrel(k =>
    {
        k.AddServerHeader = false;
        k.Limits.MaxRequestBodySize = RequestBody.HardCapBytes; // MaxRequestBytes: RequestBody
        k.Limits.MaxRequestHeadersTotalSize = 16 * 1024;
        k.ListenUnixSocket(api);
    });

    var app = builder.Build();
    var manager = app.Services.GetRequiredService<RestoreManager>();
    var metrics = app.Services.GetRequiredService<SnapdMetrics>();
    Metrics.DefaultRegistry.AddBeforeCollectCallback(() => metrics.Refresh(manager.Totals()));
    app.UseMiddleware<PeerCredentials>();
    app.UseMiddleware<ApiErrors>();
    app.MapMetrics("/metrics");
    ApiEndpoints.Map(app);
    await app.RunAsync();
    return 0;
}
catch (NotAStoreException ex)
{
    Console.Error.WriteLine($"snapd: {ex.Message}; to create one there, run 'snapctl init --store {ex.Store}'");
    return 1;
}
catch (SnapshotException ex)
{
    Console.Error.WriteLine($"snapd: {ex.Message}");
    return 1;
}
catch (IOException ex)
{
    Console.Error.WriteLine($"snapd: {ex.Message}");
    return 1;
}
