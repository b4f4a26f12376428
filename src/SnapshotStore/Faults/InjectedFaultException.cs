namespace Snapshots.Store.Faults;

/// <summary>The error a <see cref="FaultInjectingChunkStore"/> throws in place of a read. An IOException, as a
/// failing disk or connection throws, so a reader treats it as that tier's error; its own type lets a test or a
/// harness tell injected errors from real ones.</summary>
public sealed class InjectedFaultException(string message) : IOException(message);
