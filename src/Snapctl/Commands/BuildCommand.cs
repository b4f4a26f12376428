using System.CommandLine;
using System.Globalization;
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
            Description = "Raw guest memory file (no header)",
            Required = true,
        };
        var parent = new Option<string?>("--parent", "-p")
        {
            Description = "Parent snapshot: chunks equal to the parent's are inherited",
        };
        var layer = new Option<string?>("--layer")
        {
            Description = "os | runtime (the shared domain) | function (needs --tenant, implied by it). One of "
                + "--layer or --tenant is required: a layer is never shared by omission",
        };
        var tenant = CommonOptions.Tenant();
        var salt = new Option<string>("--salt")
        {
            Description = "Convergence salt (rotate to split a domain)",
            DefaultValueFactory = _ => "v1",
        };
        var replace = new Option<bool>("--replace") { Description = "Publish over an existing snapshot of this name" };
        var verifyExisting = new Option<bool>("--verify-existing")
        {
            Description = "Read back every chunk the store already holds and rewrite a damaged one (heals the store)",
        };
        var diff = new Option<bool>("--diff")
        {
            Description = "The memory file is a diff snapshot (Firecracker's Diff type: dirty pages, holes "
                + "elsewhere): holes are unchanged from --parent, and only the data extents are read",
        };
        var holesAreZero = new Option<bool>("--holes-are-zero")
        {
            Description = "The memory file is a full snapshot whose holes are zero pages (needed for a sparse file "
                + "with --parent; without a parent holes are zeros anyway)",
        };
        var json = CommonOptions.Json();
        var cmd = new Command("build", "Build a layer from a raw memory file and publish its manifest")
        {
            store, keyring, name, memory, parent, layer, tenant, salt, replace, verifyExisting, diff, holesAreZero,
            json,
        };
        cmd.SetAction(async (pr, ct) =>
        {
            if (pr.GetValue(diff) && pr.GetValue(parent) is null)
                throw new UsageException("--diff needs --parent: a diff snapshot's holes mean unchanged from its base");
            if (pr.GetValue(diff) && pr.GetValue(holesAreZero))
                throw new UsageException("--diff and --holes-are-zero contradict each other: a diff's holes are the "
                    + "parent's bytes");
            LayerKind? kind = null;
            if (pr.GetValue(layer) is { } text)
            {
                if (!LayerKinds.TryParse(text, out var k))
                    throw new UsageException($"--layer '{text}': use os, runtime or function");
                kind = k;
            }
            var request = new BuildRequest
            {
                Name = pr.GetValue(name)!,
                MemoryPath = pr.GetValue(memory)!,
                Parent = pr.GetValue(parent),
                Layer = kind,
                Tenant = pr.GetValue(tenant),
                Salt = pr.GetValue(salt)!,
                Replace = pr.GetValue(replace),
                VerifyExisting = pr.GetValue(verifyExisting),
                Diff = pr.GetValue(diff),
                HolesAreZero = pr.GetValue(holesAreZero),
            };
            using var host = await CommonOptions.OpenHostAsync(pr, store, ct, keyring);
            bool asJson = pr.GetValue(json);
            var r = await Output.WithProgressAsync(
                $"build {request.Name}", p => host.BuildAsync(request, p, ct));
            if (asJson)
            {
                Output.WriteJson(r);
                return 0;
            }
            var healed = r.HealedChunks > 0 ? $"; {r.HealedChunks} damaged chunk(s) in the store rewritten" : "";
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"built {r.Layer} layer '{r.Name}' ({r.Domain}) in {r.Seconds:F2} s: {r.Chunks} chunks = " +
                $"{r.ZeroChunks} zero + {r.InheritedChunks} inherited + {r.DedupedChunks} deduped + " +
                $"{r.NewChunks} new; " +
                $"read {Output.Bytes(r.ReadBytes)}, uploaded {Output.Bytes(r.UploadedBytes)}, " +
                $"manifest {Output.Bytes(r.ManifestBytes)}{healed}"));
            return 0;
        });
        return cmd;
    }
}
