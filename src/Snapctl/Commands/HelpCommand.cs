using System.CommandLine;

namespace Snapshots.Snapctl.Commands;

/// <summary>`snapctl help [COMMAND...]`: the help of snapctl or of one command, as `COMMAND --help` prints it;
/// with --json, the command's options, arguments and subcommands as data (for completion and docs tools).
/// </summary>
public static class HelpCommand
{
    public sealed record OptionHelp(string Name, IReadOnlyList<string> Aliases, string? Description, bool Required);

    public sealed record ArgumentHelp(string Name, string? Description);

    public sealed record CommandHelp(string Command, string? Description, IReadOnlyList<OptionHelp> Options,
        IReadOnlyList<ArgumentHelp> Arguments, IReadOnlyList<CommandHelp> Subcommands);

    public static Command Create(RootCommand root)
    {
        ArgumentNullException.ThrowIfNull(root);
        var names = new Argument<string[]>("COMMAND")
        {
            Description = "The command (and subcommand) to explain; none: snapctl itself",
            Arity = ArgumentArity.ZeroOrMore,
        };
        var json = CommonOptions.Json();
        var cmd = new Command("help", "Show the help of snapctl or of a command") { names, json };
        cmd.SetAction(pr =>
        {
            var path = pr.GetValue(names) ?? [];
            Command target = root;
            foreach (var n in path)
            {
                target = target.Subcommands.FirstOrDefault(c => c.Name == n || c.Aliases.Contains(n))
                    ?? throw new UsageException($"no command '{string.Join(' ', path)}'");
            }
            if (pr.GetValue(json))
            {
                Output.WriteJson(Describe(target, path.Length == 0 ? "snapctl" : "snapctl " + string.Join(' ', path)));
                return 0;
            }
            return root.Parse([.. path, "--help"]).Invoke();
        });
        return cmd;
    }

    private static CommandHelp Describe(Command c, string path) => new(
        path,
        c.Description,
        [.. c.Options.Where(o => !o.Hidden).Select(o =>
            new OptionHelp(o.Name, [.. o.Aliases], o.Description, o.Required))],
        [.. c.Arguments.Where(a => !a.Hidden).Select(a => new ArgumentHelp(a.Name, a.Description))],
        [.. c.Subcommands.Where(s => !s.Hidden).Select(s => Describe(s, $"{path} {s.Name}"))]);
}
