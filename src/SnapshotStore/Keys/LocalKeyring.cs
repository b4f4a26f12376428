using System.Security.Cryptography;
using Snapshots.Store.Crypto;

namespace Snapshots.Store.Keys;

/// <summary>
/// A directory of domain master keys, one 32-byte file per trust domain (mode 0600, directory 0700), created
/// on first use. Two subkeys are derived from each master: one for convergent chunk keys, one for wrapping
/// layer keys, so neither use can leak the other.
/// </summary>
public sealed class LocalKeyring : IKeyProvider
{
    private const int MasterKeySize = 32;
    private readonly string _dir;

    public LocalKeyring(string dir) => _dir = Path.GetFullPath(dir);

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

    private byte[] Subkey(TrustDomain domain, ReadOnlySpan<byte> label, bool create)
    {
        var master = LoadMaster(domain, create);
        try { return HMACSHA256.HashData(master, label); }
        finally { CryptographicOperations.ZeroMemory(master); }
    }

    private string KeyPath(TrustDomain domain) => Path.Combine(_dir, domain.Id + ".key");

    private byte[] LoadMaster(TrustDomain domain, bool create)
    {
        var path = KeyPath(domain);
        if (File.Exists(path)) return ReadMaster(path, domain);
        if (!create)
            throw new KeyUnavailableException($"no key for domain '{domain}' in {Describe}");
        CreateMaster(path);
        return ReadMaster(path, domain);
    }

    private byte[] ReadMaster(string path, TrustDomain domain)
    {
        var key = File.ReadAllBytes(path);
        if (key.Length != MasterKeySize)
        {
            throw new KeyUnavailableException(
                $"key file for domain '{domain}' in {Describe} is {key.Length} bytes, expected {MasterKeySize}");
        }
        return key;
    }

    private void CreateMaster(string path)
    {
        if (File.Exists(_dir)) throw new InvalidInputException($"keyring {_dir} is a file, not a directory", "keyring");
        Directory.CreateDirectory(_dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
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
}
