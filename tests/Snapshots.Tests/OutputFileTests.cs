using Snapshots.Store.Files;

namespace Snapshots.Tests;

/// <summary>Outputs are whole or absent, owner-only, and a killed writer's partial temp file does not outlive the
/// next write of the same target.</summary>
[Trait("Category", Category.Unit)]
public class OutputFileTests
{
    [Fact]
    public void A_dead_writers_temp_file_is_removed_by_the_next_write_and_a_live_ones_is_kept()
    {
        using var t = new TestStore();
        var target = t.Path_("out.img");
        var dead = $"{target}.999999.{Guid.NewGuid():N}.tmp";   // no such process
        var live = $"{target}.1.{Guid.NewGuid():N}.tmp";        // init: alive, and written just now
        var other = t.Path_($"other.img.999999.{Guid.NewGuid():N}.tmp");
        foreach (var f in new[] { dead, live, other }) File.WriteAllBytes(f, [1, 2, 3]);
        Assert.DoesNotContain(System.Diagnostics.Process.GetProcesses(), p => p.Id == 999999);

        OutputFile.WriteAllBytes(target, [7, 7], "out");
        Assert.Equal([7, 7], File.ReadAllBytes(target));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(target));
        Assert.False(File.Exists(dead));
        Assert.True(File.Exists(live));  // its writer may still be writing
        Assert.True(File.Exists(other)); // another target's: not ours to judge

        File.SetLastWriteTimeUtc(live, DateTime.UtcNow - OutputFile.StaleAfter - TimeSpan.FromMinutes(1));
        OutputFile.WriteAllBytes(target, [8], "out");
        Assert.False(File.Exists(live)); // nobody wrote it for over an hour: a pid reused, or another namespace's
    }
}
