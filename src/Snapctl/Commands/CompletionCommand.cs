using System.CommandLine;

namespace Snapshots.Snapctl.Commands;

/// <summary>Prints a shell completion script. The script asks snapctl itself through System.CommandLine's
/// <c>[suggest:POSITION]</c> directive (the one the dotnet-suggest tool uses), so it needs neither that tool nor
/// .NET on the host, and completes whatever this snapctl accepts: commands, options, option values.</summary>
public static class CompletionCommand
{
    // COMP_LINE up to the cursor, without the program's own name: the directive completes the rest of the line.
    private const string Bash = """
        # snapctl completion for bash: eval "$(snapctl completion bash)", e.g. in ~/.bashrc
        _snapctl_complete() {
          local line="${COMP_LINE:0:COMP_POINT}"
          local rest="${line#"${COMP_WORDS[0]}"}"
          rest="${rest# }"
          local IFS=$'\n'
          COMPREPLY=($(compgen -W "$("${COMP_WORDS[0]}" "[suggest:${#rest}]" "$rest" 2>/dev/null)" \
            -- "${COMP_WORDS[COMP_CWORD]}"))
        }
        complete -o default -F _snapctl_complete snapctl
        """;

    private const string Zsh = """
        # snapctl completion for zsh: eval "$(snapctl completion zsh)", e.g. in ~/.zshrc (after compinit)
        _snapctl() {
          local rest="${(j: :)words[2,CURRENT]}"
          local -a items
          items=(${(f)"$("${words[1]}" "[suggest:${#rest}]" "$rest" 2>/dev/null)"})
          compadd -- $items
        }
        compdef _snapctl snapctl
        """;

    public static Command Create()
    {
        var shell = new Argument<string>("SHELL") { Description = "bash or zsh" };
        shell.AcceptOnlyFromAmong("bash", "zsh");
        var json = CommonOptions.Json();
        var cmd = new Command("completion", "Print a shell completion script: eval \"$(snapctl completion bash)\"")
        {
            shell, json,
        };
        // With --json the script comes inside the one document every command prints (for installers).
        cmd.SetAction(pr => Output.Result(
            new CompletionScript(pr.GetValue(shell)!, pr.GetValue(shell) == "zsh" ? Zsh : Bash),
            pr.GetValue(json), r => Console.WriteLine(r.Script)));
        return cmd;
    }
}

/// <summary>A shell's completion script, as <c>completion --json</c> prints it.</summary>
public sealed record CompletionScript(string Shell, string Script);
