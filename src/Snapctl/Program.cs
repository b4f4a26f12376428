using System.CommandLine;
using System.CommandLine.Parsing;
using Snapshots.Snapctl.Commands;

namespace Snapshots.Snapctl;

public static class Program
{
    public static async Task<int> Main(string[] args)
    {
        var root = new RootCommand("snapctl: build, inspect, export, verify and collect microVM memory snapshots");
        foreach (var cmd in new[]
        {
            InitCommand.Create(), BuildCommand.Create(), ExportCommand.Create(), VerifyCommand.Create(),
            InspectCommand.Create(),
            ListCommand.Create(), RemoveCommand.Create(), GcCommand.Create(), GenImageCommand.Create(),
            WarmCommand.Create(), RestoreCommand.Create(), MountCommand.Create(), LogCommand.Create(),
            KeyCommand.Create(),
        })
            root.Subcommands.Add(cmd);

        RejectEmptyText(root);
        bool json = Array.IndexOf(args, "--json") >= 0;
        var parsed = root.Parse(args);
        // A usage error is one line and a hint, not the whole help text (docs/errors.md).
        if (parsed.Errors.Count > 0)
            return ErrorReport.Print(new UsageException(
                $"{FirstError(parsed)} See '{CommandPath(parsed)} --help'."), json);
        using var interruption = new Interruption();
        // Signals are ours (Interruption), so the exit code says which one came.
        var config = new InvocationConfiguration
        {
            EnableDefaultExceptionHandler = false,
            ProcessTerminationTimeout = null,
        };
        try
        {
            int code = await parsed.InvokeAsync(config, interruption.Token);
            // A command that finished its work before it noticed the signal succeeded: say so.
            return interruption.ExitCode == 0 || code == 0 ? code
                : ErrorReport.Print(new OperationCanceledException(), json, interruption.ExitCode);
        }
        catch (UsageException ex) when (interruption.ExitCode == 0)
        {
            return ErrorReport.Print(new UsageException($"{ex.Message}. See '{CommandPath(parsed)} --help'."), json);
        }
        catch (Exception ex)
        {
            return ErrorReport.Print(ex, json, interruption.ExitCode);
        }
    }

    /// <summary>An empty name, path or address is a usage error, said by the option, not an exception deep in
    /// the library.</summary>
    private static void RejectEmptyText(Command command)
    {
        foreach (var option in command.Options)
        {
            if (option.ValueType != typeof(string)) continue;
            option.Validators.Add(r =>
            {
                if (r.Tokens.Count > 0 && string.IsNullOrWhiteSpace(r.Tokens[^1].Value))
                    r.AddError($"{option.Name} must not be empty.");
            });
        }
        foreach (var argument in command.Arguments)
        {
            if (argument.ValueType != typeof(string) && argument.ValueType != typeof(string[])) continue;
            argument.Validators.Add(r =>
            {
                foreach (var token in r.Tokens)
                {
                    if (string.IsNullOrWhiteSpace(token.Value))
                        r.AddError($"{argument.Name} must not be empty.");
                }
            });
        }
        foreach (var sub in command.Subcommands) RejectEmptyText(sub);
    }

    /// <summary>The error to show first: an unknown token says more than the missing command it causes.</summary>
    private static string FirstError(ParseResult parsed)
    {
        foreach (var e in parsed.Errors)
            if (e.Message.StartsWith("Unrecognized", StringComparison.Ordinal)) return e.Message;
        return parsed.Errors[0].Message;
    }

    private static string CommandPath(ParseResult parsed)
    {
        var names = new List<string>();
        for (SymbolResult? r = parsed.CommandResult; r is not null; r = r.Parent)
            if (r is CommandResult c) names.Insert(0, c.Command is RootCommand ? "snapctl" : c.Command.Name);
        return string.Join(' ', names);
    }
}
