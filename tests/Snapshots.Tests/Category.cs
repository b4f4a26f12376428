namespace Snapshots.Tests;

/// <summary>
/// What a test costs, as its xunit trait: <c>[Trait("Category", Category.Unit)]</c> on the class, or on each test
/// method of a class that mixes costs. <c>scripts/test.sh --fast</c> runs <see cref="Unit"/> only
/// (<c>dotnet test --filter Category=unit</c>); CI runs everything. <see cref="CategoryTests"/> fails a test that
/// has no category.
/// </summary>
public static class Category
{
    /// <summary>
    /// In this process only: temp files, sockets and userfaultfd are fine; no child process, no service.
    /// </summary>
    public const string Unit = "unit";

    /// <summary>Starts a process: snapctl (<see cref="Snapctl"/>), native/bin/replay-vmm (<see cref="Loader"/>) or
    /// another program.</summary>
    public const string Process = "process";

    /// <summary>Needs s3rver or Redis (the <see cref="Services.ServicesCollection"/> classes, started by the
    /// tests).</summary>
    public const string Services = "services";

    public static IReadOnlyList<string> All { get; } = [Unit, Process, Services];
}
