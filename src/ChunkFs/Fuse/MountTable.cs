namespace Snapshots.ChunkFs.Fuse;

/// <summary>One line of /proc/self/mountinfo: where a file system is mounted, its type and its device (for FUSE, the
/// minor number is the connection's id under /sys/fs/fuse/connections).</summary>
internal sealed record MountEntry(string MountPoint, string FsType, int Major, int Minor);

/// <summary>Reads /proc/self/mountinfo (proc(5)): the mount points this process sees.</summary>
internal static class MountTable
{
    public static MountEntry? Find(string mountPoint)
    {
        MountEntry? found = null;
        foreach (var line in File.ReadLines("/proc/self/mountinfo"))
        {
            var entry = Parse(line);
            // The last one wins: a later mount over the same point hides the earlier ones.
            if (entry is not null && entry.MountPoint == mountPoint) found = entry;
        }
        return found;
    }

    /// <summary>"36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw": field 3 is major:minor, field 5
    /// the mount point (octal-escaped), and the type follows the " - " separator.</summary>
    internal static MountEntry? Parse(string line)
    {
        var fields = line.Split(' ');
        int dash = Array.IndexOf(fields, "-");
        if (fields.Length < 5 || dash < 0 || dash + 1 >= fields.Length) return null;
        var dev = fields[2].Split(':');
        if (dev.Length != 2 || !int.TryParse(dev[0], out int major) || !int.TryParse(dev[1], out int minor))
            return null;
        return new MountEntry(Unescape(fields[4]), fields[dash + 1], major, minor);
    }

    /// <summary>The kernel writes space, tab, newline and backslash in paths as \ooo.</summary>
    private static string Unescape(string s)
    {
        if (!s.Contains('\\')) return s;
        var b = new System.Text.StringBuilder(s.Length);
        for (int i = 0; i < s.Length; i++)
        {
            if (s[i] == '\\' && IsOctal(s, i + 1))
            {
                b.Append((char)Convert.ToInt32(s.Substring(i + 1, 3), 8));
                i += 3;
            }
            else b.Append(s[i]);
        }
        return b.ToString();
    }

    private static bool IsOctal(string s, int at) =>
        at + 3 <= s.Length && s[at] is >= '0' and <= '7' && s[at + 1] is >= '0' and <= '7'
        && s[at + 2] is >= '0' and <= '7';
}
