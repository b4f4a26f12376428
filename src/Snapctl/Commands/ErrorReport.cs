using Snapshots.Store;

namespace Snapshots.Snapctl.Commands;

/// <summary>
/// How snapctl says an operation failed (docs/errors.md): one line "snapctl: error: MESSAGE" on stderr, and with
/// --json also {"error": {"kind": KIND, "message": MESSAGE}} on stdout. The library names the input at fault
/// (<see cref="SnapshotException.Parameter"/>); this adds the flag that sets it.
/// </summary>
public static class ErrorReport
{
    /// <summary>Exit codes: 1 an operation failed, 2 the command line is wrong, 130 interrupted.</summary>
    public const int Failed = 1, Usage = 2, Interrupted = 130;

    /// <summary>The kind, message and exit code for any exception; an unexpected one is reported as "internal"
    /// with its type, never as a stack trace.</summary>
    public static (string Kind, string Message, int ExitCode) Describe(Exception ex)
    {
        ArgumentNullException.ThrowIfNull(ex);
        return ex switch
        {
            // The library names the location; the way out is a command of ours.
            NotAStoreException n => (n.Kind,
                $"{n.Message}; to create one there, run 'snapctl init' with the same --store", Failed),
            SnapshotException s => (s.Kind, WithFlag(s.Message, s.Parameter), Failed),
            UsageException u => ("usage", u.Message, Usage),
            OperationCanceledException => ("interrupted", "interrupted", Interrupted),
            TimeoutException => ("unavailable", $"a service did not answer in time ({ex.Message})", Failed),
            FileNotFoundException f => ("io", f.FileName is null ? f.Message : $"{f.FileName} does not exist", Failed),
            DirectoryNotFoundException or PathTooLongException or IOException => ("io", ex.Message, Failed),
            UnauthorizedAccessException => ("permission", ex.Message, Failed),
            _ => ("internal", $"{ex.GetType().Name}: {ex.Message} (a bug in snapctl; please report it)", Failed),
        };
    }

    /// <summary>The message with the flag that sets <paramref name="parameter"/> ("... (option --tenant)").</summary>
    public static string WithFlag(string message, string? parameter) => parameter switch
    {
        null => message,
        "store" => $"{message} (option --store or $SNAPSHOTS_STORE)",
        "distributed" => $"{message} (option --distributed or $SNAPSHOTS_DISTRIBUTED)",
        "force" => $"{message} (option --force)",
        "file" => $"{message} (argument FILE)",
        "log" => $"{message} (argument LOG)",
        "plan-file" => $"{message} (argument PLAN)",
        _ => $"{message} (option --{parameter})",
    };

    /// <summary>Prints the error as docs/errors.md says and returns the exit code. After a signal
    /// (<paramref name="signalExit"/> = 128 + the signal), whatever the command threw while stopping is reported as
    /// "interrupted" with that code, and what it threw (other than the cancellation itself) after it; a
    /// <paramref name="forced"/> stop (the command did not stop in time) says <paramref name="ex"/>'s
    /// message.</summary>
    public static int Print(Exception ex, bool json, int signalExit = 0, bool forced = false)
    {
        var (kind, message, code) = Describe(ex);
        if (signalExit != 0)
        {
            // Stopping can fail in turn: say how, rather than hide it behind the signal.
            message = forced ? $"interrupted ({ex.Message})"
                : ex is OperationCanceledException ? "interrupted" : $"interrupted (while stopping: {message})";
            (kind, code) = ("interrupted", signalExit);
        }
        // One line, whatever the input held (a name with a newline in it).
        message = message.ReplaceLineEndings("\\n");
        TryWrite(() => Console.Error.WriteLine($"snapctl: error: {message}"));
        // One JSON document on stdout: a command that already printed its result (restore's figures) says the
        // error on stderr only.
        if (json && !Output.JsonWritten) TryWrite(() => Output.WriteJson(new { error = new { kind, message } }));
        return code;
    }

    /// <summary>Reporting must not fail in turn: with stderr or stdout closed or full, the exit code still says
    /// it.</summary>
    private static void TryWrite(Action write)
    {
        try
        {
            write();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Nowhere left to say it.
        }
    }
}
