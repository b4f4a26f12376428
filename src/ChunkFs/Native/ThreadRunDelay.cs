using System.Globalization;

namespace Snapshots.ChunkFs.Native;

/// <summary>The calling thread's run-queue delay so far: time it was runnable but not running, the second field of
/// /proc/thread-self/schedstat (nanoseconds; Linux with schedstats). Zero when the file is missing or unreadable.
/// </summary>
internal static class ThreadRunDelay
{
    public static TimeSpan Read()
    {
        try
        {
            var fields = File.ReadAllText("/proc/thread-self/schedstat").Split(' ');
            return fields.Length >= 2 && long.TryParse(fields[1], NumberStyles.None, CultureInfo.InvariantCulture,
                out long ns)
                ? TimeSpan.FromTicks(ns / 100)
                : TimeSpan.Zero;
        }
        catch (IOException)
        {
            return TimeSpan.Zero;
        }
        catch (UnauthorizedAccessException)
        {
            return TimeSpan.Zero;
        }
    }
}
