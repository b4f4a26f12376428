using System.Diagnostics;
using Snapshots.Store;
using Snapshots.Store.Layers;
using Snapshots.Store.Manifests;

namespace Snapshots.Tests;

[Trait("Category", Category.Unit)]
public class ManifestTests
{
    private static async Task<(TestStore Store, byte[] Bytes)> OneManifestAsync()
    {
        var t = new TestStore();
        await t.BuildAsync("os", t.Image("os.img", size: 16L << 20));
        await t.BuildAsync("fn", t.Image("fn.img", function: 3, size: 16L << 20), parent: "os", tenant: "acme");
        return (t, await File.ReadAllBytesAsync(Path.Combine(t.StoreDir, SnapshotCatalog.KeyOf("fn"))));
    }

    [Fact]
    public async Task Round_trip_keeps_every_field()
    {
        var (t, bytes) = await OneManifestAsync();
        using var _ = t;
        var m = ManifestCodec.Parse(bytes, "test");
        Assert.Equal("fn", m.Name);
        Assert.Equal(LayerKind.Function, m.Layer);
        Assert.Equal("tenant-acme", m.Domain.Id);
        Assert.Equal("os", m.ParentName);
        Assert.Equal(16L << 20, m.ImageSize);
        Assert.Equal((await t.Catalog.LoadAsync("os")).Hash, m.ParentHash);
        var secrets = ManifestCodec.OpenKeyTable(m, t.Keys);
        Assert.Equal(m.Entries.Length, secrets.Length);
    }

    [Fact]
    public async Task Every_flipped_bit_is_rejected_with_a_named_error()
    {
        var (t, bytes) = await OneManifestAsync();
        using var _ = t;
        // Every byte position, one bit each: the checksum or the key table's authentication catches it.
        for (int i = 0; i < bytes.Length; i++)
        {
            var bad = (byte[])bytes.Clone();
            bad[i] ^= (byte)(1 << (i % 8));
            var ex = Assert.ThrowsAny<SnapshotException>(() =>
            {
                var m = ManifestCodec.Parse(bad, "'fn'");
                ManifestCodec.OpenKeyTable(m, t.Keys);
            });
            Assert.Contains("'fn'", ex.Message);
        }
    }

    [Fact]
    public async Task Truncated_manifest_says_truncated()
    {
        var (t, bytes) = await OneManifestAsync();
        using var _ = t;
        foreach (int len in new[] { 0, 3, 8, 15, 100, bytes.Length / 2, bytes.Length - 1 })
        {
            var ex = Assert.Throws<ManifestFormatException>(() => ManifestCodec.Parse(bytes.AsSpan(0, len), "'fn'"));
            Assert.Matches("truncated|bad magic", ex.Message);
        }
        await File.WriteAllBytesAsync(
            Path.Combine(t.StoreDir, SnapshotCatalog.KeyOf("fn")), bytes.AsSpan(0, bytes.Length - 40).ToArray());
        var e2 = await Assert.ThrowsAsync<ManifestFormatException>(() => t.OpenAsync("fn", "acme"));
        Assert.Contains("'fn' in file://", e2.Message);
        Assert.Contains("truncated", e2.Message);
    }

    [Fact]
    public async Task Ten_thousand_mutated_manifests_fail_cleanly_without_crash_or_hang()
    {
        var (t, bytes) = await OneManifestAsync();
        using var _ = t;
        var rng = new Random(20261126);
        var clock = Stopwatch.StartNew();
        int rejected = 0;
        for (int i = 0; i < 10_000; i++)
        {
            var bad = Mutate(bytes, rng);
            var one = Stopwatch.StartNew();
            try
            {
                var m = ManifestCodec.Parse(bad, "fuzz");
                ManifestCodec.OpenKeyTable(m, t.Keys);
                Assert.Equal(bytes, bad); // only an unchanged manifest may pass
            }
            catch (SnapshotException ex)
            {
                Assert.False(string.IsNullOrWhiteSpace(ex.Message));
                rejected++;
            }
            Assert.True(one.Elapsed < TimeSpan.FromSeconds(2), $"mutation {i} took {one.Elapsed}");
        }
        Assert.True(rejected > 9_000, $"{rejected} rejected");
    }

    [Fact]
    public void Garbage_is_not_a_manifest()
    {
        var rng = new Random(7);
        for (int i = 0; i < 1_000; i++)
        {
            var junk = new byte[rng.Next(0, 4096)];
            rng.NextBytes(junk);
            if (i % 2 == 0 && junk.Length >= 8) "SNAPMAN\0"u8.CopyTo(junk); // past the magic, into the fields
            Assert.Throws<ManifestFormatException>(() => ManifestCodec.Parse(junk, "garbage"));
        }
    }

    private static byte[] Mutate(byte[] original, Random rng)
    {
        var b = (byte[])original.Clone();
        switch (rng.Next(6))
        {
            case 0: b[rng.Next(b.Length)] ^= (byte)(1 << rng.Next(8)); return b;
            case 1: for (int k = rng.Next(1, 16); k > 0; k--) b[rng.Next(b.Length)] = (byte)rng.Next(256); return b;
            case 2: return b[..rng.Next(b.Length)];
            case 3: return [.. b, .. new byte[rng.Next(1, 64)]];
            case 4:
                // Lengths and counts in the header are the dangerous fields: hit the first 200 bytes hard.
                int at = rng.Next(Math.Min(200, b.Length - 4));
                BitConverter.TryWriteBytes(b.AsSpan(at), rng.Next(2) == 0 ? int.MaxValue : rng.Next());
                return b;
            default:
                int start = rng.Next(b.Length), len = rng.Next(1, 128);
                return [.. b[..start], .. b[Math.Min(b.Length, start + len)..]];
        }
    }
}
