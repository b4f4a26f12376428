using System.CommandLine;
using Snapshots.Store;
using Snapshots.Store.Keys;
using Snapshots.Store.Layers;
using Snapshots.Store.Manifests;

namespace Snapshots.Snapctl.Commands;

public static class BuildCommand
{
    public static Command Create()
    {
        var store = CommonOptions.Store();
        var keyring = CommonOptions.Keyring();
        var name = CommonOptions.Name();
        var memory = new Option<string>("--memory", "-m")
        {
            Description = "Raw guest memory file (no header)", Required = true,
        };
        var parent = new Option<string?>("--parent", "-p")
        {
            Description = "Parent snapshot: chunks equal to the parent's are inherited",
        };
        var layer = new Option<string?>("--layer")
        {
            Description = "os | runtime | function "
                + "(default: os without a parent, runtime with one, function with --tenant)",
        };
        var tenant = CommonOptions.Tenant();
        var salt = new Option<string>("--salt")
        {
            Description = "Convergence salt (rotate to split a domain)", DefaultValueFactory = _ => "v1",
        };
        var replace = new Option<bool>("--replace") { Description = "Publish over an existing snapshot of this name" };
        var json = CommonOptions.Json();
        var cmd = new Command("build", "Build a layer from a raw memory file and publish its manifest")
        {
            store, keyring, name, memory, parent, layer, tenant, salt, replace, json,
        };
        cmd.SetAction(async (pr, ct) =>
        {
            LayerKind? kind = null;
            if (pr.GetValue(layer) is { } text)
            {
                if (!LayerKinds.TryParse(text, out var k))
                    throw new InvalidInputException($"--layer '{text}': use os, runtime or function");
                kind = k;
            }
            var request = new BuildRequest
            {
                Name = pr.GetValue(name)!, MemoryPath = pr.GetValue(memory)!, Parent = pr.GetValue(parent),
                Layer = kind, Tenant = pr.GetValue(tenant), Salt = pr.GetValue(salt)!, Replace = pr.GetValue(replace),
            };
            var blobs = CommonOptions.OpenStore(pr.GetValue(store)!, create: true);
            var builder = new LayerBuilder(blobs, new LocalKeyring(pr.GetValue(keyring)!));
            bool asJson = pr.GetValue(json);
            long total = File.Exists(request.MemoryPath) ? new FileInfo(request.MemoryPath).Length : 0;
            var result = await Output.WithProgressAsync(
                $"build {request.Name}", total, asJson, p => builder.BuildAsync(request, p, ct));
            if (asJson) { Output.WriteJson(result); return 0; }
            Console.WriteLine(
                $"built {result.Layer} layer '{result.Name}' ({result.Domain}) in {result.Seconds:F2} s: " +
                $"{result.Chunks} chunks = {result.ZeroChunks} zero + {result.InheritedChunks} inherited + " +
                $"{result.DedupedChunks} deduped + {result.NewChunks} new; " +
                $"uploaded {Output.Bytes(result.UploadedBytes)}, manifest {Output.Bytes(result.ManifestBytes)}");
            return 0;
        });
        return cmd;
    }
}
