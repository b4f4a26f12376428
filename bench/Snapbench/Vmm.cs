using System.Buffers.Binary;
using System.Diagnostics;
using System.Text.Json;

namespace Snapshots.Snapbench;

/// <summary>What one replay-vmm run said: its exit code (0 only if every page it touched was right; 3: its
/// --timeout hit), its JSON line, every access's latency (ns), its stderr, and the wall time of the process.</summary>
public sealed record VmmRun(int ExitCode, JsonElement? Json, long[] LatenciesNs, string Stderr, double WallUs,
    bool Killed)
{
    public long Bad => Json is { } j && j.TryGetProperty("bad", out var b) ? b.GetInt64() : -1;

    public bool Right => ExitCode == 0 && Bad == 0;

    public bool Hung => Killed || ExitCode == 3;

    public string Summary => $"exit {ExitCode}{(Killed ? " (killed: hung)" : "")}, bad {Bad}"
        + (Stderr.Length > 0 ? $": {Stderr.Trim().ReplaceLineEndings(" | ")}" : "");
}

/// <summary>replay-vmm, the VMM side: `--mode handler` against a snapd socket, `--mode file` on a file restore's
/// memory file (ChunkFs), `--mode resident` (the image copied in first: the ceiling), `--mode minimal` (the minimal
/// C handler reading the local file: the naive peer).</summary>
public static class Vmm
{
    public const int Vcpus = 2;
    public const int TimeoutSeconds = 90;

    /// <summary>Starts replay-vmm; WORKLOAD is its --touch/--trace arguments; SOCKET is snapd's socket (handler) or
    /// the restore's memory file (file). The task ends with the process.</summary>
    public static async Task<VmmRun> RunAsync(Bench bench, string image, string mode, string? socket,
        string[] workload, string label, CancellationToken ct)
    {
        string lat = bench.WorkPath(label + ".lat");
        var psi = new ProcessStartInfo(bench.Tools.Vmm)
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        foreach (var a in (string[])["--image", image, "--mode", mode, .. workload, "--vcpus", $"{Vcpus}",
            "--timeout", $"{TimeoutSeconds}", "--latencies", lat,
            .. socket is null ? [] : mode == "file" ? ["--memory", socket] : (string[])["--socket", socket]])
            psi.ArgumentList.Add(a);
        var clock = Stopwatch.StartNew();
        var p = bench.Start(psi);
        var stdout = p.StandardOutput.ReadToEndAsync(ct);
        var stderr = p.StandardError.ReadToEndAsync(ct);
        bool killed = false;
        using (var limit = CancellationTokenSource.CreateLinkedTokenSource(ct))
        {
            limit.CancelAfter(TimeSpan.FromSeconds(TimeoutSeconds + 15));
            try
            {
                await p.WaitForExitAsync(limit.Token);
            }
            catch (OperationCanceledException)
            {
                killed = true;
                p.Kill();
                await p.WaitForExitAsync(CancellationToken.None);
            }
        }
        double wall = clock.Elapsed.TotalMicroseconds;
        string text = await stdout, err = await stderr;
        JsonElement? json = null;
        var line = text.Split('\n', StringSplitOptions.RemoveEmptyEntries).LastOrDefault(l => l.StartsWith('{'));
        if (line is not null)
        {
            try
            {
                json = JsonDocument.Parse(line).RootElement.Clone();
            }
            catch (JsonException)
            {
                // Reported through the exit code and stderr.
            }
        }
        long[] latencies = [];
        if (File.Exists(lat))
        {
            var bytes = await File.ReadAllBytesAsync(lat, ct);
            latencies = new long[bytes.Length / 8];
            for (int i = 0; i < latencies.Length; i++)
                latencies[i] = (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(i * 8));
            File.Delete(lat);
        }
        return new VmmRun(p.ExitCode, json, latencies, err, wall, killed);
    }

    /// <summary>A trace of PAGES distinct pages of IMAGEPAGES in a random order (from SEED), GAPUS microseconds
    /// between accesses, written to PATH: a VM that is still faulting seconds after its restore began, for the
    /// faults injected mid-restore. Run with --sleep-gaps so idle vCPUs leave the CPUs free.</summary>
    public static async Task<string[]> SlowTraceAsync(string path, long imagePages, int pages, int gapUs, int seed,
        CancellationToken ct)
    {
        var order = Enumerable.Range(0, (int)imagePages).ToArray();
        new System.Random(seed).Shuffle(order);
        var text = new System.Text.StringBuilder();
        foreach (var p in order.Take(pages))
            text.Append(System.Globalization.CultureInfo.InvariantCulture, $"{p * 4096L} {gapUs}\n");
        await File.WriteAllTextAsync(path, text.ToString(), ct);
        return ["--trace", path, "--sleep-gaps"];
    }

    /// <summary>--touch random:COUNT:SEED.</summary>
    public static string[] Random(long count, long seed) => ["--touch", $"random:{count}:{seed}"];
}
