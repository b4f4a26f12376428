using System.CommandLine;
using Snapshots.Prefetch;
using Snapshots.Store;
using Snapshots.Store.Chunks;

namespace Snapshots.Snapctl.Commands;

/// <summary>`snapctl log`: page-access logs and prefetch plans.</summary>
public static class LogCommand
{
    public static Command Create()
    {
        var cmd = new Command("log", "Page-access logs and prefetch plans");
        cmd.Subcommands.Add(Merge());
        cmd.Subcommands.Add(Attach());
        cmd.Subcommands.Add(Show());
        cmd.Subcommands.Add(ToTrace());
        cmd.Subcommands.Add(Synth());
        return cmd;
    }

    private static Command Merge()
    {
        var output = new Option<string>("--out", "-o") { Description = "Plan file to write", Required = true };
        var logs = new Argument<string[]>("LOG")
        {
            Description = "Access logs recorded by `snapctl restore --record`",
            Arity = ArgumentArity.OneOrMore,
        };
        var fraction = new Option<double>("--min-fraction")
        {
            Description = "Keep pages seen in at least this fraction of runs",
            DefaultValueFactory = _ => 0.5,
        };
        var group = new Option<int>("--group-pages")
        {
            Description = "Pages per group (sorted by offset within a group)",
            DefaultValueFactory = _ => PlanMerger.DefaultGroupPages,
        };
        var cmd = new Command("merge", "Merge access logs of many restores into a prefetch plan")
        {
            output,
            logs,
            fraction,
            group,
        };
        cmd.SetAction(pr =>
        {
            var loaded = pr.GetValue(logs)!.Select(AccessLog.Load).ToList();
            var plan = PlanMerger.Merge(loaded, pr.GetValue(fraction), pr.GetValue(group));
            File.WriteAllBytes(pr.GetValue(output)!, plan.Serialize());
            Output.WriteJson(new
            {
                plan = pr.GetValue(output),
                runs = plan.RunsMerged,
                pages = plan.Pages.Length,
                groups = plan.GroupSizes.Length,
            });
            return 0;
        });
        return cmd;
    }

    private static Command Attach()
    {
        var store = CommonOptions.Store();
        var keyring = CommonOptions.Keyring();
        var name = CommonOptions.Name();
        var tenant = CommonOptions.Tenant();
        var tiers = new CommonOptions.Tiers();
        var noPack = new Option<bool>("--no-pack")
        {
            Description = "Attach the plan alone: restores then prefetch whole snapshot chunks",
        };
        var planFile = new Argument<string>("PLAN") { Description = "Plan file from `snapctl log merge`" };
        var cmd = new Command("attach", "Store a prefetch plan, and its working-set pack, with a snapshot (replacing "
            + "the previous ones atomically)")
        {
            store, keyring, name, tenant, noPack, planFile,
        };
        CommonOptions.AddAll(cmd, tiers.All);
        cmd.SetAction(async (pr, ct) =>
        {
            var plan = PrefetchPlan.Load(pr.GetValue(planFile)!);
            var settings = tiers.From(pr);
            using var host = CommonOptions.OpenHost(pr, store, keyring);
            var r = await host.AttachPlanAsync(
                pr.GetValue(name)!, pr.GetValue(tenant), plan, !pr.GetValue(noPack), settings, ct);
            Output.WriteJson(r);
            return 0;
        });
        return cmd;
    }

    private static Command Show()
    {
        var file = new Argument<string>("FILE") { Description = "An access log or a prefetch plan" };
        var cmd = new Command("show", "Describe an access log or a prefetch plan") { file };
        cmd.SetAction(pr =>
        {
            var path = pr.GetValue(file)!;
            var bytes = File.ReadAllBytes(path);
            if (bytes.AsSpan().StartsWith("SNAPPLN\0"u8))
            {
                var plan = PrefetchPlan.Parse(bytes, path);
                Output.WriteJson(new
                {
                    kind = "plan",
                    plan.ImageSize,
                    pages = plan.Pages.Length,
                    groups = plan.GroupSizes.Length,
                    plan.RunsMerged,
                    spannedChunks = plan.Pages.Select(p => p / ChunkGeometry.PagesPerChunk).Distinct().Count(),
                    manifestHash = Convert.ToHexStringLower(plan.ManifestHash), pack = plan.PackName
                });
            }
            else
            {
                var log = AccessLog.Parse(bytes, path);
                Output.WriteJson(new
                {
                    kind = "access-log", log.ImageSize, touches = log.Touches.Length,
                    spanUs = log.Touches.Sum(t => (long)t.DeltaUs)
                });
            }
            return 0;
        });
        return cmd;
    }

    private static Command ToTrace()
    {
        var file = new Argument<string>("LOG");
        var output = new Option<string>("--out", "-o")
        {
            Required = true,
            Description = "Text trace for native/bin/replay-vmm --trace",
        };
        var cmd = new Command("to-trace", "Write an access log as a replay-vmm trace") { file, output };
        cmd.SetAction(pr =>
        {
            TraceText.Write(AccessLog.Load(pr.GetValue(file)!), pr.GetValue(output)!);
            return 0;
        });
        return cmd;
    }

    private static Command Synth()
    {
        var image = new Option<string>("--image")
        {
            Required = true,
            Description = "The memory image the trace is for",
        };
        var pages = new Option<int>("--pages")
        {
            Description = "Working-set size in pages",
            DefaultValueFactory = _ => 6000,
        };
        var seed = new Option<int>("--seed")
        {
            Description = "Working-set seed (the function)",
            DefaultValueFactory = _ => 1,
        };
        var variant = new Option<int>("--variant")
        {
            Description = "Invocation seed: changes a few runs and their order (0: none)",
        };
        var variation = new Option<double>("--variation")
        {
            Description = "Fraction of runs a variant changes",
            DefaultValueFactory = _ => 0.03,
        };
        var gap = new Option<uint>("--gap-us") { Description = "Busy time between touches, in microseconds" };
        var output = new Option<string>("--out", "-o") { Required = true, Description = "Access log to write" };
        var trace = new Option<string?>("--trace") { Description = "Also write it as a replay-vmm text trace" };
        var cmd = new Command("synth", "Generate a restore-shaped access log for an image (tests and benchmarks)")
        {
            image, pages, seed, variant, variation, gap, output, trace,
        };
        cmd.SetAction(pr =>
        {
            if (!File.Exists(pr.GetValue(image)))
                throw new InvalidInputException($"image {pr.GetValue(image)} does not exist");
            var log = SyntheticWorkingSet.Generate(
                pr.GetValue(image)!, pr.GetValue(pages), pr.GetValue(seed), pr.GetValue(variant),
                pr.GetValue(variation), pr.GetValue(gap));
            File.WriteAllBytes(pr.GetValue(output)!, log.Serialize());
            if (pr.GetValue(trace) is { } t) TraceText.Write(log, t);
            Output.WriteJson(new { log = pr.GetValue(output), touches = log.Touches.Length });
            return 0;
        });
        return cmd;
    }
}
