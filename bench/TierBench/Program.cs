using System.Globalization;
using Snapshots.TierBench;

// tierbench latency [--objects N] [--samples N] [--out FILE]
// tierbench restore [--chunks N] [--parallel N] [--out FILE]
// Starts s3rver (port 4602) and a 5-master Redis Cluster (ports 7141-7145) with scripts/services, runs, stops them.
CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
Environment.SetEnvironmentVariable("AWS_ACCESS_KEY_ID", "S3RVER");
Environment.SetEnvironmentVariable("AWS_SECRET_ACCESS_KEY", "S3RVER");
var scenario = args.Length > 0 ? args[0] : "latency";
string Arg(string name, string fallback)
{
    int i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
}

using var services = new Services(
    int.Parse(Arg("--s3-port", "4602")), int.Parse(Arg("--redis-base", "7141")), 5, Arg("--maxmem", "1gb"));
using var setup = new Setup(services);
string body = scenario switch
{
    "latency" => await LatencyScenario.RunAsync(
        setup, int.Parse(Arg("--objects", "200")), int.Parse(Arg("--samples", "2000"))),
    "restore" => await RestoreScenario.RunAsync(
        setup, int.Parse(Arg("--chunks", "1000")), int.Parse(Arg("--parallel", "16"))),
    _ => throw new ArgumentException($"unknown scenario '{scenario}' (latency, restore)"),
};

var cpu = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name"))?.Split(':')[1].Trim() ?? "?";
var load = File.ReadAllText("/proc/loadavg").Trim();
var head = $"## tierbench {scenario}\n\n" +
    $"- command: `dotnet run -c Release --project bench/TierBench -- {string.Join(' ', args)}`\n" +
    $"- date: {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC; machine: {Environment.ProcessorCount} cores ({cpu}), " +
    $"loadavg at end {load}\n" +
    "- services: s3rver 3.7.1 on loopback, Redis 7.0 cluster of 5 masters (no replicas) on loopback; " +
    $".NET {Environment.Version}\n";
var text = head + "\n" + body;
Console.WriteLine(text);
if (Arg("--out", "") is { Length: > 0 } outFile) File.WriteAllText(outFile, text);
