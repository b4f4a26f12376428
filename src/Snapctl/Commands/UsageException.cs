namespace Snapshots.Snapctl.Commands;

/// <summary>The command line itself is wrong: a value snapctl cannot parse or options that exclude each other.
/// Exits 2 like System.CommandLine's own parse errors (docs/errors.md); the library never throws it.</summary>
public sealed class UsageException(string message) : Exception(message);
