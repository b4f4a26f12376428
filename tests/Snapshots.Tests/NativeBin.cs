namespace Snapshots.Tests;

/// <summary>Finds the programs `make -C native` builds (native/bin/NAME), searching from the test's output
/// directory upwards.</summary>
public static class NativeBin
{
    /// <summary>The full path of native/bin/<paramref name="name"/>; FileNotFoundException naming the make
    /// command when it is not built.</summary>
    public static string Find(string name)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "native", "bin", name);
            if (File.Exists(candidate)) return candidate;
        }
        throw new FileNotFoundException($"native/bin/{name} is not built: run `make -C native` (scripts/test.sh does)");
    }
}
