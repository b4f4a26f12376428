using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace Snapshots.Snapbench;

/// <summary>Corrupt cache entries planted behind a daemon's back: bytes flipped in the local disk cache's chunk
/// files (DIR/ab/NAME, src/SnapshotStore/Cache/DiskChunkCache.cs), bytes overwritten in the Redis cache's values
/// (`{TAG}c:NAME` whole, `{TAG}sK:NAME:I` a stripe; src/SnapshotStore/Distributed/RedisChunkCache*.cs) through
/// redis-cli. Sizes are left alone: only a hash of the bytes can tell.</summary>
public static class Corruption
{
    /// <summary>Flips one byte in the middle of every other chunk file (sorted by name) of the disk cache in DIR;
    /// (planted, entries).</summary>
    public static (int Planted, int Entries) FlipDiskEntries(string dir)
    {
        var files = Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories)
            .Where(f => Path.GetFileName(f).Length == 64 && Path.GetFileName(Path.GetDirectoryName(f)!).Length == 2)
            .Order(StringComparer.Ordinal).ToList();
        int planted = 0;
        for (int i = 0; i < files.Count; i += 2)
        {
            using var fs = new FileStream(files[i], FileMode.Open, FileAccess.ReadWrite);
            if (fs.Length == 0) continue;
            fs.Position = fs.Length / 2;
            int b = fs.ReadByte();
            fs.Position = fs.Length / 2;
            fs.WriteByte((byte)(b ^ 0xFF));
            planted++;
        }
        return (planted, files.Count);
    }

    /// <summary>On every node of PORTS (the masters): each chunk whose name's last hex digit is even gets every one
    /// of its keys overwritten (no copy left: it must be dropped and fetched from the origin); each odd one only
    /// its first stripe (the striped layout rebuilds it from parity). (chunks with every key corrupt, keys
    /// overwritten, keys seen).</summary>
    public static async Task<(int WhollyCorrupt, int Overwritten, int Keys)> CorruptRedisAsync(IEnumerable<int> ports)
    {
        var keys = new List<(int Port, string Key)>();
        foreach (int port in ports)
        {
            var scan = await CliAsync(port, null, "--scan");
            foreach (var key in scan.Split('\n', StringSplitOptions.RemoveEmptyEntries)) keys.Add((port, key.Trim()));
        }
        var whole = new HashSet<string>(StringComparer.Ordinal);
        int overwritten = 0;
        foreach (var byPort in keys.GroupBy(k => k.Port))
        {
            var chosen = byPort.Where(k => Chosen(k.Key, whole)).Select(k => k.Key).ToList();
            if (chosen.Count == 0) continue;
            var lengths = (await CliAsync(byPort.Key, string.Concat(chosen.Select(k => $"STRLEN {k}\n"))))
                .Split('\n', StringSplitOptions.RemoveEmptyEntries);
            var script = new StringBuilder();
            for (int i = 0; i < chosen.Count && i < lengths.Length; i++)
            {
                long len = long.Parse(lengths[i].Trim(), CultureInfo.InvariantCulture);
                // Past the 12-byte stripe header: the payload, which only the chunk's hash can check.
                long at = Math.Max(12, len / 2);
                script.Append(CultureInfo.InvariantCulture, $"SETRANGE {chosen[i]} {at} CORRUPTED\n");
                overwritten++;
            }
            await CliAsync(byPort.Key, script.ToString());
        }
        return (whole.Count, overwritten, keys.Count);
    }

    /// <summary>Whether KEY is to be overwritten: a whole value, or every stripe of a chunk whose name ends in an
    /// even hex digit (both noted in WHOLE); of the others only the first stripe (`:0`).</summary>
    private static bool Chosen(string key, HashSet<string> whole)
    {
        // {TAG}c:NAME or {TAG}sK:NAME:I
        var parts = key[(key.IndexOf('}') + 1)..].Split(':');
        if (parts.Length < 2 || parts[1].Length != 64) return false;
        if (parts.Length == 2 || Convert.ToInt32(parts[1][^1..], 16) % 2 == 0)
        {
            whole.Add(parts[1]);
            return true;
        }
        return parts[2] == "0";
    }

    /// <summary>redis-cli -p PORT, its commands on stdin (one a line) or ARGS; its output.</summary>
    private static async Task<string> CliAsync(int port, string? commands, params string[] args)
    {
        var psi = new ProcessStartInfo("redis-cli")
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in (string[])["-p", $"{port}", .. args]) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi) ?? throw new InvalidOperationException("could not start redis-cli");
        var text = p.StandardOutput.ReadToEndAsync();
        var err = p.StandardError.ReadToEndAsync();
        if (commands is not null) await p.StandardInput.WriteAsync(commands);
        p.StandardInput.Close();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await p.WaitForExitAsync(cts.Token);
        if (p.ExitCode != 0) throw new InvalidOperationException($"redis-cli -p {port}: {await err}");
        return await text;
    }
}
