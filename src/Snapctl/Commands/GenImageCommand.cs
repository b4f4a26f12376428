using System.CommandLine;
using Snapshots.Host;
using Snapshots.Store.Images;

namespace Snapshots.Snapctl.Commands;

public static class GenImageCommand
{
    /// <summary>What `gen-image` wrote: the file and its size in bytes.</summary>
    public sealed record GenImageResult(string Image, long ImageBytes);

    public static Command Create()
    {
        var output = new Option<string>("--out", "-o") { Description = "Image file to write", Required = true };
        var size = new Option<string>("--size")
        {
            Description = "Image size (e.g. 256M, 1G; 16M to 1T, and its data must fit the target's free space)",
            DefaultValueFactory = _ => "256M",
        };
        var os = new Option<int>("--os-seed") { Description = "OS content seed", DefaultValueFactory = _ => 1 };
        var runtime = new Option<int>("--runtime-seed") { Description = "Runtime content seed (0: none)" };
        var function = new Option<int>("--function-seed") { Description = "Function content seed (0: none)" };
        var change = new Option<double>("--change-percent")
        {
            Description = "Percent of pages a function rewrites", DefaultValueFactory = _ => 3,
        };
        var clone = new Option<int>("--clone-seed")
        {
            Description = "Clone seed: a few pages differ per clone (0: none)",
        };
        var json = CommonOptions.Json();
        var cmd = new Command("gen-image", "Generate a VM-like memory image for tests, demos and benchmarks")
        {
            output, size, os, runtime, function, change, clone, json,
        };
        cmd.SetAction(async (pr, ct) =>
        {
            var spec = new VmImageSpec
            {
                Size = SizeParser.Parse(pr.GetValue(size)!, "--size"), OsSeed = pr.GetValue(os),
                RuntimeSeed = pr.GetValue(runtime), FunctionSeed = pr.GetValue(function),
                FunctionChangePercent = pr.GetValue(change), CloneSeed = pr.GetValue(clone),
            };
            string path = pr.GetValue(output)!;
            // Off the invocation thread, so a signal's cancellation is seen between blocks.
            await Output.WithProgressAsync($"gen-image {Path.GetFileName(path)}", p =>
                Task.Run(() =>
                {
                    PlanFiles.GenerateImage(spec, path, p, ct);
                    return spec.Size;
                }, ct));
            return Output.Result(new GenImageResult(path, spec.Size), pr.GetValue(json),
                r => Console.WriteLine($"wrote {r.Image} ({Output.Bytes(r.ImageBytes)})"));
        });
        return cmd;
    }
}
