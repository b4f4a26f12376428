using System.CommandLine;
using Snapshots.Host;
using Snapshots.Prefetch;
using Snapshots.Store.Files;

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
            Output.WriteJson(PlanFiles.MergeLogs(
                pr.GetValue(logs)!, pr.GetValue(fraction), pr.GetValue(group), pr.GetValue(output)!));
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
            var settings = tiers.From(pr);
            var plan = PrefetchPlan.Load(FileKinds.RequireRegular(pr.GetValue(planFile)!, "plan-file"));
            using var host = await CommonOptions.OpenHostAsync(pr, store, ct, keyring);
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
            Output.WriteJson(PlanFiles.Describe(pr.GetValue(file)!));
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
            PlanFiles.ToTrace(pr.GetValue(file)!, pr.GetValue(output)!);
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
            int touches = PlanFiles.Synthesize(new SynthRequest
            {
                ImagePath = pr.GetValue(image)!,
                OutPath = pr.GetValue(output)!,
                TracePath = pr.GetValue(trace),
                Pages = pr.GetValue(pages),
                Seed = pr.GetValue(seed),
                Variant = pr.GetValue(variant),
                Variation = pr.GetValue(variation),
                GapUs = pr.GetValue(gap),
            });
            Output.WriteJson(new { log = pr.GetValue(output), touches });
            return 0;
        });
        return cmd;
    }
}
