using Snapshots.Store;
using Snapshots.Store.Files;

namespace Snapshots.Tests;

/// <summary>Opening what someone may have planted: only a regular file beneath the directory, reached without a
/// symlink, within its size limit, and never a blocking open.</summary>
[Trait("Category", Category.Unit)]
public sealed class SafeDirectoryTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "safe-dir-" + Guid.NewGuid().ToString("N"));
    private readonly string _outside;

    public SafeDirectoryTests()
    {
        Directory.CreateDirectory(Path.Combine(_dir, "in", "sub"));
        _outside = _dir + "-outside";
        Directory.CreateDirectory(_outside);
        File.WriteAllBytes(Path.Combine(_outside, "secret"), [9, 9, 9]);
        File.WriteAllBytes(Path.Combine(_dir, "in", "sub", "ok"), [1, 2, 3]);
    }

    private SafeDirectory Root() => new(Path.Combine(_dir, "in"));

    [Fact]
    public void A_regular_file_is_read_and_a_missing_one_is_null()
    {
        using var root = Root();
        Assert.Equal([1, 2, 3], root.ReadAll("sub/ok", 16));
        Assert.Null(root.ReadAll("sub/missing", 16));
        Assert.Null(root.ReadAll("nodir/missing", 16));
    }

    [Fact]
    public void Symlinks_anywhere_on_the_path_are_refused_by_name()
    {
        using var root = Root();
        File.CreateSymbolicLink(Path.Combine(_dir, "in", "sub", "link"), Path.Combine(_outside, "secret"));
        Directory.CreateSymbolicLink(Path.Combine(_dir, "in", "dirlink"), _outside);
        var e = Assert.Throws<HostileFileException>(() => root.ReadAll("sub/link", 16));
        Assert.Contains("sub/link", e.Message);
        Assert.Contains("symlink", e.Message);
        Assert.Equal("hostile-file", e.Kind);
        Assert.Throws<HostileFileException>(() => root.ReadAll("dirlink/secret", 16));
        File.CreateSymbolicLink(Path.Combine(_dir, "in", "zero"), "/dev/zero");
        Assert.Throws<HostileFileException>(() => root.ReadAll("zero", 16));
    }

    [Fact]
    public async Task A_fifo_a_directory_or_an_oversized_file_is_refused_without_blocking()
    {
        using var root = Root();
        var fifo = Path.Combine(_dir, "in", "fifo");
        Assert.Equal(0, Mkfifo(fifo, 0x180));
        // A blocking open would never return: the wait's timeout would throw instead of the refusal.
        var e = await Assert.ThrowsAsync<HostileFileException>(
            () => Task.Run(() => root.ReadAll("fifo", 16)).WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Contains("a FIFO", e.Message);
        Assert.Contains("a directory", Assert.Throws<HostileFileException>(() => root.ReadAll("sub", 16)).Message);
        File.WriteAllBytes(Path.Combine(_dir, "in", "big"), new byte[100]);
        var big = Assert.Throws<HostileFileException>(() => root.ReadAll("big", 99));
        Assert.Contains("100 bytes, over the 99-byte limit", big.Message);
        Assert.Equal(100, root.ReadAll("big", 100)!.Length);
    }

    [Fact]
    public void Paths_that_leave_the_directory_are_a_bug_not_a_read()
    {
        using var root = Root();
        Assert.Throws<ArgumentException>(() => root.ReadAll("../outside/secret", 16));
        Assert.Throws<ArgumentException>(() => root.ReadAll("/etc/passwd", 16));
        Assert.Throws<ArgumentException>(() => root.ReadAll("", 16));
    }

    [System.Runtime.InteropServices.DllImport("libc", SetLastError = true)]
    private static extern int mkfifo(string path, uint mode);

    private static int Mkfifo(string path, uint mode) => mkfifo(path, mode);

    public void Dispose()
    {
        Directory.Delete(_dir, recursive: true);
        Directory.Delete(_outside, recursive: true);
    }
}
