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
    private int _exitCode;

    public Interruption()
    {
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
        // The grace timer first: cancelling runs the command's cleanup callbacks on this thread, and one that
        // blocks (an unmount waiting on a reader) must still be bounded by the grace.
        _ = Task.Delay(Grace).ContinueWith(_ =>
        {
            Console.Error.WriteLine($"snapctl: error: interrupted (did not stop within {Grace.TotalSeconds:0} s)");
            Environment.Exit(exitCode);
        }, TaskScheduler.Default);
        _ = Task.Run(_cts.Cancel);
    }

    public void Dispose()
    {
        _int.Dispose();
        _term.Dispose();
        _cts.Dispose();
    }
}
