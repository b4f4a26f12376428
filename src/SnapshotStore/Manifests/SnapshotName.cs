using System.Text.RegularExpressions;

namespace Snapshots.Store.Manifests;

/// <summary>Snapshot names are also object keys: keep them to a safe alphabet.</summary>
public static partial class SnapshotName
{
    public const int MaxLength = 128;

    public static bool IsValid(string? name) => name is not null && Pattern().IsMatch(name);

    public static string Validate(string? name)
    {
        if (!IsValid(name))
            throw new InvalidInputException(
                $"snapshot name '{name}' is invalid: use 1-{MaxLength} of A-Z a-z 0-9 . _ -, "
                + "starting with a letter or digit");
        return name!;
    }

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")]
    private static partial Regex Pattern();
}
