using System.Diagnostics;

namespace Snapshots.Tests;

/// <summary>A small tmpfs of its own, mounted at <see cref="Dir"/> (root), unmounted on dispose: a disk that
/// really fills, without touching anyone else's.</summary>
public sealed class Tmpfs : IDisposable
{
    public string Dir { get; }

    public Tmpfs(string dir, string size)
    {
        Dir = Path.GetFullPath(dir);
        Directory.CreateDirectory(Dir);
        Run("mount", "-t", "tmpfs", "-o", $"size={size}", "tmpfs", Dir);
    }

    /// <summary>Bytes free on the tmpfs now, as the cache sees them (statvfs).</summary>
    public long FreeBytes => new DriveInfo(Dir).AvailableFreeSpace;

    /// <summary>Fills the tmpfs to the last byte with a file of its own; returns its path.</summary>
    public string FillWithBallast()
    {
        var path = Path.Combine(Dir, "ballast");
        var block = new byte[64 * 1024];
        Array.Fill(block, (byte)0x5a);
        using var f = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1);
        try
        {
            while (true) f.Write(block);
        }
        catch (IOException) { } // full: what we wanted
        return path;
    }

    public void Dispose()
    {
        // Lazily if busy: a test that failed with a file open must not leave the mount behind.
        if (!TryRun("umount", Dir)) TryRun("umount", "-l", Dir);
    }

    private static void Run(params string[] args)
    {
        if (!TryRun(args)) throw new InvalidOperationException($"{string.Join(' ', args)} failed (root needed)");
    }

    private static bool TryRun(params string[] args)
    {
        var psi = new ProcessStartInfo(args[0]) { RedirectStandardError = true };
        foreach (var a in args.Skip(1)) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        p.StandardError.ReadToEnd();
        p.WaitForExit();
        return p.ExitCode == 0;
    }
}
