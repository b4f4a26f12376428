using System.Globalization;

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
/// The distributed cache's address: redis://HOST:PORT[,HOST:PORT...][?layout=auto|whole|striped&amp;stripes=N
/// &amp;deadline=MS&amp;cooldown=MS&amp;connect=MS]. Any reachable node is enough to discover the cluster.
/// </summary>
public sealed record RedisAddress(IReadOnlyList<string> Endpoints, CacheLayout Layout, int Stripes,
    TimeSpan NodeDeadline, TimeSpan Cooldown, TimeSpan ConnectTimeout)
{
    public const string Scheme = "redis://";

    public string Describe => $"redis {string.Join(',', Endpoints)}";

    public static RedisAddress Parse(string address)
    {
        if (!address.StartsWith(Scheme, StringComparison.Ordinal))
            throw Bad($"distributed cache address '{address}': expected redis://HOST:PORT[,HOST:PORT...]");
        var rest = address[Scheme.Length..];
        string query = "";
        int q = rest.IndexOf('?');
        if (q >= 0) { query = rest[(q + 1)..]; rest = rest[..q]; }
        var endpoints = new List<string>();
        foreach (var ep in rest.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            int colon = ep.LastIndexOf(':');
            if (colon <= 0 || !int.TryParse(ep.AsSpan(colon + 1), out var port) || port is <= 0 or > 65535)
                throw Bad($"distributed cache address '{address}': '{ep}' is not HOST:PORT");
            endpoints.Add(ep);
        }
        if (endpoints.Count == 0) throw Bad($"distributed cache address '{address}' names no node");

        var layout = CacheLayout.Auto;
        int stripes = 5;
        var deadline = TimeSpan.FromMilliseconds(100);
        var cooldown = TimeSpan.FromSeconds(1);
        var connect = TimeSpan.FromSeconds(2);
        foreach (var pair in query.Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            int eq = pair.IndexOf('=');
            var key = eq < 0 ? pair : pair[..eq];
            var value = eq < 0 ? "" : pair[(eq + 1)..];
            switch (key)
            {
                case "layout":
                    layout = value switch
                    {
                        "auto" => CacheLayout.Auto,
                        "whole" => CacheLayout.Whole,
                        "striped" => CacheLayout.Striped,
                        _ => throw Bad(
                            $"distributed cache address '{address}': layout '{value}' (use auto, whole or striped)"),
                    };
                    break;
                case "stripes":
                    if (!int.TryParse(value, out stripes) || stripes is < 3 or > 16)
                        throw Bad($"distributed cache address '{address}': stripes '{value}' must be 3-16");
                    break;
                case "deadline": deadline = Millis(address, key, value); break;
                case "cooldown": cooldown = Millis(address, key, value); break;
                case "connect": connect = Millis(address, key, value); break;
                default:
                    throw Bad($"distributed cache address '{address}': unknown option '{key}' "
                        + "(layout, stripes, deadline, cooldown, connect)");
            }
        }
        return new RedisAddress(endpoints, layout, stripes, deadline, cooldown, connect);
    }

    private static InvalidInputException Bad(string message) => new(message) { Parameter = "distributed" };

    private static TimeSpan Millis(string address, string key, string value) =>
        double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var ms) && ms > 0
            ? TimeSpan.FromMilliseconds(ms)
            : throw Bad(
                $"distributed cache address '{address}': {key} '{value}' is not a positive number of milliseconds");
}
