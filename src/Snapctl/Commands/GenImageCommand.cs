using System.CommandLine;
using Snapshots.Host;
using Snapshots.Store.Images;

namespace Snapshots.Snapctl.Commands;

public static class GenImageCommand
{
    public static Command Create()
    {
        var output = new Option<string>("--out", "-o") { Description = "Image file to write", Required = true };
        var size = new Option<string>("--size")
        {
            Description = "Image size (e.g. 256M, 1G)", DefaultValueFactory = _ => "256M",
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
        var cmd = new Command("gen-image", "Generate a VM-like memory image for tests, demos and benchmarks")
        {
            output, size, os, runtime, function, change, clone,
        };
        cmd.SetAction((pr, ct) =>
        {
            var spec = new VmImageSpec
            {
                Size = SizeParser.Parse(pr.GetValue(size)!, "--size"), OsSeed = pr.GetValue(os),
                RuntimeSeed = pr.GetValue(runtime), FunctionSeed = pr.GetValue(function),
                FunctionChangePercent = pr.GetValue(change), CloneSeed = pr.GetValue(clone),
            };
            PlanFiles.GenerateImage(spec, pr.GetValue(output)!, ct);
            Console.WriteLine($"wrote {pr.GetValue(output)} ({Output.Bytes(spec.Size)})");
            return Task.FromResult(0);
        });
        return cmd;
    }
}
