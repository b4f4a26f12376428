using System.CommandLine;
using Snapshots.Store;
using Snapshots.Store.Layers;
using Manifests = Snapshots.Store.Manifests;

namespace Snapshots.Snapctl.Commands;

public static class RemoveCommand
{
    public static Command Create()
    {
        var store = CommonOptions.Store();
        var name = CommonOptions.Name();
        var force = new Option<bool>("--force") { Description = "Remove even when other snapshots build on it" };
        var json = CommonOptions.Json();
        var cmd = new Command("rm", "Remove a snapshot's manifest (its chunks go at the next gc)")
        {
            store, name, force, json,
        };
        cmd.SetAction(async (pr, ct) =>
        {
            var catalog = new SnapshotCatalog(CommonOptions.OpenStore(pr.GetValue(store)!));
            var target = pr.GetValue(name)!;
            if (!await catalog.ExistsAsync(target, ct))
                throw new SnapshotNotFoundException(target, catalog.Blobs.Describe);
            var children = new List<string>();
            await foreach (var n in catalog.ListNamesAsync(ct))
            {
                try
                {
                    if ((await catalog.TryLoadAsync(n, ct))?.ParentName == target) children.Add(n);
                }
                catch (SnapshotException) { /* an unreadable manifest names no parent we can trust */ }
            }
            if (children.Count > 0 && !pr.GetValue(force))
                throw new InvalidInputException($"snapshot '{target}' is the parent of {string.Join(", ", children)}; "
                    + "remove those first or pass --force");
            await catalog.DeleteAsync(target, ct);
            // Its prefetch plan and working-set pack belong to it: they go too (their chunks at the next gc).
            await catalog.Blobs.DeleteAsync(Prefetch.PlanStore.KeyOf(target), ct);
            if (!target.EndsWith(Prefetch.WorkingSetPack.Suffix, StringComparison.Ordinal)
                && Manifests.SnapshotName.IsValid(target + Prefetch.WorkingSetPack.Suffix)
                && await catalog.ExistsAsync(target + Prefetch.WorkingSetPack.Suffix, ct))
                await catalog.DeleteAsync(target + Prefetch.WorkingSetPack.Suffix, ct);
            if (pr.GetValue(json)) Output.WriteJson(new { removed = target, orphanedChildren = children });
            else
                Console.WriteLine($"removed '{target}'" + (children.Count > 0
                    ? $" (children left without their parent: {string.Join(", ", children)})"
                    : ""));
            return 0;
        });
        return cmd;
    }
}
