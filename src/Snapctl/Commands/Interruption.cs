using System.Runtime.InteropServices;

namespace Snapshots.Snapctl.Commands;

/// <summary>
/// SIGINT and SIGTERM cancel the running command through its token, so it stops where nothing is half-written
/// (temp files removed, no manifest published, a served VM failed loudly). A command that has not stopped within
/// <see cref="Grace"/> is ended anyway. The exit code is 128 + the signal: 130 for SIGINT, 143 for SIGTERM.
/// </summary>
public sealed class Interruption : IDisposable
{
    /// <summary>How long a cancelled command may take to stop before the process ends regardless.</summary>
    public static readonly TimeSpan Grace = TimeSpan.FromSeconds(10);

    private readonly CancellationTokenSource _cts = new();
    private readonly PosixSignalRegistration _int, _term;
    private readonly bool _json;
    private int _exitCode;

    /// <param name="json">Whether the command prints JSON: a forced stop still prints the one error document.</param>
    public Interruption(bool json = false)
    {
        _json = json;
        _int = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => OnSignal(c, 130));
        _term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => OnSignal(c, 143));
    }

    public CancellationToken Token => _cts.Token;

    /// <summary>128 + the signal that interrupted the command; 0 when none did.</summary>
    public int ExitCode => Volatile.Read(ref _exitCode);

    private void OnSignal(PosixSignalContext context, int exitCode)
    {
        context.Cancel = true; // the command stops itself, through the token
        if (Interlocked.CompareExchange(ref _exitCode, exitCode, 0) != 0) return;
        // Both on threads of their own, never the thread pool's: a command's chunk workers may hold every pool
        // thread (reads that complete synchronously never yield), and a cancel or a grace timer queued behind them
        // ran only when the pool grew or the work ended (export, verify and warm ran to the end and exited 0).
        // The grace timer first: cancelling runs the command's cleanup callbacks, and one that blocks (an unmount
        // waiting on a reader) must still be bounded by the grace.
        Start("snapctl-grace", () =>
        {
            Thread.Sleep(Grace);
            ErrorReport.Print(new OperationCanceledException(
                $"did not stop within {Grace.TotalSeconds:0} s"), _json, exitCode, forced: true);
            Environment.Exit(exitCode);
        });
        Start("snapctl-cancel", _cts.Cancel);
    }

    private static void Start(string name, Action action) =>
        new Thread(() => action()) { IsBackground = true, Name = name }.Start();

    public void Dispose()
    {
        _int.Dispose();
        _term.Dispose();
        _cts.Dispose();
    }
}
