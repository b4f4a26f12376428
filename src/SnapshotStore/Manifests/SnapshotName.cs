using System.Text.RegularExpressions;

namespace Snapshots.Store.Manifests;

/// <summary>Snapshot names are also object keys: keep them to a safe alphabet.</summary>
public static partial class SnapshotName
{
    public const int MaxLength = 128;

    /// <summary>1-128 of A-Z a-z 0-9 . _ -, starting with a letter or digit, and no ".." (a name is also a path
    /// and an object key).</summary>
    public static bool IsValid(string? name) =>
        name is not null && Pattern().IsMatch(name) && !name.Contains("..", StringComparison.Ordinal);

    /// <summary>The name, or an <see cref="InvalidInputException"/> naming <paramref name="parameter"/> (the
    /// input it came from: "name" unless said otherwise).</summary>
    public static string Validate(string? name, string parameter = "name")
    {
        if (!IsValid(name))
        {
            throw new InvalidInputException(
                $"snapshot name '{name}' is invalid: use 1-{MaxLength} of A-Z a-z 0-9 . _ -, starting with a letter "
                    + "or digit, without \"..\"", parameter);
        }
        return name!;
    }

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")]
    private static partial Regex Pattern();
}
