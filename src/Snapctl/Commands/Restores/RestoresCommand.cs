using System.CommandLine;
using System.Globalization;
using System.Text.Json;

namespace Snapshots.Snapctl.Commands.Restores;

/// <summary>`snapctl restores`: snapd's client. Each subcommand is one API call (docs/api.md); --json prints the
/// API's document as it came.</summary>
public static class RestoresCommand
{
    public static Command Create()
    {
        var cmd = new Command("restores", "Restores run by snapd, the worker-host daemon (its API client)");
        cmd.Subcommands.Add(CreateRestore());
        cmd.Subcommands.Add(Call("ls", "List snapd's restores (newest first)", null,
            (c, _, ct) => c.GetAsync("v1/restores", ct), PrintList));
        var id = new Argument<string>("ID") { Description = "The restore's id (from create or ls)" };
        cmd.Subcommands.Add(Call("get", "One restore: state, faults, bytes per tier, prefetch progress", id,
            (c, pr, ct) => c.GetAsync("v1/restores/" + Uri.EscapeDataString(pr.GetValue(id)!), ct), PrintOne));
        var rmId = new Argument<string>("ID") { Description = "The restore's id" };
        cmd.Subcommands.Add(Call("rm", "Stop a restore (a VM still connected is killed) and forget it", rmId,
            (c, pr, ct) => c.DeleteAsync("v1/restores/" + Uri.EscapeDataString(pr.GetValue(rmId)!), ct), PrintOne));
        cmd.Subcommands.Add(Call("health", "snapd's health: store, restores running, draining", null,
            (c, _, ct) => c.GetAsync("v1/health", ct), d => Console.WriteLine(
                $"{d.GetProperty("status").GetString()}: {d.GetProperty("activeRestores").GetInt32()} restores of "
                + $"{d.GetProperty("maxRestores").GetInt32()}, store {d.GetProperty("store").GetString()}")));
        return cmd;
    }

    /// <summary>--api: snapd's socket.</summary>
    public static Option<string> Api() => new("--api")
    {
        Description = $"snapd's API socket (default: $SNAPD_API or {SnapdClient.DefaultSocket})",
    };

    private static string SocketOf(ParseResult pr, Option<string> api) =>
        pr.GetValue(api) ?? Environment.GetEnvironmentVariable("SNAPD_API") ?? SnapdClient.DefaultSocket;

    private static Command CreateRestore()
    {
        var snapshot = new Option<string>("--snapshot", "--name", "-n")
        {
            Description = "Snapshot to restore",
            Required = true,
        };
        var tenant = CommonOptions.Tenant();
        var mode = new Option<string>("--mode")
        {
            Description = "uffd: a socket for the VMM's uffd (Firecracker's Uffd backend); file: a memory file on a "
                + "ChunkFs mount",
            DefaultValueFactory = _ => "uffd",
        };
        mode.AcceptOnlyFromAmong("uffd", "file");
        var noPrefetch = new Option<bool>("--no-prefetch") { Description = "Serve every page on demand" };
        var record = new Option<bool>("--record") { Description = "Record this restore's page-access log" };
        var vmmUid = new Option<uint?>("--vmm-uid") { Description = "The uid whose VMM may connect (jailed VMMs)" };
        var deadline = new Option<double?>("--fault-deadline")
        {
            Description = "Seconds a fault may wait before the VM is failed (default: snapd's)",
        };
        var extra = new Option[] { snapshot, tenant, mode, noPrefetch, record, vmmUid, deadline };
        return Call("create", "Restore a snapshot through snapd; returns once the VMM may connect", null,
            (c, pr, ct) => c.PostAsync("v1/restores", new
            {
                snapshot = pr.GetValue(snapshot),
                tenant = pr.GetValue(tenant),
                mode = pr.GetValue(mode),
                prefetch = !pr.GetValue(noPrefetch),
                record = pr.GetValue(record),
                vmmUid = pr.GetValue(vmmUid),
                faultDeadlineSeconds = pr.GetValue(deadline),
            }, ct), PrintOne, extra);
    }

    private static Command Call(string name, string description, Argument<string>? argument,
        Func<SnapdClient, ParseResult, CancellationToken, Task<JsonElement>> call, Action<JsonElement> text,
        params Option[] extra)
    {
        var api = Api();
        var json = CommonOptions.Json();
        var cmd = new Command(name, description) { api, json };
        if (argument is not null) cmd.Arguments.Add(argument);
        foreach (var o in extra) cmd.Options.Add(o);
        cmd.SetAction(async (pr, ct) =>
        {
            using var client = new SnapdClient(SocketOf(pr, api));
            var doc = await call(client, pr, ct);
            return Output.Result(doc, pr.GetValue(json), text);
        });
        return cmd;
    }

    private static void PrintList(JsonElement doc)
    {
        var list = doc.GetProperty("restores");
        if (list.GetArrayLength() == 0) Console.WriteLine("no restores");
        foreach (var r in list.EnumerateArray()) PrintOne(r);
    }

    private static void PrintOne(JsonElement r)
    {
        string where = r.TryGetProperty("socketPath", out var s) ? s.GetString()!
            : r.TryGetProperty("path", out var p) ? p.GetString()! : "";
        string line = string.Create(CultureInfo.InvariantCulture,
            $"{r.GetProperty("id").GetString()}  {r.GetProperty("snapshot").GetString()}  "
            + $"{r.GetProperty("mode").GetString()}  {r.GetProperty("state").GetString()}  "
            + $"{r.GetProperty("faults").GetInt64()} faults  {where}");
        if (r.TryGetProperty("reason", out var why)) line += $"  ({why.GetString()})";
        Console.WriteLine(line);
    }
}
