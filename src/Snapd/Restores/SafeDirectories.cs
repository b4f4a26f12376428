using Snapshots.Store;
using Snapshots.Store.Files;

namespace Snapshots.Snapd.Restores;

/// <summary>The daemon's own directories (state, restore records, sockets): created owner-only, and refused when
/// they are a symlink or belong to another user, since what is in them is trusted on the next start.</summary>
public static class SafeDirectories
{
    private const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    /// <summary>Owner-only, but others may pass through (0711), never list: the way to a socket or memory file given
    /// to a VMM of another uid (vmmUid) under random, unlisted names; records and logs in it stay 0600.</summary>
    private const UnixFileMode Passable = OwnerOnly | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;

    /// <summary>The state directory and its restores/ and mounts/: <see cref="Passable"/>.</summary>
    public static void CreatePassable(string path) => Create(path, Passable);

    public static void CreateOwnerOnly(string path) => Create(path, OwnerOnly);

    private static void Create(string path, UnixFileMode mode)
    {
        var info = new DirectoryInfo(path);
        if (info.LinkTarget is not null)
            throw new InvalidInputException($"{path} is a symlink; snapd's state must be a real directory", "state");
        if (!info.Exists)
        {
            Directory.CreateDirectory(path, OwnerOnly);
            info.Refresh();
        }
        if (File.Exists(path))
            throw new InvalidInputException($"{path} is a file, not a directory", "state");
        if (info.UnixFileMode != mode) File.SetUnixFileMode(path, mode);
        uint? uid = FileKinds.OwnerOf(path);
        if (uid != FileKinds.EffectiveUid)
        {
            throw new InvalidInputException(
                $"{path} belongs to uid {uid}, not to snapd's uid {FileKinds.EffectiveUid}", "state");
        }
    }
}
