using System.Text;
using Snapshots.Store;
using Snapshots.Store.Crypto;
using Snapshots.Store.Keys;

namespace Snapshots.Tests;

[Trait("Category", Category.Unit)]
public class KeyTests
{
    [Fact]
    public async Task Keyring_files_are_private_and_created_on_first_use()
    {
        using var t = new TestStore();
        Assert.False(Directory.Exists(t.KeyringDir));
        await t.BuildAsync("os", t.Image("os.img", size: 16L << 20));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute,
            File.GetUnixFileMode(t.KeyringDir));
        var file = Assert.Single(Directory.GetFiles(t.KeyringDir));
        Assert.EndsWith("shared.key", file);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(file));
    }

    [Fact]
    public async Task No_key_and_no_plaintext_ever_reaches_the_store()
    {
        using var t = new TestStore();
        var img = t.Image("fn.img", runtime: 2, function: 3, size: 16L << 20);
        await t.BuildAsync("fn", img, tenant: "acme", layer: Store.Manifests.LayerKind.Function);
        var master = File.ReadAllBytes(Path.Combine(t.KeyringDir, "tenant-acme.key"));
        var chain = await t.OpenAsync("fn", "acme");
        var probes = new List<byte[]> { master };
        probes.AddRange(chain.Secrets[0].Take(8).Select(s => ((ReadOnlySpan<byte>)s.Key).ToArray()));
        // A 64-byte window of real plaintext from a data page.
        var image = File.ReadAllBytes(img);
        int data = image.AsSpan().IndexOfAnyExcept((byte)0);
        probes.Add(image.AsSpan(data, 64).ToArray());
        foreach (var f in Directory.EnumerateFiles(t.StoreDir, "*", SearchOption.AllDirectories))
        {
            var bytes = File.ReadAllBytes(f);
            foreach (var p in probes) Assert.True(bytes.AsSpan().IndexOf(p) < 0, $"{f} contains a key or plaintext");
        }
    }

    [Fact]
    public async Task Wrong_tenant_and_missing_key_are_refused_by_name()
    {
        using var t = new TestStore();
        await t.BuildAsync("os", t.Image("os.img", size: 16L << 20));
        await t.BuildAsync("fn", t.Image("fn.img", function: 3, size: 16L << 20), parent: "os", tenant: "acme");

        var wrong = await Assert.ThrowsAsync<KeyUnavailableException>(() => t.OpenAsync("fn", "evil"));
        Assert.Contains("'fn' belongs to another tenant", wrong.Message);
        var none = await Assert.ThrowsAsync<KeyUnavailableException>(() => t.OpenAsync("fn"));
        Assert.Equal("tenant", none.Parameter); // the library names the input; snapctl names its flag
        Assert.DoesNotContain("--", none.Message);
        // A function layer cannot be built on another tenant's layer either.
        await Assert.ThrowsAsync<KeyUnavailableException>(
            () => t.BuildAsync("fn2", t.Path_("fn.img"), parent: "fn", tenant: "evil"));

        File.Delete(Path.Combine(t.KeyringDir, "tenant-acme.key"));
        var missing = await Assert.ThrowsAsync<KeyUnavailableException>(() => t.OpenAsync("fn", "acme"));
        Assert.Contains("no key for domain 'tenant-acme'", missing.Message);

        // A key of the right domain but the wrong value (another keyring) does not open the layer key.
        var other = new LocalKeyring(Path.Combine(t.Dir, "other"));
        other.GetConvergenceKey(TrustDomain.ForTenant("acme"), create: true);
        File.Copy(Path.Combine(t.Dir, "other", "tenant-acme.key"), Path.Combine(t.KeyringDir, "tenant-acme.key"));
        var foreign = await Assert.ThrowsAsync<KeyUnavailableException>(() => t.OpenAsync("fn", "acme"));
        Assert.Contains("does not open", foreign.Message);
        _ = Encoding.UTF8;
    }

    [Fact]
    public async Task A_keyring_others_could_plant_in_or_read_is_refused_naming_the_fix()
    {
        using var t = new TestStore();
        var announced = new List<string>();
        var keys = new LocalKeyring(t.KeyringDir, announced.Add);
        var domain = TrustDomain.ForTenant("acme");
        keys.GetConvergenceKey(domain, create: true);
        Assert.Contains(announced, m => m.Contains("created a new key for domain", StringComparison.Ordinal));
        keys.GetConvergenceKey(domain, create: false); // trusted as it was made
        var keyFile = Path.Combine(t.KeyringDir, "tenant-acme.key");

        File.SetUnixFileMode(keyFile, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.OtherRead);
        var open = Assert.Throws<KeyUnavailableException>(() => keys.GetConvergenceKey(domain, create: false));
        Assert.Contains("mode 604", open.Message);
        Assert.Contains("mode 600", open.Message);
        File.SetUnixFileMode(keyFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);

        File.SetUnixFileMode(t.KeyringDir, (UnixFileMode)0x1FF); // 0777: anyone could plant a key
        var dir = Assert.Throws<InvalidInputException>(() => keys.GetConvergenceKey(domain, create: false));
        Assert.Contains("writable by others", dir.Message);
        Assert.Equal("keyring", dir.Parameter);
        File.SetUnixFileMode(t.KeyringDir, (UnixFileMode)0x1C0);

        // A key file that is a symlink (to another keyring's key, say) is never followed.
        File.Move(keyFile, keyFile + ".real");
        File.CreateSymbolicLink(keyFile, keyFile + ".real");
        var link = Assert.Throws<KeyUnavailableException>(() => keys.GetConvergenceKey(domain, create: false));
        Assert.Contains("symlink", link.Message);
        File.Delete(keyFile);
        File.Move(keyFile + ".real", keyFile);

        // Another user's keyring (here: handed to nobody, uid 65534).
        if (Environment.UserName == "root")
        {
            using (var chown = System.Diagnostics.Process.Start("chown", ["65534", t.KeyringDir])!)
                await chown.WaitForExitAsync();
            var theirs = Assert.Throws<InvalidInputException>(() => keys.GetConvergenceKey(domain, create: false));
            Assert.Contains("owned by uid 65534", theirs.Message);
        }

        // A read never creates a key or a keyring.
        var missing = new LocalKeyring(t.Path_("typo-keyring"));
        Assert.Throws<KeyUnavailableException>(() => missing.GetConvergenceKey(domain, create: false));
        Assert.False(Directory.Exists(t.Path_("typo-keyring")));
    }
}
