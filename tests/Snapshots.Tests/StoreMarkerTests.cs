using Snapshots.Host;
using Snapshots.Store;
using Snapshots.Store.Origin;

namespace Snapshots.Tests;

/// <summary>The store marker in the host library: open refuses an unmarked or missing location, init makes a
/// store once, a later version is refused naming it.</summary>
[Trait("Category", Category.Unit)]
public class StoreMarkerTests
{
    [Fact]
    public async Task Open_needs_a_store_made_by_init()
    {
        using var t = new TestStore();
        var dir = t.Path_("s");
        var options = new StoreOptions { Address = dir, KeyringDirectory = t.KeyringDir };
        var missing = await Assert.ThrowsAsync<NotAStoreException>(() => SnapshotHost.OpenAsync(options));
        Assert.Equal("not-a-store", missing.Kind);
        Assert.Equal("store", missing.Parameter);
        Assert.False(Directory.Exists(dir));
        Directory.CreateDirectory(dir);
        await Assert.ThrowsAsync<NotAStoreException>(() => SnapshotHost.OpenAsync(options));

        Assert.Equal(StoreInitOutcome.Created, (await SnapshotHost.InitAsync(options)).Outcome);
        Assert.Equal(StoreInitOutcome.AlreadyInitialised, (await SnapshotHost.InitAsync(options)).Outcome);
        using (var host = await SnapshotHost.OpenAsync(options)) Assert.Empty(await host.ListAsync());

        File.WriteAllText(Path.Combine(dir, StoreMarker.Key), """{"format":"snapshots-store","version":2}""");
        var later = await Assert.ThrowsAsync<SnapshotException>(() => SnapshotHost.OpenAsync(options));
        Assert.Contains("version 2", later.Message);
        await Assert.ThrowsAsync<SnapshotException>(() => SnapshotHost.InitAsync(options));
    }

    /// <summary>Before: a version that is not a JSON number crashed open with InvalidOperationException ("a bug in
    /// snapctl"). It is a marker we did not write: not-a-store, naming the marker file.</summary>
    [Theory]
    [InlineData("""{"format":"snapshots-store","version":"1"}""")]
    [InlineData("""{"format":"snapshots-store","version":null}""")]
    [InlineData("""{"format":"snapshots-store","version":true}""")]
    [InlineData("""{"format":"snapshots-store","version":1.5}""")]
    [InlineData("""{"format":"snapshots-store"}""")]
    public async Task A_marker_whose_version_is_not_a_number_is_not_a_store(string marker)
    {
        using var t = new TestStore();
        var options = new StoreOptions { Address = t.Path_("s"), KeyringDirectory = t.KeyringDir };
        await SnapshotHost.InitAsync(options);
        File.WriteAllText(Path.Combine(t.Path_("s"), StoreMarker.Key), marker);
        var open = await Assert.ThrowsAsync<NotAStoreException>(() => SnapshotHost.OpenAsync(options));
        Assert.Contains(StoreMarker.Key, open.Message);
        Assert.Equal("store", open.Parameter);
        await Assert.ThrowsAsync<NotAStoreException>(() => SnapshotHost.InitAsync(options));
    }
}
