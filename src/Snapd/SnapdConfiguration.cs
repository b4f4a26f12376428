using Microsoft.Extensions.Configuration;
using Snapshots.Host;
using Snapshots.Store;
using Snapshots.Store.Cache;
using Snapshots.Store.Distributed;
using Snapshots.Store.Faults;

namespace Snapshots.Snapd;

/// <summary>Where snapd's settings come from, later sources winning: the JSON file, SNAPD_* environment variables,
/// then flags. Flags are the settings' names in kebab case (<c>--cache-dir</c>, <c>--memory-budget</c>) or
/// <c>--Name=value</c>.</summary>
public static class SnapdConfiguration
{
    public const string DefaultFile = "/etc/snapd/snapd.json";

    private static readonly Dictionary<string, string> Flags = new(StringComparer.Ordinal)
    {
        ["--config"] = "Config",
        ["--store"] = nameof(SnapdOptions.Store),
        ["--keyring"] = nameof(SnapdOptions.Keyring),
        ["--api-socket"] = nameof(SnapdOptions.ApiSocket),
        ["--api-uid"] = nameof(SnapdOptions.ApiUid),
        ["--state-dir"] = nameof(SnapdOptions.StateDirectory),
        ["--cache-dir"] = nameof(SnapdOptions.CacheDirectory),
        ["--cache-size"] = nameof(SnapdOptions.CacheSize),
        ["--cache-high-watermark"] = nameof(SnapdOptions.CacheHighWatermark),
        ["--cache-low-watermark"] = nameof(SnapdOptions.CacheLowWatermark),
        ["--cache-min-free"] = nameof(SnapdOptions.CacheMinFree),
        ["--verify-cache-at-start"] = nameof(SnapdOptions.VerifyCacheAtStart),
        ["--prefetch-bandwidth"] = nameof(SnapdOptions.PrefetchBandwidth),
        ["--redis"] = nameof(SnapdOptions.Redis),
        ["--memory-budget"] = nameof(SnapdOptions.MemoryBudget),
        ["--max-restores"] = nameof(SnapdOptions.MaxRestores),
        ["--fault-deadline"] = nameof(SnapdOptions.FaultDeadlineSeconds),
        ["--accept-timeout"] = nameof(SnapdOptions.AcceptTimeoutSeconds),
        ["--origin-deadline"] = nameof(SnapdOptions.OriginDeadlineSeconds),
        ["--prefetch-concurrency"] = nameof(SnapdOptions.PrefetchConcurrency),
        ["--record-share"] = nameof(SnapdOptions.RecordShare),
        ["--plan-merge-logs"] = nameof(SnapdOptions.PlanMergeLogs),
        ["--max-request-bytes"] = nameof(SnapdOptions.MaxRequestBytes),
        ["--drain"] = nameof(SnapdOptions.DrainSeconds),
        ["--origin-faults"] = nameof(SnapdOptions.OriginFaults),
        ["--log-format"] = "LogFormat",
    };

    /// <summary>The merged configuration. A <c>--config</c> file that does not exist is an error naming it; the
    /// default file is optional.</summary>
    public static IConfiguration Build(string[] args, IDictionary<string, string?>? environment = null)
    {
        CheckFlags(args);
        var flagsOnly = new ConfigurationBuilder().AddCommandLine(args, Flags).Build();
        string? file = flagsOnly["Config"] ?? Environment.GetEnvironmentVariable("SNAPD_CONFIG");
        if (file is not null && !File.Exists(file))
            throw new InvalidInputException($"configuration file {file} does not exist", "config");
        var builder = new ConfigurationBuilder();
        builder.AddJsonFile(Path.GetFullPath(file ?? DefaultFile), optional: file is null, reloadOnChange: false);
        if (environment is null) builder.AddEnvironmentVariables("SNAPD_");
        else builder.AddInMemoryCollection(environment);
        builder.AddCommandLine(args, Flags);
        return builder.Build();
    }

    /// <summary>Every argument is a known flag with its value (<c>--flag VALUE</c> or <c>--flag=VALUE</c>,
    /// <c>--Name=VALUE</c>): the configuration binder would otherwise drop a mistyped flag (<c>--cache-dirr</c>)
    /// or one missing its value without a word.</summary>
    private static void CheckFlags(string[] args)
    {
        for (int i = 0; i < args.Length; i++)
        {
            string a = args[i];
            int eq = a.IndexOf('=', StringComparison.Ordinal);
            string flag = eq < 0 ? a : a[..eq];
            bool known = Flags.ContainsKey(flag) || (eq > 0 && flag.StartsWith("--", StringComparison.Ordinal)
                && Flags.Values.Contains(flag[2..], StringComparer.OrdinalIgnoreCase));
            if (!known)
                throw new InvalidInputException($"unknown argument '{a}' (docs/api.md lists the flags)", flag);
            if (eq < 0 && ++i >= args.Length)
                throw new InvalidInputException($"{a} needs a value", Flags[flag]);
        }
    }

    /// <summary>The settings, checked: every value that is wrong is named (<see cref="InvalidInputException"/>
    /// with the setting as its parameter), before anything is opened.</summary>
    public static SnapdSettings Resolve(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var o = new SnapdOptions();
        try
        {
            configuration.Bind(o, b => b.ErrorOnUnknownConfiguration = false);
        }
        catch (InvalidOperationException ex)
        {
            throw new InvalidInputException($"configuration: {ex.Message}", "config");
        }
        var store = string.IsNullOrWhiteSpace(o.Store) ? StoreOptions.AddressFromEnvironment : o.Store;
        if (string.IsNullOrWhiteSpace(store))
            throw new InvalidInputException("no store: set Store (--store, SNAPD_STORE or the file)", "store");
        CheckPaths(o);
        long cacheBytes = Size(o.CacheSize, nameof(o.CacheSize));
        if (!string.IsNullOrWhiteSpace(o.Redis))
        {
            try
            {
                // Refused now, not at the first restore; its errors never hold the password.
                RedisAddress.Parse(o.Redis);
            }
            catch (InvalidInputException ex)
            {
                throw new InvalidInputException($"Redis: {ex.Message}", nameof(o.Redis));
            }
        }
        if (!(o.CacheLowWatermark > 0 && o.CacheLowWatermark <= o.CacheHighWatermark && o.CacheHighWatermark <= 1))
        {
            throw new InvalidInputException($"cache watermarks {o.CacheLowWatermark} (low) and "
                + $"{o.CacheHighWatermark} (high): use 0 < low <= high <= 1", nameof(o.CacheHighWatermark));
        }
        long minFree = o.CacheMinFree.Trim() == "0" ? 0 : Size(o.CacheMinFree, nameof(o.CacheMinFree));
        long bandwidth = o.PrefetchBandwidth.Trim() == "0" ? 0 : Size(o.PrefetchBandwidth, nameof(o.PrefetchBandwidth));
        return new SnapdSettings
        {
            Options = o,
            Store = store,
            CacheBytes = cacheBytes,
            CacheOptions = new DiskCacheOptions(cacheBytes)
            {
                HighWatermarkRatio = o.CacheHighWatermark,
                LowWatermarkRatio = o.CacheLowWatermark,
                MinFreeBytes = minFree,
                VerifyAtOpen = o.VerifyCacheAtStart,
            },
            PrefetchBandwidthBytes = bandwidth,
            OriginFaults = string.IsNullOrWhiteSpace(o.OriginFaults) ? null
                : FaultProfileText.Parse(o.OriginFaults, nameof(o.OriginFaults)),
            MemoryBudgetBytes = Memory(o.MemoryBudget),
            MaxRestores = Range(o.MaxRestores, 1, 4096, nameof(o.MaxRestores)),
            FaultDeadline = Seconds(o.FaultDeadlineSeconds, 0.01, 3600, nameof(o.FaultDeadlineSeconds)),
            AcceptTimeout = Seconds(o.AcceptTimeoutSeconds, 0.1, 86400, nameof(o.AcceptTimeoutSeconds)),
            OriginDeadline = Seconds(o.OriginDeadlineSeconds, 0.01, 3600, nameof(o.OriginDeadlineSeconds)),
            Drain = Seconds(o.DrainSeconds, 0, 86400, nameof(o.DrainSeconds)),
            PrefetchConcurrency = Range(o.PrefetchConcurrency, 1, 256, nameof(o.PrefetchConcurrency)),
            RecordShare = o.RecordShare is >= 0 and <= 1 ? o.RecordShare
                : throw new InvalidInputException($"RecordShare {o.RecordShare}: use 0-1", nameof(o.RecordShare)),
            PlanMergeLogs = Range(o.PlanMergeLogs, 1, 1000, nameof(o.PlanMergeLogs)),
            MaxRequestBytes = Range(o.MaxRequestBytes, 1024, 16 << 20, nameof(o.MaxRequestBytes)),
            LogFormat = configuration["LogFormat"] is { } f && f != "text"
                ? f == "json" ? f : throw new InvalidInputException($"LogFormat '{f}': use text or json", "LogFormat")
                : "text",
        };
    }

    /// <summary>The settings as resolved, as one JSON document (`snapd --check-config`): sizes in bytes, durations
    /// in seconds; the distributed cache's password never printed.</summary>
    public static string Describe(SnapdSettings s)
    {
        ArgumentNullException.ThrowIfNull(s);
        var o = s.Options;
        string? redis = string.IsNullOrWhiteSpace(o.Redis) ? null : RedisAddress.Parse(o.Redis).Redacted;
        return System.Text.Json.JsonSerializer.Serialize(new
        {
            store = s.Store,
            keyring = o.Keyring,
            apiSocket = o.ApiSocket,
            apiUid = o.ApiUid,
            stateDirectory = s.StateDirectory,
            cacheDirectory = o.CacheDirectory,
            cacheBytes = s.CacheBytes,
            cacheHighWatermarkRatio = s.CacheOptions.HighWatermarkRatio,
            cacheLowWatermarkRatio = s.CacheOptions.LowWatermarkRatio,
            cacheMinFreeBytes = s.CacheOptions.MinFreeBytes,
            verifyCacheAtStart = s.CacheOptions.VerifyAtOpen,
            redis,
            memoryBudgetBytes = s.MemoryBudgetBytes,
            maxRestores = s.MaxRestores,
            faultDeadlineSeconds = s.FaultDeadline.TotalSeconds,
            acceptTimeoutSeconds = s.AcceptTimeout.TotalSeconds,
            originDeadlineSeconds = s.OriginDeadline.TotalSeconds,
            prefetchBandwidthBytes = s.PrefetchBandwidthBytes,
            prefetchConcurrency = s.PrefetchConcurrency,
            recordShare = s.RecordShare,
            planMergeLogs = s.PlanMergeLogs,
            maxRequestBytes = s.MaxRequestBytes,
            drainSeconds = s.Drain.TotalSeconds,
            logFormat = s.LogFormat,
            originFaults = s.OriginFaults is null ? null : o.OriginFaults,
        }, Printed);
    }

    private static readonly System.Text.Json.JsonSerializerOptions Printed = new()
    {
        WriteIndented = true,
        DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull,
    };

    /// <summary>sockaddr_un holds 107 bytes and a NUL; a restore's socket is STATE/restores/r-HEX16.sock.</summary>
    private const int MaxSocketPath = 107, RestoreSocketTail = 33;

    /// <summary>Paths that are set are not empty, and the sockets snapd binds fit a Unix socket address: caught here
    /// rather than as a crash at start or as every restore refused later.</summary>
    private static void CheckPaths(SnapdOptions o)
    {
        NotEmpty(o.StateDirectory, nameof(o.StateDirectory));
        NotEmpty(o.ApiSocket, nameof(o.ApiSocket));
        if (o.CacheDirectory is not null) NotEmpty(o.CacheDirectory, nameof(o.CacheDirectory));
        if (o.Keyring is not null) NotEmpty(o.Keyring, nameof(o.Keyring));
        int api = System.Text.Encoding.UTF8.GetByteCount(Path.GetFullPath(o.ApiSocket));
        if (api > MaxSocketPath)
        {
            throw new InvalidInputException(
                $"ApiSocket {o.ApiSocket} is {api} bytes: a Unix socket path holds {MaxSocketPath}",
                nameof(o.ApiSocket));
        }
        int state = System.Text.Encoding.UTF8.GetByteCount(Path.GetFullPath(o.StateDirectory));
        if (state + RestoreSocketTail > MaxSocketPath)
        {
            throw new InvalidInputException($"StateDirectory {o.StateDirectory} is {state} bytes: its restore sockets "
                + $"would be over the {MaxSocketPath}-byte limit of Unix sockets (use at most "
                + $"{MaxSocketPath - RestoreSocketTail})", nameof(o.StateDirectory));
        }
    }

    private static void NotEmpty(string value, string name)
    {
        if (string.IsNullOrWhiteSpace(value)) throw new InvalidInputException($"{name} is empty", name);
    }

    /// <summary>The memory budget, at most the memory this process may have (the machine's, or its cgroup's limit):
    /// a larger one is a typo that ends in the OOM killer under load, not a budget.</summary>
    private static long Memory(string text)
    {
        long bytes = Size(text, nameof(SnapdOptions.MemoryBudget));
        long available = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        return available <= 0 || bytes <= available ? bytes : throw new InvalidInputException(
            $"MemoryBudget '{text}' is over the {available >> 20} MiB of memory this host gives snapd",
            nameof(SnapdOptions.MemoryBudget));
    }

    private static long Size(string text, string name) => ByteSize.TryParse(text, out long bytes) ? bytes
        : throw new InvalidInputException($"{name} '{text}' is not a positive size (a number with K, M, G or T)",
            name);

    private static int Range(int value, int min, int max, string name) => value >= min && value <= max ? value
        : throw new InvalidInputException($"{name} {value}: use {min}-{max}", name);

    private static TimeSpan Seconds(double value, double min, double max, string name) =>
        double.IsFinite(value) && value >= min && value <= max ? TimeSpan.FromSeconds(value)
            : throw new InvalidInputException($"{name} {value}: use {min}-{max} seconds", name);
}

/// <summary>snapd's settings after <see cref="SnapdConfiguration.Resolve"/>: sizes in bytes, durations as spans.
/// </summary>
public sealed record SnapdSettings
{
    public required SnapdOptions Options { get; init; }
    public required string Store { get; init; }
    public long CacheBytes { get; init; }
    public required DiskCacheOptions CacheOptions { get; init; }
    /// <summary>Prefetch bytes per second of all restores together; 0: none.</summary>
    public long PrefetchBandwidthBytes { get; init; }
    public long MemoryBudgetBytes { get; init; }
    public int MaxRestores { get; init; }
    public TimeSpan FaultDeadline { get; init; }
    public TimeSpan AcceptTimeout { get; init; }
    public TimeSpan OriginDeadline { get; init; }
    public TimeSpan Drain { get; init; }
    public int PrefetchConcurrency { get; init; }
    public double RecordShare { get; init; }
    public int PlanMergeLogs { get; init; }
    public int MaxRequestBytes { get; init; }
    public string LogFormat { get; init; } = "text";

    /// <summary>Faults injected into every origin read (chaos benchmarks); null: none.</summary>
    public FaultProfile? OriginFaults { get; init; }

    public string StateDirectory => Path.GetFullPath(Options.StateDirectory);
    public string RestoresDirectory => Path.Combine(StateDirectory, "restores");
    public string MountsDirectory => Path.Combine(StateDirectory, "mounts");

    /// <summary>The read tiers every restore shares.</summary>
    public TierSettings Tiers => new()
    {
        CacheDirectory = Options.CacheDirectory,
        CacheBytes = CacheBytes,
        CacheOptions = CacheOptions,
        Distributed = Options.Redis,
        OriginDeadline = OriginDeadline,
        OriginFaults = OriginFaults,
    };
}
