using System.CommandLine;
using System.CommandLine.Parsing;
using Snapshots.Snapctl.Commands;

namespace Snapshots.Snapctl;

public static class Program
{
    /// <summary>--progress and --quiet apply to every command (Output): recursive options of the root.</summary>
    public static readonly Option<bool> Progress = new("--progress")
    {
        Description = "Show progress on stderr even when it is not a terminal (plain lines then)",
        Recursive = true,
    };

    public static readonly Option<bool> Quiet = new("--quiet", "-q")
    {
        Description = "Show no progress and no notes on stderr (errors still)",
        Recursive = true,
    };

    /// <summary>Every command snapctl has, as registered: docs/cli.md and the schema guard test read this.
    /// </summary>
    public static RootCommand CreateRoot()
    {
        var root = new RootCommand("snapctl: build, inspect, export, verify and collect microVM memory snapshots");
        foreach (var cmd in new[]
        {
            InitCommand.Create(), BuildCommand.Create(), ExportCommand.Create(), VerifyCommand.Create(),
            InspectCommand.Create(),
            ListCommand.Create(), RemoveCommand.Create(), GcCommand.Create(), GenImageCommand.Create(),
            WarmCommand.Create(), RestoreCommand.Create(), MountCommand.Create(), LogCommand.Create(),
            KeyCommand.Create(), VersionCommand.Create(),
            StatsCommand.Create(), DiffCommand.Create(), CopyCommand.Create(), CompletionCommand.Create(),
            Commands.Restores.RestoresCommand.Create(),
        })
            root.Subcommands.Add(cmd);
        root.Subcommands.Add(HelpCommand.Create(root));
        root.Options.Add(Progress);
        root.Options.Add(Quiet);
        RejectEmptyText(root);
        return root;
    }

    public static async Task<int> Main(string[] args)
    {
        var root = CreateRoot();
        bool json = Array.IndexOf(args, "--json") >= 0;
        var parsed = root.Parse(args);
        // A usage error is one line and a hint, not the whole help text (docs/errors.md).
        if (parsed.Errors.Count > 0)
            return ErrorReport.Print(new UsageException(
                $"{FirstError(parsed)} See '{CommandPath(parsed)} --help'."), json);
        if (parsed.GetValue(Progress) && parsed.GetValue(Quiet))
            return ErrorReport.Print(new UsageException(
                $"--progress and --quiet exclude each other. See '{CommandPath(parsed)} --help'."), json);
        Output.Configure(parsed.GetValue(Progress), parsed.GetValue(Quiet));
        using var interruption = new Interruption(json);
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
