using Snapshots.Store;
using Snapshots.Store.Files;

namespace Snapshots.Snapd.Restores;

/// <summary>The daemon's own directories (state, restore records, sockets): created owner-only, and refused when
/// they are a symlink or belong to another user, since what is in them is trusted on the next start.</summary>
public static class SafeDirectories
{
    private const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    public static void CreateOwnerOnly(string path)
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
        if (info.UnixFileMode != OwnerOnly) File.SetUnixFileMode(path, OwnerOnly);
        uint? uid = FileKinds.OwnerOf(path);
        if (uid != FileKinds.EffectiveUid)
        {
            throw new InvalidInputException(
                $"{path} belongs to uid {uid}, not to snapd's uid {FileKinds.EffectiveUid}", "state");
        }
    }
}
