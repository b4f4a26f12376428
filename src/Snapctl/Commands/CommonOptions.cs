using System.CommandLine;
using Snapshots.Host;
using Snapshots.Store.Faults;
using Snapshots.Store.Keys;
using Snapshots.Store.Tiers;

namespace Snapshots.Snapctl.Commands;

/// <summary>Options shared by the commands, and how they become the host library's settings.</summary>
public static class CommonOptions
{
    /// <summary>--store. Unset, it is $SNAPSHOTS_STORE, read when the command runs (<see cref="StoreOptionsOf"/>),
    /// never in help: help prints an option's default, and an environment value is not the help's to show.
    /// </summary>
    public static Option<string> Store() => new("--store", "-s")
    {
        Description = "The origin: a directory, file://DIR, or s3://BUCKET/PREFIX[?endpoint=URL&region=R] "
            + "(credentials from the AWS SDK's default chain: AWS_* variables, profiles, SSO, web identity, "
            + "container and instance roles) (default: $SNAPSHOTS_STORE)",
    };

    public static Option<string> Keyring() => new("--keyring")
    {
        Description = "Key provider directory (0600 key files, created on first use; $SNAPSHOTS_KEYRING)",
        DefaultValueFactory = _ => LocalKeyring.DefaultDirectory(),
    };

    public static Option<string> Name() => new("--name", "-n") { Description = "Snapshot name", Required = true };

    public static Option<string?> Tenant() => new("--tenant")
    {
        Description = "Tenant whose function layers this request may read or write",
    };

    public static Option<bool> Json() => new("--json") { Description = "Print the result as JSON" };

    /// <summary>The read tiers: --cache-dir, --cache-size, --distributed, --deadline.</summary>
    public sealed class Tiers
    {
        private readonly Option<string?> _cacheDir = new("--cache-dir")
        {
            Description = "Local disk cache directory (ciphertext only)",
        };

        private readonly Option<string> _cacheSize = new("--cache-size")
        {
            Description = "Local disk cache budget (e.g. 2G)",
            DefaultValueFactory = _ => "10G",
        };

        // No DefaultValueFactory: help prints a default, and $SNAPSHOTS_DISTRIBUTED may hold a password. The
        // environment is read when the command runs (From).
        private readonly Option<string?> _distributed = new("--distributed")
        {
            Description = "Distributed cache (Redis Cluster): redis://[USER:PASSWORD@]HOST:PORT[,HOST:PORT...], "
                + "rediss://... for TLS, or a StackExchange.Redis configuration string (HOST:PORT,password=P,"
                + "ssl=true,...); then ?layout=auto|whole|striped&deadline=MS&connect=MS&ca=PEM&cert=PEM&key=PEM "
                + "(default: $SNAPSHOTS_DISTRIBUTED)",
        };

        private readonly Option<double> _deadline;

        // Hidden: for benchmarks (bench/scripts/uffd-head-of-line.sh) and chaos runs, not for operators.
        private readonly Option<double> _originLatency = new("--inject-origin-latency")
        {
            Description = "Milliseconds every origin read first waits (no CPU), as from a far origin: for benchmarks",
            Hidden = true,
        };

        public Tiers(string deadlineName = "--deadline")
        {
            _deadline = new Option<double>(deadlineName)
            {
                Description = "Seconds the origin may take for one chunk before the read fails naming it",
                DefaultValueFactory = _ => TierOptions.Origin.Deadline.TotalSeconds,
            };
        }

        public IEnumerable<Option> All => [_cacheDir, _cacheSize, _distributed, _deadline, _originLatency];

        public TierSettings From(ParseResult pr)
        {
            ArgumentNullException.ThrowIfNull(pr);
            var deadline = Seconds(pr, _deadline);
            double latency = pr.GetValue(_originLatency);
            if (latency is < 0 or > 60_000 or double.NaN)
                throw new UsageException($"--inject-origin-latency {latency}: use 0-60000 milliseconds");
            return new TierSettings
            {
                OriginFaults = latency > 0 ? FaultProfile.Slow(TimeSpan.FromMilliseconds(latency)) : null,
                CacheDirectory = pr.GetValue(_cacheDir),
                CacheBytes = SizeParser.Parse(pr.GetValue(_cacheSize)!, "--cache-size"),
                Distributed = pr.GetValue(_distributed) ?? StoreOptions.DistributedFromEnvironment,
                OriginDeadline = deadline,
            };
        }
    }

    /// <summary>A duration option in seconds: positive, at most an hour; a <see cref="UsageException"/>
    /// naming the option otherwise.</summary>
    public static TimeSpan Seconds(ParseResult pr, Option<double> option)
    {
        ArgumentNullException.ThrowIfNull(pr);
        ArgumentNullException.ThrowIfNull(option);
        double s = pr.GetValue(option);
        if (s is <= 0 or > 3600 or double.NaN)
            throw new UsageException($"{option.Name} {s}: use a positive number of seconds, at most 3600");
        return TimeSpan.FromSeconds(s);
    }

    /// <summary>Opens the host library on --store and --keyring; its notes go to stderr as "snapctl: ...". The
    /// store must have been made by <c>snapctl init</c> (<see cref="SnapshotHost.OpenAsync"/>).</summary>
    public static Task<SnapshotHost> OpenHostAsync(ParseResult pr, Option<string> store, CancellationToken ct,
        Option<string>? keyring = null, Option<bool>? allowRollback = null)
    {
        ArgumentNullException.ThrowIfNull(pr);
        var options = StoreOptionsOf(pr, store) with
        {
            AllowRollback = allowRollback is not null && pr.GetValue(allowRollback),
        };
        if (keyring is not null) options = options with { KeyringDirectory = pr.GetValue(keyring)! };
        return SnapshotHost.OpenAsync(options, ct);
    }

    /// <summary>--store as the host library's settings, notes to stderr.</summary>
    public static StoreOptions StoreOptionsOf(ParseResult pr, Option<string> store)
    {
        ArgumentNullException.ThrowIfNull(pr);
        return new StoreOptions
        {
            Address = pr.GetValue(store) ?? StoreOptions.AddressFromEnvironment,
            Log = Output.Note,
        };
    }

    /// <summary>The keyring at --keyring, for commands that need keys but no store; notes go to stderr.</summary>
    public static LocalKeyring OpenKeyring(ParseResult pr, Option<string> keyring)
    {
        ArgumentNullException.ThrowIfNull(pr);
        return new LocalKeyring(pr.GetValue(keyring)!, Output.Note);
    }

    /// <summary>--allow-rollback: for commands that read snapshots.</summary>
    /// <summary>The plan a loader follows from --no-prefetch, --plan and --prefetch (the first given wins; the two
    /// switches exclude each other); Auto when none is given.</summary>
    public static Host.Restore.PrefetchMode PrefetchModeOf(ParseResult pr, Option<bool> prefetch,
        Option<bool> noPrefetch, Option<string?> plan)
    {
        if (pr.GetValue(prefetch) && pr.GetValue(noPrefetch))
            throw new UsageException("--prefetch and --no-prefetch exclude each other");
        return pr.GetValue(noPrefetch) ? Host.Restore.PrefetchMode.Off
            : pr.GetValue(plan) is not null ? Host.Restore.PrefetchMode.File
            : pr.GetValue(prefetch) ? Host.Restore.PrefetchMode.Attached
            : Host.Restore.PrefetchMode.Auto;
    }

    public static Option<bool> AllowRollback() => new("--allow-rollback")
    {
        Description = "Accept a snapshot older than one this keyring already accepted (a rollback you made)",
    };

    public static void AddAll(Command command, IEnumerable<Option> options)
    {
        ArgumentNullException.ThrowIfNull(command);
        ArgumentNullException.ThrowIfNull(options);
        foreach (var o in options) command.Options.Add(o);
    }
}
