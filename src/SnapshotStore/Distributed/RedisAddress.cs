using System.Globalization;
using System.Text.RegularExpressions;
using StackExchange.Redis;

namespace Snapshots.Store.Distributed;

public enum CacheLayout : byte
{
    /// <summary>Striped when the cluster has at least 3 masters, else whole.</summary>
    Auto,
    /// <summary>One key per chunk, on one node.</summary>
    Whole,
    /// <summary>k data stripes + 1 XOR parity stripe on n = k + 1 distinct nodes; any k rebuild the chunk.</summary>
    Striped,
}

/// <summary>
/// The distributed cache's address, in one of StackExchange.Redis's own forms plus this project's options:
/// <list type="bullet">
/// <item><c>redis://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT...]</c>, or <c>rediss://</c> for TLS (user and
/// password percent-encoded);</item>
/// <item>the StackExchange.Redis configuration string, <c>HOST:PORT[,HOST:PORT],password=P,user=U,ssl=true,
/// connectTimeout=MS...</c> (<see cref="ConfigurationOptions.Parse(string)"/>);</item>
/// </list>
/// either followed by <c>?layout=auto|whole|striped&amp;stripes=N&amp;deadline=MS&amp;cooldown=MS&amp;connect=MS
/// &amp;ca=PATH&amp;cert=PATH&amp;key=PATH</c>. <c>ca</c> (or $SNAPSHOTS_REDIS_CA) is a PEM CA the server's
/// certificate chain is validated against (host name checked too); <c>cert</c> + <c>key</c> a PEM client
/// certificate. Any reachable node is enough to discover the cluster. The password is never printed:
/// <see cref="Describe"/>, <see cref="Redacted"/>, <see cref="ToString"/> and every error leave it out.
/// </summary>
public sealed record RedisAddress(IReadOnlyList<string> Endpoints, CacheLayout Layout, int Stripes,
    TimeSpan NodeDeadline, TimeSpan Cooldown, TimeSpan ConnectTimeout)
{
    public const string Scheme = "redis://";
    public const string TlsScheme = "rediss://";

    /// <summary>The environment variable naming a PEM CA file for TLS when the address has no ca=.</summary>
    public const string CaVariable = "SNAPSHOTS_REDIS_CA";

    private ConfigurationOptions _configuration = new();

    /// <summary>The tier's name in reports: "redis HOST:PORT,..." ("rediss" with TLS).</summary>
    public string Describe => $"{(Tls ? "rediss" : "redis")} {string.Join(',', Endpoints)}";

    /// <summary>The address as given, with the password replaced by ***.</summary>
    public string Redacted { get; private init; } = "";

    public bool Tls => _configuration.Ssl;
    public bool HasPassword => _configuration.Password is not null;
    public string? User => _configuration.User;

    public override string ToString() => Redacted;

    /// <summary>StackExchange.Redis's options for this address (a copy: callers set their own timeouts).
    /// </summary>
    public ConfigurationOptions Configuration() => _configuration.Clone();

    /// <summary>Parses an address; a bad one is an <see cref="InvalidInputException"/> naming the "distributed"
    /// input, its message quoting the address with the password replaced by ***.</summary>
    public static RedisAddress Parse(string address)
    {
        ArgumentNullException.ThrowIfNull(address);
        // Every string that could be a password, in every form (user information, password= in the
        // configuration string or in the query, raw and percent-decoded): no message may hold any of them.
        var secrets = Secrets(address);
        try
        {
            return ParseCore(address, secrets);
        }
        catch (InvalidInputException ex) when (Scrub(ex.Message, secrets) != ex.Message)
        {
            throw Bad(Scrub(ex.Message, secrets)); // no inner exception: its message could quote the secret
        }
    }

    private static RedisAddress ParseCore(string address, IReadOnlyList<string> secrets)
    {
        string query = "", main = address;
        // The query starts after the user information: a '?' in an unencoded password is not the query.
        int q = address.IndexOf('?', Math.Max(0, address.LastIndexOf('@') + 1));
        if (q >= 0) { query = address[(q + 1)..]; main = address[..q]; }
        bool uri = main.StartsWith(Scheme, StringComparison.OrdinalIgnoreCase)
            || main.StartsWith(TlsScheme, StringComparison.OrdinalIgnoreCase);
        var redacted = Scrub(RedactNative(uri ? RedactUri(main) : main) + (q >= 0 ? "?" + RedactQuery(query) : ""),
            secrets);
        var config = uri ? FromUri(main, redacted) : FromNative(main, redacted);
        var endpoints = new List<string>();
        foreach (var ep in config.EndPoints) endpoints.Add(EndPointText(ep));
        if (endpoints.Count == 0) throw Bad($"distributed cache address '{redacted}' names no node");

        var layout = CacheLayout.Auto;
        int stripes = 5;
        var deadline = TimeSpan.FromMilliseconds(100);
        var cooldown = TimeSpan.FromSeconds(1);
        // connectTimeout= in a configuration string is honoured; connect= below overrides it.
        var connect = TimeSpan.FromMilliseconds(!uri && NativeConnect.IsMatch(main) ? config.ConnectTimeout : 2000);
        string? ca = null, cert = null, key = null;
        foreach (var pair in query.Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            int eq = pair.IndexOf('=');
            var name = eq < 0 ? pair : pair[..eq];
            var value = eq < 0 ? "" : Uri.UnescapeDataString(pair[(eq + 1)..]);
            switch (name)
            {
                case "layout":
                    layout = value switch
                    {
                        "auto" => CacheLayout.Auto,
                        "whole" => CacheLayout.Whole,
                        "striped" => CacheLayout.Striped,
                        _ => throw Bad(
                            $"distributed cache address '{redacted}': layout '{value}' (use auto, whole or striped)"),
                    };
                    break;
                case "stripes":
                    if (!int.TryParse(value, out stripes) || stripes is < 3 or > 16)
                        throw Bad($"distributed cache address '{redacted}': stripes '{value}' must be 3-16");
                    break;
                case "deadline": deadline = Millis(redacted, name, value); break;
                case "cooldown": cooldown = Millis(redacted, name, value); break;
                case "connect": connect = Millis(redacted, name, value); break;
                case "ca": ca = value; break;
                case "cert": cert = value; break;
                case "key": key = value; break;
                default:
                    throw Bad($"distributed cache address '{redacted}': unknown option '{name}' "
                        + "(layout, stripes, deadline, cooldown, connect, ca, cert, key)");
            }
        }
        // The environment's CA is for TLS addresses; a plain one ignores it (one variable serves every address).
        if (ca is null && config.Ssl) ca = Environment.GetEnvironmentVariable(CaVariable);
        if (!string.IsNullOrEmpty(ca))
        {
            if (!config.Ssl)
                throw Bad($"distributed cache address '{redacted}': a CA (ca=) needs TLS (rediss:// or ssl=true)");
            RequireFile(redacted, "ca", ca);
            // Validates the server's chain against this CA (and only it), host name included.
            try { config.TrustIssuer(ca); }
            catch (Exception ex) when (IsUnreadableCertificate(ex))
            {
                throw Bad($"distributed cache address '{redacted}': ca file {ca} is not a PEM certificate "
                    + $"({ex.Message.TrimEnd('.')})");
            }
        }
        if ((cert is null) != (key is null))
            throw Bad($"distributed cache address '{redacted}': a client certificate needs both cert= and key=");
        if (cert is not null && key is not null)
        {
            RequireFile(redacted, "cert", cert);
            RequireFile(redacted, "key", key);
            try { config.SetUserPemCertificate(cert, key); }
            catch (Exception ex) when (IsUnreadableCertificate(ex))
            {
                throw Bad($"distributed cache address '{redacted}': cert file {cert} and key file {key} are not a "
                    + $"PEM certificate and its private key ({ex.Message.TrimEnd('.')})");
            }
        }
        return new RedisAddress(endpoints, layout, stripes, deadline, cooldown, connect)
        {
            _configuration = config,
            Redacted = redacted,
        };
    }

    /// <summary>redis[s]://[[USER]:PASSWORD@]HOST:PORT,... into options. The user information comes before the
    /// last '@'; user and password are percent-decoded.</summary>
    private static ConfigurationOptions FromUri(string main, string redacted)
    {
        bool tls = main.StartsWith(TlsScheme, StringComparison.OrdinalIgnoreCase);
        var rest = main[(tls ? TlsScheme.Length : Scheme.Length)..];
        var config = new ConfigurationOptions { Ssl = tls };
        int at = rest.LastIndexOf('@');
        if (at >= 0)
        {
            var info = rest[..at];
            rest = rest[(at + 1)..];
            int colon = info.IndexOf(':');
            var user = Uri.UnescapeDataString(colon < 0 ? info : info[..colon]);
            if (user.Length > 0) config.User = user;
            if (colon >= 0) config.Password = Uri.UnescapeDataString(info[(colon + 1)..]);
        }
        foreach (var ep in rest.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            int colon = ep.LastIndexOf(':');
            if (colon <= 0 || !int.TryParse(ep.AsSpan(colon + 1), out var port) || port is <= 0 or > 65535)
                throw Bad($"distributed cache address '{redacted}': '{ep}' is not HOST:PORT");
            config.EndPoints.Add(ep);
        }
        return config;
    }

    /// <summary>The StackExchange.Redis configuration string. Anything that looks like a URL but is not
    /// redis:// or rediss:// is refused here rather than taken for a host name.</summary>
    private static ConfigurationOptions FromNative(string main, string redacted)
    {
        if (main.Contains(":/", StringComparison.Ordinal))
        {
            throw Bad($"distributed cache address '{redacted}': expected redis://HOST:PORT[,HOST:PORT...], "
                + "rediss://... or a StackExchange.Redis configuration string");
        }
        try
        {
            return ConfigurationOptions.Parse(main);
        }
        catch (ArgumentException ex)
        {
            // Its messages name the keyword at fault, never a value.
            throw Bad($"distributed cache address '{redacted}': {ex.Message}");
        }
    }

    private static readonly Regex NativeConnect = new(@"(^|,)\s*connectTimeout\s*=",
        RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);

    private static readonly Regex NativePassword = new(@"(^|,)(\s*password\s*=)[^,]*",
        RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);

    private static string RedactUri(string main)
    {
        // Everything up to the last '@' after the scheme is user information: keep the user, hide the rest.
        int start = main.IndexOf("://", StringComparison.Ordinal) + 3;
        int at = main.LastIndexOf('@');
        if (at < start) return main;
        var info = main[start..at];
        int colon = info.IndexOf(':');
        return colon < 0 ? main : main[..(start + colon + 1)] + "***" + main[at..];
    }

    private static string RedactNative(string main) => NativePassword.Replace(main, "$1$2***");

    /// <summary>Query options that could carry a secret (password=, pass=, pwd=, secret=, token=, auth=) keep
    /// their name and lose their value.</summary>
    private static string RedactQuery(string query) => QuerySecret.Replace(query, "$1$2***");

    private static readonly Regex QuerySecret = new(@"(^|&)(\s*[^&=]*(pass|pwd|secret|token|auth)[^&=]*=)[^&]*",
        RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);

    private static readonly Regex AnySecret = new(@"(pass|pwd|secret|token|auth)[^=,&?]*=\s*(?<v>[^,&]*)",
        RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);

    /// <summary>The strings of <paramref name="address"/> that may be secrets: the password of the user
    /// information and every value of a password-like option, each raw and percent-decoded.</summary>
    private static List<string> Secrets(string address)
    {
        var found = new List<string>();
        int start = address.IndexOf("://", StringComparison.Ordinal);
        int at = address.LastIndexOf('@');
        if (start >= 0 && at > start + 3)
        {
            var info = address[(start + 3)..at];
            int colon = info.IndexOf(':');
            if (colon >= 0) found.Add(info[(colon + 1)..]);
        }
        foreach (Match m in AnySecret.Matches(address))
        {
            var v = m.Groups["v"].Value.Trim();
            found.Add(v);
            // A native password holding '?' is cut there as the query: both halves are secrets too.
            int q = v.IndexOf('?');
            if (q >= 0)
            {
                found.Add(v[..q]);
                found.AddRange(v[(q + 1)..].Split('&'));
            }
        }
        var all = new List<string>();
        foreach (var raw in found)
        {
            if (raw.Length == 0) continue;
            all.Add(raw);
            try { all.Add(Uri.UnescapeDataString(raw)); }
            catch (UriFormatException) { }
        }
        return all.Distinct(StringComparer.Ordinal).OrderByDescending(x => x.Length).ToList();
    }

    /// <summary><paramref name="text"/> with every secret replaced by ***.</summary>
    private static string Scrub(string text, IReadOnlyList<string> secrets)
    {
        foreach (var secret in secrets) text = text.Replace(secret, "***", StringComparison.Ordinal);
        return text;
    }

    private static bool IsUnreadableCertificate(Exception ex) =>
        ex is System.Security.Cryptography.CryptographicException or IOException or UnauthorizedAccessException
            or ArgumentException;

    private static string EndPointText(System.Net.EndPoint ep) => ep switch
    {
        System.Net.DnsEndPoint d => $"{d.Host}:{d.Port}",
        System.Net.IPEndPoint ip => ip.ToString(),
        _ => ep.ToString() ?? "",
    };

    private static void RequireFile(string redacted, string option, string path)
    {
        if (!File.Exists(path))
            throw Bad($"distributed cache address '{redacted}': {option} file {path} does not exist");
    }

    private static InvalidInputException Bad(string message) => new(message) { Parameter = "distributed" };

    private static TimeSpan Millis(string address, string key, string value) =>
        double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var ms) && ms > 0
            ? TimeSpan.FromMilliseconds(ms)
            : throw Bad(
                $"distributed cache address '{address}': {key} '{value}' is not a positive number of milliseconds");
}
