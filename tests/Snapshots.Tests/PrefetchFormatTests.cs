using Snapshots.Prefetch;
using Snapshots.Store;

namespace Snapshots.Tests;

[Trait("Category", Category.Unit)]
public class PrefetchFormatTests
{
    private static AccessLog Log(params uint[] pages) =>
        new() { ImageSize = 64L << 20, Touches = pages.Select((p, i) => new PageTouch(p, (uint)i * 10)).ToArray() };

    [Fact]
    public void Access_logs_and_plans_round_trip()
    {
        var log = Log(5, 9, 1, 700);
        var back = AccessLog.Parse(log.Serialize(), "x");
        Assert.Equal(log.Touches, back.Touches);
        var plan = PlanMerger.Merge([log, Log(9, 5, 1), Log(1, 5)], minFraction: 0.6, groupPages: 2);
        var again = PrefetchPlan.Parse(plan.Serialize(), "p");
        Assert.Equal(plan.Pages, again.Pages);
        Assert.Equal(plan.GroupSizes, again.GroupSizes);
        Assert.Equal(3, again.RunsMerged);
    }

    [Fact]
    public void Merge_keeps_pages_most_runs_touch_in_typical_order_grouped_by_offset()
    {
        // Page 1 comes first in every run, 700 is seen once (dropped at 50 %), 5 and 9 swap places.
        var plan = PlanMerger.Merge([Log(1, 5, 9, 700), Log(1, 9, 5), Log(1, 5, 9)], groupPages: 2);
        Assert.Equal(new uint[] { 1, 5, 9 }, plan.Pages);
        Assert.Equal(new[] { 2, 1 }, plan.GroupSizes);
        Assert.Throws<InvalidInputException>(
            () => PlanMerger.Merge([Log(1), new AccessLog { ImageSize = 4096, Touches = [] }]));
    }

    [Fact]
    public void Corrupt_foreign_and_mutated_files_are_rejected_cleanly()
    {
        var logBytes = Log(5, 9, 1, 700).Serialize();
        var planBytes = PlanMerger.Merge([Log(5, 9, 1, 700)]).Serialize();
        Assert.Contains("bad magic",
            Assert.Throws<InvalidInputException>(() => AccessLog.Parse(planBytes, "plan.bin")).Message);
        Assert.Contains("bad magic",
            Assert.Throws<InvalidInputException>(() => PrefetchPlan.Parse(logBytes, "x.log")).Message);
        Assert.Contains("access log x.log",
            Assert.Throws<InvalidInputException>(() => AccessLog.Parse("garbage"u8, "x.log")).Message);
        var rng = new Random(11);
        for (int i = 0; i < 10_000; i++)
        {
            var src = i % 2 == 0 ? logBytes : planBytes;
            var bad = (byte[])src.Clone();
            switch (rng.Next(3))
            {
                case 0: bad[rng.Next(bad.Length)] ^= (byte)(1 << rng.Next(8)); break;
                case 1: bad = bad[..rng.Next(bad.Length)]; break;
                default: bad = [.. bad, (byte)rng.Next(256)]; break;
            }
            var ex = Record.Exception(() =>
            {
                if (i % 2 == 0) AccessLog.Parse(bad, "f");
                else PrefetchPlan.Parse(bad, "f");
            });
            Assert.IsType<InvalidInputException>(ex);
        }
    }

    [Fact]
    public void Duplicate_and_out_of_range_pages_are_named()
    {
        var dup = new AccessLog
        {
            ImageSize = 64L << 20, Touches = [new PageTouch(3, 0), new PageTouch(3, 1)],
        }.Serialize();
        Assert.Contains("touched twice", Assert.Throws<InvalidInputException>(() => AccessLog.Parse(dup, "d")).Message);
        var far = new AccessLog { ImageSize = 8192, Touches = [new PageTouch(2, 0)] }.Serialize();
        Assert.Contains("beyond the image",
            Assert.Throws<InvalidInputException>(() => AccessLog.Parse(far, "f")).Message);
    }

    [Fact]
    public async Task A_plan_attached_to_one_version_is_ignored_for_another()
    {
        using var t = new TestStore();
        var img = t.Image("os.img", size: 16L << 20);
        await t.BuildAsync("os", img);
        var store = new PlanStore(t.Blobs, t.Keys);
        var plan = PlanMerger.Merge([new AccessLog { ImageSize = 16L << 20, Touches = [new PageTouch(1, 0)] }]);
        await store.AttachAsync("os", plan);
        var m1 = await t.Catalog.LoadAsync("os");
        Assert.NotNull((await store.TryLoadAsync("os", m1)).Plan);
        await t.BuildAsync("os", img, replace: true);
        var m2 = await t.Catalog.LoadAsync("os");
        var stale = await Assert.ThrowsAsync<ManifestFormatException>(() => store.TryLoadAsync("os", m2));
        Assert.Contains("another snapshot or version", stale.Message);
        var wrongSize = PlanMerger.Merge([new AccessLog { ImageSize = 8192, Touches = [new PageTouch(1, 0)] }]);
        await Assert.ThrowsAsync<InvalidInputException>(() => store.AttachAsync("os", wrongSize));
    }
}

/// <summary>A stored plan is trusted only when its seal verifies for the snapshot's own manifest and key: an
/// altered plan (even with its CRC recomputed) or a sibling snapshot's plan is refused by its binding.</summary>
[Trait("Category", Category.Unit)]
public class PlanSealTests
{
    [Fact]
    public async Task Altered_or_foreign_plans_are_refused_by_their_seal()
    {
        using var t = new TestStore();
        var img = t.Image("a.img", size: 16L << 20);
        await t.BuildAsync("a", img);
        await t.BuildAsync("b", t.Image("b.img", runtime: 2, size: 16L << 20));
        var store = new PlanStore(t.Blobs, t.Keys);
        var touches = Enumerable.Range(0, 300).Select(p => new PageTouch((uint)p, 1)).ToArray();
        var plan = PlanMerger.Merge([new AccessLog { ImageSize = 16L << 20, Touches = touches }]);
        await store.AttachAsync("a", plan);
        await store.AttachAsync("b", plan);
        var a = await t.Catalog.LoadAsync("a");
        var path = Path.Combine(t.StoreDir, "plans", "a.plan");
        var sealedBytes = await File.ReadAllBytesAsync(path);
        Assert.Equal(300, (await store.TryLoadAsync("a", a)).Plan!.Pages.Length);

        // The plan with its pages reversed and its CRC recomputed, in the original envelope.
        var inner = PrefetchPlan.Parse(sealedBytes.AsSpan(40), "inner");
        var reversed = inner.BoundTo(inner.ManifestHash, inner.PackName, inner.PackHash);
        Array.Reverse(reversed.Pages);
        var forged = sealedBytes[..40].Concat(reversed.Serialize()).ToArray();
        await File.WriteAllBytesAsync(path, forged);
        var ex = await Assert.ThrowsAsync<ManifestFormatException>(() => store.TryLoadAsync("a", a));
        Assert.Contains("does not verify", ex.Message);

        // The sibling's sealed plan copied over: bound to b's manifest, refused for a.
        await File.WriteAllBytesAsync(path, await File.ReadAllBytesAsync(Path.Combine(t.StoreDir, "plans", "b.plan")));
        await Assert.ThrowsAsync<ManifestFormatException>(() => store.TryLoadAsync("a", a));

        // An unsealed plan in the store is not trusted either.
        await File.WriteAllBytesAsync(path, inner.Serialize());
        Assert.Contains("not a sealed plan",
            (await Assert.ThrowsAsync<ManifestFormatException>(() => store.TryLoadAsync("a", a))).Message);
    }
}
