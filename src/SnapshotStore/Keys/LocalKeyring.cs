using System.Security.Cryptography;
using Snapshots.Store.Crypto;

namespace Snapshots.Store.Keys;

/// <summary>
/// A directory of domain master keys, one 32-byte file per trust domain (mode 0600, directory 0700). Two subkeys
/// are derived from each master: one for convergent chunk keys, one for wrapping layer keys, so neither use can
/// leak the other. Trusted as ssh trusts ~/.ssh: the directory must be ours and not writable by others (else
/// another user could plant a key our builds then use), a key file ours, regular, and readable by nobody else;
/// anything else is refused, naming the fix. A key is created only when a build asks for one, and announced.
/// </summary>
public sealed class LocalKeyring : IKeyProvider
{
    private const int MasterKeySize = 32;
    private readonly string _dir;
    private readonly Action<string> _announce;

    /// <param name="dir">The keyring directory.</param>
    /// <param name="announce">Told when a new domain key is created (a keyring created by a mistyped path is
    /// then visible, not silent).</param>
    public LocalKeyring(string dir, Action<string>? announce = null)
    {
        _dir = Path.GetFullPath(dir);
        _announce = announce ?? (_ => { });
    }

    public string Describe => $"keyring {_dir}";

    /// <summary>$SNAPSHOTS_KEYRING, else ~/.local/share/snapshots/keyring.</summary>
    public static string DefaultDirectory()
    {
        var env = Environment.GetEnvironmentVariable("SNAPSHOTS_KEYRING");
        if (!string.IsNullOrEmpty(env)) return env;
        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        return Path.Combine(home, ".local", "share", "snapshots", "keyring");
    }

    public byte[] GetConvergenceKey(TrustDomain domain, bool create) =>
        Subkey(domain, "snapshots/convergence/v1"u8, create);

    public byte[] WrapLayerKey(TrustDomain domain, ReadOnlySpan<byte> layerKey, ReadOnlySpan<byte> context, bool create)
    {
        var wrapKey = Subkey(domain, "snapshots/wrap/v1"u8, create);
        try { return SealedBox.Seal(wrapKey, layerKey, context); }
        finally { CryptographicOperations.ZeroMemory(wrapKey); }
    }

    public byte[] UnwrapLayerKey(TrustDomain domain, ReadOnlySpan<byte> wrapped, ReadOnlySpan<byte> context)
    {
        var wrapKey = Subkey(domain, "snapshots/wrap/v1"u8, create: false);
        try
        {
            if (!SealedBox.TryOpen(wrapKey, wrapped, context, out var layerKey))
                throw new KeyUnavailableException($"the layer key does not open with domain '{domain}' in {Describe}: "
                    + "the manifest was made with another key for this domain, or it was altered");
            return layerKey;
        }
        finally { CryptographicOperations.ZeroMemory(wrapKey); }
    }

    public string? Fingerprint(TrustDomain domain)
    {
        if (!CheckDirectory(creating: false) || ReadMaster(domain) is not { } master) return null;
        try
        {
            var mac = HMACSHA256.HashData(master, "snapshots/fingerprint/v1"u8);
            return Convert.ToHexStringLower(mac)[..16];
        }
        finally { CryptographicOperations.ZeroMemory(master); }
    }

    public IReadOnlyList<TrustDomain> Domains()
    {
        var found = new List<TrustDomain>();
        if (!CheckDirectory(creating: false)) return found;
        // Every *.key entry, whatever it is: a refused one (a link, open to others) shows as such, not as absent.
        foreach (var file in Directory.EnumerateFileSystemEntries(_dir, "*.key"))
            if (TrustDomain.TryParse(Path.GetFileNameWithoutExtension(file), out var d)) found.Add(d);
        found.Sort((a, b) => string.CompareOrdinal(a.Id, b.Id));
        return found;
    }

    public void CreateKey(TrustDomain domain)
    {
        CheckDirectory(creating: true);
        if (ReadMaster(domain) is { } existing)
        {
            CryptographicOperations.ZeroMemory(existing);
            throw new InvalidInputException($"domain '{domain}' already has a key in {Describe}", "keyring");
        }
        CreateMaster(KeyPath(domain));
        _announce($"created a new key for domain '{domain}' in {Describe}: keep it (with a backup); snapshots of "
            + "this domain cannot be read without it");
    }

    private byte[] Subkey(TrustDomain domain, ReadOnlySpan<byte> label, bool create)
    {
        var master = LoadMaster(domain, create);
        try { return HMACSHA256.HashData(master, label); }
        finally { CryptographicOperations.ZeroMemory(master); }
    }

    private string KeyPath(TrustDomain domain) => Path.Combine(_dir, domain.Id + ".key");

    private byte[] LoadMaster(TrustDomain domain, bool create)
    {
        bool exists = CheckDirectory(creating: create);
        if (exists && ReadMaster(domain) is { } key) return key;
        if (!create)
            throw new KeyUnavailableException($"no key for domain '{domain}' in {Describe}");
        CreateMaster(KeyPath(domain));
        _announce($"created a new key for domain '{domain}' in {Describe}: keep it (with a backup); snapshots of "
            + "this domain cannot be read without it");
        return ReadMaster(domain) ?? throw new KeyUnavailableException($"no key for domain '{domain}' in {Describe}");
    }

    /// <summary>True when the directory exists and may be trusted; false when missing (then created 0700 when
    /// <paramref name="creating"/>). Refuses, naming the fix, a symlink, another user's directory, or one that
    /// others can write.</summary>
    private bool CheckDirectory(bool creating)
    {
        var kind = Files.FileKinds.Of(_dir, followLinks: false);
        if (kind == Files.FileKind.Missing)
        {
            if (!creating) return false;
            Directory.CreateDirectory(_dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            return true;
        }
        if (kind != Files.FileKind.Directory)
        {
            throw new InvalidInputException(
                $"keyring {_dir} is {Files.FileKinds.Describe(kind)}, not a directory; refused", "keyring");
        }
        if (!Origin.Native.TryOwnerAndMode(_dir, out uint uid, out uint mode))
            throw new InvalidInputException($"keyring {_dir} cannot be examined", "keyring");
        uint me = Origin.Native.geteuid();
        if (uid != me)
            throw new InvalidInputException($"keyring {_dir} is owned by uid {uid}, not by you (uid {me}); refused",
                "keyring");
        if ((mode & 0x12) != 0) // group or other write
        {
            throw new InvalidInputException(
                $"keyring {_dir} is writable by others (mode {Convert.ToString(mode, 8)}); refused: chmod go-w it",
                "keyring");
        }
        return true;
    }

    /// <summary>The domain's master key, or null when it has none. A key file that is not ours, not a regular
    /// file, readable or writable by others, or not 32 bytes is refused.</summary>
    private byte[]? ReadMaster(TrustDomain domain)
    {
        using var dir = new Files.SafeDirectory(_dir);
        var name = domain.Id + ".key";
        byte[]? key;
        Files.FileFacts facts;
        try { key = dir.ReadAll(name, MasterKeySize, out facts); }
        catch (HostileFileException e)
        {
            throw new KeyUnavailableException($"key file for domain '{domain}' in {Describe}: {e.Message}");
        }
        if (key is null) return null;
        uint me = Origin.Native.geteuid();
        if (facts.Uid != me || (facts.Mode & 0x3F) != 0) // group or other may read, write or execute
        {
            System.Security.Cryptography.CryptographicOperations.ZeroMemory(key);
            throw new KeyUnavailableException($"key file {KeyPath(domain)} is "
                + (facts.Uid != me ? $"owned by uid {facts.Uid}, not by you" : $"open to others (mode "
                    + $"{Convert.ToString(facts.Mode, 8)})")
                + "; refused: it must be yours and mode 600");
        }
        if (key.Length != MasterKeySize)
        {
            throw new KeyUnavailableException(
                $"key file for domain '{domain}' in {Describe} is {key.Length} bytes, expected {MasterKeySize}");
        }
        return key;
    }

    private static void CreateMaster(string path)
    {
        var tmp = path + $".{Environment.ProcessId}.{Guid.NewGuid():N}.tmp";
        var key = RandomNumberGenerator.GetBytes(MasterKeySize);
        try
        {
            var options = new FileStreamOptions
            {
                Mode = FileMode.CreateNew, Access = FileAccess.Write,
                UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
            };
            using (var fs = new FileStream(tmp, options))
            {
                fs.Write(key);
                fs.Flush(flushToDisk: true);
            }
            // link-based move: fails if another process created the key first; theirs wins and we read it.
            try { File.Move(tmp, path, overwrite: false); }
            catch (IOException) when (File.Exists(path)) { }
        }
        finally
        {
            CryptographicOperations.ZeroMemory(key);
            File.Delete(tmp);
        }
    }

    /// <summary>DIR/accepted/STORE.NAME holds the sequence as decimal text, STORE a hash of the store's address.
    /// Read as the keys are (ours, regular, no link); a file that is not is refused.</summary>
    public long AcceptedSequence(string store, string name)
    {
        if (!CheckAcceptedDirectory()) return 0;
        using var dir = new Files.SafeDirectory(Path.Combine(_dir, AcceptedDir));
        byte[]? text;
        try { text = dir.ReadAll(AcceptedFile(store, name), 64); }
        catch (HostileFileException e)
        {
            throw new KeyUnavailableException($"the accepted-versions record in {Describe}: {e.Message}");
        }
        if (text is null) return 0;
        return long.TryParse(System.Text.Encoding.ASCII.GetString(text).Trim(), out long n) && n >= 0 ? n
            : throw new KeyUnavailableException(
                $"the accepted-versions record for '{name}' in {Describe} is damaged; remove it to trust the store");
    }

    /// <summary>A keyring this reader may not write (shared read-only) still checks; the record is then not moved
    /// forward, and that is said (announced), never silent.</summary>
    public void Accept(string store, string name, long sequence)
    {
        try { Record(store, name, sequence); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _announce($"warning: could not record publication {sequence} of '{name}' in {Describe}: {e.Message}");
        }
    }

    /// <summary>True when DIR/accepted is a real directory of ours that others cannot write; false when missing;
    /// anything else (a link, a file, open to others) is refused: the records it holds decide what a rollback is.
    /// </summary>
    private bool CheckAcceptedDirectory()
    {
        var dir = Path.Combine(_dir, AcceptedDir);
        var kind = Files.FileKinds.Of(dir, followLinks: false);
        if (kind == Files.FileKind.Missing) return false;
        if (kind != Files.FileKind.Directory)
        {
            throw new InvalidInputException($"{dir} is {Files.FileKinds.Describe(kind)}, not a directory: the "
                + "accepted-publication records cannot be trusted; remove it", "keyring");
        }
        if (!Origin.Native.TryOwnerAndMode(dir, out uint uid, out uint mode) || uid != Origin.Native.geteuid()
            || (mode & 0x12) != 0)
        {
            throw new InvalidInputException($"{dir} is not yours alone (owner uid {uid}, mode "
                + $"{Convert.ToString(mode, 8)}): refused; chmod go-w it", "keyring");
        }
        return true;
    }

    private void Record(string store, string name, long sequence)
    {
        CheckDirectory(creating: true);
        var dir = Path.Combine(_dir, AcceptedDir);
        if (!CheckAcceptedDirectory())
            Directory.CreateDirectory(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        Files.OutputFile.WriteAllBytes(Path.Combine(dir, AcceptedFile(store, name)),
            System.Text.Encoding.ASCII.GetBytes(sequence.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            "keyring");
    }

    private const string AcceptedDir = "accepted";

    private static string AcceptedFile(string store, string name) =>
        Convert.ToHexStringLower(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(store)))[..16] + "." + name;
}
