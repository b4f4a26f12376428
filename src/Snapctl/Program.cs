using System.CommandLine;
using Snapshots.Snapctl.Commands;
using Snapshots.Store;

namespace Snapshots.Snapctl;

public static class Program
{
    public static async Task<int> Main(string[] args)
    {
        var root = new RootCommand("snapctl: build, inspect, export, verify and collect microVM memory snapshots");
        foreach (var cmd in new[]
        {
            BuildCommand.Create(), ExportCommand.Create(), VerifyCommand.Create(), InspectCommand.Create(),
            ListCommand.Create(), RemoveCommand.Create(), GcCommand.Create(), GenImageCommand.Create(),
            WarmCommand.Create(),
            RestoreCommand.Create(), LogCommand.Create(),
        })
            root.Subcommands.Add(cmd);

        var parsed = root.Parse(args);
        try
        {
            return await parsed.InvokeAsync(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
        }
        catch (SnapshotException ex)
        {
            return Fail(ex.Message, args);
        }
        catch (IOException ex)
        {
            return Fail(ex.Message, args);
        }
        catch (UnauthorizedAccessException ex)
        {
            return Fail(ex.Message, args);
        }
    }

    private static int Fail(string message, string[] args)
    {
        Console.Error.WriteLine($"snapctl: error: {message}");
        if (args.Contains("--json")) Output.WriteJson(new { error = message });
        return 1;
    }
}
