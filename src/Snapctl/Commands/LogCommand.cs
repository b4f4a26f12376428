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

    /// <summary>What `log to-trace` wrote.</summary>
    public sealed record TraceResult(string Trace);

    /// <summary>What `log synth` wrote: the access log and its first touches.</summary>
    public sealed record SynthResult(string Log, int Touches);

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
        var json = CommonOptions.Json();
        var cmd = new Command("merge", "Merge access logs of many restores into a prefetch plan")
        {
            output, logs, fraction, group, json,
        };
        cmd.SetAction(pr => Output.Result(
            PlanFiles.MergeLogs(pr.GetValue(logs)!, pr.GetValue(fraction), pr.GetValue(group), pr.GetValue(output)!),
            pr.GetValue(json),
            m => Console.WriteLine($"wrote plan {m.Plan}: {m.Pages} pages in {m.Groups} groups from {m.Runs} runs")));
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
        var json = CommonOptions.Json();
        var cmd = new Command("attach", "Store a prefetch plan, and its working-set pack, with a snapshot (replacing "
            + "the previous ones atomically)")
        {
            store, keyring, name, tenant, noPack, planFile, json,
        };
        CommonOptions.AddAll(cmd, tiers.All);
        cmd.SetAction(async (pr, ct) =>
        {
            var settings = tiers.From(pr);
            var plan = PrefetchPlan.Load(FileKinds.RequireRegular(pr.GetValue(planFile)!, "plan-file"));
            using var host = await CommonOptions.OpenHostAsync(pr, store, ct, keyring);
            // Building the pack reads the plan's chunks through the tiers: the progress counts them.
            var r = await Output.WithProgressAsync($"attach plan to {pr.GetValue(name)}",
                p => host.AttachPlanAsync(pr.GetValue(name)!, pr.GetValue(tenant), plan, !pr.GetValue(noPack),
                    settings, p, ct));
            return Output.Result(r, pr.GetValue(json), a => Console.WriteLine(
                $"attached a plan of {a.Pages} pages ({a.Runs} runs merged) to '{a.Attached}'"
                    + (a.Pack is null ? " without a pack" : $" with working-set pack {a.Pack}")));
        });
        return cmd;
    }

    private static Command Show()
    {
        var file = new Argument<string>("FILE") { Description = "An access log or a prefetch plan" };
        var json = CommonOptions.Json();
        var cmd = new Command("show", "Describe an access log or a prefetch plan") { file, json };
        cmd.SetAction(pr => Output.Result(PlanFiles.Describe(pr.GetValue(file)!), pr.GetValue(json), d =>
            Console.WriteLine(d switch
            {
                PlanSummary p => $"prefetch plan for a {Output.Bytes(p.ImageBytes)} image: {p.Pages} pages in "
                    + $"{p.Groups} groups from {p.Runs} runs, {p.SpannedChunks} chunks, manifest {p.ManifestHash}"
                    + (p.Pack is null ? "" : $", pack {p.Pack}"),
                AccessLogSummary l => $"access log of a {Output.Bytes(l.ImageBytes)} image: {l.Touches} first "
                    + $"touches over {Output.Duration(l.SpanSeconds)}",
                _ => d.ToString(),
            })));
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
        var json = CommonOptions.Json();
        var cmd = new Command("to-trace", "Write an access log as a replay-vmm trace") { file, output, json };
        cmd.SetAction(pr =>
        {
            PlanFiles.ToTrace(pr.GetValue(file)!, pr.GetValue(output)!);
            return Output.Result(new TraceResult(pr.GetValue(output)!), pr.GetValue(json),
                t => Console.WriteLine($"wrote {t.Trace}"));
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
        var json = CommonOptions.Json();
        var cmd = new Command("synth", "Generate a restore-shaped access log for an image (tests and benchmarks)")
        {
            image, pages, seed, variant, variation, gap, output, trace, json,
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
            return Output.Result(new SynthResult(pr.GetValue(output)!, touches), pr.GetValue(json),
                s => Console.WriteLine($"wrote {s.Log}: {s.Touches} first touches"));
        });
        return cmd;
    }
}
