using Snapshots.Host;

namespace Snapshots.Snapctl.Commands;

/// <summary>Parses sizes like 512M, 2G, 1048576 (<see cref="ByteSize"/>) as a flag's value.</summary>
public static class SizeParser
{
    /// <summary>The size in bytes; a <see cref="UsageException"/> naming <paramref name="option"/> otherwise.</summary>
    public static long Parse(string text, string option)
    {
        ArgumentNullException.ThrowIfNull(text);
        return ByteSize.TryParse(text, out long bytes) ? bytes
            : throw new UsageException($"{option} '{text}' is not a positive size (a number with K, M, G or T)");
    }
}
