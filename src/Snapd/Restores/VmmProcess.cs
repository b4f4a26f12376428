using System.Diagnostics;
using System.Globalization;

namespace Snapshots.Snapd.Restores;

/// <summary>A VMM process named by pid and start time: a pid alone may be reused by another process after the VMM
/// exits, so nothing is done to a pid whose start time differs from the one recorded.</summary>
public static class VmmProcess
{
    /// <summary>Field 22 of /proc/PID/stat (clock ticks after boot); null when the process does not exist.</summary>
    public static ulong? StartTime(int pid)
    {
        if (pid <= 0) return null;
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            // The command name (field 2) is in parentheses and may hold spaces: count fields after its ')'.
            int close = stat.LastIndexOf(')');
            var fields = stat[(close + 2)..].Split(' ');
            return ulong.Parse(fields[19], CultureInfo.InvariantCulture); // field 22 = index 19 after field 2
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException
            or IndexOutOfRangeException or ArgumentOutOfRangeException)
        {
            return null;
        }
    }

    /// <summary>SIGKILLs the process when it is still the one recorded (same start time); true when killed.
    /// </summary>
    public static bool KillIfSame(int pid, ulong startTime)
    {
        if (pid <= 1 || pid == Environment.ProcessId || startTime == 0 || StartTime(pid) != startTime) return false;
        try
        {
            using var p = Process.GetProcessById(pid);
            p.Kill();
            return true;
        }
        catch (Exception ex) when (ex is ArgumentException or InvalidOperationException
            or System.ComponentModel.Win32Exception)
        {
            return false;
        }
    }
}
