using Snapshots.Store;
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

    // Found by a reviewer: `--out` naming a symlink replaced the link with a regular file (as root, `export --out
    // /dev/stdout` replaced the system's /dev/stdout link). A symlink at the target is refused like a device or a
    // FIFO, told by lstat, and left as it was; nothing is written through it and no temp file is left.
    [Fact]
    public void A_symlink_at_the_target_is_refused_and_left_alone()
    {
        using var t = new TestStore();
        var pointee = t.Path_("pointee.img");
        File.WriteAllBytes(pointee, [1, 2, 3]);
        var link = t.Path_("link.img");
        File.CreateSymbolicLink(link, pointee);
        var dangling = t.Path_("dangling.img");
        File.CreateSymbolicLink(dangling, t.Path_("nowhere.img"));

        foreach (var target in new[] { link, dangling })
        {
            var ex = Assert.Throws<InvalidInputException>(() => OutputFile.WriteAllBytes(target, [7, 7], "out"));
            Assert.Equal("out", ex.Parameter);
            Assert.Contains("symlink", ex.Message, StringComparison.Ordinal);
            Assert.Throws<InvalidInputException>(() => OutputFile.Check(target, "out"));
        }
        Assert.NotNull(new FileInfo(link).LinkTarget);
        Assert.NotNull(new FileInfo(dangling).LinkTarget);
        Assert.Equal([1, 2, 3], File.ReadAllBytes(pointee));
        Assert.False(File.Exists(t.Path_("nowhere.img")));
        Assert.Equal(["dangling.img", "link.img", "pointee.img"],
            Directory.GetFileSystemEntries(t.Dir, "*.img*").Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void A_symlink_planted_while_the_output_is_written_is_refused_at_the_rename()
    {
        using var t = new TestStore();
        var pointee = t.Path_("pointee.img");
        File.WriteAllBytes(pointee, [1, 2, 3]);
        var target = t.Path_("out.img");
        using (var output = OutputFile.Create(target, "out"))
        {
            RandomAccess.Write(output.Handle, new byte[] { 7, 7 }, 0);
            File.CreateSymbolicLink(target, pointee);
            var ex = Assert.Throws<InvalidInputException>(output.Commit);
            Assert.Equal("out", ex.Parameter);
        }
        Assert.NotNull(new FileInfo(target).LinkTarget);
        Assert.Equal([1, 2, 3], File.ReadAllBytes(pointee));
        Assert.Equal(["out.img", "pointee.img"],
            Directory.GetFileSystemEntries(t.Dir, "*.img*").Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }
}
