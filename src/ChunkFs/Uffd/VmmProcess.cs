using System.Globalization;
using static Snapshots.ChunkFs.Native.LibC;

namespace Snapshots.ChunkFs.Uffd;

/// <summary>What /proc says about a VMM process: when it started (to tell it from a later process given the same
/// pid) and which of its descriptors is a given open file. Read at accept and at take-back, never per fault.</summary>
public static class VmmProcess
{
    /// <summary>When <paramref name="pid"/> started, in clock ticks since boot (field 22 of /proc/PID/stat); null
    /// when no such process exists. Two processes given the same pid in turn never share it.</summary>
    public static ulong? StartTime(int pid)
    {
        string stat;
        try
        {
            stat = File.ReadAllText($"/proc/{pid}/stat");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null; // gone (ENOENT, or ESRCH while reading)
        }
        // The command name (field 2) is in parentheses and may hold spaces and ')': fields 3.. follow its last ')'.
        int close = stat.LastIndexOf(')');
        if (close < 0) return null;
        var fields = stat[(close + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        // fields[0] is field 3 (state): field 22 is fields[19].
        return fields.Length > 19 && ulong.TryParse(fields[19], NumberStyles.None, CultureInfo.InvariantCulture,
            out ulong ticks) ? ticks : null;
    }

    /// <summary>SIGKILLs <paramref name="pid"/> only while it is still the process that started at
    /// <paramref name="startTime"/> (a record's VMM, never a later process given its pid, never pid 0/1 or this
    /// process); true when killed. A VM that cannot be served is failed this way, never left frozen.</summary>
    public static bool KillIfSame(int pid, ulong startTime) =>
        startTime != 0 && StartTime(pid) == startTime && UffdSession.Kill(pid);

    /// <summary>What descriptor <paramref name="fd"/> of <paramref name="pid"/> links to in /proc
    /// ("anon_inode:[userfaultfd]", "pipe:[123]", a path); null when it is not open or cannot be read.</summary>
    public static string? FdTarget(int pid, int fd)
    {
        try
        {
            return new FileInfo($"/proc/{pid}/fd/{fd}").LinkTarget;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>The descriptor number, in <paramref name="pid"/>'s own table, of the open file this process holds as
    /// <paramref name="ourFd"/>: among its descriptors that link to <paramref name="linkTarget"/>, the one kcmp
    /// (KCMP_FILE) finds to be the same open file description. -1 when there is none (the process closed its copy
    /// or exited), or when /proc or kcmp may not be read (another user's process without CAP_SYS_PTRACE, a kernel
    /// without CONFIG_KCMP).</summary>
    public static int FindSameFile(int pid, int ourFd, string linkTarget)
    {
        string[] entries;
        try
        {
            entries = Directory.GetFiles($"/proc/{pid}/fd");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return -1;
        }
        int self = Environment.ProcessId;
        foreach (var entry in entries)
        {
            if (!int.TryParse(Path.GetFileName(entry), NumberStyles.None, CultureInfo.InvariantCulture, out int fd))
                continue;
            if (FdTarget(pid, fd) == linkTarget && KcmpFile(pid, self, fd, ourFd) == 0) return fd;
        }
        return -1;
    }
}
